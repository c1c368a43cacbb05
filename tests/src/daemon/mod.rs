//! The one harness for a real v2m-rt in its own process on the FIFO microphone, used by rt's,
//! the cli's and the latency tool's tests alike; and [`fake`], a test in v2m-rt's role for the
//! worker's tests. Every wait has its own deadline.

pub mod fake;

use crate::fifo_mic::{self, FifoMic};
use crate::process::wait_or_kill;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::protocol::{Event, Reply, RequestBody, StatusReport};

/// A binary of this workspace, built beside the running executable (a test's `deps/` folder is
/// one level below it, a tool sits beside it); fails saying how to build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let here = exe.parent().expect("the executable's folder");
    let found = [Some(here), here.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not built beside {}: run `cargo build --workspace` \
             (`cargo nextest run --workspace` builds it)",
            here.display()
        )
    })
}

/// What to do with the daemon when its [`Daemon`] is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDrop {
    /// Kill it at once (a test of the daemon itself: nothing to wait for).
    Kill,
    /// Ask it to shut down (its workers exit cleanly), kill it after 10 s.
    Shutdown,
}

/// How v2m-rt is started: [`DaemonOptions::new`], then the builder methods, then
/// [`DaemonOptions::start`].
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    rt: PathBuf,
    dir: PathBuf,
    device: String,
    wrapper: Vec<String>,
    args: Vec<String>,
    config: Option<String>,
    log: bool,
    rust_log: Option<String>,
    on_drop: OnDrop,
    listen_timeout: Duration,
}

impl DaemonOptions {
    /// v2m-rt built beside this executable, its FIFO microphone, socket and files in `dir`
    /// (created if missing), on the FIFO microphone, no config, its output on this process's
    /// stderr, killed when dropped.
    pub fn new(dir: impl Into<PathBuf>) -> DaemonOptions {
        DaemonOptions {
            rt: bin("v2m-rt"),
            dir: dir.into(),
            device: fifo_mic::DEVICE.to_string(),
            wrapper: Vec::new(),
            args: Vec::new(),
            config: None,
            log: false,
            rust_log: Some("info".into()),
            on_drop: OnDrop::Kill,
            listen_timeout: Duration::from_secs(60),
        }
    }

    /// Another v2m-rt executable.
    pub fn rt(mut self, path: impl Into<PathBuf>) -> Self {
        self.rt = path.into();
        self
    }

    /// Capture from `device` instead of the FIFO microphone.
    pub fn device(mut self, device: &str) -> Self {
        self.device = device.to_string();
        self
    }

    /// Run it through `wrapper`, a command that execs the rest of its arguments (such as
    /// `prlimit --nofile=1024 --`).
    pub fn wrapper(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    /// More command-line arguments.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(
            args.into_iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned()),
        );
        self
    }

    /// A config file with `text`, written to `<dir>/config.toml` and passed with `--config`.
    pub fn config(mut self, text: &str) -> Self {
        self.config = Some(text.to_string());
        self
    }

    /// Its stdout and stderr (and its workers') to `<dir>/v2m-rt.log` (see
    /// [`Daemon::log_text`]).
    pub fn log(mut self) -> Self {
        self.log = true;
        self
    }

    /// `RUST_LOG` for it; `None` leaves this process's own.
    pub fn rust_log(mut self, filter: Option<&str>) -> Self {
        self.rust_log = filter.map(str::to_string);
        self
    }

    /// What dropping the [`Daemon`] does.
    pub fn on_drop(mut self, on_drop: OnDrop) -> Self {
        self.on_drop = on_drop;
        self
    }

    /// Starts v2m-rt and waits (60 s at most) until it listens.
    pub fn start(self) -> Result<Daemon, String> {
        self.start_prepared(|_, _| {})
    }

    /// As [`DaemonOptions::start`]; `prepare` gets the scratch folder and the
    /// `XDG_CONFIG_HOME` (whose ALSA configuration has the FIFO microphone) first.
    pub fn start_prepared(self, prepare: impl FnOnce(&Path, &Path)) -> Result<Daemon, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mic = FifoMic::new(&self.dir);
        prepare(&self.dir, mic.xdg_config_home());
        let socket = self.dir.join("control.sock");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&self.rt);
                c
            }
            None => Command::new(&self.rt),
        };
        cmd.args(["--device", &self.device, "--socket"])
            .arg(&socket)
            .args(&self.args)
            .env("XDG_CONFIG_HOME", mic.xdg_config_home())
            .stdin(Stdio::null());
        if let Some(filter) = &self.rust_log {
            cmd.env("RUST_LOG", filter);
        }
        if let Some(text) = &self.config {
            let path = self.dir.join("config.toml");
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            cmd.arg("--config").arg(path);
        }
        let log = if self.log {
            let path = self.dir.join("v2m-rt.log");
            let file =
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            cmd.stdout(file.try_clone().map_err(|e| e.to_string())?)
                .stderr(file);
            Some(path)
        } else {
            None
        };
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", self.rt.display()))?;
        let mut d = Daemon {
            child,
            socket,
            dir: self.dir,
            mic,
            log,
            on_drop: self.on_drop,
        };
        d.wait_listening(self.listen_timeout)?;
        Ok(d)
    }
}

/// A running v2m-rt; ended as its options said when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its scratch folder.
    pub dir: PathBuf,
    /// The microphone it listens to.
    pub mic: FifoMic,
    /// Where its output goes, when captured.
    pub log: Option<PathBuf>,
    on_drop: OnDrop,
}

impl Daemon {
    /// v2m-rt on the FIFO microphone with `args` and a config with `config` (if any), in a fresh
    /// scratch folder named after `name`; fails the test if it does not come up.
    pub fn start(name: &str, args: &[&str], config: Option<&str>) -> Daemon {
        let mut opts = DaemonOptions::new(crate::fixtures::scratch(name)).args(args);
        if let Some(text) = config {
            opts = opts.config(text);
        }
        opts.start().unwrap_or_else(|e| panic!("{e}"))
    }

    fn wait_listening(&mut self, within: Duration) -> Result<(), String> {
        self.poll(within, Duration::from_millis(20), "listening", |socket| {
            UnixStream::connect(socket).is_ok()
        })
    }

    /// Waits until a worker that owns finals is connected (its model loaded and warm).
    pub fn wait_for_worker(&mut self, within: Duration) -> Result<(), String> {
        self.poll(within, Duration::from_millis(100), "a worker connected", |socket| {
            Client::connect(socket)
                .ok()
                .and_then(|mut c| c.request(RequestBody::Status).ok())
                .is_some_and(|r| {
                    matches!(r, Reply::Status(s) if s.workers.iter().any(|w| w.connected && w.owns_finals))
                })
        })
    }

    /// Checks `ready` on the socket every `every` until it holds; fails when the daemon exits
    /// or `within` passes, naming `what` and with the log.
    fn poll(
        &mut self,
        within: Duration,
        every: Duration,
        what: &str,
        ready: impl Fn(&Path) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "v2m-rt exited ({status}) before {what}{}",
                    self.log_text()
                ));
            }
            if ready(&self.socket) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not {what} within {within:?}{}", self.log_text()));
            }
            std::thread::sleep(every);
        }
    }

    /// The captured output, if any, for messages (empty when not captured).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| format!("\nv2m-rt log:\n{t}"))
            .unwrap_or_default()
    }

    /// A new control connection.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to v2m-rt")
    }

    /// A connection subscribed to events (with metrics) and a thread that stamps each event
    /// with the instant it arrived.
    pub fn subscribe(&self) -> Result<Receiver<(Instant, Event)>, String> {
        let mut sub = Client::connect(&self.socket).map_err(|e| e.to_string())?;
        sub.request(RequestBody::Subscribe { metrics: true })
            .map_err(|e| e.to_string())?;
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(e) = sub.next_event(None) {
                if tx.send((Instant::now(), e)).is_err() {
                    return;
                }
            }
        });
        Ok(events)
    }

    /// Its status report.
    pub fn status(&self) -> StatusReport {
        match self.client().request(RequestBody::Status).unwrap() {
            Reply::Status(s) => s,
            other => panic!("status answered {other:?}"),
        }
    }

    /// Waits until the ring has `frames` more frames than now.
    pub fn wait_frames(&self, frames: u64) {
        let from = self.status().ring.frames_written;
        let within = Duration::from_millis(frames * 20) + Duration::from_secs(30);
        self.wait_status(within, "ring frames", |s| {
            s.ring.frames_written >= from + frames
        });
    }

    /// Polls status until `ok` holds; fails naming `what` after `within`.
    pub fn wait_status(&self, within: Duration, what: &str, ok: impl Fn(&StatusReport) -> bool) {
        let since = Instant::now();
        loop {
            let s = self.status();
            if ok(&s) {
                return;
            }
            assert!(
                since.elapsed() < within,
                "{what}: not within {within:?}: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (5 minutes at most) for the daemon to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "v2m-rt still running after 5 minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The supervised worker's pid: the `v2m-worker` process among the daemon's descendants
    /// (a wrapper such as the cgroup script may stand between them).
    pub fn worker_pid(&self) -> Option<u32> {
        let mut todo = vec![self.child.id()];
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

impl Drop for Daemon {
    fn drop(&mut self) {
        match self.on_drop {
            OnDrop::Kill => wait_or_kill(&mut self.child, Duration::ZERO),
            OnDrop::Shutdown => {
                if let Ok(mut c) = Client::connect(&self.socket) {
                    let _ = c.set_timeout(Some(Duration::from_secs(5)));
                    let _ = c.request(RequestBody::Shutdown);
                }
                wait_or_kill(&mut self.child, Duration::from_secs(10));
            }
        }
    }
}
