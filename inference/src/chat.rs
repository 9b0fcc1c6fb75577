//! Chat templates: the model's own `tokenizer.chat_template` (Jinja) rendered with
//! minijinja the way Hugging Face `transformers.apply_chat_template` renders it: Python
//! string/dict/list methods (minijinja-contrib `pycompat`), `trim_blocks` and
//! `lstrip_blocks`, `raise_exception(message)`, a `tojson` filter with `json.dumps`'s
//! output, and `bos_token`/`eos_token` taken from the model's vocabulary.
//!
//! OpenAI-style messages in, prompt text ([`ChatTemplate::render`]) or prompt tokens
//! ([`ChatTemplate::prompt_tokens`]) out.

use crate::error::{InferenceError, Result};
use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{context, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};

/// One chat message, as in OpenAI's chat completions API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Roles a message may have; anything else is refused before rendering.
pub const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

const TEMPLATE_NAME: &str = "chat_template";

/// A compiled chat template with the model's special-token strings.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// The template's source, to pick placeholder characters it does not use.
    source: String,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// The template in `tokenizer.chat_template`, with `bos_token`/`eos_token` being the
    /// texts of the tokenizer's BOS and EOS tokens (empty when the model has none).
    pub fn from_gguf(file: &GgufFile, tokenizer: &Tokenizer) -> Result<ChatTemplate> {
        let source = file.string("tokenizer.chat_template")?;
        let text = |id: Option<u32>| {
            id.and_then(|id| tokenizer.token_text(id))
                .unwrap_or_default()
                .to_string()
        };
        Self::from_source(source, &text(tokenizer.bos_id()), &text(tokenizer.eos_id()))
    }

    /// Compile a template from source (a syntax error is a [`InferenceError::ChatTemplate`]).
    pub fn from_source(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(template_error)?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// Render `messages` into the prompt text. With `add_generation_prompt`, the template
    /// appends the opening of the assistant's turn. Roles outside [`ROLES`], an empty
    /// conversation, template errors and `raise_exception` are
    /// [`InferenceError::ChatTemplate`] errors.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(InferenceError::ChatTemplate("no messages".into()));
        }
        for (i, m) in messages.iter().enumerate() {
            if !ROLES.contains(&m.role.as_str()) {
                return Err(InferenceError::ChatTemplate(format!(
                    "message {i}: role {:?} is not one of {ROLES:?}",
                    m.role
                )));
            }
        }
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(template_error)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(template_error)
    }

    /// Prompt token ids for `messages` with the generation prompt: the rendered text
    /// tokenized with special tokens parsed, plus BOS in front when the model asks for it
    /// (llama.cpp's `add_special`; SmolLM2 does not).
    ///
    /// Message content is text: only the template's own markup produces special tokens.
    /// A special token's text inside a message (`<|im_start|>` in a user message, which
    /// would otherwise forge a turn) is tokenized as plain text. How: before rendering,
    /// every special-token text in a message is replaced by a placeholder character
    /// (private use, found in no message and not in the template); after the rendered
    /// text's special tokens are cut out, each placeholder is put back as its text and
    /// tokenized with the text around it. A prompt without such text tokenizes exactly as
    /// before (llama.cpp's `parse_special` tokenization of the rendered prompt).
    pub fn prompt_tokens(&self, tokenizer: &Tokenizer, messages: &[Message]) -> Result<Vec<u32>> {
        let (messages, literals) = self.escape_special_text(tokenizer, messages);
        let text = self.render(&messages, true)?;
        let mut ids = Vec::new();
        if tokenizer.add_bos() {
            if let Some(bos) = tokenizer.bos_id() {
                ids.push(bos);
            }
        }
        ids.extend(tokenizer.encode_with_literals(&text, &literals)?);
        Ok(ids)
    }

    /// `messages` with every special-token text in their content replaced by a placeholder
    /// character, and the placeholders with the texts they stand for.
    fn escape_special_text<'m>(
        &self,
        tokenizer: &Tokenizer,
        messages: &'m [Message],
    ) -> (std::borrow::Cow<'m, [Message]>, Vec<(char, String)>) {
        let present: Vec<&str> = tokenizer
            .special_tokens()
            .map(|(_, text)| text)
            .filter(|t| !t.is_empty() && messages.iter().any(|m| m.content.contains(t)))
            .collect();
        if present.is_empty() {
            return (std::borrow::Cow::Borrowed(messages), Vec::new());
        }
        // Placeholders: private-use characters that nothing else in the rendering holds.
        let used = |c: char| {
            self.source.contains(c)
                || self.bos_token.contains(c)
                || self.eos_token.contains(c)
                || messages
                    .iter()
                    .any(|m| m.content.contains(c) || m.role.contains(c))
        };
        let mut candidates = ('\u{F0000}'..='\u{FFFFD}')
            .chain('\u{100000}'..='\u{10FFFD}')
            .filter(|&c| !used(c));
        let literals: Vec<(char, String)> = present
            .iter()
            .map(|t| {
                let c = candidates
                    .next()
                    .expect("more private-use characters than the messages hold");
                (c, (*t).to_string())
            })
            .collect();
        // Longest text first (the order of `special_tokens`), as the tokenizer cuts them.
        let escaped = messages
            .iter()
            .map(|m| {
                let mut content = m.content.clone();
                for (c, t) in &literals {
                    if content.contains(t.as_str()) {
                        content = content.replace(t.as_str(), c.encode_utf8(&mut [0; 4]));
                    }
                }
                Message {
                    role: m.role.clone(),
                    content,
                }
            })
            .collect();
        (std::borrow::Cow::Owned(escaped), literals)
    }

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

fn template_error(e: Error) -> InferenceError {
    let mut message = e.to_string();
    if let Some(detail) = e.detail() {
        if !message.contains(detail) {
            message = format!("{message}: {detail}");
        }
    }
    InferenceError::ChatTemplate(message)
}

/// `raise_exception(message)`, the function Hugging Face templates call to reject input.
fn raise_exception(message: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// `tojson` as transformers defines it: `json.dumps(x, ensure_ascii=False, indent=...)`:
/// keys in insertion order, `", "` and `": "` separators (`","` before a newline when
/// indented).
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(
    v: &Value,
    indent: Option<usize>,
    depth: usize,
    out: &mut String,
) -> std::result::Result<(), Error> {
    let json_error = |e: serde_json::Error| Error::new(ErrorKind::InvalidOperation, e.to_string());
    let newline = |out: &mut String, depth: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::String => out
            .push_str(&serde_json::to_string(v.as_str().unwrap_or_default()).map_err(json_error)?),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let is_map = v.kind() == ValueKind::Map;
            let (open, close) = if is_map { ('{', '}') } else { ('[', ']') };
            out.push(open);
            let mut empty = true;
            for (i, item) in v.try_iter()?.enumerate() {
                empty = false;
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                if is_map {
                    let key = match item.as_str() {
                        Some(k) => k.to_string(),
                        None => item.to_string(),
                    };
                    out.push_str(&serde_json::to_string(&key).map_err(json_error)?);
                    out.push_str(": ");
                    write_json(&v.get_item(&item)?, indent, depth + 1, out)?;
                } else {
                    write_json(&item, indent, depth + 1, out)?;
                }
            }
            if !empty {
                newline(out, depth);
            }
            out.push(close);
        }
        _ => out.push_str(&serde_json::to_string(v).map_err(json_error)?),
    }
    Ok(())
}
