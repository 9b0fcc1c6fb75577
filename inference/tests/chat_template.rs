//! Chat templates: the GGUF's own template rendered with minijinja against the prompts
//! llama.cpp's golden run rendered (with jinja2, as transformers does) and tokenized
//! (tests/fixtures/greedy_golden.json), plus error handling and Python compatibility.
//!
//! Tests that need the real model fail when it is absent (run scripts/fetch-model.sh).

use inference::chat::{ChatTemplate, Message};
use inference::gguf::{model_for_tests, GgufFile};
use inference::tokenizer::Tokenizer;
use inference::InferenceError;
use serde_json::Value as Json;
use std::sync::OnceLock;

struct Real {
    tokenizer: Tokenizer,
    template: ChatTemplate,
}

fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        let path = model_for_tests();
        let file = GgufFile::open(&path).expect("open model");
        let tokenizer = Tokenizer::from_gguf(&file).expect("tokenizer");
        let template = ChatTemplate::from_gguf(&file, &tokenizer).expect("chat template");
        Real {
            tokenizer,
            template,
        }
    })
}

fn golden() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/greedy_golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture")).expect("parse")
}

fn msgs(pairs: &[(&str, &str)]) -> Vec<Message> {
    pairs.iter().map(|(r, c)| Message::new(*r, *c)).collect()
}

const DEFAULT_SYSTEM: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, \
                              trained by Hugging Face<|im_end|>\n";

#[test]
fn golden_prompts_render_and_tokenize_like_llama_cpp() {
    let real = real();
    let golden = golden();
    let cases = golden["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let messages: Vec<Message> =
            serde_json::from_value(case["messages"].clone()).expect("OpenAI-style messages");
        let add_generation_prompt = case["add_generation_prompt"].as_bool().unwrap();
        let rendered = real
            .template
            .render(&messages, add_generation_prompt)
            .unwrap();
        assert_eq!(
            rendered,
            case["rendered_prompt"].as_str().unwrap(),
            "{name}"
        );

        assert!(case["prompt_parse_special"].as_bool().unwrap());
        assert!(!case["prompt_add_special"].as_bool().unwrap() || !real.tokenizer.add_bos());
        let want: Vec<u32> = case["prompt_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            real.tokenizer.encode(&rendered, true).unwrap(),
            want,
            "{name}"
        );
        assert_eq!(
            real.template
                .prompt_tokens(&real.tokenizer, &messages)
                .unwrap(),
            want,
            "{name}"
        );
    }
    // The fixture's template is the GGUF's, byte for byte (tested through rendering above).
    assert_eq!(real.template.bos_token(), "<|im_start|>");
    assert_eq!(real.template.eos_token(), "<|im_end|>");
}

#[test]
fn system_multi_turn_and_no_generation_prompt() {
    let real = real();
    let t = &real.template;

    // Without a system message the template adds its default one.
    let user_only = t.render(&msgs(&[("user", "Hi")]), true).unwrap();
    assert_eq!(
        user_only,
        format!("{DEFAULT_SYSTEM}<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    );

    // A system message replaces it.
    let with_system = t
        .render(&msgs(&[("system", "Be brief."), ("user", "Hi")]), true)
        .unwrap();
    assert_eq!(
        with_system,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\n"
    );

    // Multi-turn, ending on the assistant, no generation prompt.
    let turns = msgs(&[
        ("system", "S"),
        ("user", "What is 2+2?"),
        ("assistant", "4."),
        ("user", "And 3+3?"),
        ("assistant", "6."),
    ]);
    let rendered = t.render(&turns, false).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n4.<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n\
         <|im_start|>assistant\n6.<|im_end|>\n"
    );
    assert!(!rendered.ends_with("<|im_start|>assistant\n"));
    let ids = real.tokenizer.encode(&rendered, true).unwrap();
    assert_eq!(ids.iter().filter(|&&id| id == 1).count(), 5);
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 5);
    assert_eq!(real.tokenizer.decode(&ids).unwrap(), rendered);

    // Message text that looks like a special token is parsed as one (as llama.cpp does
    // with parse_special on the rendered prompt).
    let sneaky = t.render(&msgs(&[("user", "a<|im_end|>b")]), true).unwrap();
    let ids = real.tokenizer.encode(&sneaky, true).unwrap();
    assert_eq!(ids.iter().filter(|&&id| id == 2).count(), 3);
}

#[test]
fn bad_input_and_template_errors_are_errors_not_panics() {
    let real = real();
    let t = &real.template;
    for role in ["", "User", "root", "function "] {
        match t.render(&msgs(&[(role, "x")]), true) {
            Err(InferenceError::ChatTemplate(msg)) => assert!(msg.contains("role"), "{msg}"),
            other => panic!("role {role:?}: {:?}", other.map(|_| ())),
        }
    }
    assert!(matches!(
        t.render(&[], true),
        Err(InferenceError::ChatTemplate(_))
    ));
    assert!(matches!(
        t.prompt_tokens(&real.tokenizer, &msgs(&[("wizard", "x")])),
        Err(InferenceError::ChatTemplate(_))
    ));
}

#[test]
fn template_errors() {
    let user = msgs(&[("user", "hi")]);
    // Syntax error: refused when compiling.
    assert!(matches!(
        ChatTemplate::from_source("{% for m in messages %}", "<s>", "</s>"),
        Err(InferenceError::ChatTemplate(_))
    ));
    // raise_exception, as Hugging Face templates use it.
    let strict = ChatTemplate::from_source(
        "{% if messages[0]['role'] != 'system' %}{{ raise_exception('System message required') }}\
         {% endif %}ok",
        "<s>",
        "</s>",
    )
    .unwrap();
    match strict.render(&user, true) {
        Err(InferenceError::ChatTemplate(msg)) => {
            assert!(msg.contains("System message required"), "{msg}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    assert_eq!(
        strict.render(&msgs(&[("system", "s")]), true).unwrap(),
        "ok"
    );
    // Runtime errors: an unknown filter, calling a non-function.
    let unknown_filter = ChatTemplate::from_source("{{ messages | no_such_filter }}", "", "");
    assert!(matches!(
        unknown_filter.and_then(|t| t.render(&user, true)),
        Err(InferenceError::ChatTemplate(_))
    ));
    let bad_call = ChatTemplate::from_source("{{ messages[0].role() }}", "", "").unwrap();
    assert!(matches!(
        bad_call.render(&user, true),
        Err(InferenceError::ChatTemplate(_))
    ));
}

#[test]
fn python_compatibility_and_special_token_variables() {
    let t = ChatTemplate::from_source(
        "{{ bos_token }}{% for m in messages %}{{ m['role'].upper() }}:{{ m.content.strip() }}\
         {% if m.content.startswith(' ') %}(indented){% endif %}\n{% endfor %}\
         {% if add_generation_prompt %}>{% endif %}{{ eos_token }}",
        "<s>",
        "</s>",
    )
    .unwrap();
    let out = t
        .render(&msgs(&[("system", "  be nice "), ("user", "hi")]), true)
        .unwrap();
    // Expected output checked with jinja2 (trim_blocks eats the newline after endif).
    assert_eq!(out, "<s>SYSTEM:be nice(indented)USER:hi></s>");

    // trim_blocks / lstrip_blocks, as transformers renders.
    let blocks = ChatTemplate::from_source(
        "{% for m in messages %}\n    {% if true %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}",
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        blocks
            .render(&msgs(&[("user", "a"), ("user", "b")]), false)
            .unwrap(),
        "a\nb\n"
    );

    // tojson like transformers' json.dumps(ensure_ascii=False): ", " and ": " separators,
    // keys in order, non-ASCII kept.
    let json = ChatTemplate::from_source("{{ messages | tojson }}", "", "").unwrap();
    assert_eq!(
        json.render(&msgs(&[("user", "héllo \"q\"\n")]), false)
            .unwrap(),
        r#"[{"role": "user", "content": "héllo \"q\"\n"}]"#
    );
    let indented =
        ChatTemplate::from_source("{{ messages[0] | tojson(indent=2) }}", "", "").unwrap();
    assert_eq!(
        indented.render(&msgs(&[("user", "x")]), false).unwrap(),
        "{\n  \"role\": \"user\",\n  \"content\": \"x\"\n}"
    );
}

#[test]
fn messages_are_openai_json() {
    let parsed: Vec<Message> = serde_json::from_str(
        r#"[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]"#,
    )
    .unwrap();
    assert_eq!(parsed, msgs(&[("system", "s"), ("user", "u")]));
    assert_eq!(
        serde_json::to_string(&parsed[1]).unwrap(),
        r#"{"role":"user","content":"u"}"#
    );
}
