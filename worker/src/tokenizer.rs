//! Whisper's tokenizer, as far as the worker needs it: special-token ids, and ids back to text
//! (GPT-2 byte-level BPE decoding), read from the model's `tokenizer.json`.

use crate::error::WorkerError;
use std::collections::HashMap;
use std::path::Path;

/// Token ids to text.
pub struct Tokenizer {
    /// Token string (byte-level alphabet) of every id.
    pieces: Vec<Option<String>>,
    /// Ids of added (special) tokens by their content.
    special: HashMap<String, u32>,
    /// The byte each byte-level character stands for.
    byte_of: HashMap<char, u8>,
}

#[derive(serde::Deserialize)]
struct TokenizerJson {
    model: BpeModel,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(serde::Deserialize)]
struct BpeModel {
    vocab: HashMap<String, u32>,
}

#[derive(serde::Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    special: bool,
}

/// GPT-2's `bytes_to_unicode`: printable bytes stand for themselves, the others are shifted
/// to code points from 256 up.
fn byte_level_alphabet() -> HashMap<char, u8> {
    let mut map = HashMap::new();
    let mut next = 256u32;
    for b in 0u8..=255 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).expect("valid code point");
            next += 1;
            c
        };
        map.insert(c, b);
    }
    map
}

impl Tokenizer {
    /// Reads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Tokenizer, WorkerError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkerError::io(path, e))?;
        let json: TokenizerJson =
            serde_json::from_str(&text).map_err(|e| WorkerError::BadModel {
                path: path.to_owned(),
                reason: format!("not a tokenizer.json: {e}"),
            })?;
        let size = json
            .model
            .vocab
            .values()
            .chain(json.added_tokens.iter().map(|t| &t.id))
            .max()
            .map_or(0, |&m| m as usize + 1);
        let mut pieces = vec![None; size];
        for (piece, &id) in &json.model.vocab {
            pieces[id as usize] = Some(piece.clone());
        }
        let mut special = HashMap::new();
        for t in &json.added_tokens {
            // transformers' Whisper tokenizers add the timestamp tokens (`<|0.00|>`…) as
            // non-special: they are still never text.
            if t.special || (t.content.starts_with("<|") && t.content.ends_with("|>")) {
                special.insert(t.content.clone(), t.id);
                pieces[t.id as usize] = None;
            } else {
                pieces[t.id as usize] = Some(t.content.clone());
            }
        }
        Ok(Tokenizer {
            pieces,
            special,
            byte_of: byte_level_alphabet(),
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
        matches!(self.pieces.get(id as usize), Some(Some(p)) if p.starts_with('\u{120}') || p.starts_with(' '))
    }

    /// Text of `ids`, skipping special tokens (as `tokenizers`' `decode` does by default).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if let Some(Some(piece)) = self.pieces.get(id as usize) {
                for c in piece.chars() {
                    match self.byte_of.get(&c) {
                        Some(&b) => bytes.push(b),
                        None => bytes.extend(c.to_string().as_bytes()),
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_is_a_bijection() {
        let m = byte_level_alphabet();
        assert_eq!(m.len(), 256);
        let mut bytes: Vec<u8> = m.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        assert_eq!(m[&'Ġ'], b' ');
        assert_eq!(m[&'a'], b'a');
    }
}
