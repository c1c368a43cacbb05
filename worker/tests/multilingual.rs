//! The multilingual base model: the same decoding as the reference, and language detection.

mod support;

use std::path::PathBuf;
use std::process::Command;
use v2m_worker::audio::read_audio;
use v2m_worker::decode::greedy::DecodeRequest;

#[test]
fn base_is_token_identical_to_the_reference_and_auto_detects_english() {
    let corpus = support::corpus();
    let files: Vec<PathBuf> = corpus.iter().map(|(p, _)| p.clone()).collect();
    let reference = support::reference_tokens_for("base", &files);
    let mut en = support::transcriber_for("base", Some("en"));
    let mut auto = support::transcriber_for("base", Some("auto"));
    for (path, r) in files.iter().zip(&reference) {
        // From the reference's own mel (see support::reference_tokens_variant).
        let fixed = en.pass_mel(r.mel.clone(), &DecodeRequest::PLAIN).unwrap();
        assert_eq!(fixed.decoded.tokens, r.tokens, "{}", path.display());
        assert_eq!(
            fixed.language, None,
            "nothing detected with a fixed language"
        );
        let detected = auto.pass_mel(r.mel.clone(), &DecodeRequest::PLAIN).unwrap();
        assert_eq!(
            detected.language.as_deref(),
            Some("en"),
            "{}",
            path.display()
        );
        assert_eq!(
            detected.decoded.tokens,
            fixed.decoded.tokens,
            "{}",
            path.display()
        );
    }
}

#[test]
fn auto_detects_german_and_spanish() {
    let dir = support::scratch();
    let mut auto = support::transcriber_for("base", Some("auto"));
    for (voice, lang, text, word) in [
        (
            "de",
            "de",
            "Guten Morgen. Heute ist das Wetter sehr schön, und ich gehe im Park spazieren.",
            "morgen",
        ),
        (
            "es",
            "es",
            "Buenos días. Hoy hace muy buen tiempo y voy a pasear por el parque.",
            "parque",
        ),
    ] {
        let raw = dir.join(format!("{voice}.raw"));
        let status = Command::new("espeak-ng")
            .args(["-v", voice, "--stdout", text])
            .stdout(std::fs::File::create(&raw).unwrap())
            .status()
            .expect("espeak-ng missing: run scripts/setup.sh");
        assert!(status.success());
        let wav = dir.join(format!("{voice}.wav"));
        let status = Command::new("sox")
            .arg("-D")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1"])
            .arg(&wav)
            .status()
            .expect("sox missing: run scripts/setup.sh");
        assert!(status.success());
        let r = auto.transcribe(&read_audio(&wav).unwrap()).unwrap();
        assert_eq!(r.language.as_deref(), Some(lang), "{voice}: {:?}", r.text);
        assert!(
            r.text.to_lowercase().contains(word),
            "{voice}: {:?} lacks {word:?}",
            r.text
        );
    }
}

#[test]
fn an_english_only_model_refuses_another_language() {
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-worker"))
        .args([
            "transcribe",
            "--model",
            "tiny.en",
            "--language",
            "de",
            "x.wav",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("English-only") && err.contains("--model base"),
        "{err}"
    );
}
