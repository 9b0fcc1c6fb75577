//! The OpenAI-compatible wire format: chat completion requests, their validation into
//! engine parameters, responses, stream chunks and the error shape.

use crate::config::Limits;
use inference::chat::Message;
use inference::sampling::{SamplingParams, MAX_STOP_STRINGS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// An API error: HTTP status plus OpenAI's `{"error": {...}}` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            param: param.map(str::to_owned),
            code: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

/// Message content: a string or OpenAI's array of typed parts (text parts only).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    role: String,
    content: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The request body. Unknown fields are ignored, as OpenAI-compatible servers do; known
/// fields whose values this runtime cannot honour are refused rather than ignored.
#[derive(Debug, Deserialize)]
struct WireRequest {
    model: Option<String>,
    messages: Option<Vec<WireMessage>>,
    #[serde(default)]
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i64>,
    repetition_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    seed: Option<i64>,
    stop: Option<Stop>,
    n: Option<i64>,
    logprobs: Option<bool>,
    top_logprobs: Option<i64>,
    logit_bias: Option<serde_json::Map<String, Value>>,
    tools: Option<Vec<Value>>,
    functions: Option<Vec<Value>>,
    response_format: Option<Value>,
    /// veritee extension: `false` opts this job out of auditing (no transcript is kept;
    /// its receipt says `audited: false`).
    veritee_audit: Option<bool>,
}

/// A validated chat completion request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub stream: bool,
    pub include_usage: bool,
    /// `max_tokens` as asked for; `None` lets the server choose within the context.
    pub max_tokens: Option<usize>,
    pub params: SamplingParams,
    /// Whether the seed was given (otherwise one was drawn at random).
    pub seed_given: bool,
    /// Whether the job's transcript is kept for the auditor (`veritee_audit`, default true).
    pub audited: bool,
}

/// Parse and validate a request body against the limits.
pub fn parse_chat_request(body: &[u8], limits: &Limits) -> Result<ChatRequest, ApiError> {
    let wire: WireRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!("the request body is not valid JSON for a chat completion: {e}"),
        )
    })?;
    let model = wire
        .model
        .ok_or_else(|| ApiError::invalid(Some("model"), "'model' is required"))?;
    let raw_messages = wire
        .messages
        .ok_or_else(|| ApiError::invalid(Some("messages"), "'messages' is required"))?;
    if raw_messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "'messages' must hold at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(raw_messages.len());
    for (i, m) in raw_messages.into_iter().enumerate() {
        if !matches!(
            m.role.as_str(),
            "system" | "developer" | "user" | "assistant"
        ) {
            return Err(ApiError::invalid(
                Some(&format!("messages[{i}].role")),
                format!(
                    "role '{}' is not supported (system, developer, user, assistant)",
                    m.role
                ),
            ));
        }
        let content = match m.content {
            // OpenAI requires content for system, developer and user messages, and lets an
            // assistant message go without only when it carries tool calls, which are not
            // supported here: a missing or null content is an error, not an empty text.
            None => {
                return Err(ApiError::invalid(
                    Some(&format!("messages[{i}].content")),
                    format!(
                        "messages[{i}].content is required (a string or text parts) for role '{}'",
                        m.role
                    ),
                ))
            }
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(ApiError::invalid(
                                Some(&format!("messages[{i}].content")),
                                format!("content part type '{kind}' is not supported (text only)"),
                            ))
                        }
                    }
                }
                text
            }
        };
        // "developer" is OpenAI's newer name for the system role.
        let role = if m.role == "developer" {
            "system"
        } else {
            &m.role
        };
        messages.push(Message::new(role, content));
    }
    if let Some(n) = wire.n {
        if n != 1 {
            return Err(ApiError::invalid(Some("n"), "only n = 1 is supported"));
        }
    }
    if wire.logprobs == Some(true) {
        return Err(ApiError::invalid(
            Some("logprobs"),
            "logprobs are not supported",
        ));
    }
    if wire.top_logprobs.is_some_and(|n| n != 0) {
        return Err(ApiError::invalid(
            Some("top_logprobs"),
            "top_logprobs are not supported",
        ));
    }
    if wire.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(ApiError::invalid(
            Some("logit_bias"),
            "logit_bias is not supported",
        ));
    }
    if wire.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::invalid(Some("tools"), "tools are not supported"));
    }
    if wire.functions.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(ApiError::invalid(
            Some("functions"),
            "functions are not supported",
        ));
    }
    if let Some(format) = &wire.response_format {
        if format.get("type").and_then(Value::as_str) != Some("text") {
            return Err(ApiError::invalid(
                Some("response_format"),
                "only response_format {\"type\": \"text\"} is supported",
            ));
        }
    }
    for (name, value) in [
        ("frequency_penalty", wire.frequency_penalty),
        ("presence_penalty", wire.presence_penalty),
    ] {
        if value.is_some_and(|v| v != 0.0) {
            return Err(ApiError::invalid(
                Some(name),
                format!("{name} is not supported (use repetition_penalty)"),
            ));
        }
    }
    let max_tokens = match wire.max_completion_tokens.or(wire.max_tokens) {
        None => None,
        Some(n) if n < 1 => {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                format!("max_tokens must be at least 1, got {n}"),
            ))
        }
        Some(n) if n as u64 > limits.max_tokens as u64 => {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                format!(
                    "max_tokens {n} exceeds this server's limit of {}",
                    limits.max_tokens
                ),
            ))
        }
        Some(n) => Some(n as usize),
    };
    let stop = match wire.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > MAX_STOP_STRINGS {
        return Err(ApiError::invalid(
            Some("stop"),
            format!("at most {MAX_STOP_STRINGS} stop sequences"),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("stop"),
            "stop sequences must not be empty",
        ));
    }
    let temperature = wire.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            Some("temperature"),
            format!("temperature must be between 0 and 2, got {temperature}"),
        ));
    }
    let top_p = wire.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            Some("top_p"),
            format!("top_p must be in (0, 1], got {top_p}"),
        ));
    }
    let top_k = match wire.top_k {
        None => 0,
        Some(k) if k < 0 => {
            return Err(ApiError::invalid(
                Some("top_k"),
                "top_k must not be negative",
            ))
        }
        Some(k) => k as usize,
    };
    let repetition_penalty = wire.repetition_penalty.unwrap_or(1.0);
    if !(repetition_penalty > 0.0 && repetition_penalty.is_finite()) {
        return Err(ApiError::invalid(
            Some("repetition_penalty"),
            "repetition_penalty must be a positive number",
        ));
    }
    let (seed, seed_given) = match wire.seed {
        Some(s) => (s as u64, true),
        None => {
            let mut bytes = [0u8; 8];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
                ApiError::new(500, "server_error", "the random number generator failed")
            })?;
            (u64::from_le_bytes(bytes), false)
        }
    };
    let params = SamplingParams {
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k,
        repetition_penalty: repetition_penalty as f32,
        seed,
        max_tokens: max_tokens.unwrap_or(limits.default_max_tokens),
        stop,
        stop_token_ids: Vec::new(),
    };
    params
        .validate()
        .map_err(|e| ApiError::invalid(None, e.to_string()))?;
    Ok(ChatRequest {
        model,
        messages,
        stream: wire.stream.unwrap_or(false),
        include_usage: wire.stream_options.is_some_and(|o| o.include_usage),
        max_tokens,
        params,
        seed_given,
        audited: wire.veritee_audit.unwrap_or(true),
    })
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl Usage {
    pub fn new(prompt: usize, completion: usize) -> Self {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

/// The non-streaming response body.
pub fn completion_body(
    id: &str,
    created: u64,
    model: &str,
    fingerprint: &str,
    content: &str,
    finish_reason: &str,
    usage: Usage,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage,
    })
}

/// One `chat.completion.chunk` of a stream.
pub fn chunk_body(
    id: &str,
    created: u64,
    model: &str,
    fingerprint: &str,
    delta: Value,
    finish_reason: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
    })
}

/// The usage chunk of a stream (`stream_options.include_usage`): no choices.
pub fn usage_chunk_body(
    id: &str,
    created: u64,
    model: &str,
    fingerprint: &str,
    usage: Usage,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [],
        "usage": usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ChatRequest, ApiError> {
        parse_chat_request(body.as_bytes(), &Limits::default())
    }

    #[test]
    fn a_full_request_maps_onto_sampling_params() {
        let r = parse(
            r#"{"model":"m","messages":[{"role":"developer","content":"be brief"},
                {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
                "stream":true,"stream_options":{"include_usage":true},"max_tokens":7,
                "temperature":0.5,"top_p":0.9,"top_k":40,"seed":42,"stop":"\n\n","user":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.messages[0].role, "system");
        assert_eq!(r.messages[1].content, "hi there");
        assert!(r.stream && r.include_usage && r.seed_given);
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!(r.params.max_tokens, 7);
        assert_eq!(r.params.temperature, 0.5);
        assert_eq!(r.params.top_p, 0.9);
        assert_eq!(r.params.top_k, 40);
        assert_eq!(r.params.seed, 42);
        assert_eq!(r.params.stop, vec!["\n\n".to_string()]);
    }

    #[test]
    fn defaults_follow_openai() {
        let r = parse(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#).unwrap();
        assert_eq!(r.params.temperature, 1.0);
        assert!(!r.stream && !r.seed_given);
        assert_eq!(r.max_tokens, None);
        assert_eq!(r.params.max_tokens, Limits::default().default_max_tokens);
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let param = |body: &str| parse(body).unwrap_err().param;
        let m = r#""model":"m","messages":[{"role":"user","content":"x"}]"#;
        assert_eq!(parse("{not json").unwrap_err().status, 400);
        assert_eq!(param(r#"{"messages":[]}"#).as_deref(), Some("model"));
        assert_eq!(
            param(r#"{"model":"m","messages":[]}"#).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(&format!("{{{m},\"temperature\":3}}")).as_deref(),
            Some("temperature")
        );
        assert_eq!(
            param(&format!("{{{m},\"top_p\":0}}")).as_deref(),
            Some("top_p")
        );
        assert_eq!(
            param(&format!("{{{m},\"max_tokens\":0}}")).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            param(&format!("{{{m},\"max_tokens\":999999}}")).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(param(&format!("{{{m},\"n\":2}}")).as_deref(), Some("n"));
        assert_eq!(
            param(&format!("{{{m},\"stop\":[\"\"]}}")).as_deref(),
            Some("stop")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#).as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#)
                .as_deref(),
            Some("messages[0].content")
        );
        for (field, value) in [
            ("logprobs", "true"),
            ("top_logprobs", "5"),
            ("logit_bias", r#"{"50256": -100}"#),
            ("functions", r#"[{"name": "f"}]"#),
            ("tools", r#"[{"type": "function"}]"#),
        ] {
            assert_eq!(
                param(&format!("{{{m},\"{field}\":{value}}}")).as_deref(),
                Some(field),
                "{field}"
            );
        }
        // Their no-op values are accepted, as OpenAI accepts them.
        for noop in [
            r#""logprobs":false"#,
            r#""top_logprobs":0"#,
            r#""logit_bias":{}"#,
            r#""logit_bias":null"#,
            r#""tools":[]"#,
        ] {
            assert!(parse(&format!("{{{m},{noop}}}")).is_ok(), "{noop}");
        }
        // A message's content is required: null or missing is refused, naming it.
        for role in ["system", "developer", "user", "assistant"] {
            for content in [r#","content":null"#, ""] {
                let body = format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"x"}},{{"role":"{role}"{content}}}]}}"#
                );
                let e = parse(&body).unwrap_err();
                assert_eq!(
                    (e.status, e.param.as_deref()),
                    (400, Some("messages[1].content")),
                    "{body}"
                );
            }
        }
        assert!(parse(r#"{"model":"m","messages":[{"role":"user","content":""}]}"#).is_ok());
        let e = parse(&format!("{{{m},\"temperature\":\"hot\"}}")).unwrap_err();
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
    }

    #[test]
    fn error_body_has_the_openai_shape() {
        let e = ApiError::invalid(Some("model"), "nope").with_code("model_not_found");
        assert_eq!(
            e.body(),
            json!({"error": {"message": "nope", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})
        );
    }
}
