//! DANGEROUS: a cheating provider, for testing the auditor (`veritee-verify audit`).
//!
//! Compiled only with the `simulate` feature (a release image builds without it, and
//! scripts/test.sh checks that this module is absent from that build). With
//! `serve --simulate --dangerous-cheat MODE [--dangerous-cheat-rate F]` the runtime serves
//! as usual but cheats on a fraction F of its jobs (default all) and signs their receipts
//! with its bound key, as an honest runtime would: what a provider that got a modified
//! runtime past a client's loose policy, or extracted its TEE's keys, could hand the
//! auditor. Every mode is derived from the one model the runtime loads; nothing is
//! downloaded. A cheated job's response carries the header `x-veritee-dangerous-cheat:
//! MODE`, so that tests know which jobs the audit must flag.

use inference::fingerprint::fingerprint_of_prefill;
use inference::gguf::GgufFile;
use inference::model::{Model, Variant};
use std::path::Path;
use std::sync::Mutex;

/// The response header naming the cheat applied to a job.
pub const CHEAT_HEADER: &str = "x-veritee-dangerous-cheat";

/// How the runtime cheats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheatMode {
    /// Generate with a cheaper model: the same weights with every third block removed.
    ModelSwap,
    /// Generate with the same weights requantized to 3 bits.
    Quantize,
    /// Cut the answer at half of `max_tokens` and say the model stopped.
    Truncate,
    /// Write a canned answer instead of generating one, and forge its fingerprint with a
    /// teacher-forced pass over it (cheaper than decoding).
    Fabricate,
    /// Bill half as many output tokens again as were generated.
    InflateTokens,
    /// Claim four times the device time used.
    InflateTime,
    /// Answer with the previous job's answer (to another prompt), fingerprint and all.
    Replay,
}

impl CheatMode {
    pub const ALL: [CheatMode; 7] = [
        CheatMode::ModelSwap,
        CheatMode::Quantize,
        CheatMode::Truncate,
        CheatMode::Fabricate,
        CheatMode::InflateTokens,
        CheatMode::InflateTime,
        CheatMode::Replay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheatMode::ModelSwap => "model-swap",
            CheatMode::Quantize => "quantize",
            CheatMode::Truncate => "truncate",
            CheatMode::Fabricate => "fabricate",
            CheatMode::InflateTokens => "inflate-tokens",
            CheatMode::InflateTime => "inflate-time",
            CheatMode::Replay => "replay",
        }
    }

    pub fn parse(name: &str) -> Result<CheatMode, String> {
        CheatMode::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown cheat mode '{name}' (one of: {})",
                    CheatMode::ALL.map(CheatMode::as_str).join(", ")
                )
            })
    }
}

/// Factor of `InflateTime`.
pub const TIME_FACTOR: u64 = 4;

/// An answer kept for `Replay`.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub output_ids: Vec<u32>,
    pub fingerprint: Vec<u8>,
    pub text: String,
}

/// The cheating state shared by the engine threads.
pub struct Cheat {
    pub mode: CheatMode,
    rate: f64,
    /// xorshift64 state: which jobs are cheated (not security relevant).
    rng: Mutex<u64>,
    /// The cheaper model for `ModelSwap` and `Quantize`.
    pub variant: Option<Model>,
    /// The last honest answer, for `Replay`.
    pub last: Mutex<Option<Recorded>>,
}

/// Canned answers for `Fabricate`: fluent, and not what the model says to any prompt.
const CANNED: [&str; 3] = [
    "Thank you for your question. The answer depends on several factors, and the best approach is to consider each of them carefully before deciding. ",
    "Here is a short overview. First, gather the relevant information; second, compare the options; third, choose the one that fits your needs best. ",
    "Great question! Many people wonder about this. In general, it is a good idea to start small, learn from experience and adjust along the way. ",
];

impl Cheat {
    pub fn load(mode: CheatMode, rate: f64, model_path: &Path) -> Result<Cheat, String> {
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(format!(
                "--dangerous-cheat-rate must be in (0, 1], got {rate}"
            ));
        }
        let variant = match mode {
            CheatMode::ModelSwap => Some(Variant::SkipLayers { every: 3 }),
            CheatMode::Quantize => Some(Variant::Requantized { bits: 3 }),
            _ => None,
        };
        let variant = match variant {
            None => None,
            Some(v) => {
                let file = GgufFile::open(model_path)
                    .map_err(|e| format!("model {}: {e}", model_path.display()))?;
                Some(
                    Model::load_variant(&file, &candle_core::Device::Cpu, v)
                        .map_err(|e| format!("the cheaper model ({v:?}): {e}"))?,
                )
            }
        };
        Ok(Cheat {
            mode,
            rate,
            rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
            variant,
            last: Mutex::new(None),
        })
    }

    /// Whether to cheat on the next job.
    pub fn roll(&self) -> bool {
        if self.rate >= 1.0 {
            return true;
        }
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        ((*s >> 11) as f64 / (1u64 << 53) as f64) < self.rate
    }

    /// A canned answer of exactly `max_tokens` tokens and its forged fingerprint (the
    /// real model's hidden states over those tokens).
    pub fn fabricate(
        model: &Model,
        tokenizer: &inference::tokenizer::Tokenizer,
        prompt_ids: &[u32],
        max_tokens: usize,
        pick: usize,
    ) -> Result<Recorded, String> {
        let mut ids = Vec::new();
        let mut k = pick;
        while ids.len() < max_tokens {
            ids.extend(
                tokenizer
                    .encode(CANNED[k % CANNED.len()], false)
                    .map_err(|e| e.to_string())?,
            );
            k += 1;
        }
        ids.truncate(max_tokens);
        let fingerprint = fingerprint_of_prefill(model, prompt_ids, &ids)
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = tokenizer.decode(&ids).map_err(|e| e.to_string())?;
        Ok(Recorded {
            output_ids: ids,
            fingerprint,
            text,
        })
    }
}

/// `InflateTokens`: the output tokens billed for `n` generated.
pub fn inflated(n: u64) -> u64 {
    n + (n / 2).max(1)
}
