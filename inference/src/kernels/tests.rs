//! Bit-identity of every available SIMD path with the scalar kernels, batch and split
//! independence, and agreement with candle's own arithmetic.

use super::*;
use candle_core::quantized::{ggml_file::qtensor_from_ggml, QMatMul};
use candle_core::{DType, Device, Module, Tensor};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// A finite f16 scale: mostly realistic magnitudes, sometimes zero, subnormal, tiny or
/// the largest finite value, either sign.
fn scale(rng: &mut Rng) -> u16 {
    let sign = (rng.below(2) as u16) << 15;
    sign | match rng.below(16) {
        0 => 0,
        1 => 1 + rng.below(0x3ff) as u16,   // subnormal
        2 => 0x7bff,                        // 65504
        3 => 0x0400 + rng.below(64) as u16, // smallest normals
        _ => f32_to_f16(0.001 + 0.05 * rng.unit().abs()),
    }
}

fn raw_q4_1(rng: &mut Rng, rows: usize, blocks: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(rows * blocks * 20);
    for _ in 0..rows * blocks {
        raw.extend_from_slice(&scale(rng).to_le_bytes());
        raw.extend_from_slice(&scale(rng).to_le_bytes());
        let edge = rng.below(4);
        for _ in 0..16 {
            raw.push(match edge {
                0 => 0x00,
                1 => 0xff,
                _ => rng.below(256) as u8,
            });
        }
    }
    raw
}

fn raw_q8_0(rng: &mut Rng, rows: usize, blocks: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(rows * blocks * 34);
    for _ in 0..rows * blocks {
        raw.extend_from_slice(&scale(rng).to_le_bytes());
        let edge = rng.below(4);
        for _ in 0..32 {
            raw.push(match edge {
                0 => 0x80, // -128
                1 => 0x7f,
                _ => rng.below(256) as u8,
            });
        }
    }
    raw
}

/// Inputs with edge cases: zero blocks, one large value per block, huge and tiny ranges.
fn input(rng: &mut Rng, rows: usize, cols: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(rows * cols);
    for _ in 0..rows * cols / BLOCK {
        let kind = rng.below(6);
        let mag = match rng.below(4) {
            0 => 1e-6,
            1 => 1e3,
            _ => 2.0,
        };
        for j in 0..BLOCK {
            x.push(match kind {
                0 => 0.0,
                1 if j == 7 => -mag,
                1 => 0.0,
                2 => mag,
                _ => mag * rng.unit(),
            });
        }
    }
    x
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn run(isa: Isa, w: &PackedMatrix, x: &QuantizedInput, tiles: Range<usize>) -> Vec<f32> {
    let mut out = vec![f32::NAN; x.rows() * tiles.len() * TILE];
    w.matmul(isa, x, tiles, &mut out);
    out
}

#[test]
fn f16_conversions_match_candle() {
    // Every f16 widens exactly and narrows back to itself.
    let all: Vec<f32> = (0..=u16::MAX).map(f16_to_f32).collect();
    for (h, &v) in all.iter().enumerate() {
        if !v.is_nan() {
            assert_eq!(f32_to_f16(v), h as u16, "{h:#06x}");
        }
    }
    let ours_wide: Vec<f32> = all.iter().copied().filter(|v| !v.is_nan()).collect();
    let candle_round = Tensor::new(ours_wide.as_slice(), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(same_bits(&ours_wide, &candle_round));
    // Narrowing of arbitrary f32 (ties, subnormal range, overflow) as candle does it.
    let mut rng = Rng(7);
    let mut xs: Vec<f32> = (0..200_000)
        .map(|_| f32::from_bits(rng.next() as u32))
        .filter(|v| !v.is_nan())
        .collect();
    xs.extend((0..50_000).map(|i| (i as f32 - 25_000.0) * 1.7e-8));
    xs.extend((0..=u16::MAX).map(|h| f16_to_f32(h) + f16_to_f32(1) / 2.0));
    xs.retain(|v| !v.is_nan());
    let candle: Vec<f32> = Tensor::new(xs.as_slice(), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let ours: Vec<f32> = xs.iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect();
    assert!(same_bits(&ours, &candle));
}

/// The kernel tests quantize their inputs with the reference code (the quantizers have
/// their own test below).
fn isa_for_input() -> Isa {
    Isa::Scalar
}

/// Blocks built to hit the rounding and saturation corners: exact halves after scaling,
/// signed zeros, subnormals, one huge value among tiny ones, NaN and infinities (which the
/// SIMD path hands to the scalar code).
fn hostile_block(rng: &mut Rng, kind: u64) -> [f32; BLOCK] {
    let mut b = [0f32; BLOCK];
    for (j, v) in b.iter_mut().enumerate() {
        *v = match kind {
            0 => (j as f32 - 16.0) + 0.5,
            // amax 127 → scale 1: every k + 0.5 is an exact half after scaling.
            1 if j == 0 => 127.0,
            1 => (rng.below(254) as f32 - 127.0) / 2.0,
            2 => -0.0,
            3 => {
                f32::from_bits(1 + rng.below(0x7f_ffff) as u32)
                    * if j % 2 == 0 { 1.0 } else { -1.0 }
            }
            4 if j == 5 => 3.0e38,
            4 => 1e-30 * rng.unit(),
            5 if j == 9 => f32::NAN,
            5 => rng.unit(),
            6 if j == 3 => f32::INFINITY,
            6 if j == 4 => f32::NEG_INFINITY,
            6 => rng.unit(),
            7 if j == 11 => f32::NAN,
            _ => 50.0 * rng.unit(),
        };
    }
    b
}

#[test]
fn input_quantization_is_the_same_on_every_path() {
    let isas = Isa::available();
    let mut rng = Rng(77);
    let mut blocks = Vec::new();
    for i in 0..4000u64 {
        blocks.push(if i < 800 {
            hostile_block(&mut rng, i % 8)
        } else {
            let x = input(&mut rng, 1, BLOCK);
            x.try_into().unwrap()
        });
    }
    let x: Vec<f32> = blocks.iter().flatten().copied().collect();
    let cols = 4 * BLOCK;
    for kind in [InputKind::Q8_1, InputKind::Q8_0] {
        let mut want = QuantizedInput::new();
        want.quantize(Isa::Scalar, kind, &x, cols);
        // The reference itself against the formula, block by block.
        for (k, xs) in x.chunks_exact(BLOCK).enumerate() {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            for (q, v) in want.qs[k].iter().zip(xs) {
                assert_eq!(*q, (v * id).round() as i8, "block {k}");
            }
        }
        for &isa in &isas[1..] {
            let mut got = QuantizedInput::new();
            got.quantize(isa, kind, &x, cols);
            let first_diff = (0..want.qs.len()).find(|&k| got.qs[k] != want.qs[k]);
            assert_eq!(
                first_diff, None,
                "{isa:?} {kind:?}: values of the first block that differs"
            );
            assert!(got.qu == want.qu, "{isa:?} {kind:?} unsigned values");
            assert!(same_bits(&got.d, &want.d), "{isa:?} {kind:?} scales");
            assert!(same_bits(&got.s, &want.s), "{isa:?} {kind:?} sums");
        }
    }
    if isas.len() == 1 {
        eprintln!("SKIPPED: no SIMD path on this CPU to compare with the scalar quantizer");
    }
}

#[test]
fn simd_paths_are_bit_identical_to_scalar() {
    let isas = Isa::available();
    eprintln!("kernel paths on this CPU: {isas:?}");
    let mut rng = Rng(42);
    let mut cases = 0;
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        for &rows in &[1usize, 5, 16, 17, 40] {
            for &blocks in &[1usize, 2, 3, 17, 18] {
                for &n in &[1usize, 2, 3, 4, 5, 9] {
                    let cols = blocks * BLOCK;
                    let raw = match dtype {
                        GgmlDType::Q4_1 => raw_q4_1(&mut rng, rows, blocks),
                        _ => raw_q8_0(&mut rng, rows, blocks),
                    };
                    let w = PackedMatrix::from_ggml(dtype, &raw, rows, cols).unwrap();
                    let mut x = QuantizedInput::new();
                    x.quantize(
                        isa_for_input(),
                        w.input_kind(),
                        &input(&mut rng, n, cols),
                        cols,
                    );
                    let want = run(Isa::Scalar, &w, &x, 0..w.tiles());
                    for &isa in &isas[1..] {
                        let got = run(isa, &w, &x, 0..w.tiles());
                        assert!(
                            same_bits(&got, &want),
                            "{isa:?} {dtype:?} rows {rows} blocks {blocks} inputs {n}"
                        );
                    }
                    cases += 1;
                }
            }
        }
    }
    // Many more random blocks through the realistic shapes.
    for seed in 0..200u64 {
        let mut rng = Rng(1000 + seed);
        let dtype = if seed % 2 == 0 {
            GgmlDType::Q4_1
        } else {
            GgmlDType::Q8_0
        };
        let (rows, blocks, n) = (32, 18, 1 + (seed % 6) as usize);
        let cols = blocks * BLOCK;
        let raw = match dtype {
            GgmlDType::Q4_1 => raw_q4_1(&mut rng, rows, blocks),
            _ => raw_q8_0(&mut rng, rows, blocks),
        };
        let w = PackedMatrix::from_ggml(dtype, &raw, rows, cols).unwrap();
        let mut x = QuantizedInput::new();
        x.quantize(
            isa_for_input(),
            w.input_kind(),
            &input(&mut rng, n, cols),
            cols,
        );
        let want = run(Isa::Scalar, &w, &x, 0..w.tiles());
        for &isa in &isas[1..] {
            assert!(
                same_bits(&run(isa, &w, &x, 0..w.tiles()), &want),
                "{isa:?} seed {seed}"
            );
        }
        cases += 1;
    }
    assert!(cases > 300);
}

#[test]
fn results_do_not_depend_on_batch_or_tile_split() {
    let mut rng = Rng(9);
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let (rows, blocks, n) = (48, 6, 7);
        let cols = blocks * BLOCK;
        let raw = match dtype {
            GgmlDType::Q4_1 => raw_q4_1(&mut rng, rows, blocks),
            _ => raw_q8_0(&mut rng, rows, blocks),
        };
        let w = PackedMatrix::from_ggml(dtype, &raw, rows, cols).unwrap();
        let xs = input(&mut rng, n, cols);
        for isa in Isa::available() {
            let mut x = QuantizedInput::new();
            x.quantize(isa_for_input(), w.input_kind(), &xs, cols);
            let all = run(isa, &w, &x, 0..3);
            for s in 0..n {
                let mut one = QuantizedInput::new();
                one.quantize(
                    isa_for_input(),
                    w.input_kind(),
                    &xs[s * cols..(s + 1) * cols],
                    cols,
                );
                for t in 0..3 {
                    let part = run(isa, &w, &one, t..t + 1);
                    let o = s * rows + t * TILE;
                    assert!(
                        same_bits(&part, &all[o..o + TILE]),
                        "{isa:?} row {s} tile {t}"
                    );
                }
            }
        }
    }
}

/// Our `Q4_1` path reproduces candle's (`vec_dot_unopt`, the same formula) bit for bit;
/// `Q8_0` (candle uses an FMA path with another summation order) agrees to rounding.
#[test]
fn agrees_with_candle() {
    let mut rng = Rng(3);
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0] {
        let (rows, blocks, n) = (48, 18, 5);
        let cols = blocks * BLOCK;
        // Realistic weights: quantized by candle from random floats.
        let wf: Vec<f32> = (0..rows * cols).map(|_| 0.1 * rng.unit()).collect();
        let wt = Tensor::from_vec(wf, (rows, cols), &Device::Cpu).unwrap();
        let q = candle_core::quantized::QTensor::quantize(&wt, dtype).unwrap();
        let raw = q.data().unwrap().to_vec();
        let q = qtensor_from_ggml(dtype, &raw, vec![rows, cols], &Device::Cpu).unwrap();
        let mm = QMatMul::from_qtensor(q).unwrap();
        let xs: Vec<f32> = (0..n * cols).map(|_| 3.0 * rng.unit()).collect();
        let want = mm
            .forward(&Tensor::from_vec(xs.clone(), (n, cols), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let w = PackedMatrix::from_ggml(dtype, &raw, rows, cols).unwrap();
        let mut x = QuantizedInput::new();
        x.quantize(isa_for_input(), w.input_kind(), &xs, cols);
        for isa in Isa::available() {
            let got = run(isa, &w, &x, 0..w.tiles());
            match dtype {
                GgmlDType::Q4_1 => assert!(same_bits(&got, &want), "{isa:?}"),
                _ => {
                    for (a, b) in got.iter().zip(&want) {
                        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                    }
                }
            }
        }
        // Dequantized rows as candle's.
        let deq = candle_core::quantized::QTensor::dequantize(
            &qtensor_from_ggml(dtype, &raw, vec![rows, cols], &Device::Cpu).unwrap(),
            &Device::Cpu,
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        let mut row = vec![0f32; cols];
        for r in 0..rows {
            w.dequantize_row(r, &mut row);
            assert!(
                same_bits(&row, &deq[r * cols..(r + 1) * cols]),
                "{dtype:?} row {r}"
            );
        }
    }
}

#[test]
fn refuses_what_it_cannot_compute() {
    assert!(PackedMatrix::from_ggml(GgmlDType::Q4_1, &[0; 20], 1, 32).is_some());
    assert!(PackedMatrix::from_ggml(GgmlDType::Q4_1, &[0; 19], 1, 32).is_none());
    assert!(PackedMatrix::from_ggml(GgmlDType::Q8_0, &[0; 34], 1, 33).is_none());
    assert!(PackedMatrix::from_ggml(GgmlDType::Q4K, &[0; 144], 1, 256).is_none());
}
