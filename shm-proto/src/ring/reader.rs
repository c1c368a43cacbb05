//! Readers: any number, in any process, each with its own cursor in its own memory.

use super::error::RingError;
use super::frame::{Frame, FrameFlags, FrameMeta};
use super::layout::{Geometry, done_stamp};
use super::mapping::{Mapping, RingFds};
use super::session::{self, SessionRecord};
use crate::platform::clock::monotonic_ns;
use crate::platform::futex;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

/// What [`RingReader::try_read`] found besides the frame itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadInfo {
    /// Frames that were overwritten before this reader got to them and were skipped just
    /// before this one (0 when reading kept up).
    pub lost: u64,
}

/// How [`RingReader::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A frame is ready at the cursor (or overwritten frames are waiting to be reported).
    Ready,
    /// No new frame, but the session table changed (a session was closed).
    SessionChanged,
    /// Nothing arrived within the timeout. If the writer's process is gone, nothing will.
    TimedOut,
}

/// Reads a ring in order from its own cursor. Never writes the audio or the header: they are
/// mapped read-only; only the waiter count next to the futex word is written.
pub struct RingReader {
    map: Mapping,
    next: u64,
    /// Frames skipped since the last successful read, reported with the next one.
    pending_lost: u64,
    lost_total: u64,
}

impl RingReader {
    /// Opens a ring from its descriptors (as received over the control socket), validating
    /// the header. The cursor starts at the newest frame: call [`seek`](Self::seek) to start
    /// elsewhere.
    pub fn open(fds: RingFds) -> Result<RingReader, RingError> {
        let map = Mapping::open(fds)?;
        let next = map.header().write_seq.load(Ordering::Acquire);
        Ok(RingReader {
            map,
            next,
            pending_lost: 0,
            lost_total: 0,
        })
    }

    /// Moves the cursor to frame `seq` (a session's first frame, say). A frame already
    /// overwritten is reported as lost on the next read; a future one is waited for.
    pub fn seek(&mut self, seq: u64) {
        self.next = seq;
        self.pending_lost = 0;
    }

    /// Moves the cursor to the oldest frame the ring may still hold.
    pub fn seek_to_oldest(&mut self) {
        let w = self.write_seq();
        self.seek(w.saturating_sub(self.capacity()));
    }

    /// Sequence number the next read returns (if not overwritten by then).
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Frames the writer has published so far.
    pub fn write_seq(&self) -> u64 {
        self.map.header().write_seq.load(Ordering::Acquire)
    }

    /// Frames this reader has lost to overruns since it was opened (reported ones).
    pub fn lost_total(&self) -> u64 {
        self.lost_total
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        self.map.geometry()
    }

    /// Process id of the writer that created the ring.
    pub fn writer_pid(&self) -> u32 {
        self.map.header().writer_pid
    }

    /// Looks up a session in the ring's session table.
    pub fn session(&self, id: u64) -> Option<SessionRecord> {
        session::lookup(self.map.header(), id)
    }

    /// The sessions the table still remembers, oldest first.
    pub fn recent_sessions(&self) -> Vec<SessionRecord> {
        session::recent(self.map.header())
    }

    fn capacity(&self) -> u64 {
        self.map.geometry().capacity as u64
    }

    /// Copies the frame at the cursor into `out` and advances, or returns `None` if the writer
    /// has not published it yet. Frames overwritten before this reader got to them are skipped:
    /// the cursor resynchronises to the oldest intact frame and [`ReadInfo::lost`] says how many
    /// were skipped. Never blocks, never allocates.
    pub fn try_read(&mut self, out: &mut Frame) -> Option<ReadInfo> {
        loop {
            let w = self.map.header().write_seq.load(Ordering::Acquire);
            if self.next >= w {
                return None;
            }
            // Frames before w - capacity were certainly overwritten (frame w-1 reused the slot
            // of w-1-capacity): jump to the oldest that may be intact; the stamp decides.
            let oldest = w.saturating_sub(self.capacity());
            if self.next < oldest {
                self.skip_to(oldest);
            }
            if self.copy_slot(self.next, out) {
                self.next += 1;
                let lost = std::mem::take(&mut self.pending_lost);
                self.lost_total += lost;
                return Some(ReadInfo { lost });
            }
            // Overwritten while we looked: the writer is at or past next + capacity. Restart
            // from the oldest frame it cannot be writing right now.
            let w = self.map.header().write_seq.load(Ordering::Acquire);
            self.skip_to((w + 1).saturating_sub(self.capacity()).max(self.next + 1));
        }
    }

    /// Moves the cursor forward over overwritten frames, counting them.
    fn skip_to(&mut self, seq: u64) {
        self.pending_lost += seq - self.next;
        self.next = seq;
    }

    /// Seqlock read of frame `seq` into `out`: true if the copy is exactly frame `seq`.
    #[inline]
    fn copy_slot(&self, seq: u64, out: &mut Frame) -> bool {
        let slot = self.map.slot(seq);
        let expected = done_stamp(seq);
        if slot.stamp.load(Ordering::Acquire) != expected {
            return false;
        }
        let capture_ns = slot.capture_ns.load(Ordering::Relaxed);
        let session_id = slot.session_id.load(Ordering::Relaxed);
        let flags = slot.flags.load(Ordering::Relaxed);
        for (dst, src) in out.samples.iter_mut().zip(&slot.samples) {
            *dst = f32::from_bits(src.load(Ordering::Relaxed));
        }
        // Order the copies before the re-check: if any copied value came from a later frame,
        // the writer's odd stamp is visible now.
        fence(Ordering::Acquire);
        if slot.stamp.load(Ordering::Relaxed) != expected {
            return false;
        }
        out.seq = seq;
        out.meta = FrameMeta {
            capture_ns,
            session_id,
            flags: FrameFlags(flags),
        };
        true
    }

    /// Sleeps until a frame is published at or after the cursor, or a session is closed, at
    /// most `timeout`.
    ///
    /// The timeout matters: if the writer's process died, no wake will ever come.
    pub fn wait(&self, timeout: Duration) -> Readiness {
        let header = self.map.header();
        let wake = self.map.wake();
        let deadline =
            monotonic_ns().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
        loop {
            if header.write_seq.load(Ordering::SeqCst) > self.next {
                return Readiness::Ready;
            }
            // Announce ourselves, then re-check: the writer bumps the futex word after storing
            // write_seq and wakes only if it sees a waiter (see RingWriter::publish).
            wake.waiters.fetch_add(1, Ordering::SeqCst);
            let word = wake.futex.load(Ordering::SeqCst);
            let ready = header.write_seq.load(Ordering::SeqCst) > self.next;
            let now = monotonic_ns();
            let outcome = if ready || now >= deadline {
                None
            } else {
                Some(futex::wait(
                    &wake.futex,
                    word,
                    Duration::from_nanos(deadline - now),
                ))
            };
            wake.waiters.fetch_sub(1, Ordering::SeqCst);
            match outcome {
                None if ready => return Readiness::Ready,
                None => return Readiness::TimedOut,
                Some(_) => {
                    // Woken (or the word moved) without a new frame: a session was closed.
                    let moved = wake.futex.load(Ordering::SeqCst) != word;
                    if moved && header.write_seq.load(Ordering::SeqCst) <= self.next {
                        return Readiness::SessionChanged;
                    }
                }
            }
        }
    }

    /// Reads the next frame, waiting up to `timeout` for it.
    pub fn read_timeout(&mut self, out: &mut Frame, timeout: Duration) -> Option<ReadInfo> {
        let deadline =
            monotonic_ns().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
        loop {
            if let Some(info) = self.try_read(out) {
                return Some(info);
            }
            let left = deadline.saturating_sub(monotonic_ns());
            if left == 0 || self.wait(Duration::from_nanos(left)) == Readiness::TimedOut {
                return self.try_read(out);
            }
        }
    }
}
