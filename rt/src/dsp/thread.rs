//! The DSP thread: drains the capture queue through the DSP chain into the ring.
//!
//! Once running it allocates nothing and takes no lock (it declares itself realtime to the
//! counting allocator after its first block). rtrb has no blocking read, and waking this
//! thread from the callback would put a syscall there, so with the queue empty it sleeps until
//! just after the next callback is due, judged from the last one (see [`idle_wait`]).

use super::{Dsp, DspError, DspStats, FrameLatency};
use crate::capture::{CallbackStats, CaptureQueue, Stamp};
use crate::metrics::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use v2m_shm_proto::platform::alloc_count;
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::ring::RingWriter;

/// What outlives one DSP thread: the session stamped on frames, and the timing histograms.
#[derive(Debug, Default)]
pub struct DspShared {
    /// Session id stamped on frames from now on (0: none), set by the control thread.
    pub session: AtomicU64,
    /// DSP time per drained block.
    pub step: Arc<Histogram>,
    /// Each frame's capture → hand-over → publish.
    pub latency: FrameLatency,
    /// Frames published so far (the ring's write sequence), for a file fed at the workers'
    /// pace.
    pub published: Arc<AtomicU64>,
}

/// Callbacks whose blocks one pass of the DSP loop takes apart (more wait for the next pass).
const MAX_PIECES: usize = 32;

/// Everything a DSP thread needs besides the ring writer.
pub struct DspParams {
    /// The queue to drain.
    pub queue: CaptureQueue,
    /// Input rate, Hz.
    pub rate: u32,
    /// Interleaved input channels.
    pub channels: u16,
    /// WebRTC VAD aggressiveness, 0..=3.
    pub vad_mode: u8,
    /// The queue writer's counters (its discontinuity flag is consumed here).
    pub callback_stats: Arc<CallbackStats>,
    /// Session id and histograms.
    pub shared: Arc<DspShared>,
    /// Set by a source that has ended (a file): once the queue is empty the chain is flushed
    /// and [`DspThread::drained`] turns true.
    pub input_finished: Option<Arc<AtomicBool>>,
    /// Flag the first frame as a discontinuity (the chain follows an earlier one).
    pub discontinuity_first: bool,
}

/// The chain's counters, shared without a lock.
#[derive(Default)]
struct SharedStats {
    input_frames: AtomicU64,
    output_samples: AtomicU64,
    frames: AtomicU64,
    discontinuities: AtomicU64,
    drained: AtomicBool,
}

impl SharedStats {
    fn store(&self, s: DspStats) {
        self.input_frames.store(s.input_frames, Ordering::Relaxed);
        self.output_samples
            .store(s.output_samples, Ordering::Relaxed);
        self.frames.store(s.frames, Ordering::Relaxed);
        self.discontinuities
            .store(s.discontinuities, Ordering::Relaxed);
    }
}

/// A running DSP thread.
pub struct DspThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<RingWriter, DspError>>>,
    stats: Arc<SharedStats>,
}

impl DspThread {
    /// The chain's counters, as of the last drained block.
    pub fn stats(&self) -> DspStats {
        DspStats {
            input_frames: self.stats.input_frames.load(Ordering::Relaxed),
            output_samples: self.stats.output_samples.load(Ordering::Relaxed),
            frames: self.stats.frames.load(Ordering::Relaxed),
            discontinuities: self.stats.discontinuities.load(Ordering::Relaxed),
        }
    }

    /// Whether a finished source has been drained and flushed into the ring.
    pub fn drained(&self) -> bool {
        self.stats.drained.load(Ordering::Acquire)
    }

    /// Whether the thread has ended (stopped, or failed).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the thread after the block in hand and gives the ring writer back.
    pub fn stop(mut self) -> Result<RingWriter, DspError> {
        self.stop.store(true, Ordering::Release);
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(DspError::Panicked),
            None => Err(DspError::Panicked),
        }
    }
}

/// Starts the DSP thread, publishing into `writer`. The chain is checked before the thread
/// starts, so a bad rate or VAD mode is an error here and the writer is not lost to it.
pub fn spawn_dsp_thread(p: DspParams, writer: RingWriter) -> Result<DspThread, DspError> {
    Dsp::check(p.rate, p.channels, p.vad_mode)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SharedStats::default());
    let (stop2, stats2) = (Arc::clone(&stop), Arc::clone(&stats));
    let handle = std::thread::Builder::new()
        .name("v2m-dsp".into())
        .spawn(move || run(p, writer, &stop2, &stats2))
        .map_err(|e| DspError::Thread(e.to_string()))?;
    Ok(DspThread {
        stop,
        handle: Some(handle),
        stats,
    })
}

fn run(
    mut p: DspParams,
    writer: RingWriter,
    stop: &AtomicBool,
    stats: &SharedStats,
) -> Result<RingWriter, DspError> {
    // Built here: the VAD must stay on this thread.
    let mut dsp = Dsp::new(p.rate, p.channels, p.vad_mode, writer)?;
    dsp.record_latency(p.shared.latency.clone());
    dsp.count_published(Arc::clone(&p.shared.published));
    if p.discontinuity_first {
        dsp.mark_discontinuity();
    }
    let channels = p.channels as usize;
    let ns_per_sample = 1e9 / (p.rate as f64 * channels as f64);
    let mut index = 0u64;
    let mut stamp = Stamp::default();
    let mut anchored = false;
    let mut session = 0;
    // The newest callback's block: (when it ended, its length), ns.
    let mut last_block: Option<(u64, u64)> = None;
    while !stop.load(Ordering::Acquire) {
        let available = p.queue.samples.slots();
        let usable = available - available % channels;
        if usable == 0 {
            if let Some(done) = &p.input_finished
                && done.load(Ordering::Acquire)
                && !stats.drained.load(Ordering::Relaxed)
            {
                dsp.flush();
                stats.store(dsp.stats());
                stats.drained.store(true, Ordering::Release);
            }
            std::thread::sleep(idle_wait(last_block, monotonic_ns()));
            continue;
        }
        let began = monotonic_ns();
        let now_session = p.shared.session.load(Ordering::Acquire);
        if now_session != session {
            session = now_session;
            dsp.set_session(session);
        }
        if p.callback_stats.discontinuity.swap(false, Ordering::AcqRel) {
            dsp.mark_discontinuity();
        }
        // The newest stamp inside the block dates it: callbacks that came back to back were
        // all stamped at their arrival, and only the last of them says when the block ended.
        // Each callback's part is processed apart, with its own hand-over time; a block of
        // more callbacks than `pieces` holds is cut at the first one that does not fit.
        let mut usable = usable as u64;
        let mut pieces = [(0u64, 0u64); MAX_PIECES];
        let mut count = 0;
        // What comes before the first stamp is the rest of the previous stamp's block.
        pieces[0] = (index, stamp.delivered_ns);
        while let Ok(next) = p.queue.stamps.peek()
            && next.sample_index < index + usable
        {
            if next.sample_index > index {
                if count + 1 == MAX_PIECES {
                    usable = next.sample_index - index;
                    break;
                }
                count += 1;
            }
            stamp = *next;
            anchored = true;
            pieces[count] = (next.sample_index.max(index), next.delivered_ns);
            let _ = p.queue.stamps.pop();
        }
        let pieces = &pieces[..=count];
        let capture_ns = if anchored {
            let back = stamp.sample_index as f64 - index as f64;
            let newest_ns =
                (index + usable).saturating_sub(stamp.sample_index) as f64 * ns_per_sample;
            last_block = Some((stamp.capture_ns + newest_ns as u64, newest_ns as u64));
            (stamp.capture_ns as f64 - back * ns_per_sample).max(0.0) as u64
        } else {
            0
        };
        let Ok(chunk) = p.queue.samples.read_chunk(usable as usize) else {
            continue;
        };
        let (a, b) = chunk.as_slices();
        for (i, &(start, delivered_ns)) in pieces.iter().enumerate() {
            let end = pieces.get(i + 1).map_or(index + usable, |next| next.0);
            let (from, to) = ((start - index) as usize, (end - index) as usize);
            let piece_ns = |offset: usize| match capture_ns {
                0 => 0,
                ns => ns + (offset as f64 * ns_per_sample) as u64,
            };
            if from < a.len() {
                dsp.process_delivered(&a[from..to.min(a.len())], piece_ns(from), delivered_ns);
            }
            if to > a.len() {
                let from_b = from.max(a.len());
                dsp.process_delivered(
                    &b[from_b - a.len()..to - a.len()],
                    piece_ns(from_b),
                    delivered_ns,
                );
            }
        }
        chunk.commit_all();
        index += usable;
        stats.store(dsp.stats());
        p.shared.step.record_ns(monotonic_ns() - began);
        // From here on every allocation on this thread is counted against the realtime path.
        alloc_count::set_realtime(true);
    }
    alloc_count::set_realtime(false);
    stats.store(dsp.stats());
    Ok(dsp.into_writer())
}

/// How long to sleep with the queue empty, given the newest callback's block (when it ended and
/// its length, ns): until its successor is due plus a little (callbacks come one period apart),
/// briefly when that is overdue, and 2 ms when there is no rhythm to go by (no callback yet, or
/// none for a while: paused, a file, a stalled device).
pub fn idle_wait(last_block: Option<(u64, u64)>, now_ns: u64) -> Duration {
    const GRACE_NS: u64 = 100_000;
    const OVERDUE_POLL: Duration = Duration::from_micros(250);
    const NO_RHYTHM: Duration = Duration::from_millis(2);
    let Some((end, len)) = last_block else {
        return NO_RHYTHM;
    };
    if len == 0 || len > 100_000_000 {
        return NO_RHYTHM;
    }
    let due = end + len + GRACE_NS;
    if due > now_ns {
        Duration::from_nanos((due - now_ns).min(len + GRACE_NS))
    } else if now_ns - due < 4 * len {
        OVERDUE_POLL
    } else {
        NO_RHYTHM
    }
}

#[cfg(test)]
mod tests {
    use super::idle_wait;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    #[test]
    fn sleeps_until_the_next_callback_is_due() {
        // A 5 ms block ended at t=100 ms; now is 101 ms: the next is due at 105 ms.
        assert_eq!(
            idle_wait(Some((100 * MS, 5 * MS)), 101 * MS),
            Duration::from_micros(4_100)
        );
        // Never longer than one period, even with a clock that went backwards.
        assert_eq!(
            idle_wait(Some((100 * MS, 5 * MS)), 50 * MS),
            Duration::from_micros(5_100)
        );
    }

    #[test]
    fn polls_briefly_when_late_and_slowly_without_a_rhythm() {
        assert_eq!(
            idle_wait(Some((100 * MS, 5 * MS)), 106 * MS),
            Duration::from_micros(250)
        );
        assert_eq!(
            idle_wait(Some((100 * MS, 5 * MS)), 200 * MS),
            Duration::from_millis(2)
        );
        assert_eq!(idle_wait(None, 5 * MS), Duration::from_millis(2));
        assert_eq!(
            idle_wait(Some((100 * MS, 0)), 101 * MS),
            Duration::from_millis(2)
        );
    }
}
