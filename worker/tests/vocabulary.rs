//! `[text] vocabulary`: Whisper's initial prompt, encoded by Hugging Face's tokenizers from
//! the model's tokenizer.json exactly as the Python `tokenizers` package encodes it, and what
//! it changes on real decoding.

mod support;

use v2m_worker::WorkerError;
use v2m_worker::audio::read_audio;
use v2m_worker::transcriber::{MAX_VOCABULARY_TOKENS, vocabulary_prompt};

#[test]
fn the_prompt_is_encoded_as_python_tokenizers_encodes_it() {
    for model in ["tiny.en", "base"] {
        let mut t = support::transcriber_for(model, None);
        let words = ["Kubernetes", "Grafana", "Dashwood", "naïve café", "C++"];
        t.set_vocabulary(&words.map(String::from)).unwrap();
        let tokenizer = v2m_worker::model::files::models_dir()
            .join(model)
            .join("tokenizer.json");
        let out = std::process::Command::new(support::python())
            .args([
                "-c",
                "import sys, tokenizers; t = tokenizers.Tokenizer.from_file(sys.argv[1]); print(' '.join(map(str, t.encode(sys.argv[2], add_special_tokens=False).ids)))",
            ])
            .arg(&tokenizer)
            .arg(vocabulary_prompt(&words.map(String::from)).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        assert_eq!(t.vocabulary(), python, "{model}");
        // And back: the tokenizer's decoding gives the words again.
        assert_eq!(
            t.tokenizer().decode(t.vocabulary()),
            " Kubernetes, Grafana, Dashwood, naïve café, C++."
        );
    }
}

#[test]
fn a_vocabulary_spells_the_names_whisper_did_not_know() {
    let dir = support::scratch();
    let wav = support::espeak(
        &dir,
        "en-us",
        "We deploy the service on Kubernetes with Grafana dashboards every Tuesday.",
    );
    let audio = read_audio(&wav).unwrap();
    let mut t = support::transcriber();
    let without = t.transcribe(&audio).unwrap().text;
    t.set_vocabulary(&["Kubernetes".into(), "Grafana".into()])
        .unwrap();
    let with = t.transcribe(&audio).unwrap().text;
    eprintln!("without: {without:?}\nwith:    {with:?}");
    assert!(
        !without.contains("Kubernetes") && !without.contains("Grafana"),
        "tiny.en knew them already: {without:?}"
    );
    assert!(
        with.contains("Kubernetes") && with.contains("Grafana"),
        "{with:?}"
    );
    // Cleared, the text is as before.
    t.set_vocabulary(&[]).unwrap();
    assert_eq!(t.transcribe(&audio).unwrap().text, without);
}

#[test]
fn a_vocabulary_too_long_for_the_prompt_is_refused() {
    let mut t = support::transcriber();
    let words: Vec<String> = (0..MAX_VOCABULARY_TOKENS)
        .map(|i| format!("Word{i}"))
        .collect();
    match t.set_vocabulary(&words) {
        Err(WorkerError::Usage(m)) => assert!(m.contains("vocabulary"), "{m}"),
        other => panic!("expected a usage error, got {:?}", other.err()),
    }
    assert!(t.vocabulary().is_empty(), "nothing changed");
}
