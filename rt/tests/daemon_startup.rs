//! Starting v2m-rt: missing inputs and bad configuration are clear errors with a non-zero
//! exit; configured workers are supervised (restarted with backoff, stopped on shutdown).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{Daemon, scratch};
use v2m_shm_proto::protocol::{Reply, RequestBody};
use v2m_tests::watchdog::Watchdog;

fn rt(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-rt"))
        .args(args)
        .arg("--socket")
        .arg(dir.join("control.sock"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-empty"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_microphone_and_no_file_is_a_clear_error() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "no microphone");
    let dir = scratch("nomic");
    let (ok, err) = rt(&["--device", "alsa:v2m-no-such-device"], &dir);
    assert!(!ok);
    assert!(
        err.contains("no input device named 'alsa:v2m-no-such-device'"),
        "{err}"
    );
    assert!(!dir.join("control.sock").exists());
    let (ok, err) = rt(&["--input", "/nonexistent.wav"], &dir);
    assert!(!ok);
    assert!(err.contains("/nonexistent.wav"), "{err}");
}

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "bad config");
    let dir = scratch("badconfig");
    for (text, key) in [
        ("[rt]\nprerol_ms = 3\n", "prerol_ms"),
        ("[rt]\nvad_mode = 9\n", "vad_mode"),
        ("[sound]\ndevice = \"x\"\n", "sound"),
        ("[[workers]]\nname = \"w\"\n", "command"),
    ] {
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        let (ok, err) = rt(&["--config", path.to_str().unwrap()], &dir);
        assert!(!ok, "{text}");
        assert!(
            err.contains(key) && err.contains("config.toml"),
            "{text:?}: {err}"
        );
    }
    let (ok, err) = rt(&["--vad-mode", "5"], &dir);
    assert!(!ok && err.contains("vad_mode"), "{err}");
    let (ok, err) = rt(&["--config", "/nonexistent/config.toml"], &dir);
    assert!(!ok && err.contains("/nonexistent/config.toml"), "{err}");
}

#[test]
fn configured_workers_are_restarted_with_backoff_and_stopped_on_shutdown() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "supervision");
    let dir = scratch("supervision-files");
    let pidfile = dir.join("sleeper.pid");
    let starts = dir.join("crasher.starts");
    let config = format!(
        "[[workers]]\nname = \"crasher\"\ncommand = [\"sh\", \"-c\", \"date +%s%N >> {}; exit 3\"]\n\
         [[workers]]\nname = \"sleeper\"\ncommand = [\"sh\", \"-c\", \"echo $$ $V2M_WORKER_NAME $V2M_CONFIG > {}; exec sleep 600\"]\n",
        starts.display(),
        pidfile.display()
    );
    let mut d = Daemon::start("supervision", &[], Some(&config));
    // The crasher exits at once, again and again: restarted with growing backoff. Its own
    // start times (written by it) are at least each backoff apart, however loaded the machine.
    let t = Instant::now();
    let started: Vec<u128> = loop {
        let lines: Vec<u128> = std::fs::read_to_string(&starts)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if lines.len() >= 4 {
            break lines;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "four starts of the crasher: {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let gaps_ms: Vec<u128> = started
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    for (gap, backoff) in gaps_ms.iter().zip([500, 1000, 2000]) {
        assert!(
            *gap >= backoff,
            "restart gaps {gaps_ms:?} ms, backoff {backoff} ms"
        );
    }
    let crasher = d
        .status()
        .workers
        .into_iter()
        .find(|w| w.identity.name == "crasher");
    let crasher = crasher.expect("the crasher in status");
    assert!(!crasher.connected && crasher.restarts >= 3, "{crasher:?}");
    let pid_line = loop {
        if let Ok(s) = std::fs::read_to_string(&pidfile)
            && s.ends_with('\n')
        {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the sleeper never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let fields: Vec<&str> = pid_line.split_whitespace().collect();
    let [pid, name, config] = fields[..] else {
        panic!("the sleeper wrote {pid_line:?}")
    };
    assert_eq!(name, "sleeper", "the worker learns its name");
    // And the config file v2m-rt was given, for its [worker] and [text] tables.
    let given = std::fs::canonicalize(d.dir.join("config.toml")).unwrap();
    assert_eq!(std::path::Path::new(config), given);
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    // Shutdown: the sleeper never says hello nor exits by itself; it is terminated.
    assert_eq!(
        d.client().request(RequestBody::Shutdown).unwrap(),
        Reply::ShuttingDown
    );
    assert!(d.wait_exit().success());
    let gone = Instant::now();
    while proc_dir.exists() && gone.elapsed() < Duration::from_secs(5) {
        // It may linger as a zombie of nobody; its status says so.
        let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        if state.contains(") Z") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z"),
        "worker still running: {state}"
    );
}
