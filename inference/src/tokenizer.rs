//! Byte-level BPE tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, giving
//! exactly the ids llama.cpp gives (`llama_tokenize` with `add_special = false`).
//!
//! What "exactly" rests on, step by step (llama.cpp `llama-vocab.cpp` / `unicode.cpp`):
//!
//! 1. **Special tokens first.** Control, user-defined and unknown tokens are cut out of the
//!    text before anything else: longest token text first, every occurrence left to right.
//!    Control and unknown tokens only when `parse_special` is set; user-defined ones always.
//! 2. **Pre-tokenizer.** Each remaining text piece is split into words by the model's
//!    pre-tokenizer (`tokenizer.ggml.pre`), written here by hand, no regex engine:
//!    * [`PreTokenizer::Gpt2`]: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//!    * [`PreTokenizer::Smollm`] (also StarCoder, Refact, Command-R, ...): first every
//!      `\p{N}` code point becomes a piece of its own, then the GPT-2 split runs inside each
//!      piece. So `" 2024"` is `" "`, `"2"`, `"0"`, `"2"`, `"4"`; candle's GGUF tokenizer
//!      treats `smollm` as plain GPT-2 and gives `" 2024"` as one word, which is wrong.
//!    * [`PreTokenizer::Llama3`]: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//!
//!    A lookahead such as `(?!\S)` sees only its own piece (as in llama.cpp, where each
//!    pass runs on the pieces of the previous one).
//! 3. **BPE** on the bytes of each word: repeatedly merge the adjacent pair with the lowest
//!    merge rank, the leftmost among equal ranks. A final symbol that is not a token falls
//!    back to single-character tokens, as llama.cpp does.
//!
//! **Unicode categories.** `\p{L}` and `\p{N}` come from tables in this file (Unicode 15.1,
//! the version of llama.cpp's `unicode-data.cpp`; derived from the UCD general categories
//! minus the code points Unicode 16.0 added). `\s` is the White_Space property (the 25 code
//! points llama.cpp lists). std's `char::is_alphabetic` is *not* `\p{L}`: it is the
//! Alphabetic property, which also holds letter numbers (`Ⅻ`, which is `\p{N}`) and many
//! combining marks (Devanagari vowel signs such as `U+093E`, which are `\p{M}`), so using it
//! would split Hindi and Roman numerals differently. std's `char::is_numeric` is exactly
//! `\p{N}` but of Rust's own Unicode version; the table pins 15.1. Code points unassigned in
//! 15.1 are neither letters nor numbers, as in llama.cpp.
//!
//! **Decoding** concatenates each token's bytes: normal tokens are mapped back from the
//! GPT-2 byte alphabet, control/user-defined/unknown tokens render as their text, unused
//! tokens as nothing. This equals `llama_detokenize(remove_special = false,
//! unparse_special = true)` for vocabularies without llama.cpp's `clean_spaces` step
//! (`smollm` has it off; GPT-2 and Llama-3 vocabularies have it on in llama.cpp, which
//! then also drops the space in `" ,"`, `" 's"` and the like; this decoder never does, so
//! that decoding always gives back the encoded text).
//!
//! Not implemented, and refused at load rather than silently different: other vocabulary
//! types (SentencePiece, WordPiece, ...), other pre-tokenizers (including llama.cpp's
//! `default`), and the `lstrip`/`rstrip` special-token attributes llama.cpp sets for a few
//! models by name (Phi-3, Jina v2, ModernBERT).

use crate::error::{InferenceError, Result};
use crate::gguf::GgufFile;
use candle_core::quantized::gguf_file::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use unicode_tables::{LETTER_RANGES, NUMBER_RANGES};

/// How text is split into words before BPE (`tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// The GPT-2 split.
    Gpt2,
    /// Every `\p{N}` code point alone, then the GPT-2 split (SmolLM, StarCoder, ...).
    Smollm,
    /// The Llama-3 split (contractions any case, digits in runs of at most three).
    Llama3,
}

/// What llama.cpp does for one `tokenizer.ggml.pre` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreTokenizerConfig {
    pub pre: PreTokenizer,
    /// A word that is itself a token skips BPE (llama.cpp `ignore_merges`).
    pub ignore_merges: bool,
    /// Whether a BOS token is prepended when the GGUF does not say
    /// (`tokenizer.ggml.add_bos_token` overrides it).
    pub add_bos: bool,
}

impl PreTokenizer {
    /// The splitter llama.cpp uses for a `tokenizer.ggml.pre` value. Names llama.cpp maps
    /// to something not implemented here are an error, never a fallback.
    pub fn from_gguf_name(name: &str) -> Result<PreTokenizerConfig> {
        let config = |pre, ignore_merges, add_bos| PreTokenizerConfig {
            pre,
            ignore_merges,
            add_bos,
        };
        match name {
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" | "mellum2" => Ok(config(PreTokenizer::Smollm, false, false)),
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "a.x-4.0" | "mellum"
            | "jina-v1-en" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" | "exaone4" => Ok(config(PreTokenizer::Gpt2, false, false)),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => Ok(config(PreTokenizer::Llama3, true, true)),
            "dbrx" | "smaug-bpe" => Ok(config(PreTokenizer::Llama3, false, false)),
            "" | "default" => Err(InferenceError::UnsupportedTokenizer(
                "tokenizer.ggml.pre is absent or \"default\": llama.cpp then uses its legacy \
                 multi-pass split, which this engine does not implement"
                    .into(),
            )),
            other => Err(InferenceError::UnsupportedTokenizer(format!(
                "pre-tokenizer {other:?} (tokenizer.ggml.pre) is not implemented; \
                 supported: the smollm, gpt-2 and llama3 families"
            ))),
        }
    }
}

/// llama.cpp's token attributes, reduced to what tokenizing and decoding look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Control,
    UserDefined,
    Unknown,
    Byte,
    /// Unused or undefined: decodes to nothing, never produced by BPE matching as special.
    Unused,
}

impl Kind {
    /// GGUF `tokenizer.ggml.token_type` values (llama.cpp `llama_token_type`).
    fn from_gguf(t: i64) -> Kind {
        match t {
            1 => Kind::Normal,
            2 => Kind::Unknown,
            3 => Kind::Control,
            4 => Kind::UserDefined,
            6 => Kind::Byte,
            _ => Kind::Unused,
        }
    }

    /// Cut out of the text before pre-tokenizing (with `parse_special` for all but
    /// user-defined tokens).
    fn is_special(self) -> bool {
        matches!(self, Kind::Control | Kind::UserDefined | Kind::Unknown)
    }
}

/// Marks "no symbol" in the byte tables.
const NONE: u32 = u32::MAX;

/// Hasher for the merge table's packed `(left << 32) | right` keys.
#[derive(Default, Clone, Copy)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = (n ^ self.0.rotate_left(23)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

type PairMap = HashMap<u64, (u32, u32), BuildHasherDefault<PairHasher>>;

fn pair_key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

/// GPT-2's byte-to-character alphabet: printable Latin-1 bytes stand for themselves, the
/// other 68 bytes for U+0100.. in byte order.
fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(cp).unwrap_or('\0');
    }
    table
}

/// Inverse of [`byte_alphabet`], indexed by code point (all of them are below U+0144).
fn alphabet_inverse(alphabet: &[char; 256]) -> Vec<u16> {
    let mut inverse = vec![u16::MAX; 0x144];
    for (b, &c) in alphabet.iter().enumerate() {
        inverse[c as usize] = b as u16;
    }
    inverse
}

/// Raw bytes of a vocabulary string in the byte alphabet; `None` when a character is
/// outside it (such a token can never come out of BPE).
fn alphabet_bytes(text: &str, inverse: &[u16]) -> Option<Vec<u8>> {
    text.chars()
        .map(|c| match inverse.get(c as usize) {
            Some(&b) if b != u16::MAX => Some(b as u8),
            _ => None,
        })
        .collect()
}

/// A byte-level BPE tokenizer that matches llama.cpp's ids (see the module docs).
pub struct Tokenizer {
    config: PreTokenizerConfig,
    /// Vocabulary text per id (byte alphabet for normal tokens).
    texts: Vec<String>,
    kinds: Vec<Kind>,
    /// Decoded bytes per id.
    pieces: Vec<Vec<u8>>,
    text_to_id: HashMap<String, u32>,
    /// Raw bytes -> BPE symbol: token ids below the vocabulary size, then strings that
    /// only occur inside merges.
    symbols: HashMap<Vec<u8>, u32>,
    /// (left symbol, right symbol) -> (rank, merged symbol).
    merges: PairMap,
    /// The symbol of each single byte.
    byte_symbol: [u32; 256],
    /// llama.cpp's last resort for a symbol that is no token: per byte, the token whose
    /// text is that one (ASCII) character.
    byte_fallback: [u32; 256],
    /// Tokens cut out before pre-tokenizing, longest text first.
    specials: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    eog: Vec<u32>,
    add_bos: bool,
    add_space_prefix: bool,
}

/// Optional metadata value (absent is `None`, a present value of the wrong type an error).
fn meta<'a>(file: &'a GgufFile, key: &str) -> Option<&'a Value> {
    file.content().metadata.get(key)
}

fn meta_bool(file: &GgufFile, key: &str) -> Result<Option<bool>> {
    match meta(file, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(InferenceError::Metadata {
            key: key.into(),
            detail: format!("expected a bool, found {other:?}"),
        }),
    }
}

fn meta_id(file: &GgufFile, key: &str) -> Result<Option<i64>> {
    let v = match meta(file, key) {
        None => return Ok(None),
        Some(v) => v,
    };
    let n = match v {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::U64(x) => i64::try_from(*x).unwrap_or(i64::MAX),
        Value::I64(x) => *x,
        other => {
            return Err(InferenceError::Metadata {
                key: key.into(),
                detail: format!("expected an integer, found {other:?}"),
            })
        }
    };
    Ok(Some(n))
}

fn string_array(file: &GgufFile, key: &str) -> Result<Vec<String>> {
    file.array(key)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(InferenceError::Metadata {
                key: key.into(),
                detail: format!("element {i} is not a string: {other:?}"),
            }),
        })
        .collect()
}

/// Token texts llama.cpp treats as end-of-generation (and forces to control type).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Special ids llama.cpp detects by text when the GGUF does not name them: (metadata
/// keys, candidate texts, whether the token ends generation).
const DETECTED: &[(&[&str], &[&str], bool)] = &[
    (
        &["tokenizer.ggml.eot_token_id"],
        &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "<｜end▁of▁sentence｜>",
            "<end_of_utterance>",
        ],
        true,
    ),
    (&["tokenizer.ggml.eom_token_id"], &["<|eom_id|>"], true),
    (
        &[
            "tokenizer.ggml.fim_pre_token_id",
            "tokenizer.ggml.prefix_token_id",
        ],
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
        false,
    ),
    (
        &[
            "tokenizer.ggml.fim_suf_token_id",
            "tokenizer.ggml.suffix_token_id",
        ],
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
        false,
    ),
    (
        &[
            "tokenizer.ggml.fim_mid_token_id",
            "tokenizer.ggml.middle_token_id",
        ],
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
        false,
    ),
    (
        &["tokenizer.ggml.fim_pad_token_id"],
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        true,
    ),
    (
        &["tokenizer.ggml.fim_rep_token_id"],
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
        true,
    ),
    (
        &["tokenizer.ggml.fim_sep_token_id"],
        &["<|file_sep|>"],
        true,
    ),
];

impl Tokenizer {
    /// Build the tokenizer from a GGUF file's metadata. `tokenizer.ggml.model` must be
    /// `gpt2` (byte-level BPE) and `tokenizer.ggml.pre` one of the implemented
    /// pre-tokenizers; anything else is an error, never a silently different split.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer> {
        let model = file.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(InferenceError::UnsupportedTokenizer(format!(
                "vocabulary type {model:?} (tokenizer.ggml.model); only \"gpt2\" (byte-level BPE) \
                 is implemented"
            )));
        }
        let pre_name = match meta(file, "tokenizer.ggml.pre") {
            None => "",
            Some(_) => file.string("tokenizer.ggml.pre")?,
        };
        let config = PreTokenizer::from_gguf_name(pre_name)?;
        if let Some(Value::String(name)) = meta(file, "general.name") {
            let name = name.to_ascii_lowercase();
            if name.contains("phi-3") || name.contains("phi3") {
                return Err(InferenceError::UnsupportedTokenizer(format!(
                    "model {name:?}: llama.cpp gives Phi-3 special tokens an rstrip \
                     attribute, which is not implemented"
                )));
            }
        }
        let tokens = string_array(file, "tokenizer.ggml.tokens")?;
        let token_types: Option<Vec<i64>> = match meta(file, "tokenizer.ggml.token_type") {
            None => None,
            Some(_) => Some(
                file.array("tokenizer.ggml.token_type")?
                    .iter()
                    .map(|v| match v {
                        Value::I32(x) => Ok(i64::from(*x)),
                        Value::U32(x) => Ok(i64::from(*x)),
                        Value::I8(x) => Ok(i64::from(*x)),
                        Value::U8(x) => Ok(i64::from(*x)),
                        other => Err(InferenceError::Metadata {
                            key: "tokenizer.ggml.token_type".into(),
                            detail: format!("not an integer: {other:?}"),
                        }),
                    })
                    .collect::<Result<_>>()?,
            ),
        };
        let merges = match meta(file, "tokenizer.ggml.merges") {
            None => {
                return Err(InferenceError::Metadata {
                    key: "tokenizer.ggml.merges".into(),
                    detail: "absent (a gpt2 vocabulary needs its merges)".into(),
                })
            }
            Some(_) => string_array(file, "tokenizer.ggml.merges")?,
        };
        let mut ids = SpecialIds::default();
        for (slot, key) in [
            (&mut ids.bos, "tokenizer.ggml.bos_token_id"),
            (&mut ids.eos, "tokenizer.ggml.eos_token_id"),
            (&mut ids.unk, "tokenizer.ggml.unknown_token_id"),
            (&mut ids.pad, "tokenizer.ggml.padding_token_id"),
        ] {
            *slot = meta_id(file, key)?;
        }
        let mut detected = Vec::with_capacity(DETECTED.len());
        for (keys, _, _) in DETECTED {
            let mut id = None;
            for key in keys.iter() {
                if let Some(v) = meta_id(file, key)? {
                    id = Some(v);
                }
            }
            detected.push(id);
        }
        ids.detected = detected;
        let add_bos = meta_bool(file, "tokenizer.ggml.add_bos_token")?;
        let add_space_prefix = meta_bool(file, "tokenizer.ggml.add_space_prefix")?;
        Self::build(VocabSpec {
            config,
            tokens,
            token_types,
            merges,
            ids,
            add_bos: add_bos.unwrap_or(config.add_bos),
            add_space_prefix: add_space_prefix.unwrap_or(false),
        })
    }

    fn build(spec: VocabSpec) -> Result<Tokenizer> {
        let n = spec.tokens.len();
        if n == 0 || n >= NONE as usize / 2 {
            return Err(InferenceError::Metadata {
                key: "tokenizer.ggml.tokens".into(),
                detail: format!("{n} tokens"),
            });
        }
        if let Some(types) = &spec.token_types {
            if types.len() < n {
                return Err(InferenceError::Metadata {
                    key: "tokenizer.ggml.token_type".into(),
                    detail: format!("{} types for {n} tokens", types.len()),
                });
            }
        }
        // Texts and kinds; empty texts get llama.cpp's placeholder.
        let mut texts = spec.tokens;
        let mut text_to_id = HashMap::with_capacity(n);
        for (i, text) in texts.iter_mut().enumerate() {
            if text.is_empty() {
                *text = format!("[EMPTY_{i}]");
            }
            if let Some(first) = text_to_id.insert(text.clone(), i as u32) {
                return Err(InferenceError::Metadata {
                    key: "tokenizer.ggml.tokens".into(),
                    detail: format!("duplicate token {text:?} at ids {first} and {i}"),
                });
            }
        }
        let mut kinds: Vec<Kind> = match &spec.token_types {
            Some(types) => types[..n].iter().map(|&t| Kind::from_gguf(t)).collect(),
            None => vec![Kind::Normal; n],
        };

        // Special ids: the metadata's when in range, else llama.cpp's BPE defaults
        // (BOS = EOS = 11 when the vocabulary has an id 11).
        let in_range = |v: Option<i64>| v.filter(|&x| x >= 0 && (x as usize) < n).map(|x| x as u32);
        let default_11 = in_range(Some(11));
        let bos = in_range(spec.ids.bos).or(default_11);
        let eos = in_range(spec.ids.eos).or(default_11);
        let unk = in_range(spec.ids.unk);
        let pad = in_range(spec.ids.pad);

        // Ids detected by text (lowest id among candidates), forced to control type.
        let mut eog: Vec<u32> = Vec::new();
        for ((_, candidates, ends), given) in DETECTED.iter().zip(&spec.ids.detected) {
            let id = match in_range(*given) {
                Some(id) => Some(id),
                None => {
                    let found = candidates
                        .iter()
                        .filter_map(|t| text_to_id.get(*t).copied())
                        .min();
                    if let Some(id) = found {
                        kinds[id as usize] = Kind::Control;
                    }
                    found
                }
            };
            if *ends {
                if let Some(id) = id {
                    eog.push(id);
                }
            }
        }
        for text in EOG_TEXTS {
            if let Some(&id) = text_to_id.get(*text) {
                kinds[id as usize] = Kind::Control;
                eog.push(id);
            }
        }
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = text_to_id.get(text) {
                kinds[id as usize] = Kind::UserDefined;
            }
        }
        if let Some(id) = eos {
            eog.push(id);
        }
        eog.sort_unstable();
        eog.dedup();
        // llama.cpp's two workarounds: gpt-oss style "<|end|>" and Gemma-4 style "</s>"
        // are not end-of-generation.
        let eog_text =
            |eog: &[u32], t: &str| eog.iter().copied().find(|&id| texts[id as usize] == t);
        let has = |eog: &[u32], t: &str| eog_text(eog, t).is_some();
        if let Some(end) = eog_text(&eog, "<|end|>") {
            let call = has(&eog, "<|call|>") || has(&eog, "<|calls|>");
            if call && (has(&eog, "<|return|>") || has(&eog, "<|flush|>")) {
                eog.retain(|&id| id != end);
                kinds[end as usize] = Kind::UserDefined;
            }
        }
        if let Some(s) = eog_text(&eog, "</s>") {
            if has(&eog, "<|tool_response>") {
                eog.retain(|&id| id != s);
                kinds[s as usize] = Kind::Normal;
            }
        }

        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&id| kinds[id as usize].is_special())
            .collect();
        specials.sort_by_key(|&id| Reverse(texts[id as usize].len()));

        // Byte alphabet, decoded pieces, BPE symbols.
        let alphabet = byte_alphabet();
        let inverse = alphabet_inverse(&alphabet);
        let mut pieces = Vec::with_capacity(n);
        let mut symbols: HashMap<Vec<u8>, u32> = HashMap::with_capacity(n + n / 8);
        for (i, text) in texts.iter().enumerate() {
            pieces.push(piece_of(text, kinds[i], &inverse));
            if let Some(raw) = alphabet_bytes(text, &inverse) {
                symbols.insert(raw, i as u32);
            }
        }
        let mut next_symbol = n as u32;
        let mut intern = |raw: Vec<u8>, symbols: &mut HashMap<Vec<u8>, u32>| -> u32 {
            *symbols.entry(raw).or_insert_with(|| {
                next_symbol += 1;
                next_symbol - 1
            })
        };
        let mut merge_table =
            PairMap::with_capacity_and_hasher(spec.merges.len(), Default::default());
        for (rank, merge) in spec.merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte.
            let split = merge
                .as_bytes()
                .iter()
                .skip(1)
                .position(|&b| b == b' ')
                .map(|p| p + 1);
            let Some(split) = split else { continue };
            let (left, right) = (&merge[..split], &merge[split + 1..]);
            let (Some(left), Some(right)) = (
                alphabet_bytes(left, &inverse),
                alphabet_bytes(right, &inverse),
            ) else {
                continue;
            };
            if left.is_empty() || right.is_empty() {
                continue;
            }
            let mut joined = left.clone();
            joined.extend_from_slice(&right);
            let l = intern(left, &mut symbols);
            let r = intern(right, &mut symbols);
            let m = intern(joined, &mut symbols);
            merge_table
                .entry(pair_key(l, r))
                .or_insert((rank as u32, m));
        }
        let mut byte_symbol = [NONE; 256];
        let mut byte_fallback = [NONE; 256];
        for b in 0..=255u8 {
            if let Some(&s) = symbols.get(&[b][..]) {
                byte_symbol[b as usize] = s;
            }
            if (0x21..=0x7E).contains(&b) {
                if let Some(&id) = text_to_id.get((b as char).encode_utf8(&mut [0; 4]) as &str) {
                    byte_fallback[b as usize] = id;
                }
            }
        }
        Ok(Tokenizer {
            config: spec.config,
            texts,
            kinds,
            pieces,
            text_to_id,
            symbols,
            merges: merge_table,
            byte_symbol,
            byte_fallback,
            specials,
            bos,
            eos,
            unk,
            pad,
            eog,
            add_bos: spec.add_bos,
            add_space_prefix: spec.add_space_prefix,
        })
    }
}

/// Special ids as the metadata gives them (unchecked).
#[derive(Default)]
struct SpecialIds {
    bos: Option<i64>,
    eos: Option<i64>,
    unk: Option<i64>,
    pad: Option<i64>,
    /// One per [`DETECTED`] entry.
    detected: Vec<Option<i64>>,
}

/// Everything [`Tokenizer::build`] needs, read from the metadata.
struct VocabSpec {
    config: PreTokenizerConfig,
    tokens: Vec<String>,
    token_types: Option<Vec<i64>>,
    merges: Vec<String>,
    ids: SpecialIds,
    add_bos: bool,
    add_space_prefix: bool,
}

/// The bytes one token decodes to (llama.cpp `token_to_piece` with `special = true`).
fn piece_of(text: &str, kind: Kind, inverse: &[u16]) -> Vec<u8> {
    match kind {
        Kind::Control | Kind::UserDefined | Kind::Unknown => text.as_bytes().to_vec(),
        Kind::Unused => Vec::new(),
        Kind::Byte => {
            // "<0xAB>"
            let hex = text.get(3..5).unwrap_or("");
            vec![u8::from_str_radix(hex, 16).unwrap_or(0)]
        }
        Kind::Normal => {
            let mut out = Vec::with_capacity(text.len());
            for c in text.chars() {
                match inverse.get(c as usize) {
                    Some(&b) if b != u16::MAX => out.push(b as u8),
                    _ => {
                        // llama.cpp's marker for a character outside the byte alphabet.
                        out.extend_from_slice(b"[UNK_BYTE_0x");
                        for b in c.encode_utf8(&mut [0; 4]).bytes() {
                            out.extend_from_slice(format!("{b:02x}").as_bytes());
                        }
                        out.extend_from_slice(text.as_bytes());
                        out.push(b']');
                    }
                }
            }
            out
        }
    }
}

/// Character classes the splitters look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cat {
    /// `\p{L}`
    Letter,
    /// `\p{N}`
    Number,
    /// `\s` (White_Space)
    Space,
    /// Anything else, unassigned code points included.
    Other,
}

fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn category(c: char) -> Cat {
    match c {
        'a'..='z' | 'A'..='Z' => Cat::Letter,
        '0'..='9' => Cat::Number,
        '\t'..='\r' | ' ' => Cat::Space,
        '\0'..='\x7f' => Cat::Other,
        '\u{85}'
        | '\u{a0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200a}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202f}'
        | '\u{205f}'
        | '\u{3000}' => Cat::Space,
        _ => {
            let cp = c as u32;
            if in_ranges(LETTER_RANGES, cp) {
                Cat::Letter
            } else if in_ranges(NUMBER_RANGES, cp) {
                Cat::Number
            } else {
                Cat::Other
            }
        }
    }
}

/// Word ends (character indices) of one split, dropping empty words.
struct Cuts<'a> {
    ends: &'a mut Vec<usize>,
    last: usize,
}

impl Cuts<'_> {
    fn cut(&mut self, end: usize) {
        if end > self.last {
            self.ends.push(end);
            self.last = end;
        }
    }
}

/// The GPT-2 split of `chars[lo..hi]`; lookaheads stop at `hi`.
fn split_gpt2(chars: &[char], cats: &[Cat], lo: usize, hi: usize, cuts: &mut Cuts) {
    let cat_at = |i: usize| if i < hi { Some(cats[i]) } else { None };
    let mut pos = lo;
    while pos < hi {
        let c = chars[pos];
        // 's|'t|'re|'ve|'m|'ll|'d
        if c == '\'' && pos + 1 < hi {
            let c1 = chars[pos + 1];
            if matches!(c1, 's' | 't' | 'm' | 'd') {
                pos += 2;
                cuts.cut(pos);
                continue;
            }
            if pos + 2 < hi && matches!((c1, chars[pos + 2]), ('r', 'e') | ('v', 'e') | ('l', 'l'))
            {
                pos += 3;
                cuts.cut(pos);
                continue;
            }
        }
        // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
        let space = usize::from(c == ' ');
        let head = if space == 1 {
            cat_at(pos + 1)
        } else {
            Some(cats[pos])
        };
        if let Some(run @ (Cat::Letter | Cat::Number | Cat::Other)) = head {
            pos += space;
            while pos < hi && cats[pos] == run {
                pos += 1;
            }
            cuts.cut(pos);
            continue;
        }
        // '\s+(?!\S)', '\s+'
        let mut n = 0;
        while pos + n < hi && cats[pos + n] == Cat::Space {
            n += 1;
        }
        if n > 1 && pos + n < hi {
            pos += n - 1;
        } else {
            pos += n.max(1);
        }
        cuts.cut(pos);
    }
}

/// The Llama-3 split of `chars[lo..hi]`.
fn split_llama3(chars: &[char], cats: &[Cat], lo: usize, hi: usize, cuts: &mut Cuts) {
    let is_nl = |c: char| c == '\r' || c == '\n';
    let mut pos = lo;
    while pos < hi {
        let c = chars[pos];
        let cat = cats[pos];
        // (?i:'s|'t|'re|'ve|'m|'ll|'d): only ASCII letters lower-case to these.
        if c == '\'' && pos + 1 < hi {
            let c1 = chars[pos + 1].to_ascii_lowercase();
            if matches!(c1, 's' | 't' | 'm' | 'd') {
                pos += 2;
                cuts.cut(pos);
                continue;
            }
            if pos + 2 < hi {
                let c2 = chars[pos + 2].to_ascii_lowercase();
                if matches!((c1, c2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                    pos += 3;
                    cuts.cut(pos);
                    continue;
                }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !is_nl(c)
            && cat != Cat::Number
            && (cat == Cat::Letter || (pos + 1 < hi && cats[pos + 1] == Cat::Letter))
        {
            pos += 1;
            while pos < hi && cats[pos] == Cat::Letter {
                pos += 1;
            }
            cuts.cut(pos);
            continue;
        }
        // \p{N}{1,3}
        if cat == Cat::Number {
            let mut start = pos;
            while pos < hi && cats[pos] == Cat::Number {
                pos += 1;
                if pos - start == 3 {
                    cuts.cut(pos);
                    start = pos;
                }
            }
            cuts.cut(pos);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        let space = usize::from(c == ' ');
        let head = if space == 1 {
            (pos + 1 < hi).then(|| cats[pos + 1])
        } else {
            Some(cat)
        };
        if head == Some(Cat::Other) {
            pos += space;
            while pos < hi && cats[pos] == Cat::Other {
                pos += 1;
            }
            while pos < hi && is_nl(chars[pos]) {
                pos += 1;
            }
            cuts.cut(pos);
            continue;
        }
        // '\s*[\r\n]+', '\s+(?!\S)', '\s+'
        let mut n = 0;
        let mut after_last_nl = None;
        while pos + n < hi && cats[pos + n] == Cat::Space {
            if is_nl(chars[pos + n]) {
                after_last_nl = Some(pos + n + 1);
            }
            n += 1;
        }
        if let Some(end) = after_last_nl {
            pos = end;
        } else if n > 1 && pos + n < hi {
            pos += n - 1;
        } else {
            pos += n.max(1);
        }
        cuts.cut(pos);
    }
}

/// Split `chars` into words with `pre`; returns word ends (character indices).
fn split_words(pre: PreTokenizer, chars: &[char], cats: &[Cat], ends: &mut Vec<usize>) {
    let mut cuts = Cuts { ends, last: 0 };
    let n = chars.len();
    match pre {
        PreTokenizer::Gpt2 => split_gpt2(chars, cats, 0, n, &mut cuts),
        PreTokenizer::Llama3 => split_llama3(chars, cats, 0, n, &mut cuts),
        PreTokenizer::Smollm => {
            // Pass 1: every \p{N} code point is a piece; pass 2: GPT-2 inside each piece.
            let mut start = 0;
            for i in 0..n {
                if cats[i] == Cat::Number {
                    split_gpt2(chars, cats, start, i, &mut cuts);
                    cuts.cut(i + 1);
                    start = i + 1;
                }
            }
            split_gpt2(chars, cats, start, n, &mut cuts);
        }
    }
}

/// The pre-tokenizer's words of `text`, as strings (for tests and diagnostics).
pub fn pre_tokenize(pre: PreTokenizer, text: &str) -> Vec<&str> {
    let mut scratch = Scratch::default();
    scratch.load(text);
    split_words(pre, &scratch.chars, &scratch.cats, &mut scratch.ends);
    let mut start = 0;
    scratch
        .ends
        .iter()
        .map(|&e| {
            let word = &text[scratch.offsets[start]..scratch.offsets[e]];
            start = e;
            word
        })
        .collect()
}

/// A BPE symbol: a byte range of the word, linked to its neighbours.
#[derive(Clone, Copy)]
struct Symbol {
    start: u32,
    len: u32,
    prev: u32,
    next: u32,
    id: u32,
}

/// A possible merge of two adjacent symbols. Field order is the priority: rank, then the
/// left symbol's index; the lengths tell whether either side has merged since.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    rank: u32,
    left: u32,
    right: u32,
    left_len: u32,
    right_len: u32,
    merged: u32,
}

/// Buffers reused across the words of one `encode` call.
#[derive(Default)]
struct Scratch {
    chars: Vec<char>,
    cats: Vec<Cat>,
    /// Byte offset of each character, plus the text length.
    offsets: Vec<usize>,
    ends: Vec<usize>,
    symbols: Vec<Symbol>,
    /// Candidate merges, lowest rank (then leftmost) first.
    queue: BinaryHeap<Reverse<Candidate>>,
}

impl Scratch {
    fn load(&mut self, text: &str) {
        self.chars.clear();
        self.cats.clear();
        self.offsets.clear();
        self.ends.clear();
        for (i, c) in text.char_indices() {
            self.chars.push(c);
            self.cats.push(category(c));
            self.offsets.push(i);
        }
        self.offsets.push(text.len());
    }
}

/// A piece of the input after special tokens are cut out.
enum Fragment {
    Text(usize, usize),
    Token(u32),
}

impl Tokenizer {
    /// Token ids of `text`, as llama.cpp's `llama_tokenize(add_special = false,
    /// parse_special)`: with `parse_special`, control tokens written in the text (such as
    /// `<|im_start|>`) become their ids; without it they are tokenized as plain text.
    /// No BOS is added (see [`Tokenizer::add_bos`]).
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 4 + 4);
        let mut scratch = Scratch::default();
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(a, b) => self.encode_text(&text[a..b], &mut scratch, &mut out),
            }
        }
        Ok(out)
    }

    /// Token ids of a prompt that a chat template rendered: special tokens written in
    /// `text` become their ids (the template's own markup), and each character in
    /// `literals` is replaced by its text *after* special tokens were cut out, so that text
    /// is tokenized as plain text even when it spells a special token. With no literals
    /// this is `encode(text, true)`. [`crate::chat::ChatTemplate::prompt_tokens`] uses it
    /// to keep message content from producing special tokens.
    pub fn encode_with_literals(
        &self,
        text: &str,
        literals: &[(char, String)],
    ) -> Result<Vec<u32>> {
        if literals.is_empty() {
            return self.encode(text, true);
        }
        let mut out = Vec::with_capacity(text.len() / 4 + 4);
        let mut scratch = Scratch::default();
        let mut restored = String::new();
        for fragment in self.partition(text, true) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(a, b) => {
                    let piece = &text[a..b];
                    if !literals.iter().any(|(c, _)| piece.contains(*c)) {
                        self.encode_text(piece, &mut scratch, &mut out);
                        continue;
                    }
                    restored.clear();
                    for ch in piece.chars() {
                        match literals.iter().find(|(c, _)| *c == ch) {
                            Some((_, literal)) => restored.push_str(literal),
                            None => restored.push(ch),
                        }
                    }
                    self.encode_text(&restored, &mut scratch, &mut out);
                }
            }
        }
        Ok(out)
    }

    /// The texts of the tokens [`Tokenizer::encode`] cuts out whole (control, user-defined
    /// and unknown tokens) with their ids, longest text first.
    pub fn special_tokens(&self) -> impl Iterator<Item = (u32, &str)> + '_ {
        self.specials
            .iter()
            .map(|&id| (id, self.texts[id as usize].as_str()))
    }

    /// Cut special tokens out of `text`: longest text first, each occurrence left to right.
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut fragments = Vec::new();
        if text.is_empty() {
            return fragments;
        }
        fragments.push(Fragment::Text(0, text.len()));
        for &id in &self.specials {
            let kind = self.kinds[id as usize];
            if !parse_special && kind != Kind::UserDefined {
                continue;
            }
            let pattern = self.texts[id as usize].as_str();
            if !text.contains(pattern) {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let (mut start, end) = match fragment {
                    Fragment::Text(a, b) => (a, b),
                    token => {
                        next.push(token);
                        continue;
                    }
                };
                while let Some(found) = text[start..end].find(pattern) {
                    if found > 0 {
                        next.push(Fragment::Text(start, start + found));
                    }
                    next.push(Fragment::Token(id));
                    start += found + pattern.len();
                }
                if start < end {
                    next.push(Fragment::Text(start, end));
                }
            }
            fragments = next;
        }
        fragments
    }

    /// Pre-tokenize and BPE one piece of plain text.
    fn encode_text(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<u32>) {
        scratch.load(text);
        let mut ends = std::mem::take(&mut scratch.ends);
        split_words(self.config.pre, &scratch.chars, &scratch.cats, &mut ends);
        let mut start = 0;
        for &end in &ends {
            let word = &text.as_bytes()[scratch.offsets[start]..scratch.offsets[end]];
            self.encode_word(word, scratch, out);
            start = end;
        }
        scratch.ends = ends;
    }

    /// BPE of one word's bytes.
    fn encode_word(&self, word: &[u8], scratch: &mut Scratch, out: &mut Vec<u32>) {
        let n_vocab = self.texts.len() as u32;
        if self.config.ignore_merges {
            if let Some(&id) = self.symbols.get(word) {
                if id < n_vocab {
                    out.push(id);
                    return;
                }
            }
        }
        let symbols = &mut scratch.symbols;
        let queue = &mut scratch.queue;
        symbols.clear();
        queue.clear();
        let len = word.len() as u32;
        for (i, &b) in word.iter().enumerate() {
            let i = i as u32;
            symbols.push(Symbol {
                start: i,
                len: 1,
                prev: i.wrapping_sub(1),
                next: if i + 1 == len { NONE } else { i + 1 },
                id: self.byte_symbol[b as usize],
            });
        }
        let push_pair = |symbols: &[Symbol], queue: &mut BinaryHeap<_>, left: u32, right: u32| {
            if left == NONE || right == NONE {
                return;
            }
            let (l, r) = (symbols[left as usize], symbols[right as usize]);
            if l.id == NONE || r.id == NONE {
                return;
            }
            if let Some(&(rank, merged)) = self.merges.get(&pair_key(l.id, r.id)) {
                queue.push(Reverse(Candidate {
                    rank,
                    left,
                    right,
                    left_len: l.len,
                    right_len: r.len,
                    merged,
                }));
            }
        };
        for i in 1..len {
            push_pair(symbols, queue, i - 1, i);
        }
        while let Some(Reverse(Candidate {
            left,
            right,
            left_len,
            right_len,
            merged,
            ..
        })) = queue.pop()
        {
            let (l, r) = (symbols[left as usize], symbols[right as usize]);
            // Stale: one side has merged since (a merged-away symbol has length 0).
            if l.len != left_len || r.len != right_len {
                continue;
            }
            let ls = &mut symbols[left as usize];
            ls.len += r.len;
            ls.id = merged;
            ls.next = r.next;
            symbols[right as usize].len = 0;
            if r.next != NONE {
                symbols[r.next as usize].prev = left;
            }
            push_pair(symbols, queue, l.prev, left);
            push_pair(symbols, queue, left, r.next);
        }
        let mut i = 0;
        while i != NONE {
            let s = symbols[i as usize];
            if s.id < n_vocab {
                out.push(s.id);
            } else {
                let bytes = &word[s.start as usize..(s.start + s.len) as usize];
                out.extend(
                    bytes
                        .iter()
                        .map(|&b| self.byte_fallback[b as usize])
                        .filter(|&id| id != NONE),
                );
            }
            i = s.next;
        }
    }

    /// The bytes of `ids` decoded, concatenated (special tokens as their text).
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (i, &id) in ids.iter().enumerate() {
            let piece = self.piece(id).ok_or_else(|| self.bad_id(id))?;
            out.extend_from_slice(if i == 0 {
                self.strip_lead(piece)
            } else {
                piece
            });
        }
        Ok(out)
    }

    /// The text of `ids`; bytes that are not valid UTF-8 (a multi-byte character cut
    /// across the ends of `ids`) become U+FFFD. An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let bytes = self.decode_bytes(ids)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn bad_id(&self, id: u32) -> InferenceError {
        InferenceError::Tokenizer(format!(
            "token id {id} is outside the vocabulary (size {})",
            self.texts.len()
        ))
    }

    /// llama.cpp drops one leading space of the first piece when the vocabulary adds a
    /// space prefix (never for `gpt2` vocabularies in practice).
    fn strip_lead<'a>(&self, piece: &'a [u8]) -> &'a [u8] {
        match piece {
            [b' ', rest @ ..] if self.add_space_prefix => rest,
            _ => piece,
        }
    }

    /// The decoded bytes of one token (not necessarily valid UTF-8 on their own).
    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        self.pieces.get(id as usize).map(Vec::as_slice)
    }

    /// The decoded bytes of one token, owned.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        self.piece(id).map(<[u8]>::to_vec)
    }

    /// The token's text as the vocabulary stores it (`"Ġthe"`, `"<|im_end|>"`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    /// The id of the token whose vocabulary text is exactly `text`.
    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.text_to_id.get(text).copied()
    }

    pub fn vocab_size(&self) -> usize {
        self.texts.len()
    }

    /// Whether the token is a control, user-defined or unknown token (matched whole in
    /// the text, rendered as its text).
    pub fn is_special(&self, id: u32) -> bool {
        self.kinds.get(id as usize).is_some_and(|k| k.is_special())
    }

    /// Whether generating this token ends generation (llama.cpp `llama_vocab_is_eog`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether llama.cpp prepends BOS when tokenizing with `add_special`
    /// (`tokenizer.ggml.add_bos_token`; false for SmolLM2).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn pre_tokenizer(&self) -> PreTokenizer {
        self.config.pre
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("pre", &self.config.pre)
            .field("vocab_size", &self.texts.len())
            .field("merges", &self.merges.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eog", &self.eog)
            .finish_non_exhaustive()
    }
}

/// Incremental decoding for streaming: feed ids one at a time and get text as soon as it
/// is complete UTF-8. The concatenation of everything [`push`](StreamDecoder::push) and
/// [`finish`](StreamDecoder::finish) return equals [`Tokenizer::decode`] of all the ids.
pub struct StreamDecoder<'t> {
    tokenizer: &'t Tokenizer,
    pending: Vec<u8>,
    first: bool,
}

impl<'t> StreamDecoder<'t> {
    pub fn new(tokenizer: &'t Tokenizer) -> Self {
        StreamDecoder {
            tokenizer,
            pending: Vec::new(),
            first: true,
        }
    }

    /// Add one token; returns the text that became complete (possibly empty).
    pub fn push(&mut self, id: u32) -> Result<String> {
        let piece = self
            .tokenizer
            .piece(id)
            .ok_or_else(|| self.tokenizer.bad_id(id))?;
        let piece = if self.first {
            self.tokenizer.strip_lead(piece)
        } else {
            piece
        };
        self.first = false;
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // Valid by construction: `valid_up_to` bytes are UTF-8.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // An invalid sequence: replace it, as `from_utf8_lossy` does.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // A character cut at the end: wait for the next token.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let len = self.pending.len();
        self.pending.drain(..len - keep);
        Ok(out)
    }

    /// Flush what is left (an incomplete character becomes U+FFFD).
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizer_names() {
        let smollm = PreTokenizer::from_gguf_name("smollm").unwrap();
        assert_eq!(smollm.pre, PreTokenizer::Smollm);
        assert!(!smollm.ignore_merges);
        assert_eq!(
            PreTokenizer::from_gguf_name("gpt-2").unwrap().pre,
            PreTokenizer::Gpt2
        );
        let llama3 = PreTokenizer::from_gguf_name("llama-bpe").unwrap();
        assert_eq!(llama3.pre, PreTokenizer::Llama3);
        assert!(llama3.ignore_merges && llama3.add_bos);
        for name in ["", "default", "qwen2", "gpt2", "SmolLM", "deepseek-llm"] {
            assert!(
                matches!(
                    PreTokenizer::from_gguf_name(name),
                    Err(InferenceError::UnsupportedTokenizer(_))
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn categories_follow_unicode_not_std() {
        assert_eq!(category('é'), Cat::Letter);
        assert_eq!(category('ß'), Cat::Letter);
        assert_eq!(category('中'), Cat::Letter);
        assert_eq!(category('²'), Cat::Number);
        assert_eq!(category('٣'), Cat::Number);
        // Roman numeral twelve: Alphabetic for std, \p{N} for the regex.
        assert!('Ⅻ'.is_alphabetic());
        assert_eq!(category('Ⅻ'), Cat::Number);
        // Devanagari vowel sign AA: Alphabetic for std, \p{M} for the regex.
        assert!('\u{93e}'.is_alphabetic());
        assert_eq!(category('\u{93e}'), Cat::Other);
        // Circled Latin capital A: Alphabetic for std, \p{So}.
        assert!('Ⓐ'.is_alphabetic());
        assert_eq!(category('Ⓐ'), Cat::Other);
        assert_eq!(category('\u{a0}'), Cat::Space);
        assert_eq!(category('\u{3000}'), Cat::Space);
        assert_eq!(category('\u{200b}'), Cat::Other); // zero-width space is not White_Space
        assert_eq!(category('😀'), Cat::Other);
        // Unassigned in Unicode 15.1 (assigned as a letter in 16.0).
        assert_eq!(category('\u{1c89}'), Cat::Other);
        assert_eq!(category('\u{2ebf0}'), Cat::Letter); // CJK extension I (15.1)
    }

    #[test]
    fn tables_are_sorted_and_disjoint() {
        for table in [LETTER_RANGES, NUMBER_RANGES] {
            for w in table.windows(2) {
                assert!(w[0].0 <= w[0].1 && w[0].1 < w[1].0, "{w:?}");
            }
        }
    }

    #[test]
    fn splits() {
        let smollm = |t| pre_tokenize(PreTokenizer::Smollm, t);
        let gpt2 = |t| pre_tokenize(PreTokenizer::Gpt2, t);
        let llama3 = |t| pre_tokenize(PreTokenizer::Llama3, t);
        assert_eq!(
            gpt2("I paid 2024 dollars"),
            ["I", " paid", " 2024", " dollars"]
        );
        assert_eq!(
            smollm("I paid 2024 dollars"),
            ["I", " paid", " ", "2", "0", "2", "4", " dollars"]
        );
        assert_eq!(
            llama3("I paid 12345 dollars"),
            ["I", " paid", " ", "123", "45", " dollars"]
        );
        assert_eq!(gpt2("a   b"), ["a", "  ", " b"]);
        assert_eq!(gpt2("a   "), ["a", "   "]);
        assert_eq!(smollm("a   5"), ["a", "   ", "5"]);
        assert_eq!(gpt2("don't I'LL"), ["don", "'t", " I", "'", "LL"]);
        assert_eq!(llama3("don't I'LL"), ["don", "'t", " I", "'LL"]);
        assert_eq!(gpt2("x\n\n  y"), ["x", "\n\n ", " y"]);
        assert_eq!(llama3("x\n\n  y"), ["x", "\n\n", " ", " y"]);
        assert_eq!(gpt2("f(x)=1;"), ["f", "(", "x", ")=", "1", ";"]);
        assert_eq!(gpt2("hi 😀!"), ["hi", " 😀!"]);
        assert_eq!(gpt2(""), Vec::<&str>::new());
    }
}

#[rustfmt::skip]
mod unicode_tables {
    /// `\p{L}` above U+007F, Unicode 15.1, as inclusive ranges.
    pub(super) const LETTER_RANGES: &[(u32, u32)] = &[
        (0xAA, 0xAA), (0xB5, 0xB5), (0xBA, 0xBA), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x2C1),
        (0x2C6, 0x2D1), (0x2E0, 0x2E4), (0x2EC, 0x2EC), (0x2EE, 0x2EE), (0x370, 0x374),
        (0x376, 0x377), (0x37A, 0x37D), (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A),
        (0x38C, 0x38C), (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481), (0x48A, 0x52F),
        (0x531, 0x556), (0x559, 0x559), (0x560, 0x588), (0x5D0, 0x5EA), (0x5EF, 0x5F2),
        (0x620, 0x64A), (0x66E, 0x66F), (0x671, 0x6D3), (0x6D5, 0x6D5), (0x6E5, 0x6E6),
        (0x6EE, 0x6EF), (0x6FA, 0x6FC), (0x6FF, 0x6FF), (0x710, 0x710), (0x712, 0x72F),
        (0x74D, 0x7A5), (0x7B1, 0x7B1), (0x7CA, 0x7EA), (0x7F4, 0x7F5), (0x7FA, 0x7FA),
        (0x800, 0x815), (0x81A, 0x81A), (0x824, 0x824), (0x828, 0x828), (0x840, 0x858),
        (0x860, 0x86A), (0x870, 0x887), (0x889, 0x88E), (0x8A0, 0x8C9), (0x904, 0x939),
        (0x93D, 0x93D), (0x950, 0x950), (0x958, 0x961), (0x971, 0x980), (0x985, 0x98C),
        (0x98F, 0x990), (0x993, 0x9A8), (0x9AA, 0x9B0), (0x9B2, 0x9B2), (0x9B6, 0x9B9),
        (0x9BD, 0x9BD), (0x9CE, 0x9CE), (0x9DC, 0x9DD), (0x9DF, 0x9E1), (0x9F0, 0x9F1),
        (0x9FC, 0x9FC), (0xA05, 0xA0A), (0xA0F, 0xA10), (0xA13, 0xA28), (0xA2A, 0xA30),
        (0xA32, 0xA33), (0xA35, 0xA36), (0xA38, 0xA39), (0xA59, 0xA5C), (0xA5E, 0xA5E),
        (0xA72, 0xA74), (0xA85, 0xA8D), (0xA8F, 0xA91), (0xA93, 0xAA8), (0xAAA, 0xAB0),
        (0xAB2, 0xAB3), (0xAB5, 0xAB9), (0xABD, 0xABD), (0xAD0, 0xAD0), (0xAE0, 0xAE1),
        (0xAF9, 0xAF9), (0xB05, 0xB0C), (0xB0F, 0xB10), (0xB13, 0xB28), (0xB2A, 0xB30),
        (0xB32, 0xB33), (0xB35, 0xB39), (0xB3D, 0xB3D), (0xB5C, 0xB5D), (0xB5F, 0xB61),
        (0xB71, 0xB71), (0xB83, 0xB83), (0xB85, 0xB8A), (0xB8E, 0xB90), (0xB92, 0xB95),
        (0xB99, 0xB9A), (0xB9C, 0xB9C), (0xB9E, 0xB9F), (0xBA3, 0xBA4), (0xBA8, 0xBAA),
        (0xBAE, 0xBB9), (0xBD0, 0xBD0), (0xC05, 0xC0C), (0xC0E, 0xC10), (0xC12, 0xC28),
        (0xC2A, 0xC39), (0xC3D, 0xC3D), (0xC58, 0xC5A), (0xC5D, 0xC5D), (0xC60, 0xC61),
        (0xC80, 0xC80), (0xC85, 0xC8C), (0xC8E, 0xC90), (0xC92, 0xCA8), (0xCAA, 0xCB3),
        (0xCB5, 0xCB9), (0xCBD, 0xCBD), (0xCDD, 0xCDE), (0xCE0, 0xCE1), (0xCF1, 0xCF2),
        (0xD04, 0xD0C), (0xD0E, 0xD10), (0xD12, 0xD3A), (0xD3D, 0xD3D), (0xD4E, 0xD4E),
        (0xD54, 0xD56), (0xD5F, 0xD61), (0xD7A, 0xD7F), (0xD85, 0xD96), (0xD9A, 0xDB1),
        (0xDB3, 0xDBB), (0xDBD, 0xDBD), (0xDC0, 0xDC6), (0xE01, 0xE30), (0xE32, 0xE33),
        (0xE40, 0xE46), (0xE81, 0xE82), (0xE84, 0xE84), (0xE86, 0xE8A), (0xE8C, 0xEA3),
        (0xEA5, 0xEA5), (0xEA7, 0xEB0), (0xEB2, 0xEB3), (0xEBD, 0xEBD), (0xEC0, 0xEC4),
        (0xEC6, 0xEC6), (0xEDC, 0xEDF), (0xF00, 0xF00), (0xF40, 0xF47), (0xF49, 0xF6C),
        (0xF88, 0xF8C), (0x1000, 0x102A), (0x103F, 0x103F), (0x1050, 0x1055), (0x105A, 0x105D),
        (0x1061, 0x1061), (0x1065, 0x1066), (0x106E, 0x1070), (0x1075, 0x1081), (0x108E, 0x108E),
        (0x10A0, 0x10C5), (0x10C7, 0x10C7), (0x10CD, 0x10CD), (0x10D0, 0x10FA), (0x10FC, 0x1248),
        (0x124A, 0x124D), (0x1250, 0x1256), (0x1258, 0x1258), (0x125A, 0x125D), (0x1260, 0x1288),
        (0x128A, 0x128D), (0x1290, 0x12B0), (0x12B2, 0x12B5), (0x12B8, 0x12BE), (0x12C0, 0x12C0),
        (0x12C2, 0x12C5), (0x12C8, 0x12D6), (0x12D8, 0x1310), (0x1312, 0x1315), (0x1318, 0x135A),
        (0x1380, 0x138F), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1401, 0x166C), (0x166F, 0x167F),
        (0x1681, 0x169A), (0x16A0, 0x16EA), (0x16F1, 0x16F8), (0x1700, 0x1711), (0x171F, 0x1731),
        (0x1740, 0x1751), (0x1760, 0x176C), (0x176E, 0x1770), (0x1780, 0x17B3), (0x17D7, 0x17D7),
        (0x17DC, 0x17DC), (0x1820, 0x1878), (0x1880, 0x1884), (0x1887, 0x18A8), (0x18AA, 0x18AA),
        (0x18B0, 0x18F5), (0x1900, 0x191E), (0x1950, 0x196D), (0x1970, 0x1974), (0x1980, 0x19AB),
        (0x19B0, 0x19C9), (0x1A00, 0x1A16), (0x1A20, 0x1A54), (0x1AA7, 0x1AA7), (0x1B05, 0x1B33),
        (0x1B45, 0x1B4C), (0x1B83, 0x1BA0), (0x1BAE, 0x1BAF), (0x1BBA, 0x1BE5), (0x1C00, 0x1C23),
        (0x1C4D, 0x1C4F), (0x1C5A, 0x1C7D), (0x1C80, 0x1C88), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF),
        (0x1CE9, 0x1CEC), (0x1CEE, 0x1CF3), (0x1CF5, 0x1CF6), (0x1CFA, 0x1CFA), (0x1D00, 0x1DBF),
        (0x1E00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57),
        (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4),
        (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3),
        (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2071, 0x2071),
        (0x207F, 0x207F), (0x2090, 0x209C), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113),
        (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128),
        (0x212A, 0x212D), (0x212F, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149), (0x214E, 0x214E),
        (0x2183, 0x2184), (0x2C00, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3), (0x2D00, 0x2D25),
        (0x2D27, 0x2D27), (0x2D2D, 0x2D2D), (0x2D30, 0x2D67), (0x2D6F, 0x2D6F), (0x2D80, 0x2D96),
        (0x2DA0, 0x2DA6), (0x2DA8, 0x2DAE), (0x2DB0, 0x2DB6), (0x2DB8, 0x2DBE), (0x2DC0, 0x2DC6),
        (0x2DC8, 0x2DCE), (0x2DD0, 0x2DD6), (0x2DD8, 0x2DDE), (0x2E2F, 0x2E2F), (0x3005, 0x3006),
        (0x3031, 0x3035), (0x303B, 0x303C), (0x3041, 0x3096), (0x309D, 0x309F), (0x30A1, 0x30FA),
        (0x30FC, 0x30FF), (0x3105, 0x312F), (0x3131, 0x318E), (0x31A0, 0x31BF), (0x31F0, 0x31FF),
        (0x3400, 0x4DBF), (0x4E00, 0xA48C), (0xA4D0, 0xA4FD), (0xA500, 0xA60C), (0xA610, 0xA61F),
        (0xA62A, 0xA62B), (0xA640, 0xA66E), (0xA67F, 0xA69D), (0xA6A0, 0xA6E5), (0xA717, 0xA71F),
        (0xA722, 0xA788), (0xA78B, 0xA7CA), (0xA7D0, 0xA7D1), (0xA7D3, 0xA7D3), (0xA7D5, 0xA7D9),
        (0xA7F2, 0xA801), (0xA803, 0xA805), (0xA807, 0xA80A), (0xA80C, 0xA822), (0xA840, 0xA873),
        (0xA882, 0xA8B3), (0xA8F2, 0xA8F7), (0xA8FB, 0xA8FB), (0xA8FD, 0xA8FE), (0xA90A, 0xA925),
        (0xA930, 0xA946), (0xA960, 0xA97C), (0xA984, 0xA9B2), (0xA9CF, 0xA9CF), (0xA9E0, 0xA9E4),
        (0xA9E6, 0xA9EF), (0xA9FA, 0xA9FE), (0xAA00, 0xAA28), (0xAA40, 0xAA42), (0xAA44, 0xAA4B),
        (0xAA60, 0xAA76), (0xAA7A, 0xAA7A), (0xAA7E, 0xAAAF), (0xAAB1, 0xAAB1), (0xAAB5, 0xAAB6),
        (0xAAB9, 0xAABD), (0xAAC0, 0xAAC0), (0xAAC2, 0xAAC2), (0xAADB, 0xAADD), (0xAAE0, 0xAAEA),
        (0xAAF2, 0xAAF4), (0xAB01, 0xAB06), (0xAB09, 0xAB0E), (0xAB11, 0xAB16), (0xAB20, 0xAB26),
        (0xAB28, 0xAB2E), (0xAB30, 0xAB5A), (0xAB5C, 0xAB69), (0xAB70, 0xABE2), (0xAC00, 0xD7A3),
        (0xD7B0, 0xD7C6), (0xD7CB, 0xD7FB), (0xF900, 0xFA6D), (0xFA70, 0xFAD9), (0xFB00, 0xFB06),
        (0xFB13, 0xFB17), (0xFB1D, 0xFB1D), (0xFB1F, 0xFB28), (0xFB2A, 0xFB36), (0xFB38, 0xFB3C),
        (0xFB3E, 0xFB3E), (0xFB40, 0xFB41), (0xFB43, 0xFB44), (0xFB46, 0xFBB1), (0xFBD3, 0xFD3D),
        (0xFD50, 0xFD8F), (0xFD92, 0xFDC7), (0xFDF0, 0xFDFB), (0xFE70, 0xFE74), (0xFE76, 0xFEFC),
        (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0xFF66, 0xFFBE), (0xFFC2, 0xFFC7), (0xFFCA, 0xFFCF),
        (0xFFD2, 0xFFD7), (0xFFDA, 0xFFDC), (0x10000, 0x1000B), (0x1000D, 0x10026),
        (0x10028, 0x1003A), (0x1003C, 0x1003D), (0x1003F, 0x1004D), (0x10050, 0x1005D),
        (0x10080, 0x100FA), (0x10280, 0x1029C), (0x102A0, 0x102D0), (0x10300, 0x1031F),
        (0x1032D, 0x10340), (0x10342, 0x10349), (0x10350, 0x10375), (0x10380, 0x1039D),
        (0x103A0, 0x103C3), (0x103C8, 0x103CF), (0x10400, 0x1049D), (0x104B0, 0x104D3),
        (0x104D8, 0x104FB), (0x10500, 0x10527), (0x10530, 0x10563), (0x10570, 0x1057A),
        (0x1057C, 0x1058A), (0x1058C, 0x10592), (0x10594, 0x10595), (0x10597, 0x105A1),
        (0x105A3, 0x105B1), (0x105B3, 0x105B9), (0x105BB, 0x105BC), (0x10600, 0x10736),
        (0x10740, 0x10755), (0x10760, 0x10767), (0x10780, 0x10785), (0x10787, 0x107B0),
        (0x107B2, 0x107BA), (0x10800, 0x10805), (0x10808, 0x10808), (0x1080A, 0x10835),
        (0x10837, 0x10838), (0x1083C, 0x1083C), (0x1083F, 0x10855), (0x10860, 0x10876),
        (0x10880, 0x1089E), (0x108E0, 0x108F2), (0x108F4, 0x108F5), (0x10900, 0x10915),
        (0x10920, 0x10939), (0x10980, 0x109B7), (0x109BE, 0x109BF), (0x10A00, 0x10A00),
        (0x10A10, 0x10A13), (0x10A15, 0x10A17), (0x10A19, 0x10A35), (0x10A60, 0x10A7C),
        (0x10A80, 0x10A9C), (0x10AC0, 0x10AC7), (0x10AC9, 0x10AE4), (0x10B00, 0x10B35),
        (0x10B40, 0x10B55), (0x10B60, 0x10B72), (0x10B80, 0x10B91), (0x10C00, 0x10C48),
        (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x10D00, 0x10D23), (0x10E80, 0x10EA9),
        (0x10EB0, 0x10EB1), (0x10F00, 0x10F1C), (0x10F27, 0x10F27), (0x10F30, 0x10F45),
        (0x10F70, 0x10F81), (0x10FB0, 0x10FC4), (0x10FE0, 0x10FF6), (0x11003, 0x11037),
        (0x11071, 0x11072), (0x11075, 0x11075), (0x11083, 0x110AF), (0x110D0, 0x110E8),
        (0x11103, 0x11126), (0x11144, 0x11144), (0x11147, 0x11147), (0x11150, 0x11172),
        (0x11176, 0x11176), (0x11183, 0x111B2), (0x111C1, 0x111C4), (0x111DA, 0x111DA),
        (0x111DC, 0x111DC), (0x11200, 0x11211), (0x11213, 0x1122B), (0x1123F, 0x11240),
        (0x11280, 0x11286), (0x11288, 0x11288), (0x1128A, 0x1128D), (0x1128F, 0x1129D),
        (0x1129F, 0x112A8), (0x112B0, 0x112DE), (0x11305, 0x1130C), (0x1130F, 0x11310),
        (0x11313, 0x11328), (0x1132A, 0x11330), (0x11332, 0x11333), (0x11335, 0x11339),
        (0x1133D, 0x1133D), (0x11350, 0x11350), (0x1135D, 0x11361), (0x11400, 0x11434),
        (0x11447, 0x1144A), (0x1145F, 0x11461), (0x11480, 0x114AF), (0x114C4, 0x114C5),
        (0x114C7, 0x114C7), (0x11580, 0x115AE), (0x115D8, 0x115DB), (0x11600, 0x1162F),
        (0x11644, 0x11644), (0x11680, 0x116AA), (0x116B8, 0x116B8), (0x11700, 0x1171A),
        (0x11740, 0x11746), (0x11800, 0x1182B), (0x118A0, 0x118DF), (0x118FF, 0x11906),
        (0x11909, 0x11909), (0x1190C, 0x11913), (0x11915, 0x11916), (0x11918, 0x1192F),
        (0x1193F, 0x1193F), (0x11941, 0x11941), (0x119A0, 0x119A7), (0x119AA, 0x119D0),
        (0x119E1, 0x119E1), (0x119E3, 0x119E3), (0x11A00, 0x11A00), (0x11A0B, 0x11A32),
        (0x11A3A, 0x11A3A), (0x11A50, 0x11A50), (0x11A5C, 0x11A89), (0x11A9D, 0x11A9D),
        (0x11AB0, 0x11AF8), (0x11C00, 0x11C08), (0x11C0A, 0x11C2E), (0x11C40, 0x11C40),
        (0x11C72, 0x11C8F), (0x11D00, 0x11D06), (0x11D08, 0x11D09), (0x11D0B, 0x11D30),
        (0x11D46, 0x11D46), (0x11D60, 0x11D65), (0x11D67, 0x11D68), (0x11D6A, 0x11D89),
        (0x11D98, 0x11D98), (0x11EE0, 0x11EF2), (0x11F02, 0x11F02), (0x11F04, 0x11F10),
        (0x11F12, 0x11F33), (0x11FB0, 0x11FB0), (0x12000, 0x12399), (0x12480, 0x12543),
        (0x12F90, 0x12FF0), (0x13000, 0x1342F), (0x13441, 0x13446), (0x14400, 0x14646),
        (0x16800, 0x16A38), (0x16A40, 0x16A5E), (0x16A70, 0x16ABE), (0x16AD0, 0x16AED),
        (0x16B00, 0x16B2F), (0x16B40, 0x16B43), (0x16B63, 0x16B77), (0x16B7D, 0x16B8F),
        (0x16E40, 0x16E7F), (0x16F00, 0x16F4A), (0x16F50, 0x16F50), (0x16F93, 0x16F9F),
        (0x16FE0, 0x16FE1), (0x16FE3, 0x16FE3), (0x17000, 0x187F7), (0x18800, 0x18CD5),
        (0x18D00, 0x18D08), (0x1AFF0, 0x1AFF3), (0x1AFF5, 0x1AFFB), (0x1AFFD, 0x1AFFE),
        (0x1B000, 0x1B122), (0x1B132, 0x1B132), (0x1B150, 0x1B152), (0x1B155, 0x1B155),
        (0x1B164, 0x1B167), (0x1B170, 0x1B2FB), (0x1BC00, 0x1BC6A), (0x1BC70, 0x1BC7C),
        (0x1BC80, 0x1BC88), (0x1BC90, 0x1BC99), (0x1D400, 0x1D454), (0x1D456, 0x1D49C),
        (0x1D49E, 0x1D49F), (0x1D4A2, 0x1D4A2), (0x1D4A5, 0x1D4A6), (0x1D4A9, 0x1D4AC),
        (0x1D4AE, 0x1D4B9), (0x1D4BB, 0x1D4BB), (0x1D4BD, 0x1D4C3), (0x1D4C5, 0x1D505),
        (0x1D507, 0x1D50A), (0x1D50D, 0x1D514), (0x1D516, 0x1D51C), (0x1D51E, 0x1D539),
        (0x1D53B, 0x1D53E), (0x1D540, 0x1D544), (0x1D546, 0x1D546), (0x1D54A, 0x1D550),
        (0x1D552, 0x1D6A5), (0x1D6A8, 0x1D6C0), (0x1D6C2, 0x1D6DA), (0x1D6DC, 0x1D6FA),
        (0x1D6FC, 0x1D714), (0x1D716, 0x1D734), (0x1D736, 0x1D74E), (0x1D750, 0x1D76E),
        (0x1D770, 0x1D788), (0x1D78A, 0x1D7A8), (0x1D7AA, 0x1D7C2), (0x1D7C4, 0x1D7CB),
        (0x1DF00, 0x1DF1E), (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E100, 0x1E12C),
        (0x1E137, 0x1E13D), (0x1E14E, 0x1E14E), (0x1E290, 0x1E2AD), (0x1E2C0, 0x1E2EB),
        (0x1E4D0, 0x1E4EB), (0x1E7E0, 0x1E7E6), (0x1E7E8, 0x1E7EB), (0x1E7ED, 0x1E7EE),
        (0x1E7F0, 0x1E7FE), (0x1E800, 0x1E8C4), (0x1E900, 0x1E943), (0x1E94B, 0x1E94B),
        (0x1EE00, 0x1EE03), (0x1EE05, 0x1EE1F), (0x1EE21, 0x1EE22), (0x1EE24, 0x1EE24),
        (0x1EE27, 0x1EE27), (0x1EE29, 0x1EE32), (0x1EE34, 0x1EE37), (0x1EE39, 0x1EE39),
        (0x1EE3B, 0x1EE3B), (0x1EE42, 0x1EE42), (0x1EE47, 0x1EE47), (0x1EE49, 0x1EE49),
        (0x1EE4B, 0x1EE4B), (0x1EE4D, 0x1EE4F), (0x1EE51, 0x1EE52), (0x1EE54, 0x1EE54),
        (0x1EE57, 0x1EE57), (0x1EE59, 0x1EE59), (0x1EE5B, 0x1EE5B), (0x1EE5D, 0x1EE5D),
        (0x1EE5F, 0x1EE5F), (0x1EE61, 0x1EE62), (0x1EE64, 0x1EE64), (0x1EE67, 0x1EE6A),
        (0x1EE6C, 0x1EE72), (0x1EE74, 0x1EE77), (0x1EE79, 0x1EE7C), (0x1EE7E, 0x1EE7E),
        (0x1EE80, 0x1EE89), (0x1EE8B, 0x1EE9B), (0x1EEA1, 0x1EEA3), (0x1EEA5, 0x1EEA9),
        (0x1EEAB, 0x1EEBB), (0x20000, 0x2A6DF), (0x2A700, 0x2B739), (0x2B740, 0x2B81D),
        (0x2B820, 0x2CEA1), (0x2CEB0, 0x2EBE0), (0x2EBF0, 0x2EE5D), (0x2F800, 0x2FA1D),
        (0x30000, 0x3134A), (0x31350, 0x323AF),
    ];

    /// `\p{N}` above U+007F, Unicode 15.1, as inclusive ranges.
    pub(super) const NUMBER_RANGES: &[(u32, u32)] = &[
        (0xB2, 0xB3), (0xB9, 0xB9), (0xBC, 0xBE), (0x660, 0x669), (0x6F0, 0x6F9), (0x7C0, 0x7C9),
        (0x966, 0x96F), (0x9E6, 0x9EF), (0x9F4, 0x9F9), (0xA66, 0xA6F), (0xAE6, 0xAEF),
        (0xB66, 0xB6F), (0xB72, 0xB77), (0xBE6, 0xBF2), (0xC66, 0xC6F), (0xC78, 0xC7E),
        (0xCE6, 0xCEF), (0xD58, 0xD5E), (0xD66, 0xD78), (0xDE6, 0xDEF), (0xE50, 0xE59),
        (0xED0, 0xED9), (0xF20, 0xF33), (0x1040, 0x1049), (0x1090, 0x1099), (0x1369, 0x137C),
        (0x16EE, 0x16F0), (0x17E0, 0x17E9), (0x17F0, 0x17F9), (0x1810, 0x1819), (0x1946, 0x194F),
        (0x19D0, 0x19DA), (0x1A80, 0x1A89), (0x1A90, 0x1A99), (0x1B50, 0x1B59), (0x1BB0, 0x1BB9),
        (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0x2070, 0x2070), (0x2074, 0x2079), (0x2080, 0x2089),
        (0x2150, 0x2182), (0x2185, 0x2189), (0x2460, 0x249B), (0x24EA, 0x24FF), (0x2776, 0x2793),
        (0x2CFD, 0x2CFD), (0x3007, 0x3007), (0x3021, 0x3029), (0x3038, 0x303A), (0x3192, 0x3195),
        (0x3220, 0x3229), (0x3248, 0x324F), (0x3251, 0x325F), (0x3280, 0x3289), (0x32B1, 0x32BF),
        (0xA620, 0xA629), (0xA6E6, 0xA6EF), (0xA830, 0xA835), (0xA8D0, 0xA8D9), (0xA900, 0xA909),
        (0xA9D0, 0xA9D9), (0xA9F0, 0xA9F9), (0xAA50, 0xAA59), (0xABF0, 0xABF9), (0xFF10, 0xFF19),
        (0x10107, 0x10133), (0x10140, 0x10178), (0x1018A, 0x1018B), (0x102E1, 0x102FB),
        (0x10320, 0x10323), (0x10341, 0x10341), (0x1034A, 0x1034A), (0x103D1, 0x103D5),
        (0x104A0, 0x104A9), (0x10858, 0x1085F), (0x10879, 0x1087F), (0x108A7, 0x108AF),
        (0x108FB, 0x108FF), (0x10916, 0x1091B), (0x109BC, 0x109BD), (0x109C0, 0x109CF),
        (0x109D2, 0x109FF), (0x10A40, 0x10A48), (0x10A7D, 0x10A7E), (0x10A9D, 0x10A9F),
        (0x10AEB, 0x10AEF), (0x10B58, 0x10B5F), (0x10B78, 0x10B7F), (0x10BA9, 0x10BAF),
        (0x10CFA, 0x10CFF), (0x10D30, 0x10D39), (0x10E60, 0x10E7E), (0x10F1D, 0x10F26),
        (0x10F51, 0x10F54), (0x10FC5, 0x10FCB), (0x11052, 0x1106F), (0x110F0, 0x110F9),
        (0x11136, 0x1113F), (0x111D0, 0x111D9), (0x111E1, 0x111F4), (0x112F0, 0x112F9),
        (0x11450, 0x11459), (0x114D0, 0x114D9), (0x11650, 0x11659), (0x116C0, 0x116C9),
        (0x11730, 0x1173B), (0x118E0, 0x118F2), (0x11950, 0x11959), (0x11C50, 0x11C6C),
        (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x11F50, 0x11F59), (0x11FC0, 0x11FD4),
        (0x12400, 0x1246E), (0x16A60, 0x16A69), (0x16AC0, 0x16AC9), (0x16B50, 0x16B59),
        (0x16B5B, 0x16B61), (0x16E80, 0x16E96), (0x1D2C0, 0x1D2D3), (0x1D2E0, 0x1D2F3),
        (0x1D360, 0x1D378), (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149), (0x1E2F0, 0x1E2F9),
        (0x1E4F0, 0x1E4F9), (0x1E8C7, 0x1E8CF), (0x1E950, 0x1E959), (0x1EC71, 0x1ECAB),
        (0x1ECAD, 0x1ECAF), (0x1ECB1, 0x1ECB4), (0x1ED01, 0x1ED2D), (0x1ED2F, 0x1ED3D),
        (0x1F100, 0x1F10C), (0x1FBF0, 0x1FBF9),
    ];
}
