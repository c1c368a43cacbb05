//! The multilingual base model: the same decoding as the reference, and language detection.

mod support;

use std::path::PathBuf;
use std::process::Command;
use v2m_worker::WorkerError;
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
        let wav = support::espeak(&dir, voice, text);
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

#[test]
fn translate_turns_german_and_spanish_speech_into_english() {
    let dir = support::scratch();
    let mut t = support::transcriber_for("base", Some("auto"));
    t.translate().unwrap();
    for (voice, text, english) in [
        (
            "de",
            "Guten Morgen. Heute ist das Wetter sehr schön, und ich gehe im Park spazieren.",
            &["good", "morning", "weather", "today", "park", "walk"][..],
        ),
        (
            "es",
            "Buenos días. Hoy hace muy buen tiempo y voy a pasear por el parque.",
            &["good", "morning", "today", "weather", "park", "walk"][..],
        ),
    ] {
        let wav = support::espeak(&dir, voice, text);
        let r = t.transcribe(&read_audio(&wav).unwrap()).unwrap();
        let lower = r.text.to_lowercase();
        let found: Vec<&&str> = english.iter().filter(|w| lower.contains(**w)).collect();
        eprintln!("{voice} -> {:?}", r.text);
        assert!(
            found.len() >= 3,
            "{voice}: {:?} has too few English words",
            r.text
        );
        assert_eq!(r.language.as_deref(), Some(voice), "detected as before");
    }
}

#[test]
fn an_english_only_model_refuses_to_translate() {
    let mut t = support::transcriber();
    match t.translate() {
        Err(WorkerError::Usage(m)) => assert!(m.contains("multilingual"), "{m}"),
        other => panic!("expected a usage error, got {:?}", other.err()),
    }
    // The same through the binary, and a task it does not know in the config file.
    let dir = support::scratch();
    let config = dir.join("task.toml");
    std::fs::write(&config, "[worker]\ntask = \"swim\"\n").unwrap();
    for (args, says) in [
        (
            vec!["transcribe", "--model", "tiny.en", "--translate", "x.wav"],
            "multilingual",
        ),
        (
            vec![
                "--config",
                config.to_str().unwrap(),
                "transcribe",
                "--model",
                "base",
                "x.wav",
            ],
            "task = \"swim\"",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_v2m-worker"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
