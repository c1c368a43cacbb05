//! A watchdog for tests that could hang: if the test has not finished in time, it says what it
//! was doing and aborts the process, instead of blocking CI until its own time limit.
//! It asserts nothing about speed: the limit is far beyond any expected run time.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

/// Aborts the process if not dropped within the limit.
pub struct Watchdog {
    _disarm: Sender<()>,
}

impl Watchdog {
    /// Arms a watchdog for `limit`; `what` names the test in the message.
    pub fn arm(limit: Duration, what: &'static str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {what} still running after {limit:?}: hung, aborting");
                std::process::abort();
            }
        });
        Watchdog { _disarm: tx }
    }
}
