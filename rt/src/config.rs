//! v2m-rt's part of `$XDG_CONFIG_HOME/v2m/config.toml`: the `[rt]` table and the
//! `[[workers]]` it supervises. The `[worker]` table belongs to v2m-worker, `[text]` and
//! `[refine]` to the worker and v2m-cli (`v2m_text::config`); any other table or
//! key is refused with its name. Every key is optional and command-line flags override the
//! file. The file must be a regular file of at most 1 MiB.
//!
//! ```toml
//! [rt]
//! device = "alsa:default"     # cpal device id or name; default input when absent
//! pre_roll_ms = 300           # audio before `start` that belongs to the session
//! vad_mode = 3                # WebRTC VAD aggressiveness, 0..3
//! ring_seconds = 160          # ring capacity (rounded up to a power of two of frames)
//! stop_timeout_ms = 30000     # how long `stop` waits for the final text
//! final_worker = "tiny"       # whose finals answer `stop` [default: the first connected]
//!
//! [[workers]]                 # started, restarted with backoff, stopped on shutdown
//! name = "tiny"
//! command = ["v2m-worker", "run", "--model", "tiny.en"]
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Largest configuration file read (a config is a few hundred bytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A refused configuration.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: ConfigProblem,
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// It cannot be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file (a FIFO, a device: reading it could block or never end).
    #[error("not a regular file")]
    NotAFile,
    /// Larger than [`MAX_CONFIG_BYTES`].
    #[error("{0} bytes: a configuration is at most 1 MiB")]
    TooLarge(u64),
    /// Not valid TOML, or an unknown table or key, or a value of the wrong type.
    #[error("{0}")]
    Syntax(String),
    /// A value out of range, naming its key.
    #[error("{key} = {value}: {rule}")]
    Value {
        /// The key, with its table (`[rt] vad_mode`).
        key: String,
        /// The value given.
        value: String,
        /// What it must be.
        rule: String,
    },
}

/// Reads a configuration file's text: a regular file of at most [`MAX_CONFIG_BYTES`]. `None`
/// when it does not exist and was not named explicitly.
pub fn read_config_text(path: &Path, explicit: bool) -> Result<Option<String>, ConfigProblem> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_file() {
        return Err(ConfigProblem::NotAFile);
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConfigProblem::TooLarge(meta.len()));
    }
    Ok(Some(std::fs::read_to_string(path)?))
}

/// The `[rt]` table.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtTable {
    /// Capture device.
    pub device: Option<String>,
    /// Pre-roll, ms.
    pub pre_roll_ms: Option<u64>,
    /// VAD mode, 0..=3.
    pub vad_mode: Option<u8>,
    /// Ring capacity, seconds.
    pub ring_seconds: Option<f64>,
    /// Stop timeout, ms.
    pub stop_timeout_ms: Option<u64>,
    /// Name of the worker whose finals answer `stop`.
    pub final_worker: Option<String>,
}

/// One supervised worker.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerCommand {
    /// Its name (given to it as V2M_WORKER_NAME; it says hello with it).
    pub name: String,
    /// Program and arguments; any wrapper (a cgroup script, say) may come first.
    pub command: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    rt: Option<RtTable>,
    workers: Option<Vec<WorkerCommand>>,
    /// v2m-worker's; it checks its own keys.
    #[allow(dead_code)]
    worker: Option<toml::Table>,
    /// The worker's and v2m-cli's (`v2m_text::config`); they check their own keys.
    #[allow(dead_code)]
    text: Option<toml::Table>,
    /// v2m-cli's (`v2m_text::config`).
    #[allow(dead_code)]
    refine: Option<toml::Table>,
}

/// What the file says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileConfig {
    /// The `[rt]` table.
    pub rt: RtTable,
    /// The `[[workers]]`.
    pub workers: Vec<WorkerCommand>,
}

/// Reads `path`. A missing file is no error unless the user named it (`explicit`).
pub fn load(path: &Path, explicit: bool) -> Result<FileConfig, ConfigError> {
    let bad = |problem| ConfigError {
        path: path.to_owned(),
        problem,
    };
    match read_config_text(path, explicit).map_err(bad)? {
        Some(text) => parse(&text).map_err(bad),
        None => Ok(FileConfig::default()),
    }
}

/// Parses and checks a configuration text.
pub fn parse(text: &str) -> Result<FileConfig, ConfigProblem> {
    let file: ConfigFile =
        toml::from_str(text).map_err(|e| ConfigProblem::Syntax(e.message().to_string()))?;
    let config = FileConfig {
        rt: file.rt.unwrap_or_default(),
        workers: file.workers.unwrap_or_default(),
    };
    check(&config)?;
    Ok(config)
}

fn value(key: &str, value: impl std::fmt::Display, rule: &str) -> ConfigProblem {
    ConfigProblem::Value {
        key: key.into(),
        value: value.to_string(),
        rule: rule.into(),
    }
}

/// Range checks shared by the file and the command line.
pub fn check(c: &FileConfig) -> Result<(), ConfigProblem> {
    if let Some(v) = c.rt.vad_mode
        && v > 3
    {
        return Err(value("[rt] vad_mode", v, "must be 0 to 3"));
    }
    if let Some(v) = c.rt.pre_roll_ms
        && v > 10_000
    {
        return Err(value("[rt] pre_roll_ms", v, "must be at most 10000"));
    }
    if let Some(v) = c.rt.ring_seconds
        && !(10.0..=3600.0).contains(&v)
    {
        return Err(value("[rt] ring_seconds", v, "must be 10 to 3600"));
    }
    if let Some(v) = c.rt.stop_timeout_ms
        && !(100..=600_000).contains(&v)
    {
        return Err(value("[rt] stop_timeout_ms", v, "must be 100 to 600000"));
    }
    if let Some(d) = &c.rt.device
        && d.trim().is_empty()
    {
        return Err(value("[rt] device", "\"\"", "must not be empty"));
    }
    let mut names = std::collections::HashSet::new();
    for w in &c.workers {
        if w.name.trim().is_empty() || w.name.len() > v2m_shm_proto::protocol::MAX_NAME_LEN {
            return Err(value(
                "[[workers]] name",
                format!("{:?}", w.name),
                "must be 1 to 128 bytes",
            ));
        }
        if !names.insert(w.name.as_str()) {
            return Err(value(
                "[[workers]] name",
                format!("{:?}", w.name),
                "used twice",
            ));
        }
        if w.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(value(
                &format!("[[workers]] {:?} command", w.name),
                format!("{:?}", w.command),
                "must name a program",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses() {
        let c = parse(
            "[rt]\ndevice = \"alsa:x\"\npre_roll_ms = 200\nvad_mode = 2\nring_seconds = 60\n\
             stop_timeout_ms = 5000\nfinal_worker = \"a\"\n[[workers]]\nname = \"a\"\n\
             command = [\"v2m-worker\", \"run\"]\n[worker]\nmodel = \"base\"\n\
             [text]\nvocabulary = [\"v2m\"]\n[refine]\nmodel = \"m\"\n",
        )
        .unwrap();
        assert_eq!(c.rt.pre_roll_ms, Some(200));
        assert_eq!(c.workers[0].command, ["v2m-worker", "run"]);
        assert_eq!(parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        for (text, key) in [
            ("[rt]\npre_rol_ms = 1\n", "pre_rol_ms"),
            ("[audio]\nx = 1\n", "audio"),
            ("[rt]\nvad_mode = 7\n", "vad_mode"),
            ("[rt]\nvad_mode = \"loud\"\n", "string"),
            ("[rt]\nring_seconds = 1\n", "ring_seconds"),
            ("[rt]\nstop_timeout_ms = 0\n", "stop_timeout_ms"),
            ("[[workers]]\nname = \"a\"\ncommand = []\n", "command"),
            ("[[workers]]\nname = \"a\"\ncmd = [\"x\"]\n", "cmd"),
            (
                "[[workers]]\nname = \"a\"\ncommand = [\"x\"]\n[[workers]]\nname = \"a\"\ncommand = [\"y\"]\n",
                "twice",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text:?} -> {e}");
        }
    }
}
