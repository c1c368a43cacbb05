//! Where to cut a stream of 20 ms frames into segments that Whisper transcribes once each:
//! inside every pause of at least `pause_frames` non-speech frames after speech, and, for a
//! segment that reaches `max_frames` with no pause, at its quietest frame. The same state
//! machine serves files (all frames at once) and the ring (frame by frame), so both cut alike.

/// Cutting policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPolicy {
    /// Non-speech frames after speech that make a pause (default 20 = 400 ms).
    pub pause_frames: usize,
    /// Longest segment, in frames (default 1400 = 28 s; Whisper's window is 30 s).
    pub max_frames: usize,
}

impl Default for SegmentPolicy {
    fn default() -> SegmentPolicy {
        SegmentPolicy {
            pause_frames: 20,
            max_frames: 1400,
        }
    }
}

/// A finished segment: frames `start..end` (indices in the stream), and whether any was speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First frame.
    pub start: usize,
    /// One past the last frame.
    pub end: usize,
    /// Whether the VAD heard speech in it (segments without are not transcribed).
    pub has_speech: bool,
}

/// Incremental segmenter.
#[derive(Debug, Clone)]
pub struct Segmenter {
    policy: SegmentPolicy,
    start: usize,
    next: usize,
    speech_seen: bool,
    silence_run: usize,
    /// (speech, energy) of each frame of the open segment.
    frames: Vec<(bool, f32)>,
}

impl Segmenter {
    /// A segmenter whose first segment starts at frame `start`.
    pub fn new(policy: SegmentPolicy, start: usize) -> Segmenter {
        Segmenter {
            policy,
            start,
            next: start,
            speech_seen: false,
            silence_run: 0,
            frames: Vec::new(),
        }
    }

    /// Where the open segment starts.
    pub fn segment_start(&self) -> usize {
        self.start
    }

    /// Whether the open segment has speech so far.
    pub fn has_speech(&self) -> bool {
        self.speech_seen
    }

    /// Non-speech frames at the end of the open segment.
    pub fn trailing_silence(&self) -> usize {
        self.silence_run
    }

    /// Adds the next frame (its VAD flag and mean square); returns a segment if one ends here.
    pub fn push(&mut self, speech: bool, energy: f32) -> Option<Segment> {
        self.next += 1;
        self.frames.push((speech, energy));
        if speech {
            self.speech_seen = true;
            self.silence_run = 0;
        } else {
            self.silence_run += 1;
        }
        let len = self.next - self.start;
        if self.speech_seen && self.silence_run == self.policy.pause_frames {
            // Cut in the middle of the pause: each side keeps some silence around its words.
            return Some(self.cut(self.next - self.policy.pause_frames / 2));
        }
        if len >= self.policy.max_frames {
            // No pause in time: cut at the quietest frame of the second half.
            let n = self.frames.len();
            let quietest = (n / 2..n)
                .min_by(|&a, &b| self.frames[a].1.total_cmp(&self.frames[b].1))
                .unwrap_or(n - 1);
            return Some(self.cut(self.start + quietest + 1));
        }
        None
    }

    /// Closes the open segment at the end of the stream.
    pub fn finish(&mut self) -> Option<Segment> {
        (self.next > self.start).then(|| self.cut(self.next))
    }

    fn cut(&mut self, at: usize) -> Segment {
        let seg = Segment {
            start: self.start,
            end: at,
            has_speech: self.speech_seen,
        };
        // Frames after the cut begin the next segment; recompute its state from them.
        self.frames = self.frames.split_off(at - self.start);
        self.start = at;
        self.speech_seen = self.frames.iter().any(|f| f.0);
        self.silence_run = self.frames.iter().rev().take_while(|f| !f.0).count();
        seg
    }
}

/// All segments of a whole recording.
pub fn split(flags: &[bool], energies: &[f32], policy: SegmentPolicy) -> Vec<Segment> {
    let mut s = Segmenter::new(policy, 0);
    let mut out: Vec<Segment> = flags
        .iter()
        .zip(energies)
        .filter_map(|(&f, &e)| s.push(f, e))
        .collect();
    out.extend(s.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &str, policy: SegmentPolicy) -> Vec<Segment> {
        let flags: Vec<bool> = pattern.chars().map(|c| c == 's').collect();
        let energies: Vec<f32> = flags.iter().map(|&f| if f { 1.0 } else { 0.0 }).collect();
        split(&flags, &energies, policy)
    }

    #[test]
    fn cuts_in_the_middle_of_pauses_after_speech() {
        let p = SegmentPolicy {
            pause_frames: 4,
            max_frames: 100,
        };
        // speech 3, silence 6, speech 2, silence 1
        let segs = run("sss......ss.", p);
        assert_eq!(
            segs[0],
            Segment {
                start: 0,
                end: 5,
                has_speech: true
            }
        );
        assert_eq!(
            segs[1],
            Segment {
                start: 5,
                end: 12,
                has_speech: true
            }
        );
        // Leading silence alone never cuts.
        let segs = run("..........ss", p);
        assert_eq!(segs.len(), 1);
        // Segments tile the stream.
        let segs = run("s....s....s....", p);
        assert!(segs.windows(2).all(|w| w[0].end == w[1].start));
        assert_eq!(segs.last().unwrap().end, 15);
    }

    #[test]
    fn long_speech_is_cut_at_the_quietest_frame() {
        let p = SegmentPolicy {
            pause_frames: 4,
            max_frames: 10,
        };
        let flags = vec![true; 25];
        let mut energies = vec![1.0f32; 25];
        energies[7] = 0.1;
        let segs = split(&flags, &energies, p);
        assert_eq!(segs[0].end, 8, "cut after the quietest frame");
        assert!(segs.iter().all(|s| s.end - s.start <= 10));
        assert_eq!(segs.last().unwrap().end, 25);
    }
}
