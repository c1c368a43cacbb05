//! What reaches the control core from the other threads: connections, child watchers, the
//! signal thread, file openers.

use super::connection::Conn;
use crate::capture::{DecodeError, Decoder};
use std::time::Instant;
use v2m_shm_proto::protocol::{Request, Role, WorkerMessage};

/// A connection's number, unique for the daemon's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A request as it arrived: from whom, and when (the instant a `stop` ends the audio).
#[derive(Debug, Clone)]
pub struct Arrived {
    /// The connection.
    pub conn: ConnId,
    /// The request.
    pub request: Request,
    /// CLOCK_MONOTONIC ns when its frame was read.
    pub at_ns: u64,
    /// The same instant on the std clock.
    pub at: Instant,
}

/// What reaches the core.
pub enum Input {
    /// A peer said a hello of the right version.
    Hello {
        /// Its connection.
        conn: Conn,
        /// Client or worker.
        role: Role,
    },
    /// A request from a peer that said hello.
    Request(Arrived),
    /// A worker's output.
    Worker {
        /// From.
        conn: ConnId,
        /// What.
        msg: WorkerMessage,
    },
    /// A connection ended.
    Gone {
        /// Which.
        conn: ConnId,
        /// Why.
        why: String,
    },
    /// A supervised worker process exited.
    ChildExited {
        /// Its index in the supervisor.
        index: usize,
        /// Its pid.
        pid: u32,
        /// Exit status, as text.
        status: String,
    },
    /// A file to transcribe was opened (off the control thread), or could not be.
    FileOpened {
        /// The request that asked for it.
        request: Arrived,
        /// Its decoder, or why not.
        decoder: Result<Decoder, DecodeError>,
    },
    /// SIGINT or SIGTERM.
    Signal(String),
}
