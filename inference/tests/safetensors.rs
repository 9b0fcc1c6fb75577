//! Safetensors llama loading, checked against the GGUF path and a plain reference.
//!
//! A tiny random llama (2 layers, hidden 64, 4 heads, 2 KV heads, FFN 128, vocab 256) is
//! built from a seeded generator and written (a) as a HF checkpoint (`config.json` +
//! safetensors, HF row order) and (b) as an F32 GGUF whose Q/K rows are permuted the way
//! llama.cpp's converter does. Both must give the same logits (within 1e-5; in practice
//! bit for bit), and both must match a naive f64 forward over the HF weights with the
//! half-split rotary embedding (within 1e-4), which checks the Q/K permutation
//! independently of the loader's own.
//!
//! Tolerances for the half-precision variants: F16/BF16 checkpoints must reproduce
//! *exactly* the f32 model built from the same rounded weights (the widening is exact),
//! and stay within 0.02 (F16) / 0.1 (BF16) of the unrounded model's logits (max abs
//! difference; the logits are of order 1).

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use inference::gguf::GgufFile;
use inference::model::{Model, Output, Weights};
use inference::InferenceError;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LAYERS: usize = 2;
const DIM: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HD: usize = DIM / HEADS;
const FFN: usize = 128;
const VOCAB: usize = 256;
const CTX: usize = 64;
const EPS: f32 = 1e-5;
const THETA: f32 = 10_000.0;
const TOKENS: [u32; 7] = [1, 17, 200, 45, 3, 99, 255];

/// SplitMix64: a small seeded generator, enough for test weights.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vec(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.unit()).collect()
    }
}

/// HF tensor name → (shape, row-major values), in HF row order.
type Weights32 = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn random_model(seed: u64, tied: bool) -> Weights32 {
    let mut rng = Rng(seed);
    let mut w = Weights32::new();
    let mut put = |name: String, shape: &[usize], scale: f32, offset: f32| {
        let n = shape.iter().product();
        w.insert(name, (shape.to_vec(), rng.vec(n, scale, offset)));
    };
    put("model.embed_tokens.weight".into(), &[VOCAB, DIM], 1.0, 0.0);
    for i in 0..LAYERS {
        let p = format!("model.layers.{i}");
        put(format!("{p}.input_layernorm.weight"), &[DIM], 0.2, 1.0);
        put(
            format!("{p}.post_attention_layernorm.weight"),
            &[DIM],
            0.2,
            1.0,
        );
        put(
            format!("{p}.self_attn.q_proj.weight"),
            &[DIM, DIM],
            0.3,
            0.0,
        );
        put(
            format!("{p}.self_attn.k_proj.weight"),
            &[KV_HEADS * HD, DIM],
            0.3,
            0.0,
        );
        put(
            format!("{p}.self_attn.v_proj.weight"),
            &[KV_HEADS * HD, DIM],
            0.2,
            0.0,
        );
        put(
            format!("{p}.self_attn.o_proj.weight"),
            &[DIM, DIM],
            0.2,
            0.0,
        );
        put(format!("{p}.mlp.gate_proj.weight"), &[FFN, DIM], 0.2, 0.0);
        put(format!("{p}.mlp.up_proj.weight"), &[FFN, DIM], 0.2, 0.0);
        put(format!("{p}.mlp.down_proj.weight"), &[DIM, FFN], 0.15, 0.0);
    }
    put("model.norm.weight".into(), &[DIM], 0.2, 1.0);
    if !tied {
        put("lm_head.weight".into(), &[VOCAB, DIM], 0.2, 0.0);
    }
    w
}

fn config(tied: bool) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": DIM,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": EPS,
        "rope_theta": THETA,
        "max_position_embeddings": CTX,
        "vocab_size": VOCAB,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "torch_dtype": "float32",
    })
}

/// A fresh, empty temporary directory for one test.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veritee-st-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tensor(shape: &[usize], data: &[f32], dtype: DType) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Writes `w` as a HF checkpoint in `dtype`, split over `shards` files.
fn write_hf(dir: &Path, w: &Weights32, cfg: &serde_json::Value, dtype: DType, shards: usize) {
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(cfg).unwrap(),
    )
    .unwrap();
    let mut files = vec![std::collections::HashMap::new(); shards];
    for (i, (name, (shape, data))) in w.iter().enumerate() {
        files[i % shards].insert(name.clone(), tensor(shape, data, dtype));
    }
    for (i, f) in files.iter().enumerate() {
        let name = if shards == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{shards:05}.safetensors", i + 1)
        };
        candle_core::safetensors::save(f, dir.join(name)).unwrap();
    }
}

/// llama.cpp's converter permutation of a Q/K projection: within each head, HF row
/// `j·HD/2 + i` becomes row `2i + j`. Written with plain indices, independently of the
/// loader's tensor version.
fn permute_rows(data: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for h in 0..heads {
        for i in 0..HD / 2 {
            for j in 0..2 {
                let src = h * HD + j * HD / 2 + i;
                let dst = h * HD + 2 * i + j;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// The same model as an F32 GGUF with llama.cpp's names and Q/K layout.
fn gguf(w: &Weights32) -> GgufFile {
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut put = |name: String, hf: &str, permute: Option<usize>| {
        let (shape, data) = &w[hf];
        let data = match permute {
            Some(heads) => permute_rows(data, heads, shape[1]),
            None => data.clone(),
        };
        let t = tensor(shape, &data, DType::F32);
        tensors.push((name, QTensor::quantize(&t, GgmlDType::F32).unwrap()));
    };
    put(
        "token_embd.weight".into(),
        "model.embed_tokens.weight",
        None,
    );
    put("output_norm.weight".into(), "model.norm.weight", None);
    if w.contains_key("lm_head.weight") {
        put("output.weight".into(), "lm_head.weight", None);
    }
    for i in 0..LAYERS {
        let (b, p) = (format!("blk.{i}"), format!("model.layers.{i}"));
        let pairs: [(&str, &str, Option<usize>); 9] = [
            ("attn_norm", "input_layernorm", None),
            ("ffn_norm", "post_attention_layernorm", None),
            ("attn_q", "self_attn.q_proj", Some(HEADS)),
            ("attn_k", "self_attn.k_proj", Some(KV_HEADS)),
            ("attn_v", "self_attn.v_proj", None),
            ("attn_output", "self_attn.o_proj", None),
            ("ffn_gate", "mlp.gate_proj", None),
            ("ffn_up", "mlp.up_proj", None),
            ("ffn_down", "mlp.down_proj", None),
        ];
        for (g, h, perm) in pairs {
            put(format!("{b}.{g}.weight"), &format!("{p}.{h}.weight"), perm);
        }
    }
    let meta: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.context_length", Value::U32(CTX as u32)),
        ("llama.embedding_length", Value::U32(DIM as u32)),
        ("llama.feed_forward_length", Value::U32(FFN as u32)),
        ("llama.attention.head_count", Value::U32(HEADS as u32)),
        ("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32)),
        ("llama.rope.freq_base", Value::F32(THETA)),
        ("llama.rope.dimension_count", Value::U32(HD as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(EPS)),
        ("llama.vocab_size", Value::U32(VOCAB as u32)),
    ];
    let m: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let t: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut buf = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &m, &t).unwrap();
    GgufFile::from_bytes("tiny.gguf".into(), buf.into_inner()).unwrap()
}

fn logits(model: &Model) -> Vec<f32> {
    let mut cache = model.new_cache();
    model
        .forward(&TOKENS, 0, &mut cache, Output::All)
        .unwrap()
        .logits
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A naive f64 llama forward over HF weights with HF's half-split rotary embedding.
fn reference(w: &Weights32, tied: bool) -> Vec<f32> {
    let get = |n: &str| -> Vec<f64> { w[n].1.iter().map(|&x| x as f64).collect() };
    // x · Wᵀ for W `[out, inp]`.
    let matvec = |m: &[f64], x: &[f64], out: usize| -> Vec<f64> {
        let inp = x.len();
        (0..out)
            .map(|r| (0..inp).map(|c| m[r * inp + c] * x[c]).sum())
            .collect()
    };
    let rms = |x: &[f64], g: &[f64]| -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + EPS as f64).sqrt();
        x.iter().zip(g).map(|(v, g)| v * s * g).collect()
    };
    let rope = |v: &mut [f64], pos: usize| {
        for h in 0..v.len() / HD {
            for i in 0..HD / 2 {
                let f = (THETA as f64).powf(-2.0 * i as f64 / HD as f64);
                let (c, s) = ((pos as f64 * f).cos(), (pos as f64 * f).sin());
                let (a, b) = (v[h * HD + i], v[h * HD + i + HD / 2]);
                v[h * HD + i] = a * c - b * s;
                v[h * HD + i + HD / 2] = a * s + b * c;
            }
        }
    };
    let embed = get("model.embed_tokens.weight");
    let head = if tied {
        embed.clone()
    } else {
        get("lm_head.weight")
    };
    let mut xs: Vec<Vec<f64>> = TOKENS
        .iter()
        .map(|&t| embed[t as usize * DIM..(t as usize + 1) * DIM].to_vec())
        .collect();
    for l in 0..LAYERS {
        let p = |n: &str| get(&format!("model.layers.{l}.{n}.weight"));
        let (wq, wk, wv, wo) = (
            p("self_attn.q_proj"),
            p("self_attn.k_proj"),
            p("self_attn.v_proj"),
            p("self_attn.o_proj"),
        );
        let (g1, g2) = (p("input_layernorm"), p("post_attention_layernorm"));
        let (wg, wu, wd) = (p("mlp.gate_proj"), p("mlp.up_proj"), p("mlp.down_proj"));
        let mut ks = Vec::new();
        let mut vs = Vec::new();
        let mut qs = Vec::new();
        for (pos, x) in xs.iter().enumerate() {
            let h = rms(x, &g1);
            let mut q = matvec(&wq, &h, DIM);
            let mut k = matvec(&wk, &h, KV_HEADS * HD);
            rope(&mut q, pos);
            rope(&mut k, pos);
            qs.push(q);
            ks.push(k);
            vs.push(matvec(&wv, &h, KV_HEADS * HD));
        }
        for (pos, x) in xs.iter_mut().enumerate() {
            let mut att = vec![0.0; DIM];
            for h in 0..HEADS {
                let kvh = h / (HEADS / KV_HEADS);
                let q = &qs[pos][h * HD..(h + 1) * HD];
                let scores: Vec<f64> = (0..=pos)
                    .map(|t| {
                        let k = &ks[t][kvh * HD..(kvh + 1) * HD];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>() / (HD as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for (t, et) in e.iter().enumerate() {
                    for d in 0..HD {
                        att[h * HD + d] += et / z * vs[t][kvh * HD + d];
                    }
                }
            }
            let o = matvec(&wo, &att, DIM);
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let h = rms(x, &g2);
            let g = matvec(&wg, &h, FFN);
            let u = matvec(&wu, &h, FFN);
            let a: Vec<f64> = g
                .iter()
                .zip(&u)
                .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                .collect();
            let d = matvec(&wd, &a, DIM);
            x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        }
    }
    let norm = get("model.norm.weight");
    xs.iter()
        .flat_map(|x| matvec(&head, &rms(x, &norm), VOCAB))
        .map(|v| v as f32)
        .collect()
}

fn load_dir(dir: &Path) -> Result<Model, InferenceError> {
    Model::load_safetensors(dir, &Device::Cpu)
}

#[test]
fn safetensors_matches_gguf_and_reference() {
    for tied in [false, true] {
        let w = random_model(42, tied);
        let dir = temp_dir(&format!("match-{tied}"));
        write_hf(&dir, &w, &config(tied), DType::F32, 1);
        let st = load_dir(&dir).expect("safetensors model loads");
        let g = Model::load_with(&gguf(&w), &Device::Cpu, Weights::DequantizedF32).unwrap();
        assert_eq!(st.config(), g.config());
        let (a, b) = (logits(&st), logits(&g));
        let d = max_diff(&a, &b);
        eprintln!("tied={tied}: max |safetensors - gguf| = {d}");
        assert!(
            d <= 1e-5,
            "tied={tied}: safetensors vs gguf logits differ by {d}"
        );
        let r = reference(&w, tied);
        let d = max_diff(&a, &r);
        eprintln!("tied={tied}: max |safetensors - f64 reference| = {d}");
        assert!(
            d <= 1e-4,
            "tied={tied}: safetensors vs reference differ by {d}"
        );
        assert!(a.iter().any(|v| v.abs() > 0.5), "logits are not trivial");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn sharded_checkpoint_and_digest() {
    let w = random_model(7, false);
    let one = temp_dir("one");
    let three = temp_dir("three");
    write_hf(&one, &w, &config(false), DType::F32, 1);
    write_hf(&three, &w, &config(false), DType::F32, 3);
    let m1 = load_dir(&one).unwrap();
    let m3 = load_dir(&three).unwrap();
    assert_eq!(logits(&m1), logits(&m3));

    // SHA-256 over the weight files in file-name order, then config.json.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&three)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    let mut h = Sha256::new();
    for f in &files {
        h.update(std::fs::read(f).unwrap());
    }
    h.update(std::fs::read(three.join("config.json")).unwrap());
    let expected: [u8; 32] = h.finalize().into();
    assert_eq!(m3.digest(), expected);
    assert_ne!(m1.digest(), m3.digest());

    // The digest covers config.json: same weights, different eps → different digest.
    let mut cfg = config(false);
    cfg["rms_norm_eps"] = serde_json::json!(1e-6);
    std::fs::write(one.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let m1b = load_dir(&one).unwrap();
    assert_ne!(m1.digest(), m1b.digest());
    // …and is stable across loads.
    assert_eq!(m1b.digest(), load_dir(&one).unwrap().digest());
    std::fs::remove_dir_all(&one).unwrap();
    std::fs::remove_dir_all(&three).unwrap();
}

#[test]
fn half_precision_checkpoints() {
    let w = random_model(1234, false);
    let full = {
        let dir = temp_dir("f32");
        write_hf(&dir, &w, &config(false), DType::F32, 1);
        let l = logits(&load_dir(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        l
    };
    for (dtype, tol) in [(DType::F16, 0.02f32), (DType::BF16, 0.1)] {
        // The f32 model holding exactly the rounded weights.
        let rounded: Weights32 = w
            .iter()
            .map(|(n, (s, d))| {
                let r = tensor(s, d, dtype).to_dtype(DType::F32).unwrap();
                (
                    n.clone(),
                    (s.clone(), r.flatten_all().unwrap().to_vec1().unwrap()),
                )
            })
            .collect();
        let dir = temp_dir(&format!("{dtype:?}"));
        write_hf(&dir, &w, &config(false), dtype, 1);
        let half = logits(&load_dir(&dir).unwrap());
        let exact_dir = temp_dir(&format!("{dtype:?}-rounded"));
        write_hf(&exact_dir, &rounded, &config(false), DType::F32, 1);
        let exact = logits(&load_dir(&exact_dir).unwrap());
        assert_eq!(half, exact, "{dtype:?} widening must be exact");
        let d = max_diff(&half, &full);
        eprintln!("{dtype:?}: max |half - f32| = {d}");
        assert!(
            d <= tol,
            "{dtype:?} logits differ from f32 by {d} (> {tol})"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&exact_dir).unwrap();
    }
}

/// Writes a valid checkpoint after `edit` has changed its config or tensors, and loads it.
fn load_edited(
    tag: &str,
    edit: impl FnOnce(&mut serde_json::Value, &mut std::collections::HashMap<String, Tensor>),
) -> Result<(), InferenceError> {
    let w = random_model(5, false);
    let dir = temp_dir(tag);
    let mut cfg = config(false);
    let mut tensors: std::collections::HashMap<String, Tensor> = w
        .iter()
        .map(|(n, (s, d))| (n.clone(), tensor(s, d, DType::F32)))
        .collect();
    edit(&mut cfg, &mut tensors);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let r = load_dir(&dir).map(|_| ());
    std::fs::remove_dir_all(&dir).unwrap();
    r
}

#[test]
fn valid_edit_loads() {
    load_edited("valid", |_, _| {}).expect("unedited checkpoint loads");
}

#[test]
fn bad_architecture() {
    let e = load_edited("arch", |c, _| {
        c["architectures"] = serde_json::json!(["MistralForCausalLM"])
    });
    assert!(
        matches!(&e, Err(InferenceError::UnsupportedArchitecture(a)) if a.contains("Mistral")),
        "{e:?}"
    );
}

#[test]
fn unsupported_dtypes() {
    for (name, dtype) in [
        ("model.position_ids", DType::I64),
        ("model.mask", DType::U8),
    ] {
        let e = load_edited(&format!("dtype-{dtype:?}"), |_, t| {
            let x = Tensor::zeros((4,), dtype, &Device::Cpu).unwrap();
            t.insert(name.to_string(), x);
        });
        match &e {
            Err(InferenceError::UnsupportedTensorType { tensor, dtype: d }) => {
                assert_eq!(tensor, name);
                assert_eq!(d, &format!("{dtype:?}").to_uppercase());
            }
            other => panic!("{dtype:?}: {other:?}"),
        }
    }
}

#[test]
fn missing_tensor() {
    for name in ["model.layers.1.mlp.down_proj.weight", "lm_head.weight"] {
        let e = load_edited("missing", |_, t| {
            t.remove(name);
        });
        assert!(
            matches!(&e, Err(InferenceError::MalformedModel(m)) if m.contains(name) && m.contains("missing")),
            "{e:?}"
        );
    }
}

#[test]
fn wrong_shape() {
    let name = "model.layers.0.self_attn.k_proj.weight";
    let e = load_edited("shape", |_, t| {
        t.insert(
            name.into(),
            Tensor::zeros((DIM, DIM), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert!(
        matches!(&e, Err(InferenceError::MalformedModel(m)) if m.contains(name) && m.contains("shape")),
        "{e:?}"
    );
    let name = "model.layers.1.mlp.up_proj.weight";
    let e = load_edited("shape2", |_, t| {
        t.insert(
            name.into(),
            Tensor::zeros((DIM, FFN), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    assert!(
        matches!(&e, Err(InferenceError::MalformedModel(m)) if m.contains(name) && m.contains("shape")),
        "{e:?}"
    );
}

#[test]
fn missing_config_keys() {
    for key in ["hidden_size", "rms_norm_eps", "vocab_size", "architectures"] {
        let e = load_edited(&format!("key-{key}"), |c, _| {
            c.as_object_mut().unwrap().remove(key);
        });
        assert!(
            matches!(&e, Err(InferenceError::Metadata { key: k, .. }) if k == key),
            "{key}: {e:?}"
        );
    }
    // Optional keys take HF's defaults: no num_key_value_heads means one per head.
    let e = load_edited("kv-default", |c, _| {
        c.as_object_mut().unwrap().remove("num_key_value_heads");
    });
    assert!(
        matches!(&e, Err(InferenceError::MalformedModel(m)) if m.contains("k_proj")),
        "{e:?}"
    );
}

#[test]
fn missing_files() {
    let dir = temp_dir("nofiles");
    assert!(matches!(load_dir(&dir), Err(InferenceError::Io { .. })));
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec(&config(false)).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        load_dir(&dir),
        Err(InferenceError::MalformedModel(m)) if m.contains("no *.safetensors")
    ));
    std::fs::write(dir.join("config.json"), b"{not json").unwrap();
    assert!(matches!(
        load_dir(&dir),
        Err(InferenceError::MalformedModel(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
