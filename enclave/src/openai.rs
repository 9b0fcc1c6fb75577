//! The OpenAI-compatible wire format: chat completion requests, their validation into
//! engine parameters, responses, stream chunks and the error shape.

use crate::config::Limits;
pub use inference::request::ChatRequest;
use inference::request::{self, RequestLimits};
use serde::Serialize;
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

/// Parse and validate a request body against the limits (`inference::request`, which the
/// auditor re-runs on the same bytes), with `params.seed` drawn at random when the request
/// gave none (`seed` stays `None` then).
pub fn parse_chat_request(body: &[u8], limits: &Limits) -> Result<ChatRequest, ApiError> {
    let request_limits = RequestLimits {
        max_tokens: limits.max_tokens,
        default_max_tokens: limits.default_max_tokens,
    };
    let mut chat = request::parse_chat_request(body, &request_limits)
        .map_err(|e| ApiError::invalid(e.param.as_deref(), e.message))?;
    chat.params.seed = match chat.seed {
        Some(s) => s,
        None => {
            let mut bytes = [0u8; 8];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
                ApiError::new(500, "server_error", "the random number generator failed")
            })?;
            u64::from_le_bytes(bytes)
        }
    };
    Ok(chat)
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
        assert!(r.stream && r.include_usage && r.seed.is_some());
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
        assert!(!r.stream && r.seed.is_none());
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
