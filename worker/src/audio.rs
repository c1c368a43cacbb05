//! Reading audio files for offline transcription.

use crate::error::WorkerError;
use crate::features::mel::SAMPLE_RATE;
use std::path::Path;

/// Reads a WAV file as 16 kHz mono f32 (channels are averaged). Other rates are refused with
/// the command that converts them.
pub fn read_wav(path: &Path) -> Result<Vec<f32>, WorkerError> {
    let bad = |reason: String| WorkerError::BadAudio {
        path: path.to_owned(),
        reason,
    };
    let reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(io) => WorkerError::io(path, io),
        other => bad(format!("not a readable WAV file ({other})")),
    })?;
    let spec = reader.spec();
    if spec.sample_rate as usize != SAMPLE_RATE {
        return Err(bad(format!(
            "sample rate is {} Hz, the worker reads 16000 Hz: convert with \
             `sox IN.wav -r 16000 OUT.wav` (v2m-rt resamples any rate itself)",
            spec.sample_rate
        )));
    }
    let channels = spec.channels.max(1) as usize;
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        }
        (format, bits) => {
            return Err(bad(format!(
                "unsupported sample format {format:?} with {bits} bits"
            )));
        }
    };
    Ok(samples
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect())
}
