//! Whisper's tokenizer: the model's `tokenizer.json` read by Hugging Face's `tokenizers`
//! (byte-level BPE both ways: ids to text, and text to ids for the vocabulary prompt), and the
//! special-token ids the decoding policy needs.

use crate::error::WorkerError;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Text to ids and back.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Ids of added special tokens by their content.
    special: HashMap<String, u32>,
    special_ids: HashSet<u32>,
}

impl Tokenizer {
    /// Reads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Tokenizer, WorkerError> {
        let bad = |reason: String| WorkerError::BadModel {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| WorkerError::io(path, e))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| bad(format!("not a tokenizer.json: {e}")))?;
        let mut special = HashMap::new();
        for (&id, t) in inner.get_added_tokens_decoder().iter() {
            // transformers' Whisper tokenizers add the timestamp tokens (`<|0.00|>`…) as
            // non-special: they are still never text.
            if t.special || (t.content.starts_with("<|") && t.content.ends_with("|>")) {
                special.insert(t.content.clone(), id);
            }
        }
        let special_ids = special.values().copied().collect();
        Ok(Tokenizer {
            inner,
            special,
            special_ids,
        })
    }

    /// The id of a special token such as `<|endoftext|>`.
    pub fn special(&self, content: &str) -> Option<u32> {
        self.special.get(content).copied()
    }

    /// The language code of a language token (`<|de|>` → `de`).
    pub fn language_code(&self, id: u32) -> Option<&str> {
        self.special
            .iter()
            .find(|&(_, &v)| v == id)
            .and_then(|(k, _)| k.strip_prefix("<|")?.strip_suffix("|>"))
    }

    /// Whether token `id` begins a word: its text starts with a space (byte-level `Ġ`).
    /// Special tokens and unknown ids do not.
    pub fn starts_word(&self, id: u32) -> bool {
        !self.special_ids.contains(&id)
            && self
                .inner
                .id_to_token(id)
                .is_some_and(|p| p.starts_with('\u{120}') || p.starts_with(' '))
    }

    /// Text of `ids`, skipping special tokens (timestamps included).
    pub fn decode(&self, ids: &[u32]) -> String {
        let text: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| !self.special_ids.contains(id))
            .collect();
        self.inner.decode(&text, false).unwrap_or_default()
    }

    /// Ids of `text` (no special tokens added): what Whisper would have written for it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, WorkerError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| WorkerError::Usage(format!("cannot tokenize {text:?}: {e}")))
    }
}
