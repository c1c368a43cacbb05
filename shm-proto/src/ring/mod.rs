//! The shared-memory audio ring: one writer (v2m-rt's DSP thread), any number of readers in
//! other processes, broadcast (every reader sees every frame), readers never slow the writer.
//!
//! ```
//! use v2m_shm_proto::ring::{self, Frame, FrameMeta, RingReader};
//! let (mut writer, control) = ring::create(ring::DEFAULT_CAPACITY)?;
//! let mut reader = RingReader::open(control.reader_fds()?)?;
//! writer.publish(&[0.0; ring::FRAME_SAMPLES], FrameMeta::default());
//! # reader.seek(0);
//! let mut frame = Frame::default();
//! let info = reader.try_read(&mut frame).expect("published");
//! assert_eq!((frame.seq, info.lost), (0, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod control;
mod error;
mod frame;
mod layout;
mod mapping;
mod reader;
mod session;
mod writer;

pub use control::RingControl;
pub use error::RingError;
pub use frame::{Frame, FrameFlags, FrameMeta};
pub use layout::{
    DEFAULT_CAPACITY, FRAME_NS, FRAME_SAMPLES, Geometry, LAYOUT_VERSION, MAGIC, MAX_CAPACITY,
    MIN_CAPACITY, SAMPLE_RATE, SESSION_CAPACITY, WAKE_REGION,
};
pub use mapping::RingFds;
pub use reader::{ReadInfo, Readiness, RingReader};
pub use session::SessionRecord;
pub use writer::RingWriter;

use std::sync::Arc;

/// Creates a ring of `capacity` frames (a power of two) in new sealed memfds.
///
/// Returns the frame writer (for the DSP thread) and the control handle (for the control
/// thread: sessions, counters, the fd to hand to workers).
pub fn create(capacity: u32) -> Result<(RingWriter, RingControl), RingError> {
    let map = Arc::new(mapping::Mapping::create(capacity)?);
    Ok((RingWriter::new(Arc::clone(&map)), RingControl::new(map)))
}

/// The smallest power-of-two capacity that holds at least `seconds` of audio.
pub fn capacity_for_seconds(seconds: f64) -> Result<u32, RingError> {
    let frames = (seconds * 1e9 / FRAME_NS as f64)
        .ceil()
        .max(MIN_CAPACITY as f64);
    if !frames.is_finite() || frames > MAX_CAPACITY as f64 {
        return Err(RingError::BadCapacity(frames.min(u64::MAX as f64) as u64));
    }
    Ok((frames as u32).next_power_of_two())
}
