//! Transcribing a whole recording: its frames through the same [`SessionStream`] that follows
//! live dictation (VAD flags from the same WebRTC VAD), without provisional or speculative
//! passes. Windows, hard commits, prompts and the final pass are the live computation, so a
//! recording transcribed here and dictated through the ring give the same text.

use crate::error::WorkerError;
use crate::stream::session::{Final, PassModel, SessionStream, StreamPolicy};
use crate::vad;
use v2m_shm_proto::ring::FRAME_SAMPLES;

/// Transcribes `audio` (16 kHz mono, any length) with `policy`.
pub fn transcribe_recording(
    model: &mut dyn PassModel,
    audio: &[f32],
    vad_aggressiveness: u8,
    policy: StreamPolicy,
) -> Result<Final, WorkerError> {
    let flags = vad::speech_flags(audio, vad_aggressiveness);
    let mut stream = SessionStream::new(policy, 0);
    let mut frame = [0f32; FRAME_SAMPLES];
    for (chunk, &speech) in audio.chunks(FRAME_SAMPLES).zip(&flags) {
        frame.fill(0.0);
        frame[..chunk.len()].copy_from_slice(chunk);
        stream.push_samples(&frame, speech, model)?;
    }
    let end = stream.next_seq();
    stream.finish(end, model)
}
