//! Google Gemini: `POST {url}/models/{model}:generateContent` with the key in the
//! `x-goog-api-key` header (never in the URL, never logged), the answer in
//! `candidates[0].content.parts[*].text`.

use super::{RefineError, RefineErrorKind, Refiner, post_json};

/// The environment variable holding the key.
pub const KEY_VAR: &str = "GEMINI_API_KEY";

/// The request body: the instructions as the system instruction, the text as the user's turn.
pub fn request_body(prompt: &str, text: &str) -> serde_json::Value {
    serde_json::json!({
        "systemInstruction": {"parts": [{"text": prompt}]},
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "generationConfig": {"temperature": 0},
    })
}

/// The model's answer.
pub fn complete(r: &Refiner, prompt: &str, text: &str) -> Result<String, RefineError> {
    let key = std::env::var(KEY_VAR)
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            RefineError::new(
                RefineErrorKind::MissingKey,
                format!("{KEY_VAR} is not set: the gemini backend needs an API key"),
            )
        })?;
    let url = format!("{}/models/{}:generateContent", r.url, r.model);
    let answer = post_json(
        r,
        &url,
        &[("x-goog-api-key", key.as_str())],
        &request_body(prompt, text),
    )?;
    let parts = answer
        .pointer("/candidates/0/content/parts")
        .and_then(|p| p.as_array())
        .ok_or_else(|| {
            let why = answer
                .pointer("/promptFeedback/blockReason")
                .and_then(|b| b.as_str())
                .map(|b| format!(" (blocked: {b})"))
                .unwrap_or_default();
            RefineError::new(
                RefineErrorKind::BadResponse,
                format!("the answer has no candidates[0].content.parts{why}"),
            )
        })?;
    Ok(parts
        .iter()
        .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
        .collect::<String>())
}
