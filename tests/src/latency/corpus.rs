//! The recordings to measure with: WAV files and their transcripts, and where their speech is.

use crate::fifo_mic::mono16k;
use std::path::{Path, PathBuf};

/// The default sets: real recorded English speech from pocketsphinx-testdata.
pub fn default_sets() -> Vec<PathBuf> {
    let data = Path::new(crate::fixtures::POCKETSPHINX);
    vec![data.join("librivox"), data.join("cards")]
}

/// One recording with its reference transcript.
#[derive(Debug, Clone)]
pub struct Utterance {
    /// The set it belongs to (its folder's name).
    pub set: String,
    /// File stem, for the table.
    pub name: String,
    /// The WAV file.
    pub wav: PathBuf,
    /// What is said in it.
    pub reference: String,
}

/// Reads a folder: every `*.wav` with its transcript, from `<stem>.txt` beside it, else from a
/// pocketsphinx-style transcription file in the folder (`transcription` or `*.transcription`,
/// lines `<s> words </s> (stem)`). A WAV without a transcript is an error that names it.
pub fn load_set(dir: &Path) -> Result<Vec<Utterance>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut wavs = Vec::new();
    let mut listings = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.to_ascii_lowercase().ends_with(".wav") {
            wavs.push(path);
        } else if name == "transcription" || name.ends_with(".transcription") {
            listings.push(path);
        }
    }
    if wavs.is_empty() {
        return Err(format!("{}: no .wav files", dir.display()));
    }
    wavs.sort();
    let set = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let listed: Vec<(String, String)> = listings
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(parse_listing_line)
                .collect::<Vec<_>>()
        })
        .collect();
    wavs.into_iter()
        .map(|wav| {
            let stem = wav
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let txt = wav.with_extension("txt");
            let reference = match std::fs::read_to_string(&txt) {
                Ok(t) => t.trim().to_string(),
                Err(_) => listed
                    .iter()
                    .find(|(id, _)| *id == stem)
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| {
                        format!(
                            "{}: no transcript ({} or a transcription file)",
                            wav.display(),
                            txt.display()
                        )
                    })?,
            };
            Ok(Utterance {
                set: set.clone(),
                name: stem,
                wav,
                reference,
            })
        })
        .collect()
}

/// Recordings longer than Whisper's 30 s window, so that the default run measures hard
/// commits: `from` joined in order with 0.7 s pauses (`long-a`), and in reverse with 1.2 s
/// pauses (`long-b`), written as 16 kHz WAV files with their transcripts into `dir`.
pub fn long_set(dir: &Path, from: &[Utterance]) -> Result<Vec<Utterance>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let audio: Vec<Vec<f32>> = from.iter().map(|u| mono16k(&u.wav)).collect();
    let mut out = Vec::new();
    for (name, pause_s, reverse) in [("long-a", 0.7, false), ("long-b", 1.2, true)] {
        let mut order: Vec<usize> = (0..from.len()).collect();
        if reverse {
            order.reverse();
        }
        let pause = vec![0f32; (pause_s * 16_000.0) as usize];
        let mut samples = pause.clone();
        for &i in &order {
            samples.extend(&audio[i]);
            samples.extend(&pause);
        }
        let wav = dir.join(format!("{name}.wav"));
        write_wav(&wav, &samples)?;
        let reference = order
            .iter()
            .map(|&i| from[i].reference.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        std::fs::write(wav.with_extension("txt"), format!("{reference}\n"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        out.push(Utterance {
            set: "long".into(),
            name: name.into(),
            wav,
            reference,
        });
    }
    Ok(out)
}

/// Writes 16 kHz mono samples as a 16-bit WAV file.
fn write_wav(path: &Path, samples: &[f32]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let fail = |e: hound::Error| format!("{}: {e}", path.display());
    let mut w = hound::WavWriter::create(path, spec).map_err(fail)?;
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .map_err(fail)?;
    }
    w.finalize().map_err(fail)
}

/// `<s> words </s> (id)` → (id, words).
fn parse_listing_line(line: &str) -> Option<(String, String)> {
    let open = line.rfind('(')?;
    let id = line[open + 1..]
        .trim()
        .strip_suffix(')')?
        .trim()
        .to_string();
    let words = line[..open]
        .replace("<s>", " ")
        .replace("</s>", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some((id, words))
}

/// Where speech begins and ends in a recording, seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechSpan {
    /// First 10 ms window above the loud threshold.
    pub onset_s: f64,
    /// Where the sound after the last loud window falls to the noise floor.
    pub end_s: f64,
}

/// Finds the speech in `wav` by energy: it begins at the first 10 ms window louder than a
/// tenth of the loud end of the recording (its 95th-percentile window; a floor for near-silent
/// files), and ends where the sound after the last such window falls to the recording's noise
/// floor. A word's soft end (the "s" of "clubs", 20–30 dB under the vowels) is speech: a stop
/// at the last loud window would cut it off, a stop inside the word, not after it.
pub fn speech_span(wav: &Path) -> Result<SpeechSpan, String> {
    span_of(&mono16k(wav)).ok_or_else(|| format!("{}: no speech found", wav.display()))
}

fn span_of(samples: &[f32]) -> Option<SpeechSpan> {
    const WINDOW: usize = 160;
    // Quiet windows in a row that end the sound (30 ms: a word's soft end flickers).
    const QUIET_RUN: usize = 3;
    let rms: Vec<f32> = samples
        .chunks(WINDOW)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let mut sorted = rms.clone();
    sorted.sort_by(f32::total_cmp);
    let loud = *sorted.get(sorted.len() * 95 / 100)?;
    let threshold = (loud * 0.1).max(0.003);
    let first = rms.iter().position(|&r| r > threshold)?;
    let last = rms.iter().rposition(|&r| r > threshold)?;
    // Audible: twice (6 dB over) the noise floor, the 10th-percentile window.
    let audible = (2.0 * sorted[sorted.len() / 10]).max(1e-4);
    let mut end = last + 1;
    let mut quiet = 0;
    for (i, &r) in rms.iter().enumerate().skip(last + 1) {
        if r > audible {
            end = i + 1;
            quiet = 0;
        } else {
            quiet += 1;
            if quiet == QUIET_RUN {
                break;
            }
        }
    }
    Some(SpeechSpan {
        onset_s: (first * WINDOW) as f64 / 16_000.0,
        end_s: (end * WINDOW).min(samples.len()) as f64 / 16_000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_lines_parse() {
        assert_eq!(
            parse_listing_line("<s> ten of clubs  </s> (001)"),
            Some(("001".into(), "ten of clubs".into()))
        );
        assert_eq!(parse_listing_line("no id here"), None);
    }

    #[test]
    fn the_span_is_where_the_sound_is() {
        let mut x = vec![0.0f32; 16_000 * 3];
        for (i, s) in x[8_000..40_000].iter_mut().enumerate() {
            *s = 0.3 * (i as f32 * 0.1).sin();
        }
        let span = span_of(&x).unwrap();
        assert!((span.onset_s - 0.5).abs() < 0.011, "{span:?}");
        assert!((span.end_s - 2.5).abs() < 0.011, "{span:?}");
        assert_eq!(span_of(&[0.0; 16_000]), None);
    }

    #[test]
    fn the_span_ends_where_a_soft_end_falls_to_the_noise_floor() {
        // Noise at 0.002 throughout; a loud word from 0.5 s, its soft end (-26 dB) from 1.0 s
        // to 1.1 s with a 20 ms dip in it; a click at 1.4 s after 300 ms of noise.
        let mut x: Vec<f32> = (0..16_000 * 2)
            .map(|i| if i % 2 == 0 { 0.002 } else { -0.002 })
            .collect();
        let mut set = |from_s: f64, to_s: f64, amp: f32| {
            let (a, b) = ((from_s * 16_000.0) as usize, (to_s * 16_000.0) as usize);
            for (i, s) in x[a..b].iter_mut().enumerate() {
                *s = amp * (i as f32 * 0.3).sin();
            }
        };
        set(0.5, 1.0, 0.4);
        set(1.0, 1.1, 0.02);
        set(1.05, 1.07, 0.002);
        set(1.4, 1.41, 0.02);
        let span = span_of(&x).unwrap();
        assert!((span.onset_s - 0.5).abs() < 0.011, "{span:?}");
        assert!((span.end_s - 1.1).abs() < 0.011, "{span:?}");
    }
}
