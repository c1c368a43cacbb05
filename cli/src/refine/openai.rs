//! Any OpenAI-compatible server: `POST {url}/chat/completions`, the answer in
//! `choices[0].message.content`. A key, if the server wants one, from `OPENAI_API_KEY`.

use super::{RefineError, RefineErrorKind, Refiner, post_json};

/// The request body: the instructions as the system message, the text as the user's.
pub fn request_body(model: &str, prompt: &str, text: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": prompt},
            {"role": "user", "content": text},
        ],
        "temperature": 0,
        "stream": false,
    })
}

/// The model's answer.
pub fn complete(r: &Refiner, prompt: &str, text: &str) -> Result<String, RefineError> {
    let key = std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    let url = format!("{}/chat/completions", r.url);
    let answer = post_json(r, &url, &headers, &request_body(&r.model, prompt, text))?;
    answer
        .pointer("/choices/0/message/content")
        .and_then(|c| c.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            RefineError::new(
                RefineErrorKind::BadResponse,
                "the server's answer has no choices[0].message.content",
            )
        })
}
