//! v2m-rt's part of `$XDG_CONFIG_HOME/v2m/config.toml`: the `[rt]` table and the
//! `[[workers]]` it supervises. The `[worker]` table belongs to v2m-worker and `[cli]` to
//! v2m-cli; any other table or key is refused with its name. Every key is optional and
//! command-line flags override the file.
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

/// A refused configuration.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the key.
    pub message: String,
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
    /// v2m-cli's; it checks its own keys.
    #[allow(dead_code)]
    cli: Option<toml::Table>,
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
    let bad = |message: String| ConfigError {
        path: path.to_owned(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(FileConfig::default());
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    parse(&text).map_err(bad)
}

/// Parses and checks a configuration text.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let config = FileConfig {
        rt: file.rt.unwrap_or_default(),
        workers: file.workers.unwrap_or_default(),
    };
    check(&config)?;
    Ok(config)
}

/// Range checks shared by the file and the command line.
pub fn check(c: &FileConfig) -> Result<(), String> {
    if let Some(v) = c.rt.vad_mode
        && v > 3
    {
        return Err(format!("[rt] vad_mode = {v}: must be 0 to 3"));
    }
    if let Some(v) = c.rt.pre_roll_ms
        && v > 10_000
    {
        return Err(format!("[rt] pre_roll_ms = {v}: must be at most 10000"));
    }
    if let Some(v) = c.rt.ring_seconds
        && !(10.0..=3600.0).contains(&v)
    {
        return Err(format!("[rt] ring_seconds = {v}: must be 10 to 3600"));
    }
    if let Some(v) = c.rt.stop_timeout_ms
        && !(100..=600_000).contains(&v)
    {
        return Err(format!("[rt] stop_timeout_ms = {v}: must be 100 to 600000"));
    }
    if let Some(d) = &c.rt.device
        && d.trim().is_empty()
    {
        return Err("[rt] device: must not be empty".into());
    }
    let mut names = std::collections::HashSet::new();
    for w in &c.workers {
        if w.name.trim().is_empty() {
            return Err("[[workers]] name: must not be empty".into());
        }
        if !names.insert(w.name.as_str()) {
            return Err(format!("[[workers]] name = {:?}: used twice", w.name));
        }
        if w.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(format!(
                "[[workers]] {:?} command: must name a program",
                w.name
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
             command = [\"v2m-worker\", \"run\"]\n[worker]\nmodel = \"base\"\n[cli]\nx = 1\n",
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
            let e = parse(text).unwrap_err();
            assert!(e.contains(key), "{text:?} -> {e}");
        }
    }
}
