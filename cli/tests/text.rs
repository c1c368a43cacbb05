//! `[text]` on a real dictation: the worker applies the rules to provisional and final text
//! alike (spoken punctuation, a replacement fixing a word tiny.en mishears), and `stop
//! --refine` with no LLM server delivers the raw text with exit code 8 and the reason.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{Cli, OutputExt, pipeline_with, play, tiny_worker};
use v2m_tests::watchdog::Watchdog;

#[test]
fn spoken_punctuation_and_replacements_reach_provisional_and_final_text() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "text rules end to end");
    let dir = v2m_tests::fixtures::scratch("text-e2e");
    // tiny.en hears espeak-ng's "bring" as "ring": the user's table puts it right.
    let wav = dir.join("dictation.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "130", "-w"])
        .arg(&wav)
        .arg("Please bring the report period Thanks comma John")
        .status()
        .expect("espeak-ng missing: run scripts/setup.sh");
    assert!(status.success());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let config = dir.join("text.toml");
    std::fs::write(
        &config,
        format!(
            "[text]\nreplacements = {{ \"ring\" = \"bring\" }}\n[refine]\nurl = \"{nowhere}\"\ntimeout_ms = 2000\n"
        ),
    )
    .unwrap();
    let mut worker = tiny_worker();
    worker.extend(["--config".into(), config.display().to_string()]);
    let p = pipeline_with("text", &worker, false);

    let listener = p.cli_spawn(&["listen", "--json"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(p.cli(&["start"]).code(), 0);
    let (began, length) = play(&p, &wav);
    std::thread::sleep(
        (began + length + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    );
    let out = p.cli(&[
        "--config",
        &config.display().to_string(),
        "--json",
        "stop",
        "--refine",
    ]);
    let reply: serde_json::Value = serde_json::from_str(out.stdout_str().trim()).unwrap();
    let stopped = &reply["Stopped"];
    let text = stopped["text"].as_str().unwrap().to_string();
    eprintln!("final: {text:?}");
    assert!(text.contains("bring the report."), "{text:?}");
    assert!(text.contains("Thanks,"), "{text:?}");
    assert!(!text.to_lowercase().contains("period"), "{text:?}");
    // Refining was asked for and failed: the raw text, exit 8, why.
    assert_eq!(out.code(), 8);
    assert_eq!(stopped["refined"], false);
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{stopped}"
    );

    let _ = p.cli(&["shutdown"]);
    let events = support::listen_events(listener);
    let provisional: Vec<String> = events
        .iter()
        .filter_map(|e| e.get("Provisional"))
        .map(|p| {
            format!(
                "{} {}",
                p["stable"].as_str().unwrap(),
                p["tentative"].as_str().unwrap()
            )
        })
        .collect();
    eprintln!("provisional: {provisional:?}");
    assert!(!provisional.is_empty(), "provisional text while speaking");
    for p in &provisional {
        assert!(
            !p.split_whitespace().any(|w| w
                .trim_matches(|c: char| !c.is_alphabetic())
                .eq_ignore_ascii_case("period")),
            "a spoken command shown as a word: {p:?}"
        );
    }
    let finals: Vec<&serde_json::Value> = events.iter().filter_map(|e| e.get("Final")).collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(
        finals[0]["text"].as_str().unwrap(),
        text,
        "listeners get the same text"
    );
}
