//! A session and its phase.

use super::Waiter;
use std::collections::HashMap;
use std::time::Instant;
use v2m_shm_proto::protocol::FinalText;

/// Where a session is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Live audio goes into it.
    Recording,
    /// A file goes into it; `waiter` gets the text.
    Feeding {
        /// Who asked.
        waiter: Waiter,
    },
    /// Closed in the ring; the final-owning worker's final is awaited until `deadline`.
    Finishing {
        /// Who gets the text (gone if it disconnected).
        waiter: Option<Waiter>,
        /// A file's transcription (answered as such).
        file: bool,
        /// When the text was asked for (stop pressed, file fed).
        asked: Instant,
        /// When the waiter gets a timeout instead.
        deadline: Instant,
    },
    /// Nobody waits any more; the final is broadcast and kept when it comes.
    Overdue {
        /// When it became overdue.
        since: Instant,
        /// When the text was asked for.
        asked: Instant,
    },
}

/// One session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Its id (never 0).
    pub id: u64,
    /// Its phase.
    pub phase: Phase,
    pub(super) started: Instant,
    pub(super) first_provisional: Option<Instant>,
    /// Finals of workers that do not own finals (kept in case ownership moves to them).
    pub(super) finals: HashMap<String, FinalText>,
}
