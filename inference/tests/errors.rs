//! Bad input gets a typed error, never a panic: malformed and unsupported model files,
//! context overflow, invalid sampling parameters.
//!
//! Most cases use a tiny synthetic llama written in memory with candle's GGUF writer; the
//! truncation cases use the real model file (a failure when absent).

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use inference::generate::generate;
use inference::gguf::{model_for_tests, GgufFile};
use inference::model::{Model, Output, Weights};
use inference::sampling::SamplingParams;
use inference::score::score;
use inference::InferenceError;
use std::ops::ControlFlow;

const DIM: usize = 64;
const FF: usize = 64;
const VOCAB: usize = 64;
const CTX: u32 = 16;

type Meta = Vec<(String, Value)>;
type Tensors = Vec<(String, QTensor)>;

fn q(shape: &[usize], dtype: GgmlDType) -> QTensor {
    let t = Tensor::randn(0f32, 0.5, shape, &Device::Cpu).unwrap();
    QTensor::quantize(&t, dtype).unwrap()
}

/// A valid one-layer llama (dim 64, 2 heads, 1 KV head, vocab 64, context 16), after
/// `edit` has changed its metadata or tensors.
fn tiny(edit: impl FnOnce(&mut Meta, &mut Tensors)) -> GgufFile {
    let mut meta: Meta = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("llama.block_count".into(), Value::U32(1)),
        ("llama.context_length".into(), Value::U32(CTX)),
        ("llama.embedding_length".into(), Value::U32(DIM as u32)),
        ("llama.feed_forward_length".into(), Value::U32(FF as u32)),
        ("llama.attention.head_count".into(), Value::U32(2)),
        ("llama.attention.head_count_kv".into(), Value::U32(1)),
        ("llama.rope.freq_base".into(), Value::F32(10_000.0)),
        ("llama.rope.dimension_count".into(), Value::U32(32)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
    ];
    let (f32_, q41) = (GgmlDType::F32, GgmlDType::Q4_1);
    let mut tensors: Tensors = vec![
        (
            "token_embd.weight".into(),
            q(&[VOCAB, DIM], GgmlDType::Q8_0),
        ),
        ("output_norm.weight".into(), q(&[DIM], f32_)),
        ("blk.0.attn_norm.weight".into(), q(&[DIM], f32_)),
        ("blk.0.attn_q.weight".into(), q(&[DIM, DIM], q41)),
        ("blk.0.attn_k.weight".into(), q(&[32, DIM], q41)),
        ("blk.0.attn_v.weight".into(), q(&[32, DIM], q41)),
        ("blk.0.attn_output.weight".into(), q(&[DIM, DIM], q41)),
        ("blk.0.ffn_norm.weight".into(), q(&[DIM], f32_)),
        ("blk.0.ffn_gate.weight".into(), q(&[FF, DIM], q41)),
        ("blk.0.ffn_up.weight".into(), q(&[FF, DIM], q41)),
        ("blk.0.ffn_down.weight".into(), q(&[DIM, FF], q41)),
    ];
    edit(&mut meta, &mut tensors);
    let mut buf = std::io::Cursor::new(Vec::new());
    let m: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut buf, &m, &t).unwrap();
    GgufFile::from_bytes("tiny.gguf".into(), buf.into_inner()).expect("tiny gguf parses")
}

fn load(file: &GgufFile) -> Result<Model, InferenceError> {
    Model::load(file, &Device::Cpu)
}

fn tiny_model() -> Model {
    load(&tiny(|_, _| {})).expect("tiny model loads")
}

fn set(meta: &mut Meta, key: &str, value: Value) {
    meta.retain(|(k, _)| k != key);
    meta.push((key.into(), value));
}

#[test]
fn tiny_model_runs() {
    let m = tiny_model();
    let mut cache = m.new_cache();
    let out = m.forward(&[1, 2, 3], 0, &mut cache, Output::All).unwrap();
    assert_eq!((out.rows, out.logits.len()), (3, 3 * VOCAB));
    assert!(out.logits.iter().all(|x| x.is_finite()));
    let params = SamplingParams {
        max_tokens: 4,
        ..Default::default()
    };
    let g = generate(&m, &[1, 2], &params, &[], None, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(g.output_ids.len(), 4);
    let s = score(&m, &[1, 2], &g.output_ids, 3).unwrap();
    assert!(s.positions.iter().all(|p| p.rank == 0));
    let file = tiny(|_, _| {});
    let f32_model = Model::load_with(&file, &Device::Cpu, Weights::DequantizedF32).unwrap();
    let mut cache = f32_model.new_cache();
    let out = f32_model
        .forward(&[1, 2, 3], 0, &mut cache, Output::All)
        .unwrap();
    assert!(out.logits.iter().all(|x| x.is_finite()));
}

#[test]
fn truncated_real_model_is_malformed() {
    let path = model_for_tests();
    let bytes = std::fs::read(&path).unwrap();
    for n in [
        0,
        3,
        4,
        8,
        24,
        1000,
        100_000,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        match GgufFile::from_bytes(format!("first {n} bytes"), bytes[..n].to_vec()) {
            Err(InferenceError::MalformedModel(msg)) => assert!(!msg.is_empty()),
            Err(e) => panic!("{n} bytes: expected MalformedModel, got {e:?}"),
            Ok(_) => panic!("{n} bytes: a truncated file parsed"),
        }
    }
}

#[test]
fn corrupt_magic_is_malformed() {
    let mut buf = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &[], &[]).unwrap();
    let mut bytes = buf.into_inner();
    bytes[0] = b'X';
    assert!(matches!(
        GgufFile::from_bytes("bad magic".into(), bytes),
        Err(InferenceError::MalformedModel(_))
    ));
    assert!(matches!(
        GgufFile::from_bytes("garbage".into(), b"not a gguf file at all".to_vec()),
        Err(InferenceError::MalformedModel(_))
    ));
}

#[test]
fn other_architectures_are_unsupported() {
    let f = tiny(|m, _| set(m, "general.architecture", Value::String("gpt-neox".into())));
    match load(&f) {
        Err(InferenceError::UnsupportedArchitecture(a)) => assert_eq!(a, "gpt-neox"),
        other => panic!("expected UnsupportedArchitecture, got {:?}", other.err()),
    }
    let f = tiny(|m, _| set(m, "llama.expert_count", Value::U32(8)));
    assert!(matches!(
        load(&f),
        Err(InferenceError::UnsupportedArchitecture(_))
    ));
}

#[test]
fn unsupported_tensor_types_are_named() {
    // Q8_1 is ggml's activation format, never a weight format: the forward refuses it.
    let f = tiny(|_, t| {
        t[3] = (
            "blk.0.attn_q.weight".into(),
            q(&[DIM, DIM], GgmlDType::Q8_1),
        )
    });
    match load(&f) {
        Err(InferenceError::UnsupportedTensorType { tensor, dtype }) => {
            assert_eq!(tensor, "blk.0.attn_q.weight");
            assert_eq!(dtype, "Q8_1");
        }
        other => panic!("expected UnsupportedTensorType, got {:?}", other.err()),
    }
}

#[test]
fn missing_metadata_and_bad_shapes() {
    let f = tiny(|m, _| m.retain(|(k, _)| k != "llama.attention.head_count"));
    match load(&f) {
        Err(InferenceError::Metadata { key, .. }) => assert_eq!(key, "llama.attention.head_count"),
        other => panic!("expected Metadata, got {:?}", other.err()),
    }
    let f = tiny(|m, _| set(m, "llama.attention.head_count_kv", Value::U32(3)));
    assert!(matches!(load(&f), Err(InferenceError::Metadata { .. })));
    let f = tiny(|m, _| set(m, "llama.block_count", Value::String("one".into())));
    assert!(matches!(load(&f), Err(InferenceError::Metadata { .. })));
    let f = tiny(|_, t| {
        t[4] = (
            "blk.0.attn_k.weight".into(),
            q(&[DIM, DIM], GgmlDType::Q4_1),
        )
    });
    match load(&f) {
        Err(InferenceError::MalformedModel(msg)) => assert!(msg.contains("attn_k"), "{msg}"),
        other => panic!("expected MalformedModel, got {:?}", other.err()),
    }
    // Q4_1 rows of an odd number of blocks: candle's kernel would assert.
    let f = tiny(|m, t| {
        set(m, "llama.feed_forward_length", Value::U32(96));
        t[8] = (
            "blk.0.ffn_gate.weight".into(),
            q(&[96, DIM], GgmlDType::Q4_1),
        );
        t[9] = ("blk.0.ffn_up.weight".into(), q(&[96, DIM], GgmlDType::Q4_1));
        t[10] = (
            "blk.0.ffn_down.weight".into(),
            q(&[DIM, 96], GgmlDType::Q4_1),
        );
    });
    match load(&f) {
        Err(InferenceError::MalformedModel(msg)) => assert!(msg.contains("odd number"), "{msg}"),
        other => panic!("expected MalformedModel, got {:?}", other.err()),
    }
    let f = tiny(|_, t| t.retain(|(k, _)| k != "blk.0.ffn_up.weight"));
    match load(&f) {
        Err(InferenceError::MalformedModel(msg)) => assert!(msg.contains("ffn_up"), "{msg}"),
        other => panic!("expected MalformedModel, got {:?}", other.err()),
    }
}

#[test]
fn context_overflow_is_checked_before_running() {
    let m = tiny_model();
    let long: Vec<u32> = (0..CTX + 1).map(|i| i % VOCAB as u32).collect();
    let params = SamplingParams {
        max_tokens: 1,
        ..Default::default()
    };
    let run = |prompt: &[u32], params: &SamplingParams| {
        generate(&m, prompt, params, &[], None, |_| ControlFlow::Continue(()))
    };
    assert!(matches!(
        run(&long, &params),
        Err(InferenceError::ContextOverflow { prompt: 17, .. })
    ));
    // Fits alone, but not with the requested new tokens.
    let params = SamplingParams {
        max_tokens: 8,
        ..Default::default()
    };
    assert!(matches!(
        run(&long[..10], &params),
        Err(InferenceError::ContextOverflow {
            prompt: 10,
            max_new_tokens: 8,
            context: 16
        })
    ));
    assert!(matches!(
        score(&m, &long[..10], &long[..7], 1),
        Err(InferenceError::ContextOverflow { .. })
    ));
    let mut cache = m.new_cache();
    assert!(matches!(
        m.forward(&long, 0, &mut cache, Output::Last),
        Err(InferenceError::ContextOverflow { .. })
    ));
}

fn invalid_name(r: Result<impl std::fmt::Debug, InferenceError>) -> &'static str {
    match r {
        Err(InferenceError::InvalidParameter { name, .. }) => name,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}

#[test]
fn invalid_sampling_parameters_are_named() {
    let d = SamplingParams::default;
    let cases: Vec<(&str, SamplingParams)> = vec![
        (
            "temperature",
            SamplingParams {
                temperature: f32::NAN,
                ..d()
            },
        ),
        (
            "temperature",
            SamplingParams {
                temperature: -0.1,
                ..d()
            },
        ),
        (
            "temperature",
            SamplingParams {
                temperature: f32::INFINITY,
                ..d()
            },
        ),
        ("top_p", SamplingParams { top_p: 0.0, ..d() }),
        ("top_p", SamplingParams { top_p: 1.5, ..d() }),
        (
            "top_p",
            SamplingParams {
                top_p: f32::NAN,
                ..d()
            },
        ),
        ("top_p", SamplingParams { top_p: -1.0, ..d() }),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: 0.0,
                ..d()
            },
        ),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: -1.0,
                ..d()
            },
        ),
        (
            "repetition_penalty",
            SamplingParams {
                repetition_penalty: f32::NAN,
                ..d()
            },
        ),
        (
            "max_tokens",
            SamplingParams {
                max_tokens: 0,
                ..d()
            },
        ),
        (
            "stop",
            SamplingParams {
                stop: vec![String::new()],
                ..d()
            },
        ),
        (
            "stop",
            SamplingParams {
                stop: vec!["x".into(); 17],
                ..d()
            },
        ),
    ];
    let m = tiny_model();
    for (name, p) in &cases {
        assert_eq!(invalid_name(p.validate()), *name, "{p:?}");
        let g = generate(&m, &[1, 2], p, &[], None, |_| ControlFlow::Continue(()));
        assert_eq!(invalid_name(g), *name, "{p:?}");
    }
    assert!(d().validate().is_ok());

    let gen = |prompt: &[u32], p: &SamplingParams| {
        generate(&m, prompt, p, &[], None, |_| ControlFlow::Continue(()))
    };
    assert_eq!(invalid_name(gen(&[], &d())), "prompt_ids");
    assert_eq!(invalid_name(gen(&[VOCAB as u32], &d())), "prompt_ids");
    let p = SamplingParams {
        stop_token_ids: vec![VOCAB as u32 + 5],
        ..d()
    };
    assert_eq!(invalid_name(gen(&[1], &p)), "stop_token_ids");
    // Stop strings need a decode function.
    let p = SamplingParams {
        stop: vec!["\n".into()],
        max_tokens: 2,
        ..d()
    };
    assert_eq!(invalid_name(gen(&[1], &p)), "stop");
    assert_eq!(invalid_name(score(&m, &[1], &[], 1)), "output_ids");
    assert_eq!(invalid_name(score(&m, &[], &[1], 1)), "prompt_ids");
    let mut cache = m.new_cache();
    assert_eq!(
        invalid_name(m.forward(&[1], 3, &mut cache, Output::Last)),
        "start_pos"
    );
    assert_eq!(
        invalid_name(m.forward(&[], 0, &mut cache, Output::Last)),
        "tokens"
    );
}

#[test]
fn stop_strings_and_cancellation() {
    use inference::generate::FinishReason;
    let m = tiny_model();
    // Decode every id as "a"; stop at "aaa" after the third token.
    let decode = |ids: &[u32]| "a".repeat(ids.len());
    let p = SamplingParams {
        stop: vec!["aaa".into()],
        max_tokens: 10,
        ..Default::default()
    };
    let g = generate(&m, &[1], &p, &[], Some(&decode), |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(g.finish_reason, FinishReason::StopString);
    assert_eq!(g.stop_string.as_deref(), Some("aaa"));
    assert_eq!(g.output_ids.len(), 3);
    let short = SamplingParams {
        max_tokens: 8,
        ..Default::default()
    };
    let g = generate(&m, &[1], &short, &[], None, |s| {
        if s.index == 1 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(g.finish_reason, FinishReason::Cancelled);
    assert_eq!(g.output_ids.len(), 2);
    // The first greedy token as a stop id.
    let first = g.output_ids[0];
    let g = generate(&m, &[1], &short, &[first], None, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(
        (g.finish_reason, g.output_ids.len()),
        (FinishReason::Stop, 1)
    );
}
