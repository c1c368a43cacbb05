//! Deterministic frame contents, so a reader in another process can check every sample.

use v2m_shm_proto::ring::{FRAME_NS, FRAME_SAMPLES, Frame, FrameFlags, FrameMeta};

/// The samples the test writer publishes as frame `seq`: distinct per frame and per sample.
pub fn samples_for(seq: u64) -> [f32; FRAME_SAMPLES] {
    std::array::from_fn(|i| ((seq * 331 + i as u64 * 7) % 65_536) as f32 / 32_768.0 - 1.0)
}

/// The metadata the test writer publishes with frame `seq`.
pub fn meta_for(seq: u64) -> FrameMeta {
    FrameMeta {
        capture_ns: 1_000_000_000 + seq * FRAME_NS,
        session_id: seq / 1000 + 1,
        flags: FrameFlags((seq % 4) as u32),
    }
}

/// Whether `frame` is exactly what the test writer published as its sequence number.
pub fn matches(frame: &Frame) -> bool {
    frame.meta == meta_for(frame.seq)
        && frame
            .samples
            .iter()
            .zip(samples_for(frame.seq).iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
}
