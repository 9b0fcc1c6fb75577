//! Prefill and decode tokens/s of our engine on the bundled model, for bench/inference_cpu.sh.
//! Prints one JSON line. Threads: candle's rayon pool (set RAYON_NUM_THREADS).
//!
//! Usage: decode_bench PROMPT_IDS_JSON NEW_TOKENS

use candle_core::Device;
use inference::generate::generate;
use inference::gguf::{default_model_path, GgufFile};
use inference::model::Model;
use inference::sampling::SamplingParams;
use std::ops::ControlFlow;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prompt: Vec<u32> = serde_json::from_str(&args[1]).expect("prompt ids as a JSON array");
    let new_tokens: usize = args[2].parse().expect("new token count");
    let file = GgufFile::open(&default_model_path()).expect("model (run scripts/fetch-model.sh)");
    let model = Model::load(&file, &Device::Cpu).expect("model loads");
    let params = SamplingParams {
        max_tokens: new_tokens,
        ..SamplingParams::default()
    };
    // No EOS: decode exactly `new_tokens` steps, as the llama.cpp side does.
    let run = || {
        generate(&model, &prompt, &params, &[], None, |_| {
            ControlFlow::Continue(())
        })
    };
    run().expect("warm-up");
    let g = run().expect("generation");
    let decode_steps = g.output_ids.len().saturating_sub(1).max(1);
    println!(
        "{{\"prefill_tps\": {:.2}, \"decode_tps\": {:.2}, \"prompt_tokens\": {}, \"new_tokens\": {}}}",
        prompt.len() as f64 / g.prefill_secs,
        decode_steps as f64 / g.decode_secs,
        prompt.len(),
        g.output_ids.len()
    );
}
