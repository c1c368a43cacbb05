//! The thread that reads what v2m-rt sends: assignments go to the follower through a channel;
//! a cancel also stops the pass in flight for that session at once.

use super::watch::Watch;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver};
use v2m_shm_proto::protocol::{self, Assignment, DaemonMessage};

/// What the inbox hands the follower.
pub enum Inbox {
    /// An assignment from v2m-rt (its responses and events are not addressed to workers: the
    /// inbox drops them).
    Assignment(Assignment),
    /// The connection ended, and why.
    Closed(String),
}

/// Starts reading `sock`; messages arrive on the returned channel.
pub fn spawn_inbox(mut sock: UnixStream, watch: Watch) -> Receiver<Inbox> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        loop {
            let msg = match protocol::read_frame::<_, DaemonMessage>(&mut sock, &mut buf) {
                Ok(Some(DaemonMessage::Assignment(a))) => Inbox::Assignment(a),
                Ok(Some(_)) => continue,
                Ok(None) => Inbox::Closed("v2m-rt closed the connection".into()),
                Err(e) => Inbox::Closed(e.to_string()),
            };
            if let Inbox::Assignment(Assignment::Cancel { session_id }) = &msg {
                watch.cancel_session(*session_id);
            }
            let closed = matches!(msg, Inbox::Closed(_));
            if tx.send(msg).is_err() || closed {
                return;
            }
        }
    });
    rx
}
