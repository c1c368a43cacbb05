//! Any audio or video file a user has, as samples, a piece at a time: so a 2-hour file costs
//! no more memory than a 2-minute one.
//!
//! WAV (any PCM or float width), FLAC, MP3, Ogg Vorbis, AAC/M4A, AIFF, ALAC, CAF and Matroska
//! are decoded in Rust (symphonia). Anything else (Opus, video containers, exotic codecs) goes
//! through `ffmpeg` when it is installed: a child process that pipes 16 kHz mono float PCM.
//! Only regular files are opened (a FIFO would block the opener), and every failure is an error
//! that names the file and what is wrong with it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// What kind of failure, for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The file cannot be read (missing, no permission).
    Io,
    /// Not a regular file (a FIFO, a device, a directory).
    NotRegular,
    /// The file is empty.
    Empty,
    /// Not audio v2m can read: no known format, or no audio track.
    Unsupported,
    /// A format only `ffmpeg` reads, and it is not installed.
    NeedsFfmpeg,
    /// The data is broken beyond what decoding can skip.
    Corrupt,
}

/// Why a file could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    /// What kind.
    pub kind: DecodeErrorKind,
    /// The file.
    pub path: PathBuf,
    /// What is wrong, for people: one line.
    pub message: String,
}

impl DecodeError {
    fn new(kind: DecodeErrorKind, path: &Path, message: impl Into<String>) -> DecodeError {
        DecodeError {
            kind,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// What the decoded samples are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioInfo {
    /// Frames per second.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u16,
    /// Length in seconds, when the container says.
    pub seconds: Option<f64>,
}

enum Source {
    Symphonia {
        format: Box<dyn FormatReader>,
        decoder: Box<dyn AudioDecoder>,
        track: u32,
        scratch: Vec<f32>,
        /// Packets the decoder refused (skipped: a glitch, not the end).
        bad_packets: u64,
    },
    Ffmpeg {
        child: Child,
        stdout: ChildStdout,
        stderr: Arc<Mutex<String>>,
        pending: Vec<u8>,
        samples: u64,
    },
}

/// A file being decoded.
pub struct Decoder {
    path: PathBuf,
    info: AudioInfo,
    source: Source,
}

/// Packets skipped before a file counts as corrupt rather than glitched.
const MAX_BAD_PACKETS: u64 = 1000;
/// Bytes read from ffmpeg per call: 1 s of 16 kHz f32.
const FFMPEG_CHUNK: usize = 64_000;

fn regular_file(path: &Path) -> Result<u64, DecodeError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| DecodeError::new(DecodeErrorKind::Io, path, e.to_string()))?;
    if !meta.is_file() {
        return Err(DecodeError::new(
            DecodeErrorKind::NotRegular,
            path,
            "not a regular file (a FIFO, a device or a directory)",
        ));
    }
    if meta.len() == 0 {
        return Err(DecodeError::new(
            DecodeErrorKind::Empty,
            path,
            "the file is empty",
        ));
    }
    Ok(meta.len())
}

impl Decoder {
    /// Opens `path`: symphonia if it knows the format, else `ffmpeg` if installed.
    pub fn open(path: &Path) -> Result<Decoder, DecodeError> {
        regular_file(path)?;
        match Decoder::open_symphonia(path) {
            Ok(d) => Ok(d),
            Err(e) if e.kind == DecodeErrorKind::Unsupported => match Decoder::open_ffmpeg(path) {
                Ok(d) => Ok(d),
                Err(f) if f.kind == DecodeErrorKind::NeedsFfmpeg => Err(DecodeError::new(
                    DecodeErrorKind::NeedsFfmpeg,
                    path,
                    format!(
                        "{}; other formats (Opus, video) need ffmpeg, which is not installed (Debian: apt install ffmpeg)",
                        e.message
                    ),
                )),
                Err(f) => Err(f),
            },
            Err(e) => Err(e),
        }
    }

    fn open_symphonia(path: &Path) -> Result<Decoder, DecodeError> {
        let unsupported = |m: String| DecodeError::new(DecodeErrorKind::Unsupported, path, m);
        let file = std::fs::File::open(path)
            .map_err(|e| DecodeError::new(DecodeErrorKind::Io, path, e.to_string()))?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|_| {
                unsupported(
                    "not an audio or video file v2m decodes by itself (WAV, FLAC, MP3, Ogg Vorbis, AAC/M4A, AIFF, ALAC, CAF, MKV)"
                        .into(),
                )
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| unsupported("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| unsupported("its audio track has no codec parameters".into()))?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| unsupported(format!("its codec is not one v2m decodes itself ({e})")))?;
        let rate = params
            .sample_rate
            .filter(|&r| (1_000..=768_000).contains(&r))
            .ok_or_else(|| unsupported("no usable sample rate".into()))?;
        let channels = params
            .channels
            .as_ref()
            .map(|c| c.count() as u16)
            .filter(|&c| c > 0)
            .ok_or_else(|| unsupported("no channels".into()))?;
        let seconds = track.num_frames.map(|n| n as f64 / rate as f64);
        let id = track.id;
        Ok(Decoder {
            path: path.to_owned(),
            info: AudioInfo {
                rate,
                channels,
                seconds,
            },
            source: Source::Symphonia {
                format,
                decoder,
                track: id,
                scratch: Vec::new(),
                bad_packets: 0,
            },
        })
    }

    fn open_ffmpeg(path: &Path) -> Result<Decoder, DecodeError> {
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
            .arg(path)
            .args([
                "-vn", "-sn", "-dn", "-ac", "1", "-ar", "16000", "-f", "f32le", "pipe:1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => DecodeError::new(
                    DecodeErrorKind::NeedsFfmpeg,
                    path,
                    "ffmpeg is not installed",
                ),
                _ => DecodeError::new(DecodeErrorKind::Io, path, format!("cannot run ffmpeg: {e}")),
            })?;
        let (Some(stdout), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(DecodeError::new(
                DecodeErrorKind::Io,
                path,
                "ffmpeg's pipes",
            ));
        };
        // Drained on a thread: a chatty ffmpeg must not block on a full pipe.
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            *sink.lock().unwrap_or_else(|p| p.into_inner()) = text;
        });
        let mut d = Decoder {
            path: path.to_owned(),
            info: AudioInfo {
                rate: 16_000,
                channels: 1,
                seconds: ffprobe_seconds(path),
            },
            source: Source::Ffmpeg {
                child,
                stdout,
                stderr,
                pending: Vec::new(),
                samples: 0,
            },
        };
        // Read until the first samples: a file ffmpeg cannot read fails here, at open, like one
        // symphonia cannot; the samples wait for the first read.
        let mut first = Vec::new();
        while first.is_empty() {
            if !d.read(&mut first)? {
                break;
            }
        }
        if let Source::Ffmpeg { pending, .. } = &mut d.source {
            let mut bytes: Vec<u8> = first.iter().flat_map(|s| s.to_le_bytes()).collect();
            bytes.append(pending);
            *pending = bytes;
        }
        Ok(d)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the samples are.
    pub fn info(&self) -> AudioInfo {
        self.info
    }

    /// Appends the next decoded samples (interleaved, [`AudioInfo::channels`] per frame) to
    /// `out`. `Ok(false)` at the end of the file. A truncated file ends early without an
    /// error; data that cannot be decoded at all is an error.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, DecodeError> {
        let path = self.path.clone();
        let channels = self.info.channels as usize;
        match &mut self.source {
            Source::Symphonia {
                format,
                decoder,
                track,
                scratch,
                bad_packets,
            } => loop {
                let packet = match format.next_packet() {
                    Ok(Some(p)) => p,
                    Ok(None) => return Ok(false),
                    // A file cut short: what came before is the audio.
                    Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Ok(false);
                    }
                    Err(SymError::ResetRequired) => return Ok(false),
                    Err(e) => {
                        return Err(DecodeError::new(
                            DecodeErrorKind::Corrupt,
                            &path,
                            e.to_string(),
                        ));
                    }
                };
                if packet.track_id != *track {
                    continue;
                }
                match decoder.decode(&packet) {
                    Ok(buf) => {
                        if buf.spec().channels().count() != channels {
                            return Err(DecodeError::new(
                                DecodeErrorKind::Unsupported,
                                &path,
                                "the channel count changes inside the file",
                            ));
                        }
                        buf.copy_to_vec_interleaved(scratch);
                        out.extend_from_slice(scratch);
                        return Ok(true);
                    }
                    Err(SymError::DecodeError(_) | SymError::IoError(_)) => {
                        *bad_packets += 1;
                        if *bad_packets > MAX_BAD_PACKETS {
                            return Err(DecodeError::new(
                                DecodeErrorKind::Corrupt,
                                &path,
                                format!("more than {MAX_BAD_PACKETS} packets could not be decoded"),
                            ));
                        }
                    }
                    Err(e) => {
                        return Err(DecodeError::new(
                            DecodeErrorKind::Corrupt,
                            &path,
                            e.to_string(),
                        ));
                    }
                }
            },
            Source::Ffmpeg {
                child,
                stdout,
                stderr,
                pending,
                samples,
            } => {
                let start = pending.len();
                let n = if start >= 4 {
                    // Samples read at open, not yet handed out.
                    usize::MAX
                } else {
                    pending.resize(start + FFMPEG_CHUNK, 0);
                    let n = stdout
                        .read(&mut pending[start..])
                        .map_err(|e| DecodeError::new(DecodeErrorKind::Io, &path, e.to_string()))?;
                    pending.truncate(start + n);
                    n
                };
                if n == 0 {
                    let status = child
                        .wait()
                        .map_err(|e| DecodeError::new(DecodeErrorKind::Io, &path, e.to_string()))?;
                    if !status.success() && *samples == 0 {
                        let text = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        let last = text
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or("");
                        return Err(DecodeError::new(
                            DecodeErrorKind::Unsupported,
                            &path,
                            format!("not an audio or video file (ffmpeg: {})", last.trim()),
                        ));
                    }
                    return Ok(false);
                }
                let whole = pending.len() / 4 * 4;
                out.extend(
                    pending[..whole]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                *samples += whole as u64 / 4;
                pending.drain(..whole);
                Ok(true)
            }
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        if let Source::Ffmpeg { child, .. } = &mut self.source {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The duration ffprobe reports, if it can.
fn ffprobe_seconds(path: &Path) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
}

/// Decodes all of `path` to 16 kHz mono (channels averaged, resampled). For short files and
/// tests; long ones go through [`Decoder`] a piece at a time.
pub fn read_mono_16k(path: &Path) -> Result<Vec<f32>, DecodeError> {
    let mut d = Decoder::open(path)?;
    let info = d.info();
    let mut r = crate::resample::To16k::new(info.rate, info.channels)
        .map_err(|e| DecodeError::new(DecodeErrorKind::Unsupported, path, e.to_string()))?;
    let mut out = Vec::new();
    let mut chunk = Vec::new();
    while d.read(&mut chunk)? {
        r.push(&chunk, &mut |s| out.extend_from_slice(s));
        chunk.clear();
    }
    r.finish(&mut |s| out.extend_from_slice(s));
    Ok(out)
}
