//! The pipeline the end-to-end tests drive: the real v2m-rt on the FIFO microphone, real
//! v2m-worker processes under its supervision, v2m-cli as a user runs it.
#![allow(dead_code)] // each test binary uses its own part

pub mod http;
pub mod llm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use v2m_tests::fifo_mic::{self, FifoMic, mic_pcm};
use v2m_tests::process::wait_or_kill;
use v2m_worker::eval::corpus_wer;

pub fn recording(id: &str) -> (PathBuf, String) {
    (
        v2m_tests::fixtures::librivox(id),
        v2m_tests::fixtures::librivox_transcript(id),
    )
}

pub fn bin(name: &str) -> PathBuf {
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_v2m-cli"));
    let p = cli.parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` (cargo nextest run --workspace builds it)",
        p.display()
    );
    p
}

pub fn model_check() {
    v2m_tests::require_model("tiny.en");
}

/// The supervised worker of these tests: tiny.en on the CPU with 2 threads.
pub fn tiny_worker() -> Vec<String> {
    vec![
        bin("v2m-worker").display().to_string(),
        "run".into(),
        "--ep".into(),
        "cpu".into(),
        "--threads".into(),
        "2".into(),
    ]
}

pub struct Pipeline {
    pub daemon: Child,
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub mic: FifoMic,
    /// v2m-rt's (and its workers') stderr, when captured.
    pub log: Option<PathBuf>,
}

impl Pipeline {
    /// With one tiny.en worker on the CPU, v2m-rt's output on this test's stderr.
    pub fn start(name: &str) -> Pipeline {
        Pipeline::start_with(name, &tiny_worker(), false)
    }

    /// With `worker` as the one supervised worker command; `log`: v2m-rt's stderr goes to
    /// `<dir>/v2m-rt.log` (see [`Pipeline::log_text`]).
    pub fn start_with(name: &str, worker: &[String], log: bool) -> Pipeline {
        Pipeline::start_configured(name, worker, log, "stop_timeout_ms = 60000")
    }

    /// As [`Pipeline::start_with`], `rt` being the lines of the config's `[rt]` table.
    pub fn start_configured(name: &str, worker: &[String], log: bool, rt: &str) -> Pipeline {
        model_check();
        let dir = std::env::temp_dir().join(format!("v2m-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mic = FifoMic::new(&dir);
        let socket = dir.join("control.sock");
        let config = dir.join("config.toml");
        let command: Vec<String> = worker.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &config,
            format!(
                "[rt]\n{rt}\n[[workers]]\nname = \"tiny\"\ncommand = [{}]\n",
                command.join(", ")
            ),
        )
        .unwrap();
        let log = log.then(|| dir.join("v2m-rt.log"));
        let mut cmd = Command::new(bin("v2m-rt"));
        cmd.args(["--device", fifo_mic::DEVICE, "--socket"])
            .arg(&socket)
            .arg("--config")
            .arg(&config)
            .env("XDG_CONFIG_HOME", mic.xdg_config_home())
            .stdin(Stdio::null());
        if let Some(path) = &log {
            cmd.stderr(std::fs::File::create(path).unwrap());
        }
        let daemon = cmd.spawn().unwrap();
        let mut p = Pipeline {
            daemon,
            socket,
            dir,
            mic,
            log,
        };
        // Ready when the worker has said hello (the model is loaded and warm).
        p.wait_for_worker(Duration::from_secs(300));
        p
    }

    /// Waits until a worker that owns finals is connected.
    pub fn wait_for_worker(&mut self, limit: Duration) {
        let since = Instant::now();
        while !self
            .cli(&["status"])
            .stdout_str()
            .contains("connected, owns finals")
        {
            if let Ok(Some(status)) = self.daemon.try_wait() {
                panic!("v2m-rt exited ({status}){}", self.log_text());
            }
            assert!(
                since.elapsed() < limit,
                "no worker connected within {limit:?}{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The captured log, if any, for messages.
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| format!("\nv2m-rt log:\n{t}"))
            .unwrap_or_default()
    }

    /// v2m-cli on this pipeline's socket with `args`, not started.
    fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_v2m-cli"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args).output().unwrap()
    }

    pub fn cli_spawn(&self, args: &[&str]) -> Child {
        self.cli_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The supervised worker's pid: the `v2m-worker` process among the daemon's descendants
    /// (a wrapper such as the cgroup script may stand between them).
    pub fn worker_pid(&self) -> Option<u32> {
        let mut todo = vec![self.daemon.id()];
        while let Some(pid) = todo.pop() {
            let tasks = format!("/proc/{pid}/task");
            for t in std::fs::read_dir(tasks).ok()?.flatten() {
                let children =
                    std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                    if comm.trim() == "v2m-worker" {
                        return Some(child);
                    }
                    todo.push(child);
                }
            }
        }
        None
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.cli(&["shutdown"]);
        wait_or_kill(&mut self.daemon, Duration::from_secs(10));
    }
}

pub trait OutputExt {
    fn stdout_str(&self) -> String;
    fn stderr_str(&self) -> String;
    fn code(&self) -> i32;
}

impl OutputExt for Output {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {}: {}",
        out.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout_str().trim().to_string()
}

pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let w = corpus_wer([(reference, hypothesis)]);
    eprintln!(
        "reference: {reference}\nv2m:       {hypothesis}\nWER {:.1}%",
        w * 100.0
    );
    w
}

pub fn words(s: &str) -> Vec<String> {
    v2m_worker::eval::normalize(s)
}

/// Plays `wav` into the microphone; returns when its first sample went in, and its length.
pub fn play(p: &Pipeline, wav: &Path) -> (Instant, Duration) {
    let clip = p.mic.play(&mic_pcm(wav));
    (clip.wait_started(), Duration::from_secs_f64(clip.seconds))
}

/// The bound for one utterance: WER at most 20%, or two word errors for a short one (the
/// 8-word recording streams "ill disposed" as "old-sposed" now and then: two errors).
pub fn close_enough(reference: &str, hypothesis: &str) -> bool {
    let errors = wer(reference, hypothesis) * words(reference).len() as f64;
    errors <= (0.2 * words(reference).len() as f64).max(2.0) + 1e-9
}

/// A virtual X server (Xvfb) on its own display, killed when dropped.
pub struct XServer {
    child: Child,
    pub display: String,
}

impl XServer {
    /// Starts Xvfb on a display chosen from this process' id plus `offset` (tests that run at
    /// the same time pass different offsets).
    pub fn start(offset: u32) -> XServer {
        let display = format!(":{}", offset + std::process::id() % 100);
        let child = Command::new("Xvfb")
            .args([display.as_str(), "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb missing: run scripts/setup.sh");
        XServer { child, display }
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events a `listen --json` child printed, once it has ended.
pub fn listen_events(listener: Child) -> Vec<serde_json::Value> {
    listener
        .wait_with_output()
        .unwrap()
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
