//! The audio engine: one source (microphone or WAV file) feeding one DSP thread that owns the
//! ring's writer. Sources change (pause, resume, a file to transcribe, a device that failed)
//! by stopping the pair, taking the writer back and starting a new pair; the ring and its
//! sequence numbers go on.

use crate::capture::{
    self, CallbackStats, Capture, CaptureError, CaptureQueue, DspParams, DspShared, DspThread,
    FileFeeder, Pace, WavAudio, spawn_dsp_thread,
};
use crate::dsp::DspError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use v2m_shm_proto::ring::RingWriter;

/// Why the engine could not start a source.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The device could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The DSP chain refused the input, or its thread died.
    #[error(transparent)]
    Dsp(#[from] DspError),
}

/// Where live audio comes from.
#[derive(Debug, Clone)]
pub enum LiveSource {
    /// A cpal input device (`None`: the default one).
    Device(Option<String>),
    /// A recording played at real time, then silence.
    File(Arc<WavAudio>, String),
}

enum Running {
    Device(Capture),
    /// Held for its `Drop`, which stops the feeder thread.
    File(#[allow(dead_code)] FileFeeder),
}

/// The source and DSP thread pair, or the idle writer.
pub struct Engine {
    writer: Option<RingWriter>,
    running: Option<(Running, DspThread)>,
    vad_mode: u8,
    started_once: bool,
    closed_discontinuities: u64,
    /// Counters of whatever fills the capture queue; shared across sources.
    pub callback_stats: Arc<CallbackStats>,
    /// Session id and histograms; shared across DSP threads.
    pub shared: Arc<DspShared>,
}

impl Engine {
    /// An engine publishing into `writer` with WebRTC VAD `vad_mode`; nothing runs yet.
    pub fn new(writer: RingWriter, vad_mode: u8) -> Engine {
        Engine {
            writer: Some(writer),
            running: None,
            vad_mode,
            started_once: false,
            closed_discontinuities: 0,
            callback_stats: Arc::new(CallbackStats::default()),
            shared: Arc::new(DspShared::default()),
        }
    }

    /// Starts live capture from `source`; returns the device or file name.
    pub fn start_live(&mut self, source: &LiveSource) -> Result<String, EngineError> {
        self.stop()?;
        match source {
            LiveSource::Device(name) => {
                let (cap, queue) =
                    capture::open(name.as_deref(), 2.0, Arc::clone(&self.callback_stats))?;
                let f = cap.format.clone();
                let dsp = self.spawn(queue, f.rate, f.channels, None)?;
                log::info!(
                    "capturing from {} ({} Hz, {} ch, {})",
                    f.device,
                    f.rate,
                    f.channels,
                    f.sample_format
                );
                self.running = Some((Running::Device(cap), dsp));
                Ok(f.device)
            }
            LiveSource::File(audio, name) => {
                self.start_file(Arc::clone(audio), Pace::RealTimeThenSilence)?;
                Ok(name.clone())
            }
        }
    }

    /// Starts feeding `audio` at `pace`.
    pub fn start_file(&mut self, audio: Arc<WavAudio>, pace: Pace) -> Result<(), EngineError> {
        self.stop()?;
        let (writer, queue) = CaptureQueue::new(
            audio.rate,
            audio.channels,
            2.0,
            Arc::clone(&self.callback_stats),
        );
        crate::dsp::Dsp::check(audio.rate, audio.channels, self.vad_mode)?;
        let feeder = FileFeeder::spawn(Arc::clone(&audio), pace, writer);
        let finished = (pace == Pace::AsFastAsPossible).then(|| feeder.finished_flag());
        let dsp = self.spawn(queue, audio.rate, audio.channels, finished)?;
        self.running = Some((Running::File(feeder), dsp));
        Ok(())
    }

    fn spawn(
        &mut self,
        queue: CaptureQueue,
        rate: u32,
        channels: u16,
        input_finished: Option<Arc<AtomicBool>>,
    ) -> Result<DspThread, EngineError> {
        // Checked before the writer is handed over, so a refused input leaves it here.
        crate::dsp::Dsp::check(rate, channels, self.vad_mode)?;
        let writer = self.writer.take().ok_or(DspError::Panicked)?;
        let params = DspParams {
            queue,
            rate,
            channels,
            vad_mode: self.vad_mode,
            callback_stats: Arc::clone(&self.callback_stats),
            shared: Arc::clone(&self.shared),
            input_finished,
            discontinuity_first: self.started_once,
        };
        self.started_once = true;
        Ok(spawn_dsp_thread(params, writer)?)
    }

    /// Stops the source and the DSP thread (if running) and takes the writer back.
    pub fn stop(&mut self) -> Result<(), EngineError> {
        if let Some((source, dsp)) = self.running.take() {
            drop(source);
            self.closed_discontinuities += dsp.stats().discontinuities;
            self.writer = Some(dsp.stop()?);
        }
        Ok(())
    }

    /// Whether a source is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// A finished file source has been drained into the ring.
    pub fn drained(&self) -> bool {
        self.running.as_ref().is_some_and(|(_, dsp)| dsp.drained())
    }

    /// The running device's last stream error, if it reported one.
    pub fn device_error(&self) -> Option<String> {
        match &self.running {
            Some((Running::Device(cap), _)) => cap
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            _ => None,
        }
    }

    /// The DSP thread ended on its own (it only does by panicking).
    pub fn dsp_died(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|(_, dsp)| dsp.is_finished())
    }

    /// Stamps frames with `session` from now on (0: none).
    pub fn set_session(&self, session: u64) {
        self.shared.session.store(session, Ordering::Release);
    }

    /// Frames flagged as discontinuities so far.
    pub fn discontinuities(&self) -> u64 {
        self.closed_discontinuities
            + self
                .running
                .as_ref()
                .map_or(0, |(_, dsp)| dsp.stats().discontinuities)
    }
}
