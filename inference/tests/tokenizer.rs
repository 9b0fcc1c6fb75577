//! The tokenizer against llama.cpp's ids (tests/fixtures/tokenizer_golden.json, made by
//! scripts/golden/make_goldens.sh from the same GGUF), decoding round trips, streaming
//! decoding, and refusal of tokenizers this engine does not implement.
//!
//! Tests that need the real model fail when it is absent (run scripts/fetch-model.sh).

use candle_core::quantized::gguf_file::{self, Value};
use inference::gguf::{model_for_tests, GgufFile};
use inference::tokenizer::{pre_tokenize, PreTokenizer, StreamDecoder, Tokenizer};
use inference::InferenceError;
use proptest::prelude::*;
use serde_json::Value as Json;
use std::io::Cursor;
use std::sync::OnceLock;
use std::time::Instant;

struct Real {
    file: GgufFile,
    tokenizer: Tokenizer,
}

fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        let path = model_for_tests();
        let file = GgufFile::open(&path).expect("open model");
        let tokenizer = Tokenizer::from_gguf(&file).expect("tokenizer from GGUF");
        Real { file, tokenizer }
    })
}

fn golden() -> &'static Json {
    static GOLDEN: OnceLock<Json> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer_golden.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture"))
            .expect("parse fixture")
    })
}

struct Case {
    name: String,
    text: String,
    parse_special: bool,
    ids: Vec<u32>,
    tokens: Vec<String>,
    decoded: String,
    round_trips: bool,
}

fn cases() -> Vec<Case> {
    let str_of = |v: &Json, key: &str| {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}"))
            .to_string()
    };
    golden()["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: str_of(c, "name"),
            text: str_of(c, "text"),
            parse_special: c["parse_special"].as_bool().expect("parse_special"),
            ids: c["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|i| i.as_u64().expect("id") as u32)
                .collect(),
            tokens: c["tokens"]
                .as_array()
                .expect("tokens")
                .iter()
                .map(|t| t.as_str().expect("token").to_string())
                .collect(),
            decoded: str_of(c, "decoded"),
            round_trips: c["round_trips"].as_bool().expect("round_trips"),
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn fixture_is_for_this_model() {
    let real = real();
    let model = &golden()["model"];
    assert_eq!(
        model["sha256"].as_str().unwrap(),
        hex(&real.file.sha256()),
        "tokenizer_golden.json was made from another model file"
    );
    let meta = &golden()["gguf_metadata"];
    assert_eq!(meta["tokenizer.ggml.pre"], "smollm");
    assert_eq!(meta["tokenizer.ggml.model"], "gpt2");
    assert_eq!(real.tokenizer.pre_tokenizer(), PreTokenizer::Smollm);
}

#[test]
fn every_golden_case_matches_llama_cpp() {
    let real = real();
    let tok = &real.tokenizer;
    let cases = cases();
    assert!(cases.len() >= 60, "only {} golden cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let ids = tok.encode(&c.text, c.parse_special).expect("encode");
        if ids != c.ids {
            failures.push(format!(
                "{}: encode({:?}) = {ids:?}, llama.cpp {:?}",
                c.name, c.text, c.ids
            ));
            continue;
        }
        let texts: Vec<&str> = ids.iter().map(|&id| tok.token_text(id).unwrap()).collect();
        if texts != c.tokens {
            failures.push(format!(
                "{}: token texts {texts:?}, llama.cpp {:?}",
                c.name, c.tokens
            ));
        }
        let decoded = tok.decode(&c.ids).expect("decode");
        if decoded != c.decoded {
            failures.push(format!(
                "{}: decode = {decoded:?}, llama.cpp {:?}",
                c.name, c.decoded
            ));
        }
        if c.round_trips && decoded != c.text {
            failures.push(format!("{}: does not round-trip: {decoded:?}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "{} golden cases equal llama.cpp's ids and detokenization",
        cases.len()
    );
}

#[test]
fn metadata_and_special_tokens_match_llama_cpp() {
    let real = real();
    let tok = &real.tokenizer;
    let vocab = &golden()["vocab"];
    assert_eq!(tok.vocab_size() as u64, vocab["n_vocab"].as_u64().unwrap());
    assert_eq!(tok.bos_id().map(u64::from), vocab["bos"].as_u64());
    assert_eq!(tok.eos_id().map(u64::from), vocab["eos"].as_u64());
    assert_eq!(tok.add_bos(), vocab["add_bos"].as_bool().unwrap());
    let specials = vocab["special_tokens"].as_array().unwrap();
    let mut n_special = 0;
    for s in specials {
        let id = s["id"].as_u64().unwrap() as u32;
        assert_eq!(tok.token_text(id), s["text"].as_str(), "id {id}");
        assert_eq!(tok.id_of(s["text"].as_str().unwrap()), Some(id));
        assert!(tok.is_special(id), "id {id}");
        assert_eq!(tok.is_eog(id), s["is_eog"].as_bool().unwrap(), "eog {id}");
        n_special += 1;
    }
    let all_special = (0..tok.vocab_size() as u32)
        .filter(|&id| tok.is_special(id))
        .count();
    assert_eq!(all_special, n_special);
    assert_eq!(tok.eog_ids(), [0, 2, 4]);
    assert_eq!(tok.id_of("<|im_end|>"), Some(2));
    assert_eq!(tok.id_of("Ġthe"), Some(260));
    assert_eq!(tok.id_of("no such token"), None);
}

/// What candle's GGUF tokenizer does with `smollm`: plain GPT-2 byte-level with a prefix
/// space and no digit splitting. Built here from the same vocabulary with
/// `tokenizer.ggml.pre = "gpt-2"` (prefix space added by hand) to show the ids differ.
#[test]
fn plain_gpt2_would_give_other_ids() {
    let real = real();
    let smollm = &real.tokenizer;
    let gpt2 = retarget(&real.file, "gpt-2");
    assert_eq!(gpt2.pre_tokenizer(), PreTokenizer::Gpt2);

    // The split differs on every number: each digit alone under smollm.
    assert_eq!(
        pre_tokenize(PreTokenizer::Smollm, "x 42"),
        ["x", " ", "4", "2"]
    );
    assert_eq!(pre_tokenize(PreTokenizer::Gpt2, "x 42"), ["x", " 42"]);
    // This vocabulary has no multi-digit ASCII tokens, so for 0-9 the ids happen to agree;
    // other \p{N} characters (superscripts, fractions, circled digits) do merge, and there
    // the ids differ.
    let text = "x² + y³ = z⁴, ½ cup";
    let (ids, ids_gpt2) = (
        smollm.encode(text, false).unwrap(),
        gpt2.encode(text, false).unwrap(),
    );
    assert_ne!(ids, ids_gpt2);
    assert_eq!(smollm.decode(&ids_gpt2).unwrap(), text);

    // Over the golden cases: how many would plain GPT-2 (+ prefix space) get wrong?
    let mut differ_gpt2 = Vec::new();
    let mut differ_prefixed = 0;
    for c in cases().iter().filter(|c| !c.parse_special) {
        if gpt2.encode(&c.text, false).unwrap() != c.ids {
            differ_gpt2.push(c.name.clone());
        }
        if !c.text.is_empty() && gpt2.encode(&format!(" {}", c.text), false).unwrap() != c.ids {
            differ_prefixed += 1;
        }
    }
    println!(
        "plain GPT-2 split differs from llama.cpp on {} golden cases ({differ_prefixed} with a \
         prefix space): {differ_gpt2:?}",
        differ_gpt2.len()
    );
    assert!(differ_gpt2.iter().any(|n| n == "unicode_digits_super_frac"));
    assert!(differ_prefixed >= 50);
}

/// A copy of the real model's tokenizer metadata with another `tokenizer.ggml.pre`.
fn retarget(file: &GgufFile, pre: &str) -> Tokenizer {
    let pre = Value::String(pre.to_string());
    let mut meta: Vec<(&str, &Value)> = file
        .content()
        .metadata
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer.ggml.") && k.as_str() != "tokenizer.ggml.pre")
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    meta.push(("tokenizer.ggml.pre", &pre));
    Tokenizer::from_gguf(&synthetic(&meta)).expect("retargeted tokenizer")
}

/// An in-memory GGUF holding only `meta`.
fn synthetic(meta: &[(&str, &Value)]) -> GgufFile {
    let mut bytes = Cursor::new(Vec::new());
    gguf_file::write(&mut bytes, meta, &[]).expect("write gguf");
    GgufFile::from_bytes("synthetic.gguf".into(), bytes.into_inner()).expect("parse gguf")
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
}

/// A tiny vocabulary: printable ASCII plus `extra`, with `merges`.
fn tiny(
    pre: &str,
    model: &str,
    extra: &[&str],
    merges: &[&str],
) -> Result<Tokenizer, InferenceError> {
    let mut tokens: Vec<String> = vec!["<|end|>".into()];
    tokens.extend((0x21u8..=0x7e).map(|b| (b as char).to_string()));
    tokens.push("Ġ".into()); // the byte-alphabet stand-in for ' '
    tokens.extend(extra.iter().map(|s| s.to_string()));
    let tokens_v = Value::Array(tokens.iter().cloned().map(Value::String).collect());
    let types = Value::Array(
        (0..tokens.len())
            .map(|i| Value::I32(if i == 0 { 3 } else { 1 }))
            .collect(),
    );
    let merges_v = strings(merges);
    let model_v = Value::String(model.into());
    let pre_v = Value::String(pre.into());
    let eos = Value::U32(0);
    let meta = [
        ("tokenizer.ggml.model", &model_v),
        ("tokenizer.ggml.pre", &pre_v),
        ("tokenizer.ggml.tokens", &tokens_v),
        ("tokenizer.ggml.token_type", &types),
        ("tokenizer.ggml.merges", &merges_v),
        ("tokenizer.ggml.eos_token_id", &eos),
    ];
    Tokenizer::from_gguf(&synthetic(&meta))
}

#[test]
fn unknown_pre_tokenizer_and_vocab_type_are_refused() {
    for pre in ["qwen2", "default", "gpt2", "deepseek-llm", "no-such-thing"] {
        match tiny(pre, "gpt2", &[], &[]) {
            Err(InferenceError::UnsupportedTokenizer(msg)) => assert!(!msg.is_empty()),
            Err(e) => panic!("{pre}: wrong error {e}"),
            Ok(_) => panic!("{pre}: accepted"),
        }
    }
    for model in ["llama", "bert", "t5", ""] {
        match tiny("smollm", model, &[], &[]) {
            Err(InferenceError::UnsupportedTokenizer(msg)) => {
                assert!(msg.contains("tokenizer.ggml.model"), "{msg}")
            }
            Err(e) => panic!("{model}: wrong error {e}"),
            Ok(_) => panic!("{model}: accepted"),
        }
    }
    // Missing pieces of metadata are errors too.
    let gpt2 = Value::String("gpt2".into());
    assert!(matches!(
        Tokenizer::from_gguf(&synthetic(&[("tokenizer.ggml.model", &gpt2)])),
        Err(InferenceError::UnsupportedTokenizer(_))
    ));
    let smollm = Value::String("smollm".into());
    assert!(matches!(
        Tokenizer::from_gguf(&synthetic(&[
            ("tokenizer.ggml.model", &gpt2),
            ("tokenizer.ggml.pre", &smollm)
        ])),
        Err(InferenceError::Metadata { .. })
    ));
    assert!(tiny("smollm", "gpt2", &[], &[]).is_ok());
    assert!(tiny("llama3", "gpt2", &[], &[]).is_ok());
    assert!(tiny("gpt-2", "gpt2", &[], &[]).is_ok());
}

#[test]
fn bpe_merges_lowest_rank_first_and_falls_back_to_bytes() {
    // "b c" has the best rank, so "abc" is a + bc, then abc.
    let t = tiny(
        "gpt-2",
        "gpt2",
        &["ab", "bc", "abc"],
        &["b c", "a b", "a bc"],
    )
    .unwrap();
    let abc = t.id_of("abc").unwrap();
    assert_eq!(t.encode("abc", false).unwrap(), [abc]);
    // "abab": a b merges twice (leftmost first); no "ab ab" merge.
    let ab = t.id_of("ab").unwrap();
    assert_eq!(t.encode("abab", false).unwrap(), [ab, ab]);
    // A merge whose result is not a token: llama.cpp falls back to one token per
    // character.
    let t = tiny("gpt-2", "gpt2", &["xy"], &["x y", "xy z"]).unwrap();
    let (x, y, z) = (
        t.id_of("x").unwrap(),
        t.id_of("y").unwrap(),
        t.id_of("z").unwrap(),
    );
    assert_eq!(t.encode("xyz", false).unwrap(), [x, y, z]);
    assert_eq!(t.encode("xy", false).unwrap(), [t.id_of("xy").unwrap()]);
    // The control token is only parsed with parse_special.
    assert_eq!(t.encode("<|end|>", true).unwrap(), [0]);
    assert_eq!(t.encode("<|end|>", false).unwrap().len(), 7);
    assert!(t.is_eog(0));
}

#[test]
fn llama3_ignore_merges_takes_whole_word_tokens() {
    // "abc" is a token but no merge builds it: llama3 takes it whole, gpt-2 cannot.
    let llama3 = tiny("llama3", "gpt2", &["abc"], &[]).unwrap();
    let gpt2 = tiny("gpt-2", "gpt2", &["abc"], &[]).unwrap();
    let abc = llama3.id_of("abc").unwrap();
    assert_eq!(llama3.encode("abc", false).unwrap(), [abc]);
    assert_eq!(gpt2.encode("abc", false).unwrap().len(), 3);
    assert!(llama3.add_bos());
}

#[test]
fn decode_rejects_ids_outside_the_vocabulary() {
    let real = real();
    let tok = &real.tokenizer;
    let n = tok.vocab_size() as u32;
    assert!(matches!(
        tok.decode(&[1, n]),
        Err(InferenceError::Tokenizer(_))
    ));
    assert!(matches!(
        tok.decode(&[u32::MAX]),
        Err(InferenceError::Tokenizer(_))
    ));
    assert!(tok.token_bytes(n).is_none());
    assert_eq!(tok.token_bytes(2).unwrap(), b"<|im_end|>");
    assert_eq!(tok.token_bytes(260).unwrap(), b" the");
    let mut stream = StreamDecoder::new(tok);
    assert!(matches!(stream.push(n), Err(InferenceError::Tokenizer(_))));
    assert_eq!(tok.decode(&[]).unwrap(), "");
}

fn stream_all(tok: &Tokenizer, ids: &[u32]) -> (String, Vec<String>) {
    let mut stream = StreamDecoder::new(tok);
    let mut chunks = Vec::new();
    for &id in ids {
        chunks.push(stream.push(id).expect("push"));
    }
    chunks.push(stream.finish());
    (chunks.concat(), chunks)
}

#[test]
fn stream_decoder_equals_decode_on_every_golden_case() {
    let real = real();
    let tok = &real.tokenizer;
    let mut split_chars = 0;
    for c in cases() {
        let (text, chunks) = stream_all(tok, &c.ids);
        assert_eq!(text, tok.decode(&c.ids).unwrap(), "{}", c.name);
        // A token that ends inside a character yields nothing until the character is
        // complete; no chunk ever holds a replacement character here.
        for (id, chunk) in c.ids.iter().zip(&chunks) {
            let piece = tok.token_bytes(*id).unwrap();
            if std::str::from_utf8(&piece).is_err() {
                split_chars += 1;
            }
            assert!(!chunk.contains('\u{fffd}'), "{}: {chunk:?}", c.name);
        }
    }
    assert!(
        split_chars > 10,
        "emoji/CJK split across tokens: {split_chars}"
    );

    // 🍕 is several tokens: nothing comes out until its last byte arrives.
    let ids = tok.encode("🍕", false).unwrap();
    assert!(ids.len() > 1, "{ids:?}");
    let (text, chunks) = stream_all(tok, &ids);
    assert_eq!(text, "🍕");
    assert!(
        chunks[..ids.len() - 1].iter().all(String::is_empty),
        "{chunks:?}"
    );
    assert_eq!(chunks[ids.len() - 1], "🍕");

    // A character cut off at the end is flushed as U+FFFD, as decode does.
    let cut = &ids[..ids.len() - 1];
    let (text, _) = stream_all(tok, cut);
    assert_eq!(text, tok.decode(cut).unwrap());
    assert_eq!(text, "\u{fffd}");
}

#[test]
fn special_tokens_only_with_parse_special() {
    let real = real();
    let tok = &real.tokenizer;
    let text = "<|im_start|>user\nhi<|im_end|>";
    let parsed = tok.encode(text, true).unwrap();
    assert_eq!(parsed.first(), Some(&1));
    assert_eq!(parsed.last(), Some(&2));
    let plain = tok.encode(text, false).unwrap();
    assert!(plain.iter().all(|&id| !tok.is_special(id)), "{plain:?}");
    assert_eq!(tok.decode(&parsed).unwrap(), text);
    assert_eq!(tok.decode(&plain).unwrap(), text);
    // Adjacent and repeated special tokens.
    assert_eq!(
        tok.encode("<|im_end|><|im_end|><|endoftext|>", true)
            .unwrap(),
        [2, 2, 0]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// decode(encode(s)) == s for any string, special-token text included.
    #[test]
    fn decoding_round_trips(s in "(\\PC|\\s|<\\|im_(start|end)\\|>|[0-9]{1,6}|[ \\t\\n]{1,4}){0,24}") {
        let real = real();
        let tok = &real.tokenizer;
        for parse_special in [false, true] {
            let ids = tok.encode(&s, parse_special).unwrap();
            prop_assert_eq!(tok.decode(&ids).unwrap(), s.clone());
            let (streamed, _) = stream_all(tok, &ids);
            prop_assert_eq!(streamed, s.clone());
        }
    }
}

/// Throughput of `encode` on about 10 KB of mixed text (printed; the assertion is only a
/// floor far below what even a debug build does).
#[test]
fn encode_throughput_10kb() {
    let real = real();
    let tok = &real.tokenizer;
    let mut text = String::new();
    let samples: Vec<String> = cases().into_iter().map(|c| c.text).collect();
    while text.len() < 10 * 1024 {
        for s in &samples {
            text.push_str(s);
            text.push('\n');
        }
    }
    let load = Instant::now();
    Tokenizer::from_gguf(&real.file).unwrap();
    let load = load.elapsed();
    let rounds = 5;
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += tok.encode(&text, false).unwrap().len();
    }
    let secs = start.elapsed().as_secs_f64();
    let per_call = secs / rounds as f64;
    println!(
        "encode: {} bytes -> {} tokens in {:.2} ms ({:.0} tokens/s, {:.1} MB/s; {} build)",
        text.len(),
        n / rounds,
        per_call * 1e3,
        n as f64 / secs,
        text.len() as f64 * rounds as f64 / secs / 1e6,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("Tokenizer::from_gguf: {:.0} ms", load.as_secs_f64() * 1e3);
    assert!(per_call < 5.0, "encode of 10 KB took {per_call:.2} s");
}
