//! What the sessions are doing, read without changing anything (status, `last`, the
//! current session).

use super::{Phase, Session, Sessions};
use v2m_shm_proto::protocol::{DaemonState, FinalText, SessionLatency};

impl Sessions {
    pub(super) fn find(&self, phase: impl Fn(&Phase) -> bool) -> Option<&Session> {
        self.list.iter().find(|s| phase(&s.phase))
    }

    /// The session recording live audio.
    pub fn recording(&self) -> Option<u64> {
        self.find(|p| matches!(p, Phase::Recording)).map(|s| s.id)
    }

    /// The session a file is going into.
    pub fn feeding(&self) -> Option<u64> {
        self.find(|p| matches!(p, Phase::Feeding { .. }))
            .map(|s| s.id)
    }

    /// Whether `id` is a file's session.
    pub fn is_file(&self, id: u64) -> bool {
        self.list.iter().any(|s| {
            s.id == id
                && matches!(
                    s.phase,
                    Phase::Feeding { .. } | Phase::Finishing { file: true, .. }
                )
        })
    }

    /// Sessions a worker that connects now must transcribe, oldest first.
    pub fn untranscribed(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.list.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Sessions waiting for the final-owning worker (finishing or overdue).
    pub(super) fn awaiting(&self) -> Vec<u64> {
        self.list
            .iter()
            .filter(|s| matches!(s.phase, Phase::Finishing { .. } | Phase::Overdue { .. }))
            .map(|s| s.id)
            .collect()
    }

    /// The daemon's state as far as sessions go (`paused` when the microphone is released).
    pub fn state(&self, paused: bool) -> DaemonState {
        let waiting = |p: &Phase| matches!(p, Phase::Feeding { .. } | Phase::Finishing { .. });
        if self.recording().is_some() {
            DaemonState::Recording
        } else if self.find(waiting).is_some() {
            DaemonState::Finishing
        } else if paused {
            DaemonState::Paused
        } else {
            DaemonState::Idle
        }
    }

    /// The session a state change is about: recording, else the newest finishing one.
    pub fn current(&self) -> Option<u64> {
        self.recording().or_else(|| {
            self.list
                .iter()
                .rev()
                .find(|s| matches!(s.phase, Phase::Finishing { .. } | Phase::Feeding { .. }))
                .map(|s| s.id)
        })
    }

    /// Latencies of the last completed session.
    pub fn last_latency(&self) -> Option<SessionLatency> {
        self.history.last_latency()
    }

    /// The newest `count` finals, oldest first.
    pub fn history(&self, count: usize) -> Vec<FinalText> {
        self.history.newest(count)
    }
}
