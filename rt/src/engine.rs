//! The audio engine: one source (microphone or WAV file) feeding one DSP thread that owns the
//! ring's writer. Sources change (pause, resume, a file to transcribe, a device that failed)
//! by stopping the pair, taking the writer back and starting a new pair; the ring and its
//! sequence numbers go on.

use crate::capture::{
    self, CallbackStats, Capture, CaptureError, CaptureQueue, DecodeError, Decoder, FeedProgress,
    FileFeeder, Pace,
};
use crate::dsp::{DspError, DspParams, DspShared, DspThread, spawn_dsp_thread};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use v2m_shm_proto::ring::RingWriter;

/// A running device that delivers no callback for this long has stalled: some drivers (a sound
/// server that went away, some USB microphones) stop delivering without reporting an error.
pub const STALL_AFTER: Duration = Duration::from_secs(2);

/// How long stopping waits for a device to close before leaving it to close in the background.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Closes `cap` on a thread of its own and waits up to `wait` for it: cpal joins its stream
/// thread on close, and a stream stuck in its driver would otherwise hold control for ever.
fn close_in_background(cap: Capture, wait: Duration) {
    let (closed, done) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("v2m-close".into())
        .spawn(move || {
            drop(cap);
            let _ = closed.send(());
        });
    if let Err(e) = spawned {
        log::error!("cannot start a thread to close the input device: {e}");
        return;
    }
    if !wait.is_zero() && done.recv_timeout(wait).is_err() {
        log::warn!("the input device did not close within {wait:?}; it is left closing");
    }
}

/// Why a live device counts as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceFailure {
    /// The stream reported an error that ends it (cpal's kind decides: see
    /// [`crate::capture::effect_of`]).
    Lost {
        /// The device.
        device: String,
        /// cpal's kind.
        kind: cpal::ErrorKind,
    },
    /// No callback for this long: the driver stopped delivering without a word.
    Stalled {
        /// The device.
        device: String,
        /// How long it has been silent.
        silent: Duration,
    },
}

impl std::fmt::Display for DeviceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceFailure::Lost { device, kind } => write!(f, "input device {device}: {kind}"),
            DeviceFailure::Stalled { device, silent } => write!(
                f,
                "input device {device}: no audio for {:.1} s (the device stalled)",
                silent.as_secs_f32()
            ),
        }
    }
}

/// What the realtime path measured, since the daemon started (every source, every reopening).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EngineMetrics {
    /// The figures status shows.
    pub capture: v2m_shm_proto::protocol::CaptureMetrics,
    /// Input samples dropped because the callback→DSP queue was full.
    pub samples_dropped: u64,
    /// Frames published with the discontinuity flag.
    pub discontinuities: u64,
    /// Overruns the device reported.
    pub overruns: u64,
    /// Stream notices (errors that did not end the stream) and the last one's kind.
    pub notices: (u64, Option<cpal::ErrorKind>),
}

/// Why the engine could not start a source.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The device could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The DSP chain refused the input, or its thread died.
    #[error(transparent)]
    Dsp(#[from] DspError),
    /// A file standing in for the device cannot be decoded.
    #[error(transparent)]
    File(#[from] DecodeError),
}

/// Where live audio comes from.
#[derive(Debug, Clone)]
pub enum LiveSource {
    /// A cpal input device (`None`: the default one).
    Device(Option<String>),
    /// A recording (any format) played at real time, then silence.
    File(PathBuf),
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
    /// The callback count when it last changed, and when that was seen (live devices only).
    heartbeat: (u64, Instant),
    /// When [`Engine::device_failure`] last looked.
    last_check: Instant,
    /// Counters of whatever fills the capture queue; shared across sources.
    callback_stats: Arc<CallbackStats>,
    /// Session id and histograms; shared across DSP threads.
    shared: Arc<DspShared>,
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
            heartbeat: (0, Instant::now()),
            last_check: Instant::now(),
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
                self.heartbeat = (self.callbacks(), Instant::now());
                Ok(f.device)
            }
            LiveSource::File(path) => {
                self.start_file(Decoder::open(path)?, Pace::RealTimeThenSilence)?;
                Ok(path.display().to_string())
            }
        }
    }

    /// Starts feeding what `decoder` decodes at `pace`; its progress.
    pub fn start_file(
        &mut self,
        decoder: Decoder,
        pace: Pace,
    ) -> Result<Arc<FeedProgress>, EngineError> {
        self.stop()?;
        let info = decoder.info();
        crate::dsp::Dsp::check(info.rate, info.channels, self.vad_mode)?;
        let (writer, queue) = CaptureQueue::new(
            info.rate,
            info.channels,
            2.0,
            Arc::clone(&self.callback_stats),
        );
        // A file fed for transcription ends; one playing as a microphone goes on in silence.
        let ends = matches!(pace, Pace::Worker { .. });
        let feeder = FileFeeder::spawn(decoder, pace, writer)
            .map_err(|e| DspError::Thread(e.to_string()))?;
        let progress = feeder.progress();
        let finished = ends.then(|| Arc::clone(&progress.finished));
        let dsp = self.spawn(queue, info.rate, info.channels, finished)?;
        self.running = Some((Running::File(feeder), dsp));
        Ok(progress)
    }

    /// Frames the DSP thread has published (the ring's write sequence), kept up to date by it.
    pub fn published(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.shared.published)
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

    /// Stops the source and the DSP thread (if running) and takes the writer back. A device
    /// gets [`CLOSE_WAIT`] to close; one stuck in its driver is left closing in the background.
    pub fn stop(&mut self) -> Result<(), EngineError> {
        self.stop_waiting(CLOSE_WAIT)
    }

    /// Stops a failed source without waiting for its device to close (closing a stalled
    /// stream can block for ever in the driver). Takes the writer back from the DSP thread.
    pub fn abandon(&mut self) -> Result<(), EngineError> {
        self.stop_waiting(Duration::ZERO)
    }

    fn stop_waiting(&mut self, wait: Duration) -> Result<(), EngineError> {
        if let Some((source, dsp)) = self.running.take() {
            match source {
                Running::File(feeder) => drop(feeder),
                Running::Device(cap) => close_in_background(cap, wait),
            }
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

    fn callbacks(&self) -> u64 {
        self.callback_stats.callbacks.load(Ordering::Relaxed)
    }

    /// Why the running device failed, if it did: a stream error that ends it, or no callback
    /// for [`STALL_AFTER`] (checked against `now`; call it regularly).
    pub fn device_failure(&mut self, now: Instant) -> Option<DeviceFailure> {
        let Some((Running::Device(cap), _)) = &self.running else {
            return None;
        };
        let device = cap.format.device.clone();
        if let Some(kind) = cap.errors.lost() {
            return Some(DeviceFailure::Lost { device, kind });
        }
        let callbacks = self.callbacks();
        // Not looking for a while (this process stopped, say) is not the device's silence.
        let unwatched = now.saturating_duration_since(self.last_check) > STALL_AFTER / 2;
        self.last_check = now;
        if callbacks != self.heartbeat.0 || unwatched {
            self.heartbeat = (callbacks, now);
            return None;
        }
        let silent = now.saturating_duration_since(self.heartbeat.1);
        (silent >= STALL_AFTER).then_some(DeviceFailure::Stalled { device, silent })
    }

    /// The realtime path's figures.
    pub fn metrics(&self) -> EngineMetrics {
        use v2m_shm_proto::platform::alloc_count;
        let cb = &self.callback_stats;
        let shared = &self.shared;
        let notices = match &self.running {
            Some((Running::Device(cap), _)) => cap.errors.notices(),
            _ => (0, None),
        };
        EngineMetrics {
            capture: v2m_shm_proto::protocol::CaptureMetrics {
                callbacks: cb.callbacks.load(Ordering::Relaxed),
                callback_max_us: cb.durations.max_us(),
                callback_p99_us: cb.durations.quantile_us(0.99),
                dsp_frame_p50_us: shared.step.quantile_us(0.5),
                dsp_frame_p99_us: shared.step.quantile_us(0.99),
                capture_to_ring_p50_us: shared.latency.capture_to_ring.quantile_us(0.5),
                capture_to_ring_p99_us: shared.latency.capture_to_ring.quantile_us(0.99),
                capture_to_handover_p99_us: shared.latency.capture_to_handover.quantile_us(0.99),
                handover_to_ring_p99_us: shared.latency.handover_to_ring.quantile_us(0.99),
                allocs_after_start: alloc_count::installed().then(alloc_count::realtime_allocs),
                frees_after_start: alloc_count::installed().then(alloc_count::realtime_frees),
            },
            samples_dropped: cb.dropped_samples.load(Ordering::Relaxed),
            discontinuities: self.discontinuities(),
            overruns: cb.overruns.load(Ordering::Relaxed),
            notices,
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
