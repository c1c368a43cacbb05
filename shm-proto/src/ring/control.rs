//! The control thread's handle on the ring it created.

use super::error::RingError;
use super::layout::Geometry;
use super::mapping::Mapping;
use super::session::{self, SessionRecord};
use crate::platform::futex;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Owns the ring's memfd and its session table; lives on v2m-rt's control thread while the
/// [`super::RingWriter`] lives on the DSP thread. Not `Clone`: one session writer per ring.
pub struct RingControl {
    map: Arc<Mapping>,
}

impl RingControl {
    pub(crate) fn new(map: Arc<Mapping>) -> RingControl {
        RingControl { map }
    }

    /// The ring's memfd, to send to a worker (SCM_RIGHTS) or to open a reader on.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.map
            .owner_fd()
            .expect("RingControl is only built on the creator's mapping")
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

    /// Looks up a session.
    pub fn session(&self, id: u64) -> Option<SessionRecord> {
        session::lookup(self.map.header(), id)
    }

    /// The sessions the table still remembers, oldest first.
    pub fn recent_sessions(&self) -> Vec<SessionRecord> {
        session::recent(self.map.header())
    }
}
