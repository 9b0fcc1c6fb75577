//! The OpenAI chat completion request, parsed and validated into engine parameters.
//!
//! Shared by the runtime, which serves requests, and the auditor, which re-derives a
//! job's prompt ids, sampling parameters and stop strings from the request bytes the
//! client sent (their SHA-256 is signed in the receipt) and compares them with what the
//! runtime says it ran. One parser for both, so they cannot drift apart.

use crate::chat::Message;
use crate::sampling::{SamplingParams, MAX_STOP_STRINGS};
use serde::Deserialize;
use serde_json::Value;

/// A request the runtime refuses: the offending parameter (OpenAI's `param`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    pub param: Option<String>,
    pub message: String,
}

impl RequestError {
    fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        RequestError {
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// The server's limits a request is validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// `max_tokens` when the request does not say.
    pub default_max_tokens: usize,
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
    /// The engine parameters; `params.seed` is the request's seed, or 0 when it gave none
    /// (the runtime then draws one into `params.seed`, and `seed` stays `None`).
    pub params: SamplingParams,
    /// The seed the request gave, if any.
    pub seed: Option<u64>,
    /// Whether the job's transcript is kept for the auditor (`veritee_audit`, default true).
    pub audited: bool,
}

/// Parse and validate a request body against the limits.
pub fn parse_chat_request(
    body: &[u8],
    limits: &RequestLimits,
) -> Result<ChatRequest, RequestError> {
    let wire: WireRequest = serde_json::from_slice(body).map_err(|e| {
        RequestError::invalid(
            None,
            format!("the request body is not valid JSON for a chat completion: {e}"),
        )
    })?;
    let model = wire
        .model
        .ok_or_else(|| RequestError::invalid(Some("model"), "'model' is required"))?;
    let raw_messages = wire
        .messages
        .ok_or_else(|| RequestError::invalid(Some("messages"), "'messages' is required"))?;
    if raw_messages.is_empty() {
        return Err(RequestError::invalid(
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
            return Err(RequestError::invalid(
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
                return Err(RequestError::invalid(
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
                            return Err(RequestError::invalid(
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
            return Err(RequestError::invalid(Some("n"), "only n = 1 is supported"));
        }
    }
    if wire.logprobs == Some(true) {
        return Err(RequestError::invalid(
            Some("logprobs"),
            "logprobs are not supported",
        ));
    }
    if wire.top_logprobs.is_some_and(|n| n != 0) {
        return Err(RequestError::invalid(
            Some("top_logprobs"),
            "top_logprobs are not supported",
        ));
    }
    if wire.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        return Err(RequestError::invalid(
            Some("logit_bias"),
            "logit_bias is not supported",
        ));
    }
    if wire.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(RequestError::invalid(
            Some("tools"),
            "tools are not supported",
        ));
    }
    if wire.functions.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(RequestError::invalid(
            Some("functions"),
            "functions are not supported",
        ));
    }
    if let Some(format) = &wire.response_format {
        if format.get("type").and_then(Value::as_str) != Some("text") {
            return Err(RequestError::invalid(
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
            return Err(RequestError::invalid(
                Some(name),
                format!("{name} is not supported (use repetition_penalty)"),
            ));
        }
    }
    let max_tokens = match wire.max_completion_tokens.or(wire.max_tokens) {
        None => None,
        Some(n) if n < 1 => {
            return Err(RequestError::invalid(
                Some("max_tokens"),
                format!("max_tokens must be at least 1, got {n}"),
            ))
        }
        Some(n) if n as u64 > limits.max_tokens as u64 => {
            return Err(RequestError::invalid(
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
        return Err(RequestError::invalid(
            Some("stop"),
            format!("at most {MAX_STOP_STRINGS} stop sequences"),
        ));
    }
    if stop.iter().any(String::is_empty) {
        return Err(RequestError::invalid(
            Some("stop"),
            "stop sequences must not be empty",
        ));
    }
    let temperature = wire.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(RequestError::invalid(
            Some("temperature"),
            format!("temperature must be between 0 and 2, got {temperature}"),
        ));
    }
    let top_p = wire.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(RequestError::invalid(
            Some("top_p"),
            format!("top_p must be in (0, 1], got {top_p}"),
        ));
    }
    let top_k = match wire.top_k {
        None => 0,
        Some(k) if k < 0 => {
            return Err(RequestError::invalid(
                Some("top_k"),
                "top_k must not be negative",
            ))
        }
        Some(k) => k as usize,
    };
    let repetition_penalty = wire.repetition_penalty.unwrap_or(1.0);
    if !(repetition_penalty > 0.0 && repetition_penalty.is_finite()) {
        return Err(RequestError::invalid(
            Some("repetition_penalty"),
            "repetition_penalty must be a positive number",
        ));
    }
    let params = SamplingParams {
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k,
        repetition_penalty: repetition_penalty as f32,
        seed: wire.seed.map_or(0, |s| s as u64),
        max_tokens: max_tokens.unwrap_or(limits.default_max_tokens),
        stop,
        stop_token_ids: Vec::new(),
    };
    params
        .validate()
        .map_err(|e| RequestError::invalid(None, e.to_string()))?;
    Ok(ChatRequest {
        model,
        messages,
        stream: wire.stream.unwrap_or(false),
        include_usage: wire.stream_options.is_some_and(|o| o.include_usage),
        max_tokens,
        params,
        seed: wire.seed.map(|s| s as u64),
        audited: wire.veritee_audit.unwrap_or(true),
    })
}
