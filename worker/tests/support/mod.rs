//! What the model-backed tests share: the model, the reference transcriber, the recordings.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use v2m_worker::model::files::{ModelFiles, Variant};
use v2m_worker::runtime::{self, EpChoice};
use v2m_worker::transcriber::Transcriber;

/// The real tiny.en int8 model on ONNX Runtime; fails (does not skip) with how to get it.
pub fn transcriber() -> Transcriber {
    transcriber_for("tiny.en", None)
}

/// A real model (int8) on ONNX Runtime, in `language`; fails with how to get it.
pub fn transcriber_for(model: &str, language: Option<&str>) -> Transcriber {
    transcriber_variant(model, Variant::Int8, language)
}

/// A real model of either precision.
pub fn transcriber_variant(model: &str, variant: Variant, language: Option<&str>) -> Transcriber {
    let files = ModelFiles::locate(model, variant)
        .unwrap_or_else(|e| panic!("{e}\n(the model-backed tests need it)"));
    let rt = runtime::init(&runtime::default_library())
        .unwrap_or_else(|e| panic!("{e}\n(the model-backed tests need it)"));
    Transcriber::load(rt, files, 2, EpChoice::Cpu, language).expect("load the model")
}

/// The Python that runs the reference transcriber (installed by scripts/setup-model.sh).
pub fn python() -> PathBuf {
    let p = v2m_shm_proto::paths::data_dir().join("venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run scripts/setup-model.sh (it installs the reference's Python tools)",
        p.display()
    );
    p
}

/// scripts/reference_dump.py.
pub fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/reference_dump.py")
}

/// What the reference transcriber computed for one file.
pub struct Reference {
    /// Its token ids.
    pub tokens: Vec<u32>,
    /// Its text.
    pub text: String,
    /// The log-mel it decoded (`[n_mels][3000]`).
    pub mel: Vec<f32>,
}

/// Runs the reference (tiny.en int8) on `files`.
pub fn reference_tokens(files: &[PathBuf]) -> Vec<Reference> {
    reference_tokens_for("tiny.en", files)
}

/// Runs the reference with `model` (int8) on `files`.
pub fn reference_tokens_for(model: &str, files: &[PathBuf]) -> Vec<Reference> {
    reference_tokens_variant(model, "int8", files)
}

/// Runs the reference with `model` (a name, or a model folder's absolute path) in `variant`
/// (`int8`, `fp32` or `fp16`) on `files`: its tokens,
/// text, and the log-mel it decoded from. (Token identity is checked from the reference's own
/// mel: ours differs by ~1e-6, within the 1e-4 the mel test allows, and that is enough to flip
/// a near-tie such as "Four" / "4." on cards/002 on some CPUs.)
pub fn reference_tokens_variant(model: &str, variant: &str, files: &[PathBuf]) -> Vec<Reference> {
    let model = v2m_worker::model::files::models_dir().join(model);
    let mel_dir = scratch().join(format!(
        "ref-mel-{}-{variant}-{}",
        model.file_name().unwrap().to_string_lossy(),
        files.len()
    ));
    std::fs::create_dir_all(&mel_dir).unwrap();
    let out = Command::new(python())
        .arg(reference_script())
        .args([
            "tokens".as_ref(),
            model.as_os_str(),
            variant.as_ref(),
            "2".as_ref(),
            "--mel-dir".as_ref(),
            mel_dir.as_os_str(),
        ])
        .args(files)
        .output()
        .expect("run the reference transcriber");
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let mel = read_f32(&mel_dir.join(format!("{i}.f32")));
            Reference {
                tokens: v["tokens"]
                    .as_array()
                    .expect("tokens")
                    .iter()
                    .map(|t| t.as_u64().expect("token id") as u32)
                    .collect(),
                text: v["text"].as_str().unwrap_or_default().to_string(),
                mel,
            }
        })
        .collect()
}

use v2m_tests::fixtures::POCKETSPHINX as DATA;

/// A file of little-endian f32s.
pub fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The reference's log-mel of `audio` with `n_mels` bins (`[n_mels][3000]`).
pub fn reference_mel(audio: &Path, n_mels: usize) -> Vec<f32> {
    let out = scratch().join(format!("ref-mel-{n_mels}.f32"));
    let status = Command::new(python())
        .arg(reference_script())
        .arg("mel")
        .arg(audio)
        .arg(&out)
        .arg(n_mels.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "reference mel of {}", audio.display());
    read_f32(&out)
}

/// A scratch directory for this test process.
pub fn scratch() -> PathBuf {
    v2m_tests::fixtures::process_scratch("worker-test")
}

/// Writes 16 kHz mono f32 samples as a 16-bit WAV.
pub fn write_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// The 11 recordings of pocketsphinx-testdata with their transcripts: librivox/ (5),
/// cards/ (5), goforward (raw, converted to WAV here).
pub fn corpus() -> Vec<(PathBuf, String)> {
    let data = Path::new(DATA);
    assert!(
        data.join("librivox").is_dir(),
        "{DATA} missing: run scripts/setup.sh (it installs pocketsphinx-testdata)"
    );
    let mut out = Vec::new();
    let parse = |file: &str| -> Vec<(String, String)> {
        std::fs::read_to_string(data.join(file))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (text, id) = l.rsplit_once('(')?;
                let text = text.replace("<s>", "").replace("</s>", "");
                Some((
                    id.trim_end_matches(')').to_string(),
                    text.trim().to_string(),
                ))
            })
            .collect()
    };
    for (id, text) in parse("librivox/transcription") {
        out.push((data.join(format!("librivox/{id}.wav")), text));
    }
    for (id, text) in parse("cards/cards.transcription") {
        out.push((data.join(format!("cards/{id}.wav")), text));
    }
    let raw = std::fs::read(data.join("goforward.raw")).unwrap();
    let samples: Vec<f32> = raw
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect();
    let wav = scratch().join("goforward.wav");
    write_wav(&wav, &samples);
    out.push((wav, "go forward ten meters".to_string()));
    out
}

/// `text` spoken by espeak-ng's `voice`, as a 16 kHz mono WAV in `dir`.
pub fn espeak(dir: &Path, voice: &str, text: &str) -> PathBuf {
    let raw = dir.join(format!("{voice}.raw.wav"));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng missing: run scripts/setup.sh");
    assert!(status.success());
    let wav = dir.join(format!("{voice}.wav"));
    let status = std::process::Command::new("sox")
        .arg("-D")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(&wav)
        .status()
        .expect("sox missing: run scripts/setup.sh");
    assert!(status.success());
    wav
}
