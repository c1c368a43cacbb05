//! The session table in the ring header: which frames belong to which dictation.
//!
//! A small circular table of the most recent sessions ([`SESSION_CAPACITY`]), each record under
//! its own seqlock. One writer (v2m-rt's control thread, through [`super::RingControl`]); readers
//! in any process look records up.

use super::error::RingError;
use super::layout::{Header, SESSION_CAPACITY, SessionSlot, is_writing};
use std::sync::atomic::{Ordering, fence};

/// `end_seq` of a session that is still open.
pub const OPEN: u64 = u64::MAX;

/// A session: frames `first_seq..end_seq` of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (never 0).
    pub id: u64,
    /// Sequence number of its first frame (pre-roll included).
    pub first_seq: u64,
    /// One past its last frame; `None` while the session is open.
    pub end_seq: Option<u64>,
}

impl SessionRecord {
    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        self.end_seq.is_none()
    }
}

/// Reads one record consistently. `None` for an empty slot, or one whose writer died mid-update.
fn read_slot(slot: &SessionSlot) -> Option<SessionRecord> {
    // A writer in this machine finishes an update in nanoseconds; a stamp still odd after this
    // many tries belongs to a writer that died mid-update.
    for _ in 0..10_000 {
        let s1 = slot.stamp.load(Ordering::Acquire);
        if is_writing(s1) {
            std::hint::spin_loop();
            continue;
        }
        let id = slot.id.load(Ordering::Relaxed);
        let first_seq = slot.first_seq.load(Ordering::Relaxed);
        let end_seq = slot.end_seq.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if slot.stamp.load(Ordering::Relaxed) != s1 {
            continue;
        }
        if id == 0 {
            return None;
        }
        return Some(SessionRecord {
            id,
            first_seq,
            end_seq: (end_seq != OPEN).then_some(end_seq),
        });
    }
    None
}

/// Writes one record. Only the single session writer calls this.
fn write_slot(slot: &SessionSlot, id: u64, first_seq: u64, end_seq: u64) {
    let s = slot.stamp.load(Ordering::Relaxed);
    slot.stamp.store(s + 1, Ordering::Relaxed);
    fence(Ordering::Release);
    slot.id.store(id, Ordering::Relaxed);
    slot.first_seq.store(first_seq, Ordering::Relaxed);
    slot.end_seq.store(end_seq, Ordering::Relaxed);
    slot.stamp.store(s + 2, Ordering::Release);
}

/// The slot holding session `id`, and its record.
fn find(h: &Header, id: u64) -> Option<(&SessionSlot, SessionRecord)> {
    h.sessions
        .iter()
        .filter_map(|slot| read_slot(slot).map(|r| (slot, r)))
        .find(|(_, r)| r.id == id)
}

/// Looks up session `id`.
pub(crate) fn lookup(h: &Header, id: u64) -> Option<SessionRecord> {
    find(h, id).map(|(_, r)| r)
}

/// All sessions in the table, oldest first.
pub(crate) fn recent(h: &Header) -> Vec<SessionRecord> {
    let head = h.session_head.load(Ordering::Acquire);
    let n = head.min(SESSION_CAPACITY as u64);
    (head - n..head)
        .filter_map(|i| read_slot(&h.sessions[(i % SESSION_CAPACITY as u64) as usize]))
        .collect()
}

/// Opens session `id` at `first_seq`, evicting the oldest record when the table is full.
pub(crate) fn open(h: &Header, id: u64, first_seq: u64) -> Result<SessionRecord, RingError> {
    if id == 0 {
        return Err(RingError::SessionIdZero);
    }
    if find(h, id).is_some() {
        return Err(RingError::SessionExists(id));
    }
    let head = h.session_head.load(Ordering::Relaxed);
    write_slot(
        &h.sessions[(head % SESSION_CAPACITY as u64) as usize],
        id,
        first_seq,
        OPEN,
    );
    h.session_head.store(head + 1, Ordering::Release);
    Ok(SessionRecord {
        id,
        first_seq,
        end_seq: None,
    })
}

/// Closes session `id` at `end_seq` (exclusive).
pub(crate) fn close(h: &Header, id: u64, end_seq: u64) -> Result<SessionRecord, RingError> {
    let (slot, rec) = find(h, id).ok_or(RingError::SessionUnknown(id))?;
    if let Some(end) = rec.end_seq {
        return Err(RingError::SessionClosed { id, end_seq: end });
    }
    if end_seq < rec.first_seq {
        return Err(RingError::SessionEndBeforeStart {
            id,
            first_seq: rec.first_seq,
            end_seq,
        });
    }
    write_slot(slot, id, rec.first_seq, end_seq);
    Ok(SessionRecord {
        end_seq: Some(end_seq),
        ..rec
    })
}
