//! LLM clean-up and translation of the final text, where it is delivered (never in v2m-rt):
//! the text is sent to a chat model and its answer replaces it. Any failure leaves the raw
//! text with the reason; audio never goes anywhere.
//!
//! A backend per module: [`openai`] (any OpenAI-compatible `/v1/chat/completions` server:
//! Ollama, llama.cpp's server, LM Studio, vLLM) and [`gemini`] (Google's `generateContent`,
//! key from `GEMINI_API_KEY`, never logged or written).

pub mod gemini;
pub mod openai;

use std::time::Duration;
use v2m_text::config::RefineTable;

/// The instructions sent with the text unless `[refine] prompt` says otherwise.
pub const DEFAULT_PROMPT: &str = "You clean up dictated text. Fix punctuation, capitalisation \
and obvious speech-recognition errors. Keep the speaker's wording, language and meaning: do not \
add, answer, summarise or comment. Reply with the corrected text only.";

/// Instructions for `--translate-to LANG`.
pub fn translate_prompt(language: &str) -> String {
    format!(
        "Translate the dictated text into {language}. Keep its meaning and tone. Reply with the \
translation only."
    )
}

/// Ollama's OpenAI-compatible endpoint.
pub const DEFAULT_OPENAI_URL: &str = "http://127.0.0.1:11434/v1";
/// Google's Generative Language API.
pub const DEFAULT_GEMINI_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Model asked for when `[refine] model` is not set (openai backend).
pub const DEFAULT_OPENAI_MODEL: &str = "qwen2.5:1.5b-instruct";
/// Model asked for when `[refine] model` is not set (gemini backend).
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.0-flash";
/// How long the answer may take unless `[refine] timeout_ms` says otherwise.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

/// Which server speaks to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `/v1/chat/completions`.
    OpenAi,
    /// `models/{model}:generateContent`.
    Gemini,
}

/// Why the text was not refined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefineErrorKind {
    /// `[refine]` is wrong (unknown backend, bad URL, timeout out of range).
    Config,
    /// The key the backend needs is not in the environment.
    MissingKey,
    /// Nothing listens at the URL.
    ConnectionRefused,
    /// Host unknown, network unreachable, TLS failed.
    Connection,
    /// No answer within the timeout.
    Timeout,
    /// The server answered with an error status.
    Status,
    /// The answer is not the JSON the backend returns.
    BadResponse,
    /// The model returned no text.
    Empty,
}

/// Why the text was not refined, in one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RefineError {
    /// What kind of failure.
    pub kind: RefineErrorKind,
    /// For the user.
    pub message: String,
}

impl RefineError {
    pub(crate) fn new(kind: RefineErrorKind, message: impl Into<String>) -> RefineError {
        RefineError {
            kind,
            message: message.into(),
        }
    }
}

/// What to ask of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Clean the text up (the configured prompt).
    CleanUp,
    /// Translate it into this language.
    TranslateTo(String),
}

/// A configured chat model.
#[derive(Debug, Clone)]
pub struct Refiner {
    /// The backend.
    pub backend: Backend,
    /// Base URL, no trailing slash.
    pub url: String,
    /// Model name.
    pub model: String,
    /// Answer deadline.
    pub timeout: Duration,
    /// Clean-up instructions.
    pub prompt: String,
    /// Whether every dictation is refined.
    pub default_on: bool,
}

impl Refiner {
    /// The refiner `[refine]` describes (defaults where it is silent).
    pub fn from_table(t: &RefineTable) -> Result<Refiner, RefineError> {
        let config = |m: String| RefineError::new(RefineErrorKind::Config, m);
        let backend = match t.backend.as_deref().unwrap_or("openai") {
            "openai" => Backend::OpenAi,
            "gemini" => Backend::Gemini,
            other => {
                return Err(config(format!(
                    "[refine] backend = {other:?}: must be \"openai\" or \"gemini\""
                )));
            }
        };
        let url = t
            .url
            .clone()
            .unwrap_or_else(|| match backend {
                Backend::OpenAi => DEFAULT_OPENAI_URL.into(),
                Backend::Gemini => DEFAULT_GEMINI_URL.into(),
            })
            .trim_end_matches('/')
            .to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(config(format!(
                "[refine] url = {url:?}: must start with http:// or https://"
            )));
        }
        let timeout_ms = t.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(100..=600_000).contains(&timeout_ms) {
            return Err(config(format!(
                "[refine] timeout_ms = {timeout_ms}: must be 100 to 600000"
            )));
        }
        Ok(Refiner {
            backend,
            model: t.model.clone().unwrap_or_else(|| {
                match backend {
                    Backend::OpenAi => DEFAULT_OPENAI_MODEL,
                    Backend::Gemini => DEFAULT_GEMINI_MODEL,
                }
                .into()
            }),
            url,
            timeout: Duration::from_millis(timeout_ms),
            prompt: t.prompt.clone().unwrap_or_else(|| DEFAULT_PROMPT.into()),
            default_on: t.default.unwrap_or(false),
        })
    }

    /// The model's answer for `text`, trimmed; never empty.
    pub fn run(&self, text: &str, task: &Task) -> Result<String, RefineError> {
        let prompt = match task {
            Task::CleanUp => self.prompt.clone(),
            Task::TranslateTo(lang) => translate_prompt(lang),
        };
        let answer = match self.backend {
            Backend::OpenAi => openai::complete(self, &prompt, text)?,
            Backend::Gemini => gemini::complete(self, &prompt, text)?,
        };
        let answer = answer.trim();
        if answer.is_empty() {
            return Err(RefineError::new(
                RefineErrorKind::Empty,
                "the model returned no text",
            ));
        }
        Ok(answer.to_string())
    }
}

/// POSTs `body` (JSON) to `url` with `headers`; the answer's JSON, or why there is none.
pub(crate) fn post_json(
    r: &Refiner,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Result<serde_json::Value, RefineError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(r.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request
        .send(body.to_string())
        .map_err(|e| transport_error(r, e))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| transport_error(r, e))?;
    if !(200..300).contains(&status) {
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .or_else(|| v.get("error"))
                    .and_then(|m| m.as_str().map(str::to_string))
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        return Err(RefineError::new(
            RefineErrorKind::Status,
            format!("the server answered HTTP {status}: {}", detail.trim()),
        ));
    }
    serde_json::from_str(&text).map_err(|e| {
        RefineError::new(
            RefineErrorKind::BadResponse,
            format!("the server's answer is not JSON ({e})"),
        )
    })
}

fn transport_error(r: &Refiner, e: ureq::Error) -> RefineError {
    use RefineErrorKind as K;
    let (kind, what) = match &e {
        ureq::Error::Timeout(_) => (
            K::Timeout,
            format!("no answer within {} ms", r.timeout.as_millis()),
        ),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            (K::ConnectionRefused, "connection refused".to_string())
        }
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => (
            K::Timeout,
            format!("no answer within {} ms", r.timeout.as_millis()),
        ),
        ureq::Error::HostNotFound => (K::Connection, "host not found".to_string()),
        other => (K::Connection, other.to_string()),
    };
    RefineError::new(kind, format!("{what} ({})", r.url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refused_settings() {
        let r = Refiner::from_table(&RefineTable::default()).unwrap();
        assert_eq!(r.backend, Backend::OpenAi);
        assert_eq!(r.url, DEFAULT_OPENAI_URL);
        assert!(!r.default_on);
        let g = Refiner::from_table(&RefineTable {
            backend: Some("gemini".into()),
            ..RefineTable::default()
        })
        .unwrap();
        assert_eq!(g.url, DEFAULT_GEMINI_URL);
        for (t, key) in [
            (
                RefineTable {
                    backend: Some("claude".into()),
                    ..RefineTable::default()
                },
                "backend",
            ),
            (
                RefineTable {
                    url: Some("127.0.0.1:8080".into()),
                    ..RefineTable::default()
                },
                "url",
            ),
            (
                RefineTable {
                    timeout_ms: Some(5),
                    ..RefineTable::default()
                },
                "timeout_ms",
            ),
        ] {
            let e = Refiner::from_table(&t).unwrap_err();
            assert_eq!(e.kind, RefineErrorKind::Config);
            assert!(e.message.contains(key), "{e}");
        }
    }
}
