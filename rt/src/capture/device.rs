//! Opening a cpal input device in whatever sample format and rate it offers.

use super::callback::{CallbackStats, CallbackWriter, Stamp};
use super::stream_error::{StreamErrors, on_stream_error};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, Stream};
use std::sync::Arc;

/// Why capture could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// No default input device, or none by that name.
    #[error("no input device{}: connect a microphone, or name one with --device (e.g. alsa:default)", .0.as_ref().map(|n| format!(" named '{n}'")).unwrap_or_default())]
    NoDevice(Option<String>),
    /// The device refused.
    #[error("input device {device}: {message}")]
    Device {
        /// The device.
        device: String,
        /// cpal's message.
        message: String,
    },
    /// A sample format v2m does not convert.
    #[error("input device {device}: unsupported sample format {format}")]
    Format {
        /// The device.
        device: String,
        /// The format.
        format: String,
    },
}

/// What the device delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFormat {
    /// Device name as given or found.
    pub device: String,
    /// Frames per second.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// The device's native sample format.
    pub sample_format: String,
}

/// A running input stream. Dropping it stops capture.
pub struct Capture {
    _stream: Stream,
    /// The format being captured.
    pub format: InputFormat,
    /// The callback's counters.
    pub stats: Arc<CallbackStats>,
    /// What the stream's error callback reported (a lost device, notices).
    pub errors: Arc<StreamErrors>,
}

/// The queue the DSP thread drains.
pub struct CaptureQueue {
    /// Interleaved f32 samples.
    pub samples: rtrb::Consumer<f32>,
    /// One stamp per queued block.
    pub stamps: rtrb::Consumer<Stamp>,
}

/// Opens `device` (a cpal device id such as `alsa:default`, or a device name; `None` for the
/// default input) and starts capturing into a queue of `queue_seconds` of audio, counting
/// into `stats` (shared so counts survive reopening the device).
pub fn open(
    device: Option<&str>,
    queue_seconds: f32,
    stats: Arc<CallbackStats>,
) -> Result<(Capture, CaptureQueue), CaptureError> {
    let host = cpal::default_host();
    let dev = match device {
        None => host.default_input_device(),
        Some(name) => name
            .parse::<cpal::DeviceId>()
            .ok()
            .and_then(|id| host.device_by_id(&id))
            .or_else(|| {
                host.input_devices().ok()?.find(|d| {
                    d.description().is_ok_and(|desc| desc.name() == name)
                        || d.id().is_ok_and(|id| id.to_string() == name)
                })
            }),
    }
    .ok_or_else(|| CaptureError::NoDevice(device.map(str::to_owned)))?;
    let name = dev
        .id()
        .map(|id| id.to_string())
        .unwrap_or_else(|_| device.unwrap_or("default").to_owned());
    let err = |e: cpal::Error| CaptureError::Device {
        device: name.clone(),
        message: e.to_string(),
    };
    let supported = dev.default_input_config().map_err(err)?;
    let format = InputFormat {
        device: name.clone(),
        rate: supported.sample_rate(),
        channels: supported.channels(),
        sample_format: format!("{:?}", supported.sample_format()),
    };
    let (writer, queue) = CaptureQueue::new(format.rate, format.channels, queue_seconds, stats);
    let stats = Arc::clone(&writer.stats);
    let mut writer = writer;
    let errors = Arc::new(StreamErrors::default());
    let error_sink = Arc::clone(&errors);
    let error_stats = Arc::clone(&stats);
    // On ALSA this runs on the audio thread: atomics only (the error is cpal's, dropped in
    // cpal's frame).
    let on_error = move |e: cpal::Error| on_stream_error(&e, &error_sink, &error_stats);
    let config = supported.config();
    macro_rules! stream {
        ($t:ty) => {
            dev.build_input_stream(
                config,
                move |data: &[$t], _: &cpal::InputCallbackInfo| writer.write(data),
                on_error,
                None,
            )
        };
    }
    let stream = match supported.sample_format() {
        SampleFormat::F32 => stream!(f32),
        SampleFormat::I16 => stream!(i16),
        SampleFormat::U16 => stream!(u16),
        SampleFormat::I32 => stream!(i32),
        SampleFormat::U32 => stream!(u32),
        SampleFormat::I8 => stream!(i8),
        SampleFormat::U8 => stream!(u8),
        SampleFormat::F64 => stream!(f64),
        other => {
            return Err(CaptureError::Format {
                device: name,
                format: format!("{other:?}"),
            });
        }
    }
    .map_err(err)?;
    stream.play().map_err(err)?;
    Ok((
        Capture {
            _stream: stream,
            format,
            stats,
            errors,
        },
        queue,
    ))
}

impl CaptureQueue {
    /// A queue of `seconds` of `channels`-channel audio at `rate` Hz and the writer that
    /// fills it (the cpal callback, or a file feeder standing in for it).
    pub fn new(
        rate: u32,
        channels: u16,
        seconds: f32,
        stats: Arc<CallbackStats>,
    ) -> (CallbackWriter, CaptureQueue) {
        let capacity =
            ((seconds.max(0.1) * rate as f32) as usize * channels.max(1) as usize).max(4096);
        let (mut samples_tx, mut samples) = rtrb::RingBuffer::new(capacity);
        let (mut stamps_tx, mut stamps) = rtrb::RingBuffer::new(4096);
        prefault(&mut samples_tx, &mut samples);
        prefault(&mut stamps_tx, &mut stamps);
        let writer = CallbackWriter::new(samples_tx, stamps_tx, rate, channels, stats);
        (writer, CaptureQueue { samples, stamps })
    }
}

/// Writes through the whole of a fresh queue once and reads it back, so that its pages are
/// mapped now: a first touch from the callback would be a page fault on the realtime path.
fn prefault<T: Copy + Default>(tx: &mut rtrb::Producer<T>, rx: &mut rtrb::Consumer<T>) {
    if let Ok(chunk) = tx.write_chunk_uninit(tx.slots()) {
        chunk.fill_from_iter(std::iter::repeat(T::default()));
    }
    if let Ok(chunk) = rx.read_chunk(rx.slots()) {
        chunk.commit_all();
    }
}

/// Input devices cpal sees: (id to pass as `--device`, description).
pub fn list_inputs() -> Vec<(String, String)> {
    let host = cpal::default_host();
    let Ok(devices) = host.input_devices() else {
        return Vec::new();
    };
    devices
        .filter_map(|d| {
            let id = d.id().ok()?.to_string();
            let name = d
                .description()
                .map(|desc| desc.name().to_string())
                .unwrap_or_default();
            Some((id, name))
        })
        .collect()
}
