//! The answer to `status`, built from the parts that hold the state.

use super::sessions::Sessions;
use super::source::Source;
use super::supervisor::Supervisor;
use super::workers::Workers;
use crate::engine::EngineMetrics;
use std::time::Instant;
use v2m_shm_proto::protocol::{RingCounters, StatusReport};

/// What the ring says of itself.
#[derive(Debug, Clone, Copy)]
pub struct RingFigures {
    /// Frames published.
    pub frames_written: u64,
    /// Capacity, frames.
    pub capacity: u32,
}

/// The status report at `now`.
pub fn report(
    now: Instant,
    sessions: &Sessions,
    workers: &Workers,
    supervisor: &Supervisor,
    source: &Source,
    engine: EngineMetrics,
    ring: RingFigures,
) -> StatusReport {
    StatusReport {
        state: sessions.state(source.paused()),
        session_id: sessions.recording(),
        device: source.device().map(str::to_owned),
        device_error: source.error().map(str::to_owned),
        ring: RingCounters {
            frames_written: ring.frames_written,
            samples_dropped: engine.samples_dropped,
            discontinuities: engine.discontinuities,
            capacity: ring.capacity,
        },
        workers: workers.statuses(now, |name| supervisor.restarts_of(name).unwrap_or(0)),
        last_session: sessions.last_latency(),
        capture: engine.capture,
    }
}
