//! 16 kHz samples in, whole 20 ms frames out: the cut shared by v2m-rt's DSP thread (which
//! publishes each frame into the ring) and the worker's offline path (which streams each
//! into a session). Allocates nothing.

use v2m_shm_proto::ring::FRAME_SAMPLES;

/// Samples gathered until a frame is whole.
#[derive(Debug, Clone)]
pub struct Frames {
    frame: [f32; FRAME_SAMPLES],
    filled: usize,
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            frame: [0.0; FRAME_SAMPLES],
            filled: 0,
        }
    }
}

impl Frames {
    /// Appends `samples`, handing each frame they complete to `on_frame`, in order; stops at
    /// its first error (the samples after that frame are dropped).
    pub fn push<E>(
        &mut self,
        mut samples: &[f32],
        mut on_frame: impl FnMut(&[f32; FRAME_SAMPLES]) -> Result<(), E>,
    ) -> Result<(), E> {
        while !samples.is_empty() {
            let n = (FRAME_SAMPLES - self.filled).min(samples.len());
            self.frame[self.filled..self.filled + n].copy_from_slice(&samples[..n]);
            self.filled += n;
            samples = &samples[n..];
            if self.filled == FRAME_SAMPLES {
                self.filled = 0;
                on_frame(&self.frame)?;
            }
        }
        Ok(())
    }

    /// Samples waiting for the rest of their frame.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// The partial frame padded with silence, if any samples wait (for the end of a file).
    pub fn take_padded(&mut self) -> Option<[f32; FRAME_SAMPLES]> {
        if self.filled == 0 {
            return None;
        }
        self.frame[self.filled..].fill(0.0);
        self.filled = 0;
        Some(self.frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_whole_and_in_order_whatever_the_pieces() {
        let audio: Vec<f32> = (0..FRAME_SAMPLES * 3 + 100).map(|i| i as f32).collect();
        let mut f = Frames::default();
        let mut out: Vec<f32> = Vec::new();
        for piece in audio.chunks(77) {
            f.push(piece, |frame| {
                out.extend_from_slice(frame);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        assert_eq!(out, audio[..FRAME_SAMPLES * 3]);
        assert_eq!(f.filled(), 100);
        let last = f.take_padded().unwrap();
        assert_eq!(last[..100], audio[FRAME_SAMPLES * 3..]);
        assert!(last[100..].iter().all(|&s| s == 0.0));
        assert!(f.take_padded().is_none());
    }

    #[test]
    fn an_error_stops_at_its_frame() {
        let mut f = Frames::default();
        let mut seen = 0;
        let r = f.push(&[0.5; FRAME_SAMPLES * 3], |_| {
            seen += 1;
            if seen == 2 { Err("full") } else { Ok(()) }
        });
        assert_eq!(r, Err("full"));
        assert_eq!(seen, 2);
    }
}
