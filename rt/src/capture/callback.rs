//! The body of the cpal input callback: convert to f32, copy into the queue, return. No
//! allocation, no lock, no logging, no blocking syscall (the clock is read through the vDSO).

use crate::metrics::Histogram;
use cpal::{FromSample, Sample};
use rtrb::Producer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use v2m_shm_proto::platform::alloc_count;
use v2m_shm_proto::platform::clock::monotonic_ns;

/// Capture time of one callback's block: the index of its first sample in the stream of all
/// samples the callback ever queued, the CLOCK_MONOTONIC time of that sample, and when the
/// device handed the block over (the callback's start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Index of the block's first sample (interleaved samples, all channels).
    pub sample_index: u64,
    /// When that sample was captured.
    pub capture_ns: u64,
    /// When the callback carrying the block began: the device's hand-over.
    pub delivered_ns: u64,
}

/// Counters the callback keeps for status and measurement.
#[derive(Debug, Default)]
pub struct CallbackStats {
    /// Callbacks run.
    pub callbacks: AtomicU64,
    /// Samples dropped because the queue was full.
    pub dropped_samples: AtomicU64,
    /// Overruns the device reported (audio lost before it reached the callback).
    pub overruns: AtomicU64,
    /// Set when samples were dropped or the device overran; the DSP thread clears it and
    /// flags the next frame.
    pub discontinuity: AtomicBool,
    /// Callback durations.
    pub durations: Histogram,
}

/// What the cpal callback owns.
pub struct CallbackWriter {
    samples: Producer<f32>,
    stamps: Producer<Stamp>,
    ns_per_frame: f64,
    channels: u64,
    queued: u64,
    pub(crate) stats: Arc<CallbackStats>,
}

impl CallbackWriter {
    /// A writer into `samples`/`stamps` for `channels`-channel audio at `rate` Hz.
    pub fn new(
        samples: Producer<f32>,
        stamps: Producer<Stamp>,
        rate: u32,
        channels: u16,
        stats: Arc<CallbackStats>,
    ) -> CallbackWriter {
        CallbackWriter {
            samples,
            stamps,
            ns_per_frame: 1e9 / rate as f64,
            channels: channels.max(1) as u64,
            queued: 0,
            stats,
        }
    }

    /// Queues one callback's block. A block that does not fit is dropped whole and counted.
    pub fn write<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        alloc_count::set_realtime(true);
        let entered = monotonic_ns();
        self.stats.callbacks.fetch_add(1, Ordering::Relaxed);
        let frames = data.len() as u64 / self.channels;
        // The block ends now; its first frame was captured `frames` periods ago.
        let capture_ns = entered.saturating_sub((frames as f64 * self.ns_per_frame) as u64);
        match self.samples.write_chunk_uninit(data.len()) {
            Ok(chunk) => {
                let stamp = Stamp {
                    sample_index: self.queued,
                    capture_ns,
                    delivered_ns: entered,
                };
                chunk.fill_from_iter(data.iter().map(|s| f32::from_sample(*s)));
                self.queued += data.len() as u64;
                // A lost stamp only makes the DSP thread extrapolate from the previous one.
                let _ = self.stamps.push(stamp);
            }
            Err(_) => {
                self.stats
                    .dropped_samples
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                self.stats.discontinuity.store(true, Ordering::Release);
            }
        }
        self.stats.durations.record_ns(monotonic_ns() - entered);
        alloc_count::set_realtime(false);
    }

    /// Samples the queue can take now (for sources that wait rather than drop: files).
    pub fn room(&self) -> usize {
        self.samples.slots()
    }
}
