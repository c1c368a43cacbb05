//! The open window: the audio from the last hard commit to now, frame by frame, with each
//! frame's VAD flag and energy. At most the model's 30 s; while it holds no speech it keeps
//! only its last second (a dictation that starts with a long silence does not fill a window
//! with it).

use v2m_shm_proto::ring::FRAME_SAMPLES;

/// Audio of the open window.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Sequence number of the window's first frame.
    start_seq: u64,
    audio: Vec<f32>,
    speech: Vec<bool>,
    energy: Vec<f32>,
}

/// Mean square of a frame.
pub fn frame_energy(samples: &[f32]) -> f32 {
    samples.iter().map(|s| s * s).sum::<f32>() / FRAME_SAMPLES as f32
}

impl Window {
    /// An empty window whose first frame will be `start_seq`.
    pub fn new(start_seq: u64) -> Window {
        Window {
            start_seq,
            ..Window::default()
        }
    }

    /// Sequence number of the first frame.
    pub fn start_seq(&self) -> u64 {
        self.start_seq
    }

    /// One past the last frame.
    pub fn end_seq(&self) -> u64 {
        self.start_seq + self.speech.len() as u64
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.speech.len()
    }

    /// Whether it holds no frame.
    pub fn is_empty(&self) -> bool {
        self.speech.is_empty()
    }

    /// Each frame's VAD flag.
    pub fn speech(&self) -> &[bool] {
        &self.speech
    }

    /// Each frame's mean square.
    pub fn energy(&self) -> &[f32] {
        &self.energy
    }

    /// Whether any frame is speech.
    pub fn has_speech(&self) -> bool {
        self.speech.iter().any(|&s| s)
    }

    /// Sequence number of the last speech frame.
    pub fn last_speech_seq(&self) -> Option<u64> {
        self.speech
            .iter()
            .rposition(|&s| s)
            .map(|i| self.start_seq + i as u64)
    }

    /// Appends a frame.
    pub fn push(&mut self, samples: &[f32; FRAME_SAMPLES], speech: bool) {
        self.audio.extend_from_slice(samples);
        self.speech.push(speech);
        self.energy.push(frame_energy(samples));
    }

    /// While no frame is speech, keeps only the last `lead` frames.
    pub fn trim_silence(&mut self, lead: usize) {
        if self.len() > lead && !self.has_speech() {
            self.drop_front(self.len() - lead);
        }
    }

    /// Drops the first `frames` frames (a hard commit).
    pub fn drop_front(&mut self, frames: usize) {
        let frames = frames.min(self.len());
        self.audio.drain(..frames * FRAME_SAMPLES);
        self.speech.drain(..frames);
        self.energy.drain(..frames);
        self.start_seq += frames as u64;
    }

    /// The audio of frames `start_seq()..end` (clamped to what the window holds).
    pub fn audio_until(&self, end: u64) -> &[f32] {
        let frames = end.saturating_sub(self.start_seq).min(self.len() as u64) as usize;
        &self.audio[..frames * FRAME_SAMPLES]
    }

    /// Whether any frame before `end` is speech.
    pub fn has_speech_before(&self, end: u64) -> bool {
        let frames = end.saturating_sub(self.start_seq).min(self.len() as u64) as usize;
        self.speech[..frames].iter().any(|&s| s)
    }

    /// Where a final pass over this window ends when the audio ends at `end_seq()`: `pause`
    /// frames after the last speech frame when at least that much non-speech follows it,
    /// else at the end. Trailing non-speech beyond that adds nothing to transcribe, and cutting
    /// there makes the pass that runs as soon as the speaker pauses (the speculative final)
    /// the same computation as the final.
    pub fn final_end(&self, pause: usize) -> u64 {
        match self.last_speech_seq() {
            Some(last) if self.end_seq() >= last + 1 + pause as u64 => last + 1 + pause as u64,
            _ => self.end_seq(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(pattern: &str) -> Window {
        let mut w = Window::new(100);
        for c in pattern.chars() {
            w.push(&[0.1; FRAME_SAMPLES], c == 's');
        }
        w
    }

    #[test]
    fn leading_silence_is_trimmed_only_before_speech() {
        let mut w = window("..........");
        w.trim_silence(3);
        assert_eq!((w.start_seq(), w.len()), (107, 3));
        assert_eq!(w.audio_until(u64::MAX).len(), 3 * FRAME_SAMPLES);
        let mut w = window("...s......");
        w.trim_silence(3);
        assert_eq!(
            (w.start_seq(), w.len()),
            (100, 10),
            "speech keeps the window"
        );
    }

    #[test]
    fn the_final_ends_a_pause_after_the_last_speech() {
        // Speech at 101 and 103; 4 non-speech frames after it.
        let w = window(".s.s....");
        assert_eq!(w.last_speech_seq(), Some(103));
        assert_eq!(w.final_end(3), 107);
        assert_eq!(w.final_end(4), 108);
        assert_eq!(w.final_end(5), 108, "not enough pause: the end");
        assert_eq!(window("....").final_end(2), 104, "no speech: the end");
    }

    #[test]
    fn dropping_the_front_moves_the_start() {
        let mut w = window("sss...ss");
        w.drop_front(4);
        assert_eq!(w.start_seq(), 104);
        assert_eq!(w.speech(), &[false, false, true, true]);
        assert!(w.has_speech_before(107) && !w.has_speech_before(106));
        assert_eq!(w.audio_until(105).len(), FRAME_SAMPLES);
    }
}
