//! The `[worker]` table of `$XDG_CONFIG_HOME/v2m/config.toml`. Every key is optional; an
//! unknown key is refused with its name; command-line flags override the file. The file is
//! read once: its `[text]` and `[refine]` tables (v2m-text's) come with it; v2m-rt's tables
//! are not read here.
//!
//! ```toml
//! [worker]
//! model = "tiny.en"          # name under $XDG_DATA_HOME/v2m/models, or a directory
//! variant = "int8"           # or "fp32"
//! threads = 2
//! ep = "auto"                # "cpu", "cuda"
//! ort_library = "/path/to/libonnxruntime.so"
//! language = "en"            # multilingual models; "auto" detects
//! task = "transcribe"        # or "translate": any language in, English out (multilingual)
//! vad = 3                    # 0..3, for files
//! provisional_ms = 500
//! pause_ms = 160            # non-speech after speech that starts the speculative final
//! unload_below_percent = 10
//! name = "worker"
//! socket = "/run/user/1000/v2m/control.sock"
//! ```

use crate::error::WorkerError;
use std::path::{Path, PathBuf};
use v2m_text::config::TextConfig;

/// Settings from the file; `None` where the file is silent.
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Model name or directory.
    pub model: Option<String>,
    /// `int8` or `fp32`.
    pub variant: Option<String>,
    /// Inference threads.
    pub threads: Option<usize>,
    /// `auto`, `cpu` or `cuda`.
    pub ep: Option<String>,
    /// libonnxruntime.so to load.
    pub ort_library: Option<PathBuf>,
    /// Language for multilingual models, or `auto`.
    pub language: Option<String>,
    /// `transcribe` or `translate` (into English; multilingual models).
    pub task: Option<String>,
    /// VAD aggressiveness for files (0..=3).
    pub vad: Option<u8>,
    /// Shortest time between provisional passes, ms.
    pub provisional_ms: Option<u64>,
    /// Non-speech after speech that starts the speculative final, ms.
    pub pause_ms: Option<u64>,
    /// Unload the model while idle below this % of MemAvailable/MemTotal.
    pub unload_below_percent: Option<f64>,
    /// Worker name.
    pub name: Option<String>,
    /// v2m-rt's control socket.
    pub socket: Option<PathBuf>,
}

/// What a worker reads from the file: its own table and the text tables.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileConfig {
    /// `[worker]`.
    pub worker: WorkerConfig,
    /// `[text]` and `[refine]`.
    pub text: TextConfig,
}

/// Reads `path` once: its `[worker]` table and v2m-text's tables. A missing file at the
/// default location is no error (`explicit` false); a missing file the user named is.
pub fn load(path: &Path, explicit: bool) -> Result<FileConfig, WorkerError> {
    let bad = |message: String| WorkerError::Config {
        path: path.to_owned(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(FileConfig::default());
        }
        Err(e) => return Err(WorkerError::io(path, e)),
    };
    Ok(FileConfig {
        worker: worker_table(&text).map_err(bad)?,
        text: v2m_text::config::parse(&text).map_err(bad)?,
    })
}

/// The `[worker]` table of a configuration text.
fn worker_table(text: &str) -> Result<WorkerConfig, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let Some(worker) = table.remove("worker") else {
        return Ok(WorkerConfig::default());
    };
    let config: WorkerConfig = worker
        .try_into()
        .map_err(|e: toml::de::Error| format!("[worker]: {}", e.message()))?;
    if let Some(v) = config.vad
        && v > 3
    {
        return Err(format!("[worker] vad = {v}: must be 0 to 3"));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("v2m-cfg-{}-{name}.toml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_the_worker_table_and_ignores_others() {
        let p = write(
            "ok",
            "[rt]\nanything = 1\n[worker]\nthreads = 4\nort_library = \"/x/lib.so\"\n\
             [text]\nvocabulary = [\"Dashwood\"]\n",
        );
        let both = load(&p, true).unwrap();
        assert_eq!(
            both.text.text.vocabulary,
            Some(vec!["Dashwood".to_string()])
        );
        let c = both.worker;
        assert_eq!(c.threads, Some(4));
        assert_eq!(c.ort_library, Some(PathBuf::from("/x/lib.so")));
        assert_eq!(c.model, None);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let p = write("unknown", "[worker]\nthread = 4\n");
        let e = load(&p, true).unwrap_err().to_string();
        assert!(
            e.contains("thread") && e.contains(&p.display().to_string()),
            "{e}"
        );
        let p = write("type", "[worker]\nthreads = \"four\"\n");
        let e = load(&p, true).unwrap_err().to_string();
        assert!(e.contains("[worker]"), "{e}");
        let p = write("vad", "[worker]\nvad = 7\n");
        assert!(load(&p, true).unwrap_err().to_string().contains("vad = 7"));
        // The text tables are checked in the same read.
        let p = write("text", "[worker]\nthreads = 2\n[text]\nvocab = 1\n");
        let e = load(&p, true).unwrap_err().to_string();
        assert!(e.contains("vocab") && e.contains("[text]"), "{e}");
    }

    #[test]
    fn a_missing_default_file_is_fine_a_missing_named_one_is_not() {
        let p = std::env::temp_dir().join("v2m-cfg-does-not-exist.toml");
        assert_eq!(load(&p, false).unwrap(), FileConfig::default());
        assert!(load(&p, true).is_err());
    }
}
