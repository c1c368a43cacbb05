//! The latency tool end to end: real recordings through the FIFO microphone into the real
//! v2m-rt and worker (tiny.en), rows, JSON lines and the summary line scripts/latency.sh reads.
//!
//! Needs the model (scripts/setup-model.sh tiny.en) and the workspace's binaries built
//! (`cargo nextest run --workspace` builds them).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use v2m_tests::latency::measure::Measurement;
use v2m_tests::watchdog::Watchdog;

fn scratch(name: &str) -> PathBuf {
    v2m_tests::fixtures::scratch(&format!("latency-{name}"))
}

fn latency() -> Command {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_v2m-latency"));
    for needed in ["v2m-rt", "v2m-worker"] {
        assert!(
            exe.with_file_name(needed).exists(),
            "{needed} is not built beside v2m-latency: run `cargo build --workspace`"
        );
    }
    Command::new(exe)
}

/// The `key=value` figures of `line` (which starts with `prefix`), every value a number.
fn fields_of(prefix: &str, line: &str) -> Vec<(String, f64)> {
    let rest = line.strip_prefix(prefix).expect(line);
    rest.split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect(kv);
            let v: f64 = v.trim_end_matches('%').parse().expect(kv);
            (k.to_string(), v)
        })
        .collect()
}

#[test]
fn a_folder_of_recordings_is_measured_end_to_end() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "latency measurement");
    v2m_tests::require_model("tiny.en");
    // A set as a user brings one: WAV files with NAME.txt transcripts.
    let set = scratch("set");
    let wav = v2m_tests::fixtures::SPEECH;
    std::fs::copy(wav, set.join("dashwood.wav")).expect("pocketsphinx-testdata: scripts/setup.sh");
    std::fs::write(
        set.join("dashwood.txt"),
        "and mister john dashwood had then leisure to consider how much there might be \
         prudently in his power to do for them\n",
    )
    .unwrap();
    let runs = set.join("runs.jsonl");
    let out = latency()
        .args(["measure", "--delays", "0,400", "--set"])
        .arg(&set)
        .arg("--out")
        .arg(&runs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());

    let lines: Vec<&str> = stdout.lines().collect();
    // Last: streaming finals against the offline transcripts of the same recording.
    let streaming = fields_of("streaming: ", lines[lines.len() - 1]);
    let names: Vec<&str> = streaming.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "n",
            "wer",
            "offline_wer",
            "final_pass_p50_ms",
            "offline_wer_phase_min",
            "offline_wer_phase_max"
        ]
    );
    let got = |f: &[(String, f64)], k: &str| f.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!(got(&streaming, "n"), 2.0);
    assert!(got(&streaming, "offline_wer") <= 20.0);
    // The offline WER at the file's own frame phase lies within its spread over the phases.
    let (lo, hi) = (
        got(&streaming, "offline_wer_phase_min"),
        got(&streaming, "offline_wer_phase_max"),
    );
    assert!(lo <= got(&streaming, "offline_wer") && got(&streaming, "offline_wer") <= hi);
    // One pass over ~7 s of audio on tiny.en: far from zero, far below seconds.
    assert!((50.0..5_000.0).contains(&got(&streaming, "final_pass_p50_ms")));
    // A line per stop delay.
    for delay in [0.0, 400.0] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("latency: delay_ms={delay} ")))
            .unwrap_or_else(|| panic!("no line for delay {delay}: {stdout}"));
        let f = fields_of("latency: ", line);
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "delay_ms",
                "n",
                "stop_to_final_p50_ms",
                "stop_to_final_p95_ms",
                "first_provisional_p50_ms",
                "wer"
            ]
        );
        assert_eq!(got(&f, "n"), 1.0);
    }
    assert!(lines.iter().any(|l| l.starts_with("set: name=")));
    // Then the overall line with every figure.
    let last = lines[lines.len() - 2];
    let fields = fields_of("latency: ", last);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "n",
            "stop_to_final_p50_ms",
            "stop_to_final_p95_ms",
            "first_provisional_p50_ms",
            "provisional_interval_p50_ms",
            "capture_to_worker_p99_ms",
            "wer"
        ]
    );
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!(get("n"), 2.0);
    assert!(get("wer") <= 20.0, "{last}");
    assert!(get("stop_to_final_p50_ms") > 0.0);
    assert!(get("capture_to_worker_p99_ms") > 0.0);
    // A provisional pass every ~500 ms while speaking (the worker's policy).
    let interval = get("provisional_interval_p50_ms");
    assert!((300.0..1500.0).contains(&interval), "{last}");

    let measured: Vec<Measurement> = std::fs::read_to_string(&runs)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(measured.len(), 2);
    for (m, delay) in measured.iter().zip([0, 400]) {
        assert_eq!(m.utterance, "dashwood");
        assert_eq!(m.stop_delay_ms, delay);
        // Stop is pressed `delay` after the speech ends, so the final comes at least that late.
        assert!(
            m.speech_end_to_final_ms >= m.stop_to_final_ms + delay as f64 - 1.0,
            "{m:?}"
        );
        assert!(m.speech_ms > 5_000.0 && m.speech_ms < 7_100.0, "{m:?}");
        assert!(m.first_provisional_ms.is_some(), "{m:?}");
        // Every live frame of ~7 s of audio was read and timed by the worker.
        let frames = m.capture_to_read.frames();
        assert!(frames > 250, "{frames} frames timed");
    }
    for m in &measured {
        assert_eq!(
            m.offline.as_deref().map(str::is_empty),
            Some(false),
            "{m:?}"
        );
        // And offline at the three later frame phases.
        assert_eq!(m.offline_phases.len(), 3, "{m:?}");
        assert!(m.offline_phases.iter().all(|t| !t.is_empty()), "{m:?}");
        assert!(m.final_pass_ms.is_some() || m.speculative, "{m:?}");
    }
    // `summary` reads the runs back to the same lines.
    let again = latency().arg("summary").arg(&runs).output().unwrap();
    let again = String::from_utf8_lossy(&again.stdout).to_string();
    assert_eq!(
        again.lines().rev().take(2).collect::<Vec<_>>(),
        lines.iter().rev().take(2).copied().collect::<Vec<_>>()
    );
}

#[test]
fn a_recording_without_a_transcript_is_refused_by_name() {
    let set = scratch("bad");
    let wav = v2m_tests::fixtures::librivox("0880");
    std::fs::copy(wav, set.join("lonely.wav")).unwrap();
    let out = latency()
        .args(["measure", "--set"])
        .arg(&set)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("lonely.wav: no transcript"), "{err}");
    // A folder without recordings, and delays that are not numbers.
    let empty = scratch("empty");
    let out = latency()
        .args(["measure", "--set"])
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no .wav files"));
    let out = latency()
        .args(["measure", "--delays", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let out = latency()
        .args(["summary", "/nonexistent/runs.jsonl"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/runs.jsonl"));
}
