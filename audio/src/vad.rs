//! WebRTC voice activity on 20 ms frames of 16 kHz audio, one way for everyone: the daemon
//! flags ring frames with it, the worker flags files with it.

use v2m_shm_proto::ring::FRAME_SAMPLES;
use webrtc_vad::{SampleRate, Vad, VadMode};

/// An aggressiveness out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VAD mode {0} is not 0 to 3")]
pub struct BadVadMode(pub u8);

/// WebRTC VAD aggressiveness, 0 (keeps most) to 3 (drops most non-speech).
pub fn mode(aggressiveness: u8) -> Result<VadMode, BadVadMode> {
    Ok(match aggressiveness {
        0 => VadMode::Quality,
        1 => VadMode::LowBitrate,
        2 => VadMode::Aggressive,
        3 => VadMode::VeryAggressive,
        m => return Err(BadVadMode(m)),
    })
}

/// f32 samples in [-1, 1] as the 16-bit PCM the VAD takes (clamped).
pub fn to_pcm16(samples: &[f32], pcm: &mut [i16]) {
    for (d, &s) in pcm.iter_mut().zip(samples) {
        *d = (s.clamp(-1.0, 1.0) * 32767.0) as i16;
    }
}

/// A VAD for 20 ms frames of 16 kHz mono. Allocation-free per frame.
pub struct Detector {
    vad: Vad,
    pcm: [i16; FRAME_SAMPLES],
}

impl Detector {
    /// A detector of aggressiveness 0..=3.
    pub fn new(aggressiveness: u8) -> Result<Detector, BadVadMode> {
        Ok(Detector {
            vad: Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, mode(aggressiveness)?),
            pcm: [0; FRAME_SAMPLES],
        })
    }

    /// Whether the frame (320 samples; a shorter one is zero-padded) holds speech.
    pub fn is_speech(&mut self, frame: &[f32]) -> bool {
        self.pcm.fill(0);
        to_pcm16(frame, &mut self.pcm);
        self.vad.is_voice_segment(&self.pcm).unwrap_or(false)
    }
}

/// One speech flag per 20 ms frame of 16 kHz audio (the last partial frame zero-padded).
pub fn speech_flags(audio: &[f32], aggressiveness: u8) -> Result<Vec<bool>, BadVadMode> {
    let mut d = Detector::new(aggressiveness)?;
    Ok(audio
        .chunks(FRAME_SAMPLES)
        .map(|c| d.is_speech(c))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_beyond_three_are_refused_everywhere() {
        assert!(mode(3).is_ok());
        assert!(matches!(mode(4), Err(BadVadMode(4))));
        assert!(Detector::new(7).is_err());
        assert!(speech_flags(&[0.0; 640], 9).is_err());
        assert_eq!(speech_flags(&[0.0; 650], 3).unwrap(), [false, false, false]);
        let mut pcm = [0i16; 3];
        to_pcm16(&[2.0, -2.0, 0.5], &mut pcm);
        assert_eq!(pcm, [32767, -32767, 16383]);
    }
}
