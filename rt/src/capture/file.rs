//! A WAV file as a source: read whole, then fed into a capture queue by a thread standing in
//! for the cpal callback, at real-time pace (a recording as a microphone) or as fast as the
//! DSP thread takes it (`transcribe-file`).

use super::callback::CallbackWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why a file cannot be a source.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a WAV file, or a broken one.
    #[error("{path}: not a readable WAV file ({message})")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// hound's reason.
        message: String,
    },
    /// Not a regular file (a FIFO, a device, a directory): refused before opening it, as
    /// opening a FIFO blocks until someone writes.
    #[error("{path}: not a regular file")]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// Longer than allowed (its header says so; nothing was read).
    #[error(
        "{path}: {seconds:.0} s is longer than the ring holds ({max:.0} s): raise [rt] ring_seconds"
    )]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its length.
        seconds: f64,
        /// The limit.
        max: f64,
    },
    /// A WAV v2m does not decode.
    #[error("{path}: unsupported WAV: {message}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        message: String,
    },
}

/// Decoded audio: interleaved f32.
#[derive(Debug, Clone)]
pub struct WavAudio {
    /// Interleaved samples in -1..1.
    pub samples: Vec<f32>,
    /// Frames per second.
    pub rate: u32,
    /// Channels.
    pub channels: u16,
}

impl WavAudio {
    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / (self.rate as f64 * self.channels as f64)
    }
}

/// Reads a WAV file: PCM 8/16/24/32-bit integer or 32-bit float, any rate, any channels.
pub fn read_wav(path: &Path) -> Result<WavAudio, FileError> {
    read_wav_within(path, f64::INFINITY)
}

/// Reads a WAV file of at most `max_seconds` (as its header states, before reading any
/// sample). Only regular files: a FIFO or a device is refused without opening it.
pub fn read_wav_within(path: &Path, max_seconds: f64) -> Result<WavAudio, FileError> {
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_owned(),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let reader = hound::WavReader::new(std::io::BufReader::new(file)).map_err(|e| match e {
        hound::Error::IoError(source) => FileError::Io {
            path: path.to_owned(),
            source,
        },
        other => FileError::NotWav {
            path: path.to_owned(),
            message: other.to_string(),
        },
    })?;
    let spec = reader.spec();
    let unsupported = |message: String| FileError::Unsupported {
        path: path.to_owned(),
        message,
    };
    if spec.channels == 0 || spec.sample_rate < 4_000 || spec.sample_rate > 384_000 {
        return Err(unsupported(format!(
            "{} channels at {} Hz",
            spec.channels, spec.sample_rate
        )));
    }
    let seconds = reader.duration() as f64 / spec.sample_rate as f64;
    if seconds > max_seconds {
        return Err(FileError::TooLong {
            path: path.to_owned(),
            seconds,
            max: max_seconds,
        });
    }
    let broken = |e: hound::Error| FileError::NotWav {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(broken)?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(broken)?
        }
        (format, bits) => {
            return Err(unsupported(format!("{bits}-bit {format:?} samples")));
        }
    };
    Ok(WavAudio {
        samples,
        rate: spec.sample_rate,
        channels: spec.channels,
    })
}

/// How a file is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// 10 ms every 10 ms, like a microphone; silence after the end, until stopped.
    RealTimeThenSilence,
    /// As fast as the queue takes it; then the source is finished.
    AsFastAsPossible,
}

/// A running file feeder.
pub struct FileFeeder {
    stop: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FileFeeder {
    /// Starts feeding `audio` into `writer` at `pace`.
    pub fn spawn(
        audio: Arc<WavAudio>,
        pace: Pace,
        mut writer: CallbackWriter,
    ) -> std::io::Result<FileFeeder> {
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let (stop2, finished2) = (Arc::clone(&stop), Arc::clone(&finished));
        let handle = std::thread::Builder::new()
            .name("v2m-file".into())
            .spawn(move || {
                let ch = audio.channels as usize;
                let block = (audio.rate as usize / 100).max(1) * ch;
                match pace {
                    Pace::RealTimeThenSilence => {
                        let silence = vec![0f32; block];
                        let start = Instant::now();
                        let mut i = 0u32;
                        while !stop2.load(Ordering::Relaxed) {
                            let at = i as usize * block;
                            let data = audio.samples.get(at..(at + block).min(audio.samples.len()));
                            match data {
                                Some(d) if !d.is_empty() => writer.write(d),
                                _ => writer.write(&silence),
                            }
                            i += 1;
                            let due = start + Duration::from_millis(10) * i;
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                    Pace::AsFastAsPossible => {
                        let mut at = 0;
                        while at < audio.samples.len() && !stop2.load(Ordering::Relaxed) {
                            let room = writer.room().min(16 * block);
                            let n = (room - room % ch).min(audio.samples.len() - at);
                            if n == 0 {
                                std::thread::sleep(Duration::from_millis(1));
                                continue;
                            }
                            writer.write(&audio.samples[at..at + n]);
                            at += n;
                        }
                        finished2.store(true, Ordering::Release);
                    }
                }
            })?;
        Ok(FileFeeder {
            stop,
            finished,
            handle: Some(handle),
        })
    }

    /// Set once every sample is queued (as-fast-as-possible pace).
    pub fn finished_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.finished)
    }
}

impl Drop for FileFeeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
