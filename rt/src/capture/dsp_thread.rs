//! The DSP thread: drains the capture queue through the DSP chain into the ring.
//!
//! Once running it allocates nothing and takes no lock (it declares itself realtime to the
//! counting allocator after its first block); with the queue empty it sleeps 2 ms (rtrb has
//! no blocking read, and waking it from the callback would put a syscall there).

use super::callback::{CallbackStats, Stamp};
use super::device::CaptureQueue;
use crate::dsp::{Dsp, DspError, DspStats};
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
    /// Capture time of a frame to its publish.
    pub capture_to_ring: Arc<Histogram>,
}

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
    dsp.record_capture_to_ring(Arc::clone(&p.shared.capture_to_ring));
    if p.discontinuity_first {
        dsp.mark_discontinuity();
    }
    let channels = p.channels as usize;
    let ns_per_sample = 1e9 / (p.rate as f64 * channels as f64);
    let mut index = 0u64;
    let mut stamp = Stamp::default();
    let mut anchored = false;
    let mut session = 0;
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
            std::thread::sleep(Duration::from_millis(2));
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
        // The latest stamp at or before the block's first sample dates it.
        while let Ok(next) = p.queue.stamps.peek()
            && next.sample_index <= index
        {
            stamp = *next;
            anchored = true;
            let _ = p.queue.stamps.pop();
        }
        let capture_ns = if anchored {
            stamp.capture_ns + ((index - stamp.sample_index) as f64 * ns_per_sample) as u64
        } else {
            0
        };
        let Ok(chunk) = p.queue.samples.read_chunk(usable) else {
            continue;
        };
        let (a, b) = chunk.as_slices();
        dsp.process(a, capture_ns);
        if !b.is_empty() {
            let ns = capture_ns + (a.len() as f64 * ns_per_sample) as u64;
            dsp.process(b, ns);
        }
        chunk.commit_all();
        index += usable as u64;
        stats.store(dsp.stats());
        p.shared.step.record_ns(monotonic_ns() - began);
        // From here on every allocation on this thread is counted against the realtime path.
        alloc_count::set_realtime(true);
    }
    alloc_count::set_realtime(false);
    stats.store(dsp.stats());
    Ok(dsp.into_writer())
}
