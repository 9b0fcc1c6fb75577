//! Throughput of the quantized matrix kernels alone, one thread: for each available
//! kernel path and each number of input rows, the time of `x · Wᵀ` for SmolLM2's two
//! largest `Q4_1` shapes (576 → 1536 and 1536 → 576) and its `Q8_0` output matrix
//! (576 → 49152), as nanoseconds per call, multiply-adds per nanosecond, and the input
//! quantization's share. Random weights (every value in range); not a test: numbers depend
//! on the machine and its load.
//!
//! Usage: kernel_bench [ROUNDS] [ROWS...]   (defaults: 20 1 4 16 64)

use candle_core::quantized::GgmlDType;
use inference::kernels::{InputKind, Isa, PackedMatrix, QuantizedInput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;

/// Raw GGUF blocks of `dtype` with small realistic scales.
fn raw(rng: &mut ChaCha20Rng, dtype: GgmlDType, rows: usize, cols: usize) -> Vec<u8> {
    let blocks = rows * cols / 32;
    let scale = |rng: &mut ChaCha20Rng| half_bits(rng.random_range(0.002..0.022));
    let mut out = Vec::new();
    for _ in 0..blocks {
        match dtype {
            GgmlDType::Q4_1 => {
                out.extend_from_slice(&scale(rng).to_le_bytes());
                out.extend_from_slice(&half_bits(rng.random_range(-0.1..0.0)).to_le_bytes());
                out.extend((0..16).map(|_| rng.random::<u8>()));
            }
            _ => {
                out.extend_from_slice(&scale(rng).to_le_bytes());
                out.extend((0..32).map(|_| rng.random::<u8>()));
            }
        }
    }
    out
}

fn half_bits(v: f32) -> u16 {
    inference::kernels::f32_to_f16(v)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let row_counts: Vec<usize> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|s| s.parse().expect("a row count"))
            .collect()
    } else {
        vec![1, 4, 16, 64]
    };
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let shapes = [
        ("q4_1 576->1536", GgmlDType::Q4_1, 1536, 576),
        ("q4_1 1536->576", GgmlDType::Q4_1, 576, 1536),
        ("q8_0 576->49152", GgmlDType::Q8_0, 49152, 576),
    ];
    for (name, dtype, rows, cols) in shapes {
        let w = PackedMatrix::from_ggml(dtype, &raw(&mut rng, dtype, rows, cols), rows, cols)
            .expect("packs");
        for &n in &row_counts {
            let x: Vec<f32> = (0..n * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
            let kind: InputKind = w.input_kind();
            for isa in Isa::available() {
                let mut q = QuantizedInput::new();
                let mut out = vec![0f32; n * w.tiles() * 16];
                let (mut t_quant, mut t_mul) = (Vec::new(), Vec::new());
                for _ in 0..rounds {
                    let t0 = Instant::now();
                    q.quantize(isa, kind, &x, cols);
                    let t1 = Instant::now();
                    w.matmul(isa, &q, 0..w.tiles(), &mut out);
                    let t2 = Instant::now();
                    t_quant.push((t1 - t0).as_secs_f64());
                    t_mul.push((t2 - t1).as_secs_f64());
                }
                let (tq, tm) = (median(t_quant), median(t_mul));
                let macs = (n * rows * cols) as f64;
                println!(
                    "{{\"matrix\":\"{name}\",\"rows\":{n},\"isa\":\"{isa:?}\",\"matmul_us\":{:.1},\"quantize_us\":{:.1},\"macs_per_ns\":{:.2},\"quantize_share\":{:.3}}}",
                    tm * 1e6,
                    tq * 1e6,
                    macs / (tm * 1e9),
                    tq / (tq + tm)
                );
            }
        }
    }
}
