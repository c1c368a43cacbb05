//! The pipeline the end-to-end tests drive: the real v2m-rt on the FIFO microphone, real
//! v2m-worker processes under its supervision, v2m-cli as a user runs it.
#![allow(dead_code)] // each test binary uses its own part

pub mod http;
pub mod llm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use v2m_tests::daemon::{DaemonOptions, OnDrop};
use v2m_tests::fifo_mic::mic_pcm;
use v2m_worker::eval::corpus_wer;

pub fn recording(id: &str) -> (PathBuf, String) {
    (
        v2m_tests::fixtures::librivox(id),
        v2m_tests::fixtures::librivox_transcript(id),
    )
}

pub use v2m_tests::daemon::{Daemon, bin};

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

/// The real v2m-rt on the FIFO microphone with one tiny.en worker on the CPU, its output on
/// this test's stderr; ready when the worker is.
pub fn pipeline(name: &str) -> Daemon {
    pipeline_with(name, &tiny_worker(), false)
}

/// With `worker` as the one supervised worker command; `log`: v2m-rt's output goes to
/// `<dir>/v2m-rt.log` (see [`Daemon::log_text`]).
pub fn pipeline_with(name: &str, worker: &[String], log: bool) -> Daemon {
    pipeline_configured(name, worker, log, "stop_timeout_ms = 60000")
}

/// As [`pipeline_with`], `rt` being the lines of the config's `[rt]` table.
pub fn pipeline_configured(name: &str, worker: &[String], log: bool, rt: &str) -> Daemon {
    model_check();
    let command: Vec<String> = worker.iter().map(|a| format!("{a:?}")).collect();
    let config = format!(
        "[rt]\n{rt}\n[[workers]]\nname = \"tiny\"\ncommand = [{}]\n",
        command.join(", ")
    );
    let mut opts = DaemonOptions::new(v2m_tests::fixtures::scratch(&format!("e2e-{name}")))
        .config(&config)
        .rust_log(None)
        .on_drop(OnDrop::Shutdown);
    if log {
        opts = opts.log();
    }
    let mut p = opts.start().unwrap_or_else(|e| panic!("{e}"));
    // Ready when the worker has said hello (the model is loaded and warm).
    p.wait_for_worker(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

/// v2m-cli against a pipeline.
pub trait Cli {
    /// v2m-cli on this pipeline's socket with `args`, run to its end.
    fn cli(&self, args: &[&str]) -> Output;
    /// v2m-cli on this pipeline's socket with `args`, its output piped, not waited for.
    fn cli_spawn(&self, args: &[&str]) -> Child;
}

fn cli_command(socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_v2m-cli"));
    cmd.arg("--socket").arg(socket).args(args);
    cmd
}

impl Cli for Daemon {
    fn cli(&self, args: &[&str]) -> Output {
        cli_command(&self.socket, args).output().unwrap()
    }

    fn cli_spawn(&self, args: &[&str]) -> Child {
        cli_command(&self.socket, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
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
pub fn play(p: &Daemon, wav: &Path) -> (Instant, Duration) {
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
