//! The single writer: v2m-rt's DSP thread.

use super::frame::FrameMeta;
use super::layout::{FRAME_SAMPLES, Geometry, done_stamp, writing_stamp};
use super::mapping::Mapping;
use crate::platform::futex;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

/// Publishes frames into the ring. There is exactly one per ring (it is not `Clone`).
///
/// [`publish`](RingWriter::publish) allocates nothing, takes no lock and makes no syscall
/// except one `FUTEX_WAKE` when a reader is waiting. Readers never hold the writer back: a
/// slow reader is overwritten, and finds out from the slot stamps.
pub struct RingWriter {
    map: Arc<Mapping>,
    next_seq: u64,
    wake_calls: u64,
}

impl RingWriter {
    pub(crate) fn new(map: Arc<Mapping>) -> RingWriter {
        RingWriter {
            map,
            next_seq: 0,
            wake_calls: 0,
        }
    }

    /// Publishes one frame and wakes waiting readers. Returns its sequence number.
    #[inline]
    pub fn publish(&mut self, samples: &[f32; FRAME_SAMPLES], meta: FrameMeta) -> u64 {
        let seq = self.next_seq;
        let slot = self.map.slot(seq);
        // Seqlock write: mark the slot as being written, then the data, then the final stamp.
        // The Release fence orders the odd stamp before the data stores for any reader that
        // sees one of them (it then re-reads the stamp and rejects the copy).
        slot.stamp.store(writing_stamp(seq), Ordering::Relaxed);
        fence(Ordering::Release);
        slot.capture_ns.store(meta.capture_ns, Ordering::Relaxed);
        slot.session_id.store(meta.session_id, Ordering::Relaxed);
        slot.flags.store(meta.flags.0, Ordering::Relaxed);
        for (dst, src) in slot.samples.iter().zip(samples) {
            dst.store(src.to_bits(), Ordering::Relaxed);
        }
        slot.stamp.store(done_stamp(seq), Ordering::Release);

        let header = self.map.header();
        let wake = self.map.wake();
        // SeqCst on write_seq, the futex bump and the waiter count pairs with the reader's
        // SeqCst sequence (waiters += 1; load futex; load write_seq): either we see its waiter
        // and wake it, or it sees our write_seq and does not sleep.
        header.write_seq.store(seq + 1, Ordering::SeqCst);
        wake.futex.fetch_add(1, Ordering::SeqCst);
        if wake.waiters.load(Ordering::SeqCst) > 0 {
            futex::wake_all(&wake.futex);
            self.wake_calls += 1;
        }
        self.next_seq = seq + 1;
        seq
    }

    /// Sequence number the next published frame will get (= frames published so far).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many publishes issued a FUTEX_WAKE (the only syscall on the publish path).
    pub fn wake_calls(&self) -> u64 {
        self.wake_calls
    }

    /// The ring's geometry.
    pub fn geometry(&self) -> Geometry {
        self.map.geometry()
    }
}
