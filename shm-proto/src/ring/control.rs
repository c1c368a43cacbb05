//! The control thread's handle on the ring it created.

use super::error::RingError;
use super::layout::{FRAME_NS, Geometry, done_stamp};
use super::mapping::{Mapping, RingFds};
use super::session::{self, SessionRecord};
use crate::platform::futex;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

/// How far back [`RingControl::end_at`] looks for the frame holding an instant.
const END_SEARCH_FRAMES: u64 = 500;

/// Owns the ring's memfd and its session table; lives on v2m-rt's control thread while the
/// [`super::RingWriter`] lives on the DSP thread. Not `Clone`: one session writer per ring.
pub struct RingControl {
    map: Arc<Mapping>,
}

impl RingControl {
    pub(crate) fn new(map: Arc<Mapping>) -> RingControl {
        RingControl { map }
    }

    /// Descriptors for a reader (to send to a worker with SCM_RIGHTS, or to open a
    /// [`super::RingReader`] on): the ring read-only, the wake words.
    pub fn reader_fds(&self) -> Result<RingFds, RingError> {
        self.map
            .reader_fds()
            .unwrap_or_else(|| Err(std::io::Error::other("not the ring's creator")))
            .map_err(RingError::io("handing out the ring"))
    }

    /// Frames the writer has published so far.
    pub fn write_seq(&self) -> u64 {
        self.map.header().write_seq.load(Ordering::Acquire)
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        self.map.geometry()
    }

    /// Records that session `id` starts at frame `first_seq` (pre-roll included).
    pub fn open_session(&mut self, id: u64, first_seq: u64) -> Result<SessionRecord, RingError> {
        session::open(self.map.header(), id, first_seq)
    }

    /// Records that session `id` ends before frame `end_seq`, and wakes waiting readers so
    /// the worker finishing it does not wait for the next frame to notice.
    pub fn close_session(&mut self, id: u64, end_seq: u64) -> Result<SessionRecord, RingError> {
        let rec = session::close(self.map.header(), id, end_seq)?;
        let wake = self.map.wake();
        wake.futex.fetch_add(1, Ordering::SeqCst);
        if wake.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&wake.futex);
        }
        Ok(rec)
    }

    /// The capture time (`CLOCK_MONOTONIC` ns of its first sample) of frame `seq`, if the ring
    /// holds it.
    pub fn capture_ns(&self, seq: u64) -> Option<u64> {
        if seq >= self.write_seq() {
            return None;
        }
        let slot = self.map.slot(seq);
        let expected = done_stamp(seq);
        if slot.stamp.load(Ordering::Acquire) != expected {
            return None;
        }
        let ns = slot.capture_ns.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (slot.stamp.load(Ordering::Relaxed) == expected).then_some(ns)
    }

    /// Where a session ends that ends at capture instant `at_ns`: one past the last frame
    /// whose first sample was captured at or before it. `None` while the frame holding the
    /// instant is not published yet (audio captured before it is still on its way).
    pub fn end_at(&self, at_ns: u64) -> Option<u64> {
        let w = self.write_seq();
        let newest = self.capture_ns(w.checked_sub(1)?)?;
        if newest <= at_ns {
            // The newest frame starts before the instant: it holds it, or the instant lies in
            // audio not published yet.
            return (at_ns < newest + FRAME_NS).then_some(w);
        }
        let oldest = w.saturating_sub(END_SEARCH_FRAMES.min(self.geometry().capacity as u64));
        let mut seq = w - 1;
        while seq > oldest {
            seq -= 1;
            match self.capture_ns(seq) {
                Some(t) if t <= at_ns => return Some(seq + 1),
                Some(_) => {}
                None => return Some(seq + 1),
            }
        }
        Some(oldest)
    }

    /// Readers asleep in (or about to enter) a futex wait right now.
    pub fn waiting_readers(&self) -> u32 {
        self.map.wake().waiters.load(Ordering::SeqCst)
    }

    /// Looks up a session.
    pub fn session(&self, id: u64) -> Option<SessionRecord> {
        session::lookup(self.map.header(), id)
    }

    /// The sessions the table still remembers, oldest first.
    pub fn recent_sessions(&self) -> Vec<SessionRecord> {
        session::recent(self.map.header())
    }
}
