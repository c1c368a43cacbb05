//! The worker's messages to v2m-rt go through one [`Outbox`], shared by the follower and the
//! heartbeat thread, which says every second that the worker is alive and how long its pass
//! in progress has run: a worker stopped (SIGSTOP, a hung driver) shows in `status` as one
//! not heard from.

use super::watch::Watch;
use crate::error::{ConnectionKind, WorkerError};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use v2m_shm_proto::protocol::{self, PeerMessage, WorkerMessage};

/// How often the heartbeat goes.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// The writing half of the connection to v2m-rt, one frame at a time.
#[derive(Clone)]
pub struct Outbox(Arc<Mutex<UnixStream>>);

impl Outbox {
    /// Writes to `sock`.
    pub fn new(sock: UnixStream) -> Outbox {
        Outbox(Arc::new(Mutex::new(sock)))
    }

    /// Sends one message (whole frames: the lock keeps two writers from interleaving).
    pub fn send(&self, msg: WorkerMessage) -> Result<(), WorkerError> {
        let mut sock = self.0.lock().unwrap_or_else(|p| p.into_inner());
        protocol::write_frame(&mut *sock, &PeerMessage::Worker(msg))
            .map_err(|e| WorkerError::connection(ConnectionKind::Protocol, e))
    }
}

/// Starts the heartbeat thread; it ends when the connection does.
pub fn spawn(out: Outbox, watch: Watch) {
    let spawned = std::thread::Builder::new()
        .name("v2m-heartbeat".into())
        .spawn(move || {
            loop {
                std::thread::sleep(HEARTBEAT);
                let pass_ms = watch
                    .pass_age()
                    .map(|d| d.as_millis().min(u32::MAX as u128) as u32);
                if out.send(WorkerMessage::Heartbeat { pass_ms }).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("no heartbeat thread ({e}): status will not see this worker's liveness");
    }
}
