//! The session's windowing, agreement, speculative final and commits against a scripted model:
//! each 20 ms frame's samples carry a word id (0 is silence), and the model "hears" a word per
//! run of equal ids. Ids from 500 end a sentence.

use super::*;
use crate::decode::greedy::Decoded;

const SENTENCE_END: u32 = 500;

#[derive(Debug, Clone, PartialEq)]
struct Call {
    frames: usize,
    audio: Vec<f32>,
    previous: Vec<u32>,
    prefix: Option<Vec<u32>>,
    draft: Vec<u32>,
    timestamps: bool,
}

#[derive(Default)]
struct Scripted {
    calls: Vec<Call>,
    /// Errors to return from the next passes, first first.
    fail: Vec<WorkerError>,
    /// Makes every pass report a collapsed repetition loop.
    looped: bool,
    /// Timestamp passes (this many, first first) that stop after their first sentence, as
    /// Whisper sometimes ends a window early.
    give_up: usize,
    /// A word that passes given no forced words hear first once the audio holds at least four
    /// words, as Whisper without its prefix may hear a window's beginning differently.
    unprompted_first: Option<u32>,
    /// Passes (this many, first first) that hear nothing, as Whisper hears nothing in the
    /// first syllables of a dictation.
    deaf_first: usize,
}

/// Word runs in `audio`: (id, first frame, end frame).
fn runs(audio: &[f32]) -> Vec<(u32, usize, usize)> {
    let ids: Vec<u32> = audio
        .chunks(FRAME_SAMPLES)
        .map(|f| (f[0] * 1000.0).round() as u32)
        .collect();
    let mut out: Vec<(u32, usize, usize)> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        match out.last_mut() {
            Some(r) if r.0 == id && r.2 == i => r.2 = i + 1,
            _ if id != 0 => out.push((id, i, i + 1)),
            _ => {}
        }
    }
    out
}

impl PassModel for Scripted {
    fn pass(&mut self, audio: &[f32], req: &DecodeRequest<'_>) -> Result<Transcript, WorkerError> {
        let frames = audio.len() / FRAME_SAMPLES;
        let (prefix, draft, timestamps) = match req.mode {
            Mode::Text { prefix, draft } => (Some(prefix.to_vec()), draft.to_vec(), false),
            Mode::Timestamps => (None, Vec::new(), true),
        };
        self.calls.push(Call {
            frames,
            audio: audio.to_vec(),
            previous: req.previous.to_vec(),
            prefix: prefix.clone(),
            draft,
            timestamps,
        });
        if !self.fail.is_empty() {
            return Err(self.fail.remove(0));
        }
        let runs = if self.deaf_first > 0 {
            self.deaf_first -= 1;
            Vec::new()
        } else {
            runs(audio)
        };
        let heard: Vec<u32> = runs.iter().map(|r| r.0).collect();
        let tokens = match &prefix {
            Some(p) => p
                .iter()
                .copied()
                .chain(heard.iter().skip(p.len()).copied())
                .collect(),
            None => heard.clone(),
        };
        let tokens = match self.unprompted_first {
            Some(id) if heard.len() >= 4 && prefix.as_ref().is_none_or(|p| p.is_empty()) => {
                std::iter::once(id).chain(tokens).collect()
            }
            _ => tokens,
        };
        let mut segments = Vec::new();
        if timestamps {
            let mut current: Option<TimedSegment> = None;
            for &(id, a, b) in &runs {
                let s = current.get_or_insert(TimedSegment {
                    start: a as u32,
                    end: b as u32,
                    tokens: vec![],
                    complete: false,
                });
                s.tokens.push(id);
                s.end = b as u32;
                if id >= SENTENCE_END {
                    let mut s = current.take().unwrap();
                    s.complete = true;
                    segments.push(s);
                }
            }
            if let Some(mut s) = current {
                // Complete when silence follows it inside the window.
                s.complete = (s.end as usize) < frames;
                segments.push(s);
            }
        }
        let mut tokens = tokens;
        if timestamps && self.give_up > 0 && segments.len() > 1 && segments[0].complete {
            self.give_up -= 1;
            segments.truncate(1);
            tokens = segments[0].tokens.clone();
        }
        let silent = tokens.is_empty();
        Ok(Transcript {
            text: self.text(&tokens).trim().to_string(),
            tokens: tokens.clone(),
            segments,
            decoded: Decoded {
                tokens,
                ..Decoded::default()
            },
            silent,
            looped: self.looped,
            language: None,
            timings: PassTimings {
                encoder_ms: 10.0,
                ..PassTimings::default()
            },
        })
    }

    fn text(&self, tokens: &[u32]) -> String {
        tokens
            .iter()
            .map(|&t| {
                if t >= SENTENCE_END {
                    format!(" w{t}.")
                } else {
                    format!(" w{t}")
                }
            })
            .collect()
    }

    fn starts_word(&self, _: u32) -> bool {
        true
    }

    fn timestamp_begin(&self) -> u32 {
        TIMESTAMP_BEGIN
    }
}

/// The scripted model's `<|0.00|>`.
const TIMESTAMP_BEGIN: u32 = 50_000;

/// Frames of `(id, count)` runs; id 0 is silence (not speech).
fn script(parts: &[(u32, usize)]) -> Vec<(u32, bool)> {
    parts
        .iter()
        .flat_map(|&(id, n)| std::iter::repeat_n((id, id != 0), n))
        .collect()
}

fn frame_of(id: u32) -> [f32; FRAME_SAMPLES] {
    [id as f32 / 1000.0; FRAME_SAMPLES]
}

fn policy() -> StreamPolicy {
    StreamPolicy {
        provisional_interval: Duration::from_millis(500),
        first_provisional_frames: 3,
        pause_frames: 4,
        max_window_frames: 1500,
        lead_frames: 5,
        timestamps: false,
        live_passes: true,
        // The scripted model reads whole frames: passes take the window's frames as they are.
        anchor: None,
    }
}

/// Pushes `frames`, running every pass the stream asks for, with the clock advancing 20 ms a
/// frame (passes take no time). Returns the updates.
fn live(
    s: &mut SessionStream,
    m: &mut Scripted,
    frames: &[(u32, bool)],
    clock: &mut Instant,
) -> Vec<Update> {
    let mut updates = Vec::new();
    for &(id, speech) in frames {
        updates.extend(s.push_samples(&frame_of(id), speech, m).unwrap());
        *clock += Duration::from_millis(20);
        while let Some(kind) = s.next_pass(*clock) {
            updates.extend(s.run(kind, m, *clock).unwrap());
        }
    }
    updates
}

fn audio_of(frames: &[(u32, bool)]) -> Vec<f32> {
    frames.iter().flat_map(|&(id, _)| frame_of(id)).collect()
}

#[test]
fn provisional_passes_feed_the_stable_prefix_and_stable_text_only_grows() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted::default();
    let mut clock = Instant::now();
    let frames = script(&[(1, 25), (2, 25), (3, 25), (4, 25)]);
    let updates = live(&mut s, &mut m, &frames, &mut clock);
    let provisional: Vec<&Call> = m.calls.iter().filter(|c| c.prefix.is_some()).collect();
    // First after 3 speech frames, then every 500 ms (25 frames) of new speech.
    assert_eq!(
        provisional.iter().map(|c| c.frames).collect::<Vec<_>>(),
        [3, 28, 53, 78]
    );
    // A word is stable once two hypotheses agree on it and both go on past it.
    assert_eq!(provisional[2].prefix.as_deref(), Some(&[][..]));
    assert_eq!(provisional[3].prefix.as_deref(), Some(&[1][..]));
    // The rest of the hypothesis before is the draft: checked, not forced.
    assert!(provisional[0].draft.is_empty());
    assert_eq!(provisional[2].draft, [1, 2]);
    assert_eq!(provisional[3].draft, [2, 3]);
    let mut last = String::new();
    for u in &updates {
        assert!(u.stable.starts_with(&last), "{last:?} -> {:?}", u.stable);
        last = u.stable.clone();
    }
    assert_eq!(last, "w1 w2");
    assert_eq!(updates.last().unwrap().tentative, "w3 w4");
}

#[test]
fn a_final_pass_has_the_latest_hypothesis_as_its_draft() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted::default();
    let mut clock = Instant::now();
    let frames = script(&[(1, 25), (2, 25), (3, 10), (0, 10)]);
    live(&mut s, &mut m, &frames, &mut clock);
    let last_provisional = m
        .calls
        .iter()
        .rposition(|c| !c.draft.is_empty() || c.frames > 3);
    let speculative = m.calls.last().unwrap().clone();
    // Heard w1 w2 w3 (the pass before heard w1 w2); w1 stable: the final is free, with the
    // whole hypothesis as its draft.
    assert!(last_provisional.is_some());
    assert_eq!(speculative.prefix.as_deref(), Some(&[][..]));
    assert_eq!(speculative.draft, [1, 2, 3]);
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(f.speculative);
    assert_eq!(f.text, "w1 w2 w3");
    // Timestamp mode has no draft.
    let mut s = SessionStream::new(
        StreamPolicy {
            timestamps: true,
            ..policy()
        },
        0,
    );
    let mut m = Scripted::default();
    live(&mut s, &mut m, &frames, &mut clock);
    assert!(m.calls.last().unwrap().timestamps);
    assert!(m.calls.last().unwrap().draft.is_empty());
}

#[test]
fn a_provisional_pass_that_heard_nothing_is_followed_at_once() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted {
        deaf_first: 2,
        ..Scripted::default()
    };
    let mut clock = Instant::now();
    let frames = script(&[(1, 25), (2, 25)]);
    let updates = live(&mut s, &mut m, &frames, &mut clock);
    let provisional: Vec<usize> = m
        .calls
        .iter()
        .filter(|c| c.prefix.is_some())
        .map(|c| c.frames)
        .collect();
    // Two passes that heard nothing, each followed by the next at the next speech frame; then
    // the interval (25 frames) after the first that heard something.
    assert_eq!(provisional, [3, 4, 5, 30]);
    assert_eq!(updates.first().map(|u| u.tentative.as_str()), Some("w1"));
}

#[test]
fn a_speculative_final_that_hears_the_beginning_differently_retracts_no_stable_word() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted {
        unprompted_first: Some(9),
        ..Scripted::default()
    };
    let mut clock = Instant::now();
    let frames = script(&[(1, 25), (2, 25), (3, 25), (4, 25), (0, 10)]);
    let updates = live(&mut s, &mut m, &frames, &mut clock);
    assert!(
        m.calls
            .iter()
            .any(|c| c.prefix.as_deref() == Some(&[]) && c.frames == 104),
        "the speculative final ran: {:?}",
        m.calls
    );
    let mut last = String::new();
    for u in &updates {
        assert!(u.stable.starts_with(&last), "{last:?} -> {:?}", u.stable);
        last = u.stable.clone();
    }
    assert_eq!(last, "w1 w2 w3 w4");
    assert!(
        updates.iter().all(|u| !u.tentative.contains("w9")),
        "nothing shown from the disagreeing pass: {updates:?}"
    );
    // The final is the speculative pass' text, its own beginning included.
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(f.speculative);
    assert_eq!(f.text, "w9 w1 w2 w3 w4");
}

#[test]
fn a_pause_runs_the_speculative_final_once_and_a_stop_after_it_needs_no_pass() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted::default();
    let mut clock = Instant::now();
    let frames = script(&[(0, 3), (1, 10), (2, 10), (0, 30)]);
    live(&mut s, &mut m, &frames, &mut clock);
    let spec: Vec<&Call> = m
        .calls
        .iter()
        .filter(|c| c.prefix.as_deref() == Some(&[]) && c.frames == 3 + 20 + 4)
        .collect();
    assert_eq!(
        spec.len(),
        1,
        "one speculative pass per pause: {:?}",
        m.calls
    );
    let passes = m.calls.len();
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(m.calls.len(), passes, "no pass after the stop");
    assert!(f.speculative);
    assert_eq!(f.text, "w1 w2");
    assert_eq!(
        (f.timings.audio_first_seq, f.timings.audio_end_seq),
        (0, 27)
    );
}

#[test]
fn speech_after_the_speculative_final_needs_a_last_pass() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted::default();
    let mut clock = Instant::now();
    let frames = script(&[(1, 10), (0, 6), (2, 3)]);
    live(&mut s, &mut m, &frames, &mut clock);
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(!f.speculative);
    assert_eq!(f.text, "w1 w2");
    assert_eq!(m.calls.last().unwrap().frames, 19);
    // Stopped inside a pause shorter than the speculative trigger: the pass covers it all.
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted::default();
    live(&mut s, &mut m, &script(&[(1, 10), (0, 2)]), &mut clock);
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(!f.speculative);
    assert_eq!(m.calls.last().unwrap().frames, 12);
}

#[test]
fn a_cancelled_speculative_pass_is_asked_for_again() {
    let mut s = SessionStream::new(policy(), 0);
    let mut m = Scripted::default();
    for (id, speech) in script(&[(1, 10), (0, 5)]) {
        s.push_samples(&frame_of(id), speech, &mut m).unwrap();
    }
    let now = Instant::now();
    let kind = s.next_pass(now).unwrap();
    assert_eq!(kind, PassKind::Speculative { end: 14 });
    m.fail.push(WorkerError::Cancelled);
    assert!(matches!(
        s.run(kind, &mut m, now),
        Err(WorkerError::Cancelled)
    ));
    assert_eq!(s.next_pass(now), Some(kind), "nothing recorded");
    s.run(kind, &mut m, now).unwrap();
    assert_eq!(s.next_pass(now), None);
}

#[test]
fn a_full_window_is_committed_at_a_sentence_end_and_prompts_the_next() {
    let p = StreamPolicy {
        max_window_frames: 60,
        ..policy()
    };
    let mut s = SessionStream::new(p, 0);
    let mut m = Scripted::default();
    let mut clock = Instant::now();
    // A sentence (501, 502.), a pause, a plain phrase cut off by the window's end.
    let frames = script(&[(1, 10), (501, 10), (0, 6), (2, 20), (3, 30), (0, 5)]);
    let updates = live(&mut s, &mut m, &frames, &mut clock);
    let commit = m
        .calls
        .iter()
        .position(|c| c.timestamps)
        .expect("a commit pass");
    assert_eq!(m.calls[commit].frames, 60, "over the whole window");
    assert!(m.calls[commit].previous.is_empty());
    // Cut in the middle of the pause after the sentence (frames 20..26).
    assert_eq!(s.window().start_seq(), 23);
    // Later passes are prompted with the committed tokens, with their timestamps as they
    // were decoded with them (a bare-text prompt makes Whisper drop timestamps).
    for c in &m.calls[commit + 1..] {
        let text: Vec<u32> = c
            .previous
            .iter()
            .copied()
            .filter(|&t| t < TIMESTAMP_BEGIN)
            .collect();
        assert_eq!(text, [1, 501], "{:?}", c.previous);
        assert_eq!(
            c.previous.first(),
            Some(&TIMESTAMP_BEGIN),
            "{:?}",
            c.previous
        );
        assert!(
            c.previous.last().is_some_and(|&t| t > TIMESTAMP_BEGIN),
            "{:?}",
            c.previous
        );
    }
    assert!(
        updates
            .iter()
            .any(|u| u.stable == "w1 w501." && u.tentative.is_empty())
    );
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(f.text, "w1 w501. w2 w3");
    assert_eq!(f.windows.len(), 2);
    assert_eq!((f.windows[0].start_seq, f.windows[0].end_seq), (0, 23));
    assert_eq!(f.windows[1].start_seq, 23);
}

#[test]
fn without_a_usable_segment_the_cut_is_in_the_best_pause_with_a_pass_for_its_text() {
    let p = StreamPolicy {
        max_window_frames: 40,
        ..policy()
    };
    let mut s = SessionStream::new(p, 0);
    let mut m = Scripted::default();
    // No sentence end: one segment until frame 38 and it touches the window's end.
    let frames = script(&[(1, 22), (0, 3), (2, 16), (0, 1)]);
    for &(id, speech) in &frames {
        s.push_samples(&frame_of(id), speech, &mut m).unwrap();
    }
    // 41 frames pushed: the window was full at the 41st. The only complete segment ends at 25
    // (silence follows w1... inside the one running segment): the scripted model keeps runs
    // without a sentence end in one segment that ends with the audio, so none is complete.
    let commit = m.calls.iter().position(|c| c.timestamps).unwrap();
    assert_eq!(m.calls.len(), commit + 2, "commit pass, then a text pass");
    // Longest pause in the second half (frames 20..40): 22..25, cut at 23.
    assert_eq!(m.calls[commit + 1].frames, 23);
    assert_eq!(s.window().start_seq(), 23);
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(f.text, "w1 w2");
}

#[test]
fn a_looped_commit_does_not_prompt_the_next_window() {
    let p = StreamPolicy {
        max_window_frames: 30,
        ..policy()
    };
    let mut s = SessionStream::new(p, 0);
    let mut m = Scripted {
        looped: true,
        ..Scripted::default()
    };
    for (id, speech) in script(&[(501, 20), (0, 5), (2, 10)]) {
        s.push_samples(&frame_of(id), speech, &mut m).unwrap();
    }
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(m.calls.iter().all(|c| c.previous.is_empty()));
    assert_eq!(f.text, "w501. w2");
}

#[test]
fn offline_and_live_give_the_same_final() {
    let p = StreamPolicy {
        max_window_frames: 50,
        ..policy()
    };
    let frames = script(&[
        (0, 12),
        (1, 8),
        (501, 8),
        (0, 7),
        (2, 12),
        (0, 2),
        (3, 15),
        (502, 5),
        (0, 9),
        (4, 20),
        (0, 20),
    ]);
    let mut clock = Instant::now();
    let mut s = SessionStream::new(p, 0);
    let mut m = Scripted::default();
    live(&mut s, &mut m, &frames, &mut clock);
    let live_final = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(live_final.speculative);
    // Offline: the same frames, flags from the scripted audio itself.
    let audio = audio_of(&frames);
    let mut m2 = Scripted::default();
    let mut s2 = SessionStream::new(p, 0);
    for (chunk, &(_, speech)) in audio.chunks(FRAME_SAMPLES).zip(&frames) {
        s2.push_samples(chunk.try_into().unwrap(), speech, &mut m2)
            .unwrap();
    }
    let offline = s2.finish(s2.next_seq(), &mut m2).unwrap();
    assert_eq!(live_final.text, offline.text);
    assert_eq!(live_final.windows, offline.windows);
    assert_eq!(offline.text, "w1 w501. w2 w3 w502. w4");
    // Offline ran no provisional or speculative pass: commits and one final only.
    assert!(m2.calls.len() < m.calls.len());
}

#[test]
fn leading_silence_is_not_transcribed_and_silence_alone_needs_no_pass() {
    let mut s = SessionStream::new(policy(), 1000);
    let mut m = Scripted::default();
    for (id, speech) in script(&[(0, 200)]) {
        s.push_samples(&frame_of(id), speech, &mut m).unwrap();
    }
    assert_eq!(s.window().len(), 5, "only the lead is kept");
    assert_eq!(s.next_pass(Instant::now()), None);
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert!(m.calls.is_empty());
    assert_eq!(f.text, "");
    let mut s = SessionStream::new(policy(), 0);
    for (id, speech) in script(&[(0, 200), (1, 10)]) {
        s.push_samples(&frame_of(id), speech, &mut m).unwrap();
    }
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(m.calls[0].frames, 15, "lead + speech");
    assert_eq!(f.windows[0].start_seq, 195);
}

#[test]
fn without_live_passes_only_the_final_runs() {
    let p = StreamPolicy {
        live_passes: false,
        ..policy()
    };
    let mut s = SessionStream::new(p, 0);
    let mut m = Scripted::default();
    let mut clock = Instant::now();
    live(
        &mut s,
        &mut m,
        &script(&[(1, 40), (0, 20), (2, 40)]),
        &mut clock,
    );
    assert!(m.calls.is_empty(), "no provisional or speculative pass");
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(m.calls.len(), 1);
    assert_eq!(f.text, "w1 w2");
}

#[test]
fn lost_frames_become_silence() {
    let mut s = SessionStream::new(policy(), 10);
    let mut m = Scripted::default();
    let mut frame = Frame {
        seq: 10,
        samples: frame_of(1),
        ..Frame::default()
    };
    frame.meta.flags = FrameFlags::SPEECH;
    s.push(&frame, &mut m).unwrap();
    frame.seq = 14;
    s.push(&frame, &mut m).unwrap();
    assert_eq!(s.lost(), 3);
    assert_eq!(s.next_seq(), 15);
    assert_eq!(s.window().speech(), &[true, false, false, false, true]);
}

#[test]
fn segment_times_are_narrowed_to_the_speech_in_them() {
    // Window from frame 100: silence, speech at 103..106, silence.
    let speech = [false, false, false, true, true, true, false, false];
    // A segment over the whole window ends at the last speech frame, starts at the first.
    assert_eq!(narrow_to_speech(&speech, 100, 100, 108), (103, 106));
    // One that Whisper started during the pause before its words.
    assert_eq!(narrow_to_speech(&speech, 100, 101, 105), (103, 105));
    // No speech in it: left as it is.
    assert_eq!(narrow_to_speech(&speech, 100, 106, 108), (106, 108));
    // Out of the window's range: clamped, not a panic.
    assert_eq!(narrow_to_speech(&speech, 100, 90, 200), (103, 106));
    // The next sentence's first 60 ms after a long pause is not this segment's.
    let mut flags = vec![true; 40];
    flags.extend([false; 30]);
    flags.extend([true; 15]);
    assert_eq!(narrow_to_speech(&flags, 0, 0, 85), (0, 40));
    // A short pause inside keeps both sides.
    flags[45..70].fill(true);
    flags[40..45].fill(false);
    assert_eq!(narrow_to_speech(&flags, 0, 0, 85), (0, 85));
}

#[test]
fn a_decode_that_stops_before_the_speech_does_is_committed_and_the_rest_decoded() {
    let p = StreamPolicy {
        timestamps: true,
        live_passes: false,
        ..policy()
    };
    let mut s = SessionStream::new(p, 0);
    let mut m = Scripted {
        give_up: 1,
        ..Scripted::default()
    };
    // Two sentences with a pause between; the first pass stops after the first.
    for (id, speech) in script(&[(1, 40), (501, 20), (0, 10), (2, 40), (502, 20), (0, 10)]) {
        s.push_samples(&[id as f32 / 1000.0; FRAME_SAMPLES], speech, &mut m)
            .unwrap();
    }
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(f.text, "w1 w501. w2 w502.");
    assert_eq!(f.windows.len(), 2);
    assert_eq!(
        f.windows[0].end_seq, 60,
        "cut where the first decode stopped"
    );
    assert_eq!(f.windows[1].start_seq, 60);
    let passes: Vec<usize> = m.calls.iter().map(|c| c.frames).collect();
    assert_eq!(passes.len(), 2, "{passes:?}");
    // The second pass is prompted with the first sentence, and covers only the rest.
    assert!(
        m.calls[1].previous.contains(&501),
        "{:?}",
        m.calls[1].previous
    );
    assert!(passes[1] < passes[0], "{passes:?}");
}

#[test]
fn an_anchored_pass_takes_the_audio_around_the_speech_and_times_it_in_the_window() {
    // A lead of 2 frames and a tail of 1: a pass over 10 frames of silence, six frames of
    // words and a pause takes 2 + 6 + 1 frames; its segments lie where the words are.
    let p = StreamPolicy {
        timestamps: true,
        live_passes: false,
        lead_frames: 10,
        anchor: Some(Anchor {
            lead: 2 * FRAME_SAMPLES,
            tail: FRAME_SAMPLES,
            fraction: 0.5,
            level_samples: FRAME_SAMPLES,
        }),
        ..policy()
    };
    let mut s = SessionStream::new(p, 100);
    let mut m = Scripted::default();
    for (id, speech) in script(&[(0, 10), (3, 3), (4, 3), (0, 8)]) {
        s.push_samples(&frame_of(id), speech, &mut m).unwrap();
    }
    let f = s.finish(s.next_seq(), &mut m).unwrap();
    assert_eq!(m.calls.len(), 1);
    assert_eq!(m.calls[0].frames, 9, "lead, words, tail");
    assert_eq!(f.text, "w3 w4");
    let w = &f.windows[0];
    assert_eq!(
        (w.start_seq, w.end_seq),
        (100, 120),
        "the window: to the pause's end"
    );
    assert_eq!(
        w.segments,
        vec![TimedText {
            start_seq: 110,
            end_seq: 116,
            text: "w3 w4".into()
        }]
    );
}

#[test]
fn a_full_anchored_window_commits_the_same_samples_on_any_frame_grid() {
    // Windows of 60 frames, a lead of 2 frames before the first loud sample. The dictation
    // outgrows the window while speaking; frames cut it wherever the capture started.
    let p = StreamPolicy {
        max_window_frames: 60,
        lead_frames: 10,
        live_passes: false,
        anchor: Some(Anchor {
            lead: 2 * FRAME_SAMPLES,
            tail: FRAME_SAMPLES,
            fraction: 0.001,
            level_samples: FRAME_SAMPLES,
        }),
        ..policy()
    };
    let frames = script(&[
        (0, 10),
        (1, 10),
        (501, 10),
        (0, 6),
        (2, 20),
        (3, 30),
        (0, 5),
    ]);
    let audio = audio_of(&frames);
    let mut commits = Vec::new();
    for shift in [0, 1, 123, 319] {
        let mut s = SessionStream::new(p, 0);
        let mut m = Scripted::default();
        let shifted: Vec<f32> = std::iter::repeat_n(0.0, shift)
            .chain(audio.iter().copied())
            .collect();
        for (i, chunk) in shifted.chunks_exact(FRAME_SAMPLES).enumerate() {
            let samples: &[f32; FRAME_SAMPLES] = chunk.try_into().unwrap();
            s.push_samples(samples, frames[i].1, &mut m).unwrap();
        }
        let commit = m
            .calls
            .iter()
            .find(|c| c.timestamps)
            .unwrap_or_else(|| panic!("a commit pass at shift {shift}"));
        commits.push((shift, commit.audio.clone()));
    }
    // The first loud sample is frame 10's first: the pass starts 2 frames before it and takes
    // a whole window from there, though the window held 8 frames more before the anchor.
    let (_, first) = &commits[0];
    assert_eq!(first.len(), 60 * FRAME_SAMPLES);
    assert_eq!(&first[..], &audio[8 * FRAME_SAMPLES..68 * FRAME_SAMPLES]);
    for (shift, c) in &commits[1..] {
        assert!(
            c == first,
            "the commit pass at a shift of {shift} samples took other samples"
        );
    }
}
