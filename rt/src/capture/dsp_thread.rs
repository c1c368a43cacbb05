//! The DSP thread: drains the capture queue through the DSP chain into the ring.
//!
//! Once running it allocates nothing and takes no lock; with the queue empty it sleeps 2 ms
//! (rtrb has no blocking read, and waking it from the callback would put a syscall there).

use super::callback::{CallbackStats, Stamp};
use super::device::CaptureQueue;
use crate::dsp::{Dsp, DspError, DspStats};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use v2m_shm_proto::ring::RingWriter;

/// The chain's counters, shared without a lock.
#[derive(Default)]
struct SharedStats {
    input_frames: AtomicU64,
    output_samples: AtomicU64,
    frames: AtomicU64,
    discontinuities: AtomicU64,
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
    handle: Option<JoinHandle<Result<(), DspError>>>,
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

    /// Stops the thread after the block in hand; returns its result.
    pub fn stop(mut self) -> Result<(), DspError> {
        self.stop.store(true, Ordering::Release);
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Ok(()),
            None => Ok(()),
        }
    }
}

/// Starts the DSP thread for `rate`/`channels` input, publishing into `writer`.
pub fn spawn_dsp_thread(
    mut queue: CaptureQueue,
    rate: u32,
    channels: u16,
    vad_mode: u8,
    writer: RingWriter,
    callback_stats: Arc<CallbackStats>,
) -> DspThread {
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(SharedStats::default());
    let (stop2, stats2) = (Arc::clone(&stop), Arc::clone(&stats));
    let handle = std::thread::Builder::new()
        .name("v2m-dsp".into())
        .spawn(move || {
            // Built here: the VAD must stay on this thread.
            let mut dsp = Dsp::new(rate, channels, vad_mode, writer)?;
            let ns_per_sample = 1e9 / (rate as f64 * channels as f64);
            let mut index = 0u64;
            let mut stamp = Stamp::default();
            let mut anchored = false;
            while !stop2.load(Ordering::Acquire) {
                let available = queue.samples.slots();
                let usable = available - available % channels as usize;
                if usable == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
                if callback_stats.discontinuity.swap(false, Ordering::AcqRel) {
                    dsp.mark_discontinuity();
                }
                // The latest stamp at or before the block's first sample dates it.
                while let Ok(next) = queue.stamps.peek()
                    && next.sample_index <= index
                {
                    stamp = *next;
                    anchored = true;
                    let _ = queue.stamps.pop();
                }
                let capture_ns = if anchored {
                    stamp.capture_ns + ((index - stamp.sample_index) as f64 * ns_per_sample) as u64
                } else {
                    0
                };
                let Ok(chunk) = queue.samples.read_chunk(usable) else {
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
                stats2.store(dsp.stats());
            }
            stats2.store(dsp.stats());
            Ok(())
        })
        .expect("spawn the DSP thread");
    DspThread {
        stop,
        handle: Some(handle),
        stats,
    }
}
