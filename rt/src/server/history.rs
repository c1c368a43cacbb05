//! The newest finals and the last session's latencies: what `v2m-cli last` and `status` show,
//! kept whether or not anyone waited for them.

use std::collections::VecDeque;
use v2m_shm_proto::protocol::{FinalText, HISTORY_LEN, SessionLatency};

/// The last [`HISTORY_LEN`] finals.
#[derive(Debug, Default)]
pub struct History {
    finals: VecDeque<FinalText>,
    last_latency: Option<SessionLatency>,
}

impl History {
    /// Keeps `f` (the oldest goes beyond [`HISTORY_LEN`]) and its session's latencies.
    pub fn keep(&mut self, f: &FinalText, first_provisional_ms: Option<f32>) {
        self.last_latency = Some(SessionLatency {
            session_id: f.session_id,
            stop_to_final_ms: f.stop_to_final_ms,
            first_provisional_ms,
        });
        self.finals.push_back(f.clone());
        while self.finals.len() > HISTORY_LEN {
            self.finals.pop_front();
        }
    }

    /// The newest `count` finals, oldest first.
    pub fn newest(&self, count: usize) -> Vec<FinalText> {
        let skip = self.finals.len().saturating_sub(count);
        self.finals.iter().skip(skip).cloned().collect()
    }

    /// Latencies of the last session kept.
    pub fn last_latency(&self) -> Option<SessionLatency> {
        self.last_latency
    }
}
