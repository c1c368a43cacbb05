//! The whole pipeline end to end: the real v2m-rt on the FIFO microphone fed real recorded
//! speech at real-time pace, the real v2m-worker (tiny.en int8, CPU) under v2m-rt's
//! supervision, and v2m-cli as a user runs it.
//!
//! Needs the model: scripts/setup-model.sh tiny.en. Needs the workspace's binaries built
//! (`cargo nextest run --workspace` builds them).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::*;
use v2m_tests::watchdog::Watchdog;

#[test]
fn dictation_through_the_whole_pipeline() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "end to end");
    let p = pipeline("dictation");
    let (wav, reference) = recording("0870");

    // start 100 ms after the speech begins, stop right at its end: pre-roll keeps the first
    // word, and the last one is there too.
    let (began, length) = play(&p, &wav);
    std::thread::sleep(
        (began + Duration::from_millis(100)).saturating_duration_since(Instant::now()),
    );
    assert!(ok(p.cli(&["start"])).starts_with("recording"));
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    let text = ok(p.cli(&["stop"]));
    assert!(close_enough(&reference, &text));
    let (r, h) = (words(&reference), words(&text));
    assert_eq!(h.first(), r.first(), "first word lost");
    assert_eq!(h.last(), r.last(), "last word lost");

    // toggle, with a listener: provisional text during speech and exactly one final.
    let listener = p.cli_spawn(&["listen", "--json"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(ok(p.cli(&["toggle"])).starts_with("recording"));
    let (wav2, reference2) = recording("0880");
    let (began, length) = play(&p, &wav2);
    std::thread::sleep(
        (began + length + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    );
    let text = ok(p.cli(&["toggle", "--json"]));
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
    let text = reply["Stopped"]["text"].as_str().unwrap().to_string();
    assert!(close_enough(&reference2, &text));
    std::thread::sleep(Duration::from_millis(300));
    let _ = p.cli(&["shutdown"]).code(); // ends the listener's stream, checked below
    let events = support::listen_events(listener);
    let provisional = events
        .iter()
        .filter(|e| e.get("Provisional").is_some())
        .count();
    let finals: Vec<&serde_json::Value> =
        events.iter().filter(|e| e.get("Final").is_some()).collect();
    eprintln!("listen: {provisional} provisional, {} final", finals.len());
    assert!(provisional >= 3, "provisional text while speaking");
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0]["Final"]["text"].as_str().unwrap(), text);
}

#[test]
fn cancel_pause_resume_transcribe_no_speech_and_errors() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "end to end, other commands");
    let p = pipeline("commands");
    let (wav, reference) = recording("0880");

    // transcribe FILE (a relative path works too).
    let text = ok(p.cli(&["transcribe", wav.to_str().unwrap()]));
    assert!(close_enough(&reference, &text));

    // cancel: no text; then stop has nothing to stop (refused, exit 6).
    ok(p.cli(&["start"]));
    std::thread::sleep(Duration::from_millis(500));
    assert!(ok(p.cli(&["cancel"])).starts_with("cancelled"));
    let out = p.cli(&["stop"]);
    assert_eq!(out.code(), 6, "{}", String::from_utf8_lossy(&out.stderr));

    // Silence: "no speech detected", exit 4.
    ok(p.cli(&["start"]));
    std::thread::sleep(Duration::from_millis(1500));
    let out = p.cli(&["stop"]);
    assert_eq!(out.code(), 4);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no speech detected"));

    // pause: start refused (exit 6, says paused); resume: dictation works again.
    ok(p.cli(&["pause"]));
    let out = p.cli(&["start"]);
    assert_eq!(out.code(), 6);
    assert!(String::from_utf8_lossy(&out.stderr).contains("paused"));
    ok(p.cli(&["resume"]));
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    assert!(close_enough(&reference, &ok(p.cli(&["stop"]))));

    // kill -9 of a client mid-request: the daemon serves the next one.
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    std::thread::sleep((began + length / 2).saturating_duration_since(Instant::now()));
    let mut stopper = p.cli_spawn(&["stop"]);
    // Killed once its request is in (the session is no longer recording), before the answer.
    while ok(p.cli(&["status"])).contains("state: Recording") {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = stopper.kill();
    let _ = stopper.wait();
    assert_eq!(ok(p.cli(&["ping"])), "pong");
    let idle = Instant::now();
    while !ok(p.cli(&["status"])).contains("state: Idle") {
        assert!(
            idle.elapsed() < Duration::from_secs(60),
            "the session never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // --json on errors, and a daemon that is not running: exit 3.
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-cli"))
        .args(["--socket", "/nonexistent/v2m.sock", "--json", "ping"])
        .output()
        .unwrap();
    assert_eq!(out.code(), 3);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("not running"));
    let _ = &p.dir;
}

#[test]
fn a_worker_killed_mid_utterance_is_restarted_and_stop_returns_the_whole_text() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "worker kill -9");
    let p = pipeline("kill");
    let (wav, reference) = recording("0870");
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    std::thread::sleep((began + length / 2).saturating_duration_since(Instant::now()));
    let pid = p.worker_pid().expect("the supervised worker runs");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    let text = ok(p.cli(&["stop"]));
    assert!(close_enough(&reference, &text), "{text}");
    let status = ok(p.cli(&["status"]));
    assert!(status.contains("restarts 1"), "{status}");
    assert_ne!(p.worker_pid(), Some(pid));
}

#[test]
fn clipboard_under_a_real_x_server_holds_the_text() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "clipboard");
    let p = pipeline("clipboard");
    let xvfb = support::XServer::start(90);
    let display = xvfb.display.clone();
    std::thread::sleep(Duration::from_millis(500));
    let (wav, reference) = recording("0880");
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-cli"))
        .arg("--socket")
        .arg(&p.socket)
        .args(["transcribe", "--clipboard", wav.to_str().unwrap()])
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let text = ok(out);
    assert!(close_enough(&reference, &text));
    let clip = Command::new("xclip")
        .args(["-selection", "clipboard", "-o"])
        .env("DISPLAY", &display)
        .output()
        .unwrap();
    drop(xvfb);
    assert_eq!(String::from_utf8_lossy(&clip.stdout).trim(), text);
    // No tool for the session: the text is still printed, exit 7 names what to install.
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-cli"))
        .arg("--socket")
        .arg(&p.socket)
        .args(["transcribe", "--clipboard", wav.to_str().unwrap()])
        .env("WAYLAND_DISPLAY", "wayland-v2m-test")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.code(), 7);
    assert!(!out.stdout_str().trim().is_empty(), "the text is printed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wl-clipboard"));
}
