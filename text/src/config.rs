//! The `[text]` and `[refine]` tables of `$XDG_CONFIG_HOME/v2m/config.toml`, read by the
//! worker (rules, vocabulary) and by `v2m-cli` (rules, refine). Other tables belong to v2m-rt
//! and v2m-worker and are not read here; an unknown key in these two is refused with its name.
//!
//! ```toml
//! [text]
//! rules = true                  # false: Whisper's text as it is
//! spoken_punctuation = true     # "comma", "new line"… (English table built in)
//! punctuation = { "smiley" = ":-)", "hyphen" = "" }   # added to the table; "" removes one
//! replacements = { "jason" = "JSON" }                 # whole words, any case
//! regex_replacements = { "\\bk ?8 ?s\\b" = "Kubernetes" }
//! fillers = ["um", "uh", "erm"]
//! vocabulary = ["Kubernetes", "Dashwood"]            # Whisper's initial prompt
//!
//! [refine]                      # sends the TEXT (never audio) to a chat model
//! default = false
//! backend = "openai"            # or "gemini" (key from GEMINI_API_KEY)
//! url = "http://127.0.0.1:11434/v1"
//! model = "qwen2.5:1.5b-instruct"
//! timeout_ms = 3000
//! prompt = "…"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `[text]` table; `None` where the file is silent.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextTable {
    /// All rules on (default) or off.
    pub rules: Option<bool>,
    /// Spoken punctuation and layout on (default) or off.
    pub spoken_punctuation: Option<bool>,
    /// Commands added to (or, with an empty mark, removed from) the built-in table.
    pub punctuation: Option<BTreeMap<String, String>>,
    /// Whole-word replacements, matched in any case.
    pub replacements: Option<BTreeMap<String, String>>,
    /// Regular-expression replacements (Rust `regex` syntax, `$1` in the replacement).
    pub regex_replacements: Option<BTreeMap<String, String>>,
    /// Words dropped as hesitations.
    pub fillers: Option<Vec<String>>,
    /// Names and terms Whisper should spell this way: its initial prompt.
    pub vocabulary: Option<Vec<String>>,
}

/// The `[refine]` table.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefineTable {
    /// Refine every dictation, not only with `--refine`.
    pub default: Option<bool>,
    /// `openai` (any OpenAI-compatible server) or `gemini`.
    pub backend: Option<String>,
    /// The server's base URL.
    pub url: Option<String>,
    /// The model's name on that server.
    pub model: Option<String>,
    /// How long to wait for the answer, ms.
    pub timeout_ms: Option<u64>,
    /// The instructions sent before the text.
    pub prompt: Option<String>,
}

/// Both tables.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TextConfig {
    /// `[text]`.
    pub text: TextTable,
    /// `[refine]`.
    pub refine: RefineTable,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The file cannot be read.
    Io,
    /// Not TOML, an unknown key, a value of the wrong type.
    Syntax,
}

/// A refused configuration.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What kind of problem.
    pub kind: ConfigErrorKind,
    /// What is wrong, naming the key.
    pub message: String,
}

/// Reads `[text]` and `[refine]` from `path`. A missing file is no error unless the user
/// named it (`explicit`).
pub fn load(path: &Path, explicit: bool) -> Result<TextConfig, ConfigError> {
    let error = |kind, message: String| ConfigError {
        path: path.to_owned(),
        kind,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(TextConfig::default());
        }
        Err(e) => return Err(error(ConfigErrorKind::Io, e.to_string())),
    };
    parse(&text).map_err(|m| error(ConfigErrorKind::Syntax, m))
}

/// Parses a configuration text's `[text]` and `[refine]` tables.
pub fn parse(text: &str) -> Result<TextConfig, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let mut config = TextConfig::default();
    if let Some(t) = table.remove("text") {
        config.text = t
            .try_into()
            .map_err(|e: toml::de::Error| format!("[text]: {}", e.message()))?;
    }
    if let Some(t) = table.remove("refine") {
        config.refine = t
            .try_into()
            .map_err(|e: toml::de::Error| format!("[refine]: {}", e.message()))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_tables_and_ignores_the_others() {
        let c = parse(
            "[rt]\nvad_mode = 2\n[text]\nreplacements = { jason = \"JSON\" }\nvocabulary = [\"Dashwood\"]\n[refine]\nmodel = \"m\"\ntimeout_ms = 500\n",
        )
        .unwrap();
        assert_eq!(c.text.replacements.unwrap()["jason"], "JSON");
        assert_eq!(c.text.vocabulary.unwrap(), ["Dashwood"]);
        assert_eq!(c.refine.model.as_deref(), Some("m"));
        assert_eq!(c.refine.timeout_ms, Some(500));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[text]\nfiller = [\"um\"]\n").unwrap_err();
        assert!(e.contains("[text]") && e.contains("filler"), "{e}");
        let e = parse("[refine]\ntimeout = 3\n").unwrap_err();
        assert!(e.contains("[refine]") && e.contains("timeout"), "{e}");
        let e = parse("[refine]\ntimeout_ms = \"soon\"\n").unwrap_err();
        assert!(e.contains("[refine]"), "{e}");
    }
}
