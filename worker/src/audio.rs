//! Audio files for offline transcription: any format v2m-audio decodes (WAV, FLAC, MP3, Ogg,
//! AAC…, others through ffmpeg), at any rate and channel count, as 16 kHz mono.

use crate::error::WorkerError;
use std::path::Path;
pub use v2m_audio::vad::speech_flags as vad_flags;

/// Reads a whole audio file as 16 kHz mono f32 (channels averaged, resampled).
pub fn read_audio(path: &Path) -> Result<Vec<f32>, WorkerError> {
    v2m_audio::decode::read_mono_16k(path).map_err(WorkerError::from)
}

/// Speech flags for 20 ms frames of 16 kHz `audio` (WebRTC VAD of aggressiveness 0..=3).
pub fn speech_flags(audio: &[f32], aggressiveness: u8) -> Result<Vec<bool>, WorkerError> {
    vad_flags(audio, aggressiveness).map_err(|e| WorkerError::Usage(e.to_string()))
}
