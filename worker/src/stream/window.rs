//! The open window: the audio from the last hard commit to now, frame by frame, with each
//! frame's VAD flag and energy. At most the model's 30 s after its anchor, and a second before
//! it (see `SessionStream`); while it holds no speech it keeps only its last second (a
//! dictation that starts with a long silence does not fill a window with it). [`anchored`]
//! takes from it the samples a pass decodes.

use std::borrow::Cow;
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

/// Where a pass's audio begins and ends, to the sample: a fixed lead before the first loud
/// sample, and a fixed tail after the last one. A sample is loud at a fraction of the window's
/// peak, unless that peak is a knock or a click far over the voice ([`loud_threshold`]).
///
/// Frames land on a 20 ms grid wherever the capture was when the session started; a file's
/// grid starts at its first sample. Anchored on the audio itself, a pass covers the same
/// samples whichever grid they arrived on, so a recording dictated live and transcribed
/// offline is the same computation (Whisper near-ties flip with a shift of a few samples).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    /// Samples kept before the first loud sample.
    pub lead: usize,
    /// Samples kept after the last loud sample (never past the pass's end).
    pub tail: usize,
    /// A sample is loud at this fraction of the window's peak (or more).
    pub fraction: f32,
    /// The window's level is the loudness its loudest this many samples reach: a sound
    /// shorter than that (a knock on the laptop, a key's click) does not set it.
    pub level_samples: usize,
}

/// Below this peak (of the voice, see [`loud_threshold`]) the window holds nothing to anchor
/// on: a pass takes it whole.
const MIN_PEAK: f32 = 1e-3;

/// A peak more than this many times the window's level (12 dB over it; see
/// [`loud_threshold`]) is a short sound apart from the voice.
const PEAK_OVER_LEVEL: f32 = 4.0;

/// What a voice's peak is taken to be, in times its level, when a short sound stands over it.
const VOICE_PEAK: f32 = 2.0;

/// The level a sample of `audio` must reach to be loud: `anchor.fraction` of the window's peak,
/// unless the peak stands more than [`PEAK_OVER_LEVEL`] times over the level the loudest
/// `anchor.level_samples` samples reach; then of [`VOICE_PEAK`] times that level. A knock on
/// the laptop or a key's click 20 dB over a soft voice set the peak; without this the voice
/// lay under an eighth of it and no pass heard it. Speech's peak stands under 4 times its
/// level (the dev recordings: 1.7 to 3.8), so a window of speech is anchored on its peak as
/// before. The level is an order statistic of the samples, exact: the frame grid, which only
/// moves the window's silent edges, does not change it.
pub fn loud_threshold(audio: &[f32], anchor: &Anchor) -> f32 {
    let peak = audio.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let level = kth_loudest(audio, anchor.level_samples);
    let voice_peak = if peak > level * PEAK_OVER_LEVEL {
        level * VOICE_PEAK
    } else {
        peak
    };
    voice_peak * anchor.fraction
}

/// The `k`-th largest `|x|` of `audio` (1: the peak; the quietest when `k` is past the end).
/// Counts the samples by the top bits of their f32 pattern (`|x|` orders as its bits do), then
/// orders only the bin that holds the `k`-th.
fn kth_loudest(audio: &[f32], k: usize) -> f32 {
    const SHIFT: u32 = 20;
    const BINS: usize = (0x7F80_0000u32 >> SHIFT) as usize + 1;
    let bin = |s: f32| ((s.abs().to_bits() >> SHIFT) as usize).min(BINS - 1);
    let k = k.clamp(1, audio.len().max(1));
    let mut counts = [0usize; BINS];
    for &s in audio {
        counts[bin(s)] += 1;
    }
    let mut louder = 0;
    for b in (0..BINS).rev() {
        if louder + counts[b] >= k {
            let mut held: Vec<f32> = audio
                .iter()
                .map(|s| s.abs())
                .filter(|&s| bin(s) == b)
                .collect();
            let (_, kth, _) = held.select_nth_unstable_by(k - louder - 1, |x, y| y.total_cmp(x));
            return *kth;
        }
        louder += counts[b];
    }
    0.0
}

/// Where a pass lies on the window's audio, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First sample of the window's audio it takes.
    pub start: usize,
    /// One past the last.
    pub end: usize,
    /// Samples of digital silence it puts in front of `start` (a lead that reaches before the
    /// window).
    pub zeros: usize,
}

impl Span {
    /// Where the pass's first sample lies relative to the window's first (negative: before).
    pub fn offset(&self) -> i64 {
        self.start as i64 - self.zeros as i64
    }
}

/// Where a pass over `audio` lies (see [`Anchor`]), at most `max_samples` long (the longest
/// window): what it takes before the audio is cut to fit first, then the audio's end (a
/// window that holds more than `max_samples` after its anchor is full: see
/// `SessionStream`'s commit).
pub fn anchor_span(audio: &[f32], anchor: &Anchor, max_samples: usize) -> Span {
    let whole = Span {
        start: 0,
        end: audio.len(),
        zeros: 0,
    };
    let loud = loud_threshold(audio, anchor);
    if loud < MIN_PEAK * anchor.fraction {
        return whole;
    }
    let (Some(first), Some(last)) = (
        audio.iter().position(|s| s.abs() >= loud),
        audio.iter().rposition(|s| s.abs() >= loud),
    ) else {
        return whole;
    };
    let start = first.saturating_sub(anchor.lead);
    let end = (last + 1 + anchor.tail)
        .min(audio.len())
        .min(start + max_samples);
    let zeros = (anchor.lead - (first - start)).min(max_samples.saturating_sub(end - start));
    Span { start, end, zeros }
}

/// The audio of one pass and where it lies in its window.
#[derive(Debug, Clone, PartialEq)]
pub struct PassAudio<'a> {
    /// The samples: digital silence first when the lead reaches before the window.
    pub samples: Cow<'a, [f32]>,
    /// Where the first sample lies relative to the window's first sample (negative: before).
    pub offset: i64,
}

impl PassAudio<'_> {
    /// `offset` in whole frames, rounded: what a timestamp of the pass adds to be a frame of the
    /// window.
    pub fn offset_frames(&self) -> i64 {
        let f = FRAME_SAMPLES as i64;
        (self.offset + f / 2).div_euclid(f)
    }
}

/// The samples a pass over `audio` takes (see [`anchor_span`]).
pub fn anchored<'a>(audio: &'a [f32], anchor: &Anchor, max_samples: usize) -> PassAudio<'a> {
    let span = anchor_span(audio, anchor, max_samples);
    let taken = &audio[span.start..span.end];
    let samples = if span.zeros == 0 {
        Cow::Borrowed(taken)
    } else {
        let mut v = Vec::with_capacity(span.zeros + taken.len());
        v.resize(span.zeros, 0.0);
        v.extend_from_slice(taken);
        Cow::Owned(v)
    };
    PassAudio {
        samples,
        offset: span.offset(),
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

    const ANCHOR: Anchor = Anchor {
        lead: 100,
        tail: 30,
        fraction: 0.5,
        level_samples: 1,
    };
    const MAX: usize = 10_000;

    /// Low noise, a burst of loud samples at `at`, low noise again.
    fn burst(at: usize, len: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..len).map(|i| 0.01 * ((i % 7) as f32 - 3.0)).collect();
        for (k, s) in v[at..at + 200].iter_mut().enumerate() {
            *s = if k % 2 == 0 { 0.8 } else { -0.6 };
        }
        v
    }

    #[test]
    fn a_pass_takes_the_same_samples_wherever_the_audio_starts() {
        let audio = burst(500, 2_000);
        let a = anchored(&audio, &ANCHOR, MAX);
        assert_eq!(a.offset, 400, "the lead before the first loud sample");
        assert_eq!(a.samples.len(), 100 + 200 + 30, "lead, loud samples, tail");
        assert_eq!(&a.samples[..], &audio[400..730]);
        for shift in [1, 7, 160, 319, 321, 1_000] {
            let mut later = vec![0.0; shift];
            later.extend_from_slice(&audio);
            let b = anchored(&later, &ANCHOR, MAX);
            assert_eq!(b.samples, a.samples, "shifted by {shift}");
            assert_eq!(b.offset, a.offset + shift as i64);
        }
    }

    #[test]
    fn a_lead_before_the_window_is_digital_silence() {
        let audio = burst(40, 1_000);
        let a = anchored(&audio, &ANCHOR, MAX);
        assert_eq!(a.offset, -60);
        assert!(a.samples[..60].iter().all(|&s| s == 0.0));
        assert_eq!(&a.samples[60..], &audio[..40 + 200 + 30]);
        // The same burst further in: the same samples, taken from the audio.
        let mut later = vec![0.0; 500];
        later.extend_from_slice(&audio);
        assert_eq!(anchored(&later, &ANCHOR, MAX).samples, a.samples);
        // No room for silence in front of a full window: it is cut to fit, then the audio's
        // end, never its beginning.
        let a = anchored(&audio, &ANCHOR, 250);
        assert_eq!((a.offset, a.samples.len()), (0, 250));
        assert_eq!(&a.samples[..], &audio[..250]);
        let a = anchored(&audio, &ANCHOR, 289);
        assert_eq!((a.offset, a.samples.len()), (-19, 289));
    }

    #[test]
    fn the_tail_stops_at_the_end_of_the_audio_and_silence_is_taken_whole() {
        let audio = burst(500, 710);
        let a = anchored(&audio, &ANCHOR, MAX);
        assert_eq!((a.offset, a.samples.len()), (400, 310));
        let quiet = vec![0.0005; 1_000];
        let a = anchored(&quiet, &ANCHOR, MAX);
        assert_eq!((a.offset, a.samples.len()), (0, 1_000));
    }

    /// A quiet room (noise about 2e-4), `voice` samples of a soft voice (±0.04) from 1 000, and
    /// `knock` samples at full scale 2 000 after it.
    fn soft_voice_then(voice: usize, knock: usize) -> Vec<f32> {
        let len = 1_000 + voice + 2_000 + knock + 1_000;
        let mut v: Vec<f32> = (0..len).map(|i| 1e-4 * ((i % 5) as f32 - 2.0)).collect();
        for (k, s) in v[1_000..1_000 + voice].iter_mut().enumerate() {
            *s = if k % 2 == 0 { 0.04 } else { -0.03 };
        }
        let at = 1_000 + voice + 2_000;
        for (k, s) in v[at..at + knock].iter_mut().enumerate() {
            *s = if k % 2 == 0 { 0.9 } else { -0.8 };
        }
        v
    }

    const VOICE: Anchor = Anchor {
        lead: 100,
        tail: 30,
        fraction: 0.125,
        level_samples: 800,
    };

    #[test]
    fn a_knock_far_louder_than_the_voice_does_not_hide_it() {
        // 100 samples at full scale, 27 dB over the voice: loud is an eighth of twice the
        // voice's level (0.01), not of the knock.
        let audio = soft_voice_then(4_000, 100);
        assert_eq!(loud_threshold(&audio, &VOICE), 0.04 * 2.0 * 0.125);
        let s = anchor_span(&audio, &VOICE, MAX);
        assert_eq!((s.start, s.end), (900, 7_000 + 100 + 30), "voice to knock");
        // Set by the peak alone, the voice lies under an eighth of it and is dropped.
        let peak = Anchor {
            level_samples: 1,
            ..VOICE
        };
        assert_eq!(anchor_span(&audio, &peak, MAX).start, 7_000 - 100);
    }

    #[test]
    fn a_voice_is_anchored_on_its_peak() {
        // A syllable three times louder than the rest, 800 samples long or shorter: within
        // four times the level, the peak sets the threshold.
        for loud in [100, 800] {
            let mut audio = soft_voice_then(4_000, 0);
            audio[2_000..2_000 + loud]
                .iter_mut()
                .for_each(|s| *s *= 3.0);
            assert_eq!(loud_threshold(&audio, &VOICE), 0.12 * 0.125, "{loud}");
            // 0.04 and 0.03 stay over 0.015: the voice from its first sample.
            assert_eq!(anchor_span(&audio, &VOICE, MAX).start, 900);
        }
    }

    #[test]
    fn the_level_is_the_kth_loudest_sample() {
        let audio = [0.5, -0.9, 0.1, 0.0, -0.3, 0.30001, 1e-6];
        let nth = |k| kth_loudest(&audio, k);
        assert_eq!([nth(0), nth(1), nth(2), nth(3)], [0.9, 0.9, 0.5, 0.30001]);
        assert_eq!([nth(4), nth(6), nth(7), nth(99)], [0.3, 1e-6, 0.0, 0.0]);
        assert_eq!(kth_loudest(&[], 3), 0.0);
    }

    #[test]
    fn offsets_round_to_the_nearest_frame() {
        let at = |offset: i64| {
            PassAudio {
                samples: Cow::Borrowed(&[]),
                offset,
            }
            .offset_frames()
        };
        assert_eq!([at(0), at(159), at(160), at(640)], [0, 0, 1, 2]);
        assert_eq!([at(-1), at(-160), at(-161), at(-4_800)], [0, 0, -1, -15]);
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
