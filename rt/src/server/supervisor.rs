//! Worker processes v2m-rt starts from the config: started at launch, restarted with
//! exponential backoff when they exit, told to stop (then terminated, then killed) on
//! shutdown. Each child is waited on by its own thread, which reports the exit to the core.

use super::backoff::Backoff;
use super::input::Input;
use crate::config::WorkerCommand;
use crossbeam::channel::Sender;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Backoff before the first restart; doubles per quick exit.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// One supervised worker.
pub struct Supervised {
    /// Its configuration.
    pub spec: WorkerCommand,
    /// Its process, while running.
    pub pid: Option<u32>,
    /// Times it was restarted.
    pub restarts: u32,
    started_at: Instant,
    backoff: Backoff,
    /// When to start it again, after an exit.
    pub restart_at: Option<Instant>,
}

/// The supervised workers.
pub struct Supervisor {
    /// Each configured worker.
    pub workers: Vec<Supervised>,
    socket: PathBuf,
    config: Option<PathBuf>,
    core: Sender<Input>,
    stopping: bool,
}

impl Supervisor {
    /// Supervisor of `specs`, whose children connect to `socket` and read `config` (the file
    /// v2m-rt was told to read, as `V2M_CONFIG`: its `[worker]` and `[text]` tables are theirs).
    pub fn new(
        specs: Vec<WorkerCommand>,
        socket: PathBuf,
        config: Option<PathBuf>,
        core: Sender<Input>,
    ) -> Supervisor {
        let workers = specs
            .into_iter()
            .map(|spec| Supervised {
                spec,
                pid: None,
                restarts: 0,
                started_at: Instant::now(),
                backoff: Backoff::new(FIRST_BACKOFF, MAX_BACKOFF),
                restart_at: Some(Instant::now()),
            })
            .collect();
        Supervisor {
            workers,
            socket,
            config,
            core,
            stopping: false,
        }
    }

    /// Starts every worker whose (re)start is due.
    pub fn tick(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        for index in 0..self.workers.len() {
            let w = &self.workers[index];
            if w.pid.is_none() && w.restart_at.is_some_and(|t| t <= now) {
                self.start(index);
            }
        }
    }

    fn start(&mut self, index: usize) {
        let w = &mut self.workers[index];
        w.restart_at = None;
        let mut cmd = Command::new(&w.spec.command[0]);
        cmd.args(&w.spec.command[1..])
            .env("V2M_SOCKET", &self.socket)
            .env("V2M_WORKER_NAME", &w.spec.name)
            .stdin(Stdio::null());
        if let Some(config) = &self.config {
            cmd.env("V2M_CONFIG", config);
        }
        match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id();
                log::info!("worker {}: started (pid {pid})", w.spec.name);
                w.pid = Some(pid);
                w.started_at = Instant::now();
                let core = self.core.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("v2m-sup{index}"))
                    .spawn(move || {
                        let status = match child.wait() {
                            Ok(s) => s.to_string(),
                            Err(e) => format!("wait failed: {e}"),
                        };
                        let _ = core.send(Input::ChildExited { index, pid, status });
                    });
                if spawned.is_err() {
                    log::error!("worker {}: cannot watch its process", w.spec.name);
                }
            }
            Err(e) => {
                log::error!(
                    "worker {}: cannot start {:?}: {e}; retrying in {:?}",
                    w.spec.name,
                    w.spec.command[0],
                    w.backoff.peek()
                );
                self.schedule(index);
            }
        }
    }

    fn schedule(&mut self, index: usize) {
        let w = &mut self.workers[index];
        w.restart_at = Some(Instant::now() + w.backoff.next_delay());
    }

    /// When the next (re)start is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.stopping {
            return None;
        }
        self.workers.iter().filter_map(|w| w.restart_at).min()
    }

    /// The supervised workers' names.
    pub fn names(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.spec.name.clone()).collect()
    }

    /// A child exited: schedule its restart (unless shutting down). Returns its name.
    pub fn exited(&mut self, index: usize, pid: u32, status: &str) -> Option<String> {
        let stopping = self.stopping;
        let w = self.workers.get_mut(index)?;
        if w.pid != Some(pid) {
            return None;
        }
        w.pid = None;
        if stopping {
            log::info!("worker {}: exited ({status})", w.spec.name);
            return Some(w.spec.name.clone());
        }
        if w.started_at.elapsed() >= HEALTHY_RUN {
            w.backoff.reset();
        }
        w.restarts += 1;
        log::warn!(
            "worker {}: exited ({status}); restarting in {:?}",
            w.spec.name,
            w.backoff.peek()
        );
        let name = w.spec.name.clone();
        self.schedule(index);
        Some(name)
    }

    /// Restarts of the worker called `name`, if supervised.
    pub fn restarts_of(&self, name: &str) -> Option<u32> {
        self.workers
            .iter()
            .find(|w| w.spec.name == name)
            .map(|w| w.restarts)
    }

    /// No more restarts.
    pub fn begin_stop(&mut self) {
        self.stopping = true;
    }

    /// Whether any child still runs.
    pub fn any_running(&self) -> bool {
        self.workers.iter().any(|w| w.pid.is_some())
    }

    /// Sends `signal` to every running child.
    pub fn signal_all(&self, signal: Signal) {
        for w in &self.workers {
            if let Some(pid) = w.pid {
                let _ = kill(Pid::from_raw(pid as i32), signal);
            }
        }
    }
}
