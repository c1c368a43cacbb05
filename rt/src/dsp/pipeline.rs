//! Interleaved device samples in, published ring frames out.

use super::error::DspError;
use crate::metrics::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use v2m_audio::frames::Frames;
use v2m_audio::resample::MonoResampler;
use v2m_audio::vad::Detector;
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::ring::{FRAME_NS, FRAME_SAMPLES, FrameFlags, FrameMeta, RingWriter};

/// Counters of the chain, for status and measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DspStats {
    /// Input frames (one sample per channel) consumed.
    pub input_frames: u64,
    /// 16 kHz samples produced (published ones plus the partial frame being filled).
    pub output_samples: u64,
    /// Frames published.
    pub frames: u64,
    /// Frames published with the discontinuity flag.
    pub discontinuities: u64,
}

/// Where a chain records the timing of each frame it publishes, every figure from the capture
/// of the frame's first sample.
#[derive(Debug, Clone, Default)]
pub struct FrameLatency {
    /// To its publish in the ring.
    pub capture_to_ring: Arc<Histogram>,
    /// To the device's hand-over of the input that completed it (the start of the callback
    /// carrying it): the 20 ms frame, the resampler's delay and the wait for the device to
    /// hand its last sample over. The floor of `capture_to_ring`: no code of v2m-rt's runs
    /// before it.
    pub capture_to_handover: Arc<Histogram>,
    /// From that hand-over to the publish: v2m-rt's own callback → DSP → ring.
    pub handover_to_ring: Arc<Histogram>,
}

/// Largest block of input frames downmixed at once; longer input is taken in pieces.
pub const MAX_BLOCK_FRAMES: usize = 8192;

/// Runs the VAD on each 20 ms frame and publishes it.
struct Framer {
    vad: Detector,
    writer: RingWriter,
    /// Capture time (ns) of the next frame's first sample.
    next_ns: u64,
    session_id: u64,
    discontinuity: bool,
    stats: DspStats,
    latency: Option<FrameLatency>,
    published: Option<Arc<AtomicU64>>,
}

/// 16 kHz samples from the resampler into `frames`, each whole frame published by `framer`.
fn take(frames: &mut Frames, framer: &mut Framer, out: &[f32]) {
    framer.stats.output_samples += out.len() as u64;
    let _ = frames.push(out, |frame| {
        framer.publish(frame);
        Ok::<(), std::convert::Infallible>(())
    });
}

impl Framer {
    fn publish(&mut self, frame: &[f32; FRAME_SAMPLES]) {
        let mut flags = if self.vad.is_speech(frame) {
            FrameFlags::SPEECH
        } else {
            FrameFlags::empty()
        };
        if self.discontinuity {
            flags = flags | FrameFlags::DISCONTINUITY;
            self.discontinuity = false;
            self.stats.discontinuities += 1;
        }
        let meta = FrameMeta {
            capture_ns: self.next_ns,
            session_id: self.session_id,
            flags,
        };
        let seq = self.writer.publish(frame, meta);
        if let Some(p) = &self.published {
            p.store(seq + 1, Ordering::Release);
        }
        self.next_ns += FRAME_NS;
        self.stats.frames += 1;
    }
}

/// The DSP chain of v2m-rt's DSP thread. Build it on that thread (the VAD is not `Send`).
pub struct Dsp {
    channels: usize,
    mono: Vec<f32>,
    resampler: MonoResampler,
    frames: Frames,
    framer: Framer,
    anchored: bool,
}

impl Dsp {
    /// A chain for `channels`-channel input at `rate` Hz publishing into `writer`, with WebRTC
    /// VAD of aggressiveness `vad_mode` (0..=3).
    pub fn new(
        rate: u32,
        channels: u16,
        vad_mode: u8,
        writer: RingWriter,
    ) -> Result<Dsp, DspError> {
        if channels == 0 {
            return Err(DspError::NoChannels);
        }
        let vad = Detector::new(vad_mode).map_err(|e| DspError::BadVadMode(e.0))?;
        Ok(Dsp {
            channels: channels as usize,
            mono: Vec::with_capacity(MAX_BLOCK_FRAMES),
            resampler: MonoResampler::new(rate)?,
            frames: Frames::default(),
            framer: Framer {
                vad,
                writer,
                next_ns: 0,
                session_id: 0,
                discontinuity: false,
                stats: DspStats::default(),
                latency: None,
                published: None,
            },
            anchored: false,
        })
    }

    /// Whether a chain for this input can be built, without building one.
    pub fn check(rate: u32, channels: u16, vad_mode: u8) -> Result<(), DspError> {
        if channels == 0 {
            return Err(DspError::NoChannels);
        }
        v2m_audio::vad::mode(vad_mode).map_err(|e| DspError::BadVadMode(e.0))?;
        MonoResampler::new(rate).map(drop).map_err(DspError::from)
    }

    /// Counters so far.
    pub fn stats(&self) -> DspStats {
        self.framer.stats
    }

    /// Records the timing of every published frame into `latency`.
    pub fn record_latency(&mut self, latency: FrameLatency) {
        self.framer.latency = Some(latency);
    }

    /// Keeps `counter` at the ring's write sequence after every publish.
    pub fn count_published(&mut self, counter: Arc<AtomicU64>) {
        counter.store(self.framer.writer.next_seq(), Ordering::Release);
        self.framer.published = Some(counter);
    }

    /// Gives the ring writer back (to the next chain, after a source change).
    pub fn into_writer(self) -> RingWriter {
        self.framer.writer
    }

    /// Pushes the input's end through: silence until every input sample so far is in a
    /// published frame (the last one padded with silence). For a source that ended (a file).
    pub fn flush(&mut self) {
        let rate = self.resampler.rate() as u64;
        let real =
            self.framer.stats.input_frames * 16_000 / rate.max(1) + self.resampler.delay() as u64;
        let target = real.div_ceil(FRAME_SAMPLES as u64) * FRAME_SAMPLES as u64;
        while self.framer.stats.frames * (FRAME_SAMPLES as u64) < target {
            self.mono.clear();
            self.mono.resize(256, 0.0);
            let (frames, framer) = (&mut self.frames, &mut self.framer);
            let _ = self
                .resampler
                .push(&self.mono, &mut |out| take(frames, framer, out));
        }
    }

    /// Output samples of delay the resampler adds.
    pub fn resampler_delay(&self) -> usize {
        self.resampler.delay()
    }

    /// The session id stamped on frames from now on (0: none).
    pub fn set_session(&mut self, id: u64) {
        self.framer.session_id = id;
    }

    /// Marks a gap in the input (dropped samples, device reopened): the next frame carries the
    /// discontinuity flag, and capture times re-anchor on the next block.
    pub fn mark_discontinuity(&mut self) {
        self.framer.discontinuity = true;
        self.anchored = false;
    }

    /// Processes interleaved samples whose first frame was captured at `capture_ns`
    /// (CLOCK_MONOTONIC), publishing every completed 20 ms frame. No allocation, no lock.
    /// The device is taken to have handed the block over the instant its last sample was
    /// captured.
    pub fn process(&mut self, interleaved: &[f32], capture_ns: u64) {
        let frames = (interleaved.len() / self.channels) as u64;
        let block_ns = frames * 1_000_000_000 / self.resampler.rate().max(1) as u64;
        self.process_delivered(interleaved, capture_ns, capture_ns + block_ns);
    }

    /// As [`Dsp::process`], for a block the device handed over at `delivered_ns`: the frames
    /// it completes record their wait for that hand-over apart from v2m-rt's own time after it.
    pub fn process_delivered(&mut self, interleaved: &[f32], capture_ns: u64, delivered_ns: u64) {
        if !self.anchored {
            // The next frame starts with output standing for this block's first input frame,
            // less what the resampler holds back and what the partial frame already has.
            let held = (self.resampler.delay() + self.frames.filled()) as u64;
            self.framer.next_ns = capture_ns.saturating_sub(held * 62_500);
            self.anchored = true;
        }
        let usable = interleaved.len() - interleaved.len() % self.channels;
        let frames_before = self.framer.stats.frames;
        let inv = 1.0 / self.channels as f32;
        for block in interleaved[..usable].chunks(MAX_BLOCK_FRAMES * self.channels) {
            self.mono.clear();
            self.mono.extend(
                block
                    .chunks_exact(self.channels)
                    .map(|f| f.iter().sum::<f32>() * inv),
            );
            self.framer.stats.input_frames += self.mono.len() as u64;
            let (frames, framer) = (&mut self.frames, &mut self.framer);
            if !self
                .resampler
                .push(&self.mono, &mut |out| take(frames, framer, out))
            {
                self.mark_discontinuity();
            }
        }
        let published = self.framer.stats.frames - frames_before;
        if let Some(l) = &self.framer.latency
            && capture_ns != 0
            && published > 0
        {
            // Dated from this block's own stamp, not the frame timeline's anchor: the last
            // frame published ends where the block ends, less what is still held back (the
            // resampler's delay and the partial next frame).
            let now = monotonic_ns();
            let block_ns = (usable / self.channels) as u64 * 1_000_000_000
                / self.resampler.rate().max(1) as u64;
            let held_ns = (self.resampler.delay() + self.frames.filled()) as u64 * 62_500;
            let last_end = (capture_ns + block_ns).saturating_sub(held_ns);
            for k in 1..=published {
                let first_ns = last_end.saturating_sub(k * FRAME_NS);
                l.capture_to_ring.record_ns(now.saturating_sub(first_ns));
                l.capture_to_handover
                    .record_ns(delivered_ns.saturating_sub(first_ns));
                l.handover_to_ring
                    .record_ns(now.saturating_sub(delivered_ns));
            }
        }
    }
}
