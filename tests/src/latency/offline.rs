//! The same recordings transcribed offline by `v2m-worker transcribe`: what streaming finals
//! are compared with, at the recordings' own start and at later frame phases.

use super::corpus::Utterance;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How much later than the file's first sample the copies transcribed for
/// [`transcribe_phases`] begin (ms): the phases of the 20 ms frame grid a microphone's audio
/// can land on. A live session's frames start wherever the capture was when `start` came, so
/// a recording dictated live is heard at one of these phases, not the file's own.
pub const PHASE_SHIFTS_MS: [u32; 3] = [5, 10, 15];

/// Runs `worker transcribe --report --dictation` (the live computation; with `config`'s `[worker]` table, if given) on every
/// recording; returns their texts in order.
pub fn transcribe(
    worker: &Path,
    config: Option<&Path>,
    utterances: &[Utterance],
) -> Result<Vec<String>, String> {
    let wavs: Vec<&Path> = utterances.iter().map(|u| u.wav.as_path()).collect();
    transcribe_files(worker, config, &wavs)
}

/// The recordings offline again, each begun [`PHASE_SHIFTS_MS`] later (copies with that much
/// silence in front, made by sox under `dir`): per recording, its texts in that order. Whisper
/// near-ties flip with such shifts (a few samples can), so the spread of these transcripts'
/// WER is the noise floor of comparing live finals with the offline one.
pub fn transcribe_phases(
    worker: &Path,
    config: Option<&Path>,
    utterances: &[Utterance],
    dir: &Path,
) -> Result<Vec<Vec<String>>, String> {
    let mut texts = vec![Vec::new(); utterances.len()];
    for ms in PHASE_SHIFTS_MS {
        let phase_dir = dir.join(format!("phase-{ms}ms"));
        std::fs::create_dir_all(&phase_dir).map_err(|e| format!("{}: {e}", phase_dir.display()))?;
        let copies = utterances
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let copy = phase_dir.join(format!("{i}-{}.wav", u.name));
                delayed_copy(&u.wav, &copy, ms)?;
                Ok(copy)
            })
            .collect::<Result<Vec<PathBuf>, String>>()?;
        let paths: Vec<&Path> = copies.iter().map(PathBuf::as_path).collect();
        for (t, text) in texts
            .iter_mut()
            .zip(transcribe_files(worker, config, &paths)?)
        {
            t.push(text);
        }
    }
    Ok(texts)
}

/// `src` as 16 kHz mono 16-bit WAV with `ms` of digital silence in front (sox; samples of a
/// 16 kHz 16-bit mono source are copied unchanged).
fn delayed_copy(src: &Path, dst: &Path, ms: u32) -> Result<(), String> {
    let out = Command::new("sox")
        .arg("-D")
        .arg(src)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(dst)
        .args(["pad", &format!("{}s", ms * 16), "0"])
        .output()
        .map_err(|e| format!("sox (scripts/setup.sh installs it): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sox {}: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn transcribe_files(
    worker: &Path,
    config: Option<&Path>,
    wavs: &[&Path],
) -> Result<Vec<String>, String> {
    let mut cmd = Command::new(worker);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(["transcribe", "--report", "--dictation"]);
    cmd.args(wavs);
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
    if texts.len() != wavs.len() {
        return Err(format!(
            "{} transcribe gave {} transcripts for {} recordings",
            worker.display(),
            texts.len(),
            wavs.len()
        ));
    }
    Ok(texts)
}
