//! What the core's parts ask the core to do ([`Effect`]), and the small types they share.

use super::input::ConnId;
use v2m_shm_proto::protocol::{ErrorReply, Event, Reply};

/// Who waits for a session's text: a connection and its request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// The connection.
    pub conn: ConnId,
    /// The request to answer.
    pub request: u64,
}

/// What the core must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Answer request `id` on `conn`.
    Reply {
        /// The connection.
        conn: ConnId,
        /// The request.
        id: u64,
        /// The answer.
        result: Result<Reply, ErrorReply>,
    },
    /// Tell subscribers.
    Broadcast(Event),
    /// Open `session` in the ring at `first_seq`; stamp frames with it.
    Open {
        /// The session.
        session: u64,
        /// Its first frame.
        first_seq: u64,
    },
    /// Close `session` in the ring before `end_seq`; stop stamping frames with it.
    Close {
        /// The session.
        session: u64,
        /// One past its last frame.
        end_seq: u64,
    },
    /// Give `session` to every connected worker (the owner's finals answer).
    AssignAll {
        /// The session.
        session: u64,
    },
    /// Give `session` to the worker that owns finals.
    AssignOwner {
        /// The session.
        session: u64,
    },
    /// Tell every worker to drop `session`.
    CancelAll {
        /// The session.
        session: u64,
    },
    /// Stop feeding the file and go back to live input.
    StopFile,
}

/// What of the ring a new session needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingView {
    /// Frames published so far.
    pub write_seq: u64,
    /// Ring capacity, frames.
    pub capacity: u64,
}
