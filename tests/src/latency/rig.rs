//! The pipeline under measurement: the FIFO microphone, v2m-rt on it with its supervised
//! worker, a control connection and a subscribed one whose events are stamped on arrival.

use crate::fifo_mic::{self, FifoMic};
use crate::process::wait_or_kill;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::protocol::{Event, Reply, RequestBody};

/// How v2m-rt is started.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// The v2m-rt executable.
    pub rt: PathBuf,
    /// A config file for it (workers, pre-roll…); without one it supervises its default worker.
    pub config: Option<PathBuf>,
    /// Scratch folder: FIFO, ALSA config, socket, log.
    pub dir: PathBuf,
    /// How long to wait for a worker to connect (model load and warm-up).
    pub ready_timeout: Duration,
}

/// The running pipeline.
pub struct Rig {
    /// The microphone v2m-rt listens to.
    pub mic: FifoMic,
    /// Requests go here.
    pub control: Client,
    /// Every event, with the instant it arrived.
    pub events: Receiver<(Instant, Event)>,
    daemon: Child,
}

impl Rig {
    /// Creates the microphone, starts v2m-rt on it and waits for a worker.
    pub fn start(opts: &RigOptions) -> Result<Rig, String> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
        let mic = FifoMic::new(&opts.dir);
        let socket = opts.dir.join("control.sock");
        let log_path = opts.dir.join("v2m-rt.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut cmd = Command::new(&opts.rt);
        cmd.args(["--device", fifo_mic::DEVICE, "--default-worker", "--socket"])
            .arg(&socket)
            .env("XDG_CONFIG_HOME", mic.xdg_config_home())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(c) = &opts.config {
            cmd.arg("--config").arg(c);
        }
        let mut daemon = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", opts.rt.display()))?;
        match connect(&socket, opts.ready_timeout, &mut daemon) {
            Ok((control, events)) => Ok(Rig {
                mic,
                control,
                events,
                daemon,
            }),
            Err(why) => {
                wait_or_kill(&mut daemon, Duration::ZERO);
                Err(format!("{why} (log: {})", log_path.display()))
            }
        }
    }
}

/// Waits for v2m-rt to answer with a worker that owns finals; then a control connection and a
/// subscribed one whose events a thread stamps on arrival.
fn connect(
    socket: &Path,
    timeout: Duration,
    daemon: &mut Child,
) -> Result<(Client, Receiver<(Instant, Event)>), String> {
    let started = Instant::now();
    let control = loop {
        if let Ok(Some(st)) = daemon.try_wait() {
            return Err(format!("v2m-rt exited: {st}"));
        }
        if started.elapsed() > timeout {
            return Err("no worker connected in time".into());
        }
        if let Ok(mut c) = Client::connect(socket)
            && let Ok(Reply::Status(s)) = c.request(RequestBody::Status)
            && s.workers.iter().any(|w| w.connected && w.owns_finals)
        {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut sub = Client::connect(socket).map_err(|e| e.to_string())?;
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
    Ok((control, events))
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.control.request(RequestBody::Shutdown);
        wait_or_kill(&mut self.daemon, Duration::from_secs(10));
    }
}
