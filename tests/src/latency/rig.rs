//! The pipeline under measurement: v2m-rt on the FIFO microphone with its supervised worker
//! (started by the [`crate::daemon`] harness), a control connection and a subscribed one whose
//! events are stamped on arrival.

use crate::daemon::{Daemon, DaemonOptions, OnDrop};
use crate::fifo_mic::FifoMic;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::protocol::Event;

/// How v2m-rt is started.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// The v2m-rt executable.
    pub rt: PathBuf,
    /// A config file for it (workers, pre-roll…, and its workers' `[worker]` table); without
    /// one it supervises its default worker.
    pub config: Option<PathBuf>,
    /// Scratch folder: FIFO, ALSA config, socket, log.
    pub dir: PathBuf,
    /// How long to wait for a worker to connect (model load and warm-up).
    pub ready_timeout: Duration,
}

/// The running pipeline.
pub struct Rig {
    /// Requests go here.
    pub control: Client,
    /// Every event, with the instant it arrived.
    pub events: Receiver<(Instant, Event)>,
    daemon: Daemon,
}

impl Rig {
    /// Creates the microphone, starts v2m-rt on it and waits for a worker.
    pub fn start(opts: &RigOptions) -> Result<Rig, String> {
        let mut args = vec!["--default-worker".to_string()];
        if let Some(c) = &opts.config {
            args.push("--config".into());
            args.push(c.display().to_string());
        }
        let mut daemon = DaemonOptions::new(&opts.dir)
            .rt(&opts.rt)
            .args(&args)
            .log()
            .rust_log(None)
            .on_drop(OnDrop::Shutdown)
            .start()?;
        daemon.wait_for_worker(opts.ready_timeout)?;
        let control = Client::connect(&daemon.socket).map_err(|e| e.to_string())?;
        let events = daemon.subscribe()?;
        Ok(Rig {
            control,
            events,
            daemon,
        })
    }

    /// The microphone v2m-rt listens to.
    pub fn mic(&self) -> &FifoMic {
        &self.daemon.mic
    }
}
