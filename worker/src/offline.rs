//! Transcribing a whole recording: the same VAD and segmenting as streaming, then one pass per
//! segment that holds speech.

use crate::error::WorkerError;
use crate::stream::segment::{Segment, SegmentPolicy, split};
use crate::transcriber::{PassTimings, Transcriber, Transcript};
use crate::vad;
use v2m_shm_proto::ring::FRAME_SAMPLES;

/// A whole recording's transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct LongTranscript {
    /// The segments' texts joined by spaces.
    pub text: String,
    /// Each segment and its pass (`None` for segments without speech).
    pub segments: Vec<(Segment, Option<Transcript>)>,
    /// Timings of every pass, summed.
    pub timings: PassTimings,
    /// Tokens decoded over all passes.
    pub tokens: usize,
}

/// Mean square of each 20 ms frame.
pub fn frame_energies(audio: &[f32]) -> Vec<f32> {
    audio
        .chunks(FRAME_SAMPLES)
        .map(|c| c.iter().map(|s| s * s).sum::<f32>() / FRAME_SAMPLES as f32)
        .collect()
}

/// Transcribes `audio` of any length.
pub fn transcribe_recording(
    t: &mut Transcriber,
    audio: &[f32],
    vad_aggressiveness: u8,
    policy: SegmentPolicy,
) -> Result<LongTranscript, WorkerError> {
    let flags = vad::speech_flags(audio, vad_aggressiveness);
    let segments = split(&flags, &frame_energies(audio), policy);
    let mut out = LongTranscript {
        text: String::new(),
        segments: Vec::new(),
        timings: PassTimings::default(),
        tokens: 0,
    };
    let mut texts = Vec::new();
    for seg in segments {
        let pass = if seg.has_speech {
            let a = &audio[seg.start * FRAME_SAMPLES..(seg.end * FRAME_SAMPLES).min(audio.len())];
            let r = t.transcribe(a)?;
            out.timings.mel_ms += r.timings.mel_ms;
            out.timings.encoder_ms += r.timings.encoder_ms;
            out.timings.decoder_ms += r.timings.decoder_ms;
            out.tokens += r.decoded.tokens.len();
            if !r.text.is_empty() {
                texts.push(r.text.clone());
            }
            Some(r)
        } else {
            None
        };
        out.segments.push((seg, pass));
    }
    out.text = texts.join(" ");
    Ok(out)
}
