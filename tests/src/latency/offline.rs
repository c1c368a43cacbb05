//! The same recordings transcribed offline by `v2m-worker transcribe`: what streaming finals
//! are compared with, at the recordings' own start and at later frame phases.
//!
//! Offline is given what the microphone is given: each recording as the FIFO microphone's
//! 48 kHz stereo PCM ([`MIC_FORMAT`]), in a WAV file, which `v2m-worker transcribe` brings to
//! 16 kHz with the resampler v2m-rt's capture runs. Streaming is then compared with the same
//! audio offline; the 16 kHz original would also measure two resamplings (sox's up, rubato's
//! down), which move tiny.en's near-ties as a frame phase does.

use super::corpus::Utterance;
use crate::fifo_mic::MIC_FORMAT;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How much later than the file's first sample the copies transcribed for
/// [`transcribe_phases`] begin (ms): the phases of the 20 ms frame grid a microphone's audio
/// can land on. A live session's frames start wherever the capture was when `start` came, so
/// a recording dictated live is heard at one of these phases, not the file's own.
pub const PHASE_SHIFTS_MS: [u32; 3] = [5, 10, 15];

/// Runs `worker transcribe --report --dictation` (the live computation; with `config`'s
/// `[worker]` table, if given) on every recording as the microphone hears it (copies made
/// under `dir`); returns their texts in order.
pub fn transcribe(
    worker: &Path,
    config: Option<&Path>,
    utterances: &[Utterance],
    dir: &Path,
) -> Result<Vec<String>, String> {
    let copies = mic_copies(utterances, &dir.join("mic"), 0)?;
    let paths: Vec<&Path> = copies.iter().map(PathBuf::as_path).collect();
    transcribe_files(worker, config, &paths)
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
        let copies = mic_copies(utterances, &dir.join(format!("phase-{ms}ms")), ms)?;
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

/// Every recording as [`mic_copy`] makes it, under `dir`.
fn mic_copies(utterances: &[Utterance], dir: &Path, delay_ms: u32) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    utterances
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let copy = dir.join(format!("{i}-{}.wav", u.name));
            mic_copy(&u.wav, &copy, delay_ms)?;
            Ok(copy)
        })
        .collect()
}

/// `src` as the FIFO microphone's PCM (the bytes its feeder writes) in a WAV file, with
/// `delay_ms` of digital silence in front (sox).
fn mic_copy(src: &Path, dst: &Path, delay_ms: u32) -> Result<(), String> {
    let out = Command::new("sox")
        .arg("-D")
        .arg(src)
        .args(MIC_FORMAT)
        .args(["-b", "16"])
        .arg(dst)
        .args(["pad", &format!("{}", f64::from(delay_ms) / 1000.0), "0"])
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
