//! Voice activity for audio that did not come through the ring (files): the same WebRTC VAD,
//! on the same 20 ms frames, that v2m-rt uses to flag ring frames.

use v2m_shm_proto::ring::FRAME_SAMPLES;
use webrtc_vad::{SampleRate, Vad, VadMode};

/// WebRTC VAD aggressiveness, 0 (least) to 3 (most): mode 3 is the default, as speech that it
/// misses is still covered by the pause length, while noise it lets through costs passes.
pub fn mode(aggressiveness: u8) -> VadMode {
    match aggressiveness {
        0 => VadMode::Quality,
        1 => VadMode::LowBitrate,
        2 => VadMode::Aggressive,
        _ => VadMode::VeryAggressive,
    }
}

/// One speech flag per 20 ms frame of 16 kHz audio (the last partial frame zero-padded).
pub fn speech_flags(audio: &[f32], aggressiveness: u8) -> Vec<bool> {
    let mut vad = Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, mode(aggressiveness));
    let mut frame = [0i16; FRAME_SAMPLES];
    audio
        .chunks(FRAME_SAMPLES)
        .map(|chunk| {
            frame.fill(0);
            for (d, &s) in frame.iter_mut().zip(chunk) {
                *d = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
            }
            vad.is_voice_segment(&frame).unwrap_or(false)
        })
        .collect()
}
