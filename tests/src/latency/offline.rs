//! The same recordings transcribed offline by `v2m-worker transcribe`: what streaming finals
//! are compared with.

use super::corpus::Utterance;
use std::path::Path;
use std::process::Command;

/// Runs `worker transcribe --report --dictation` (the live computation; with `config`'s `[worker]` table, if given) on every
/// recording; returns their texts in order.
pub fn transcribe(
    worker: &Path,
    config: Option<&Path>,
    utterances: &[Utterance],
) -> Result<Vec<String>, String> {
    let mut cmd = Command::new(worker);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(["transcribe", "--report", "--dictation"]);
    cmd.args(utterances.iter().map(|u| &u.wav));
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", worker.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} transcribe failed: {}",
            worker.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let texts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some(v.get("text")?.as_str()?.to_string()))
        .collect();
    if texts.len() != utterances.len() {
        return Err(format!(
            "{} transcribe gave {} transcripts for {} recordings",
            worker.display(),
            texts.len(),
            utterances.len()
        ));
    }
    Ok(texts)
}
