//! Shutting down: every waiter told, workers told, then stopped, terminated, killed.

use super::{Core, refuse};
use crate::server::sessions::Effect;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{Assignment, ErrorKind};

impl Core {
    pub(super) fn begin_shutdown(&mut self) {
        if self.shutting_down.is_some() {
            return;
        }
        self.shutting_down = Some(Instant::now());
        let mut fx = Vec::new();
        self.sessions.shutdown(&mut fx, self.control.write_seq());
        for a in std::mem::take(&mut self.held) {
            let result = refuse(ErrorKind::InvalidState, "v2m-rt is shutting down");
            fx.push(Effect::Reply {
                conn: a.conn,
                id: a.request.id,
                result,
            });
        }
        self.apply(fx);
        self.tell_workers(Assignment::Shutdown);
        self.supervisor.begin_stop();
        let _ = self.engine.stop();
    }

    pub(super) fn shutdown_done(&mut self) -> bool {
        let Some(since) = self.shutting_down else {
            return false;
        };
        let waited = since.elapsed();
        if !self.supervisor.any_running() {
            return true;
        }
        if waited > Duration::from_secs(5) {
            self.supervisor.signal_all(Signal::SIGKILL);
            return true;
        }
        if waited > Duration::from_secs(3) {
            self.supervisor.signal_all(Signal::SIGTERM);
        }
        false
    }
}
