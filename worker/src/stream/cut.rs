//! Where a full window is cut at a hard commit: at the end of a segment the model timestamped,
//! preferably one that ends a sentence, moved into the nearest pause the VAD heard; without
//! usable segments, in the longest pause of the window's second half (or its quietest frame).
//! The audio before the cut is committed; the rest opens the next window.

use crate::decode::timestamps::TimedSegment;

/// How far (frames) a segment end may move to reach a pause: Whisper's timestamps are only
/// good to a few hundred milliseconds.
pub const SNAP_FRAMES: usize = 15;

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Commit the first `segments` segments; the next window starts at frame `frame`.
    Segments {
        /// Frame offset in the window.
        frame: usize,
        /// Segments committed.
        segments: usize,
    },
    /// No usable segment: cut at frame `frame`; the text before it needs a pass of its own.
    Pause {
        /// Frame offset in the window.
        frame: usize,
    },
}

/// Whether `text` ends a sentence (closing quotes and brackets aside).
pub fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end_matches(|c: char| c.is_whitespace() || "\"'”’)]}".contains(c));
    t.ends_with(['.', '?', '!', '…', '。', '？', '！'])
}

/// Maximal runs of non-speech frames, as `(start, end)` (exclusive) offsets.
fn pauses(speech: &[bool]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, &s) in speech.iter().enumerate() {
        match (s, start) {
            (false, None) => start = Some(i),
            (true, Some(b)) => {
                runs.push((b, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(b) = start {
        runs.push((b, speech.len()));
    }
    runs
}

/// `at`, moved into the middle of the pause nearest to it within [`SNAP_FRAMES`], if any.
fn snap(at: usize, speech: &[bool]) -> usize {
    let distance = |(a, b): (usize, usize)| {
        if at < a {
            a - at
        } else if at >= b {
            at + 1 - b
        } else {
            0
        }
    };
    pauses(speech)
        .into_iter()
        .filter(|&r| distance(r) <= SNAP_FRAMES)
        .min_by_key(|&r| distance(r))
        .map_or(at, |(a, b)| (a + b) / 2)
}

/// The best pause in frames `from..speech.len()`: the longest non-speech run (the latest of
/// equals), cut in its middle; with none, just after the quietest frame.
fn best_pause(speech: &[bool], energy: &[f32], from: usize) -> usize {
    let n = speech.len();
    let from = from.min(n.saturating_sub(1));
    let longest = pauses(&speech[from..])
        .into_iter()
        .max_by_key(|&(a, b)| (b - a, a));
    match longest {
        Some((a, b)) => from + (a + b) / 2,
        None => {
            let quietest = (from..n)
                .min_by(|&a, &b| energy[a].total_cmp(&energy[b]))
                .unwrap_or(n.saturating_sub(1));
            quietest + 1
        }
    }
}

/// Chooses the cut for a window of `speech.len()` frames given the segments the commit pass
/// found (`texts[i]` is segment `i`'s text). Cuts land at or after a third of the window so
/// every commit makes progress, and never beyond its end.
pub fn choose(speech: &[bool], energy: &[f32], segments: &[TimedSegment], texts: &[String]) -> Cut {
    let n = speech.len();
    let min_cut = (n / 3).max(1);
    let candidates: Vec<(usize, usize, bool)> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.complete && (min_cut..=n).contains(&(s.end as usize)))
        .map(|(i, s)| {
            let text = texts.get(i).map_or("", String::as_str);
            (i + 1, s.end as usize, ends_sentence(text))
        })
        .collect();
    let best = candidates
        .iter()
        .rev()
        .find(|c| c.2)
        .or_else(|| candidates.last());
    match best {
        Some(&(count, end, _)) => Cut::Segments {
            frame: snap(end, speech).clamp(min_cut, n),
            segments: count,
        },
        None => Cut::Pause {
            frame: best_pause(speech, energy, n / 2).clamp(min_cut, n),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pattern: &str) -> Vec<bool> {
        pattern.chars().map(|c| c == 's').collect()
    }

    fn seg(start: u32, end: u32, complete: bool) -> TimedSegment {
        TimedSegment {
            start,
            end,
            tokens: vec![1],
            complete,
        }
    }

    #[test]
    fn sentence_ends_are_recognised() {
        assert!(ends_sentence(" He left."));
        assert!(ends_sentence("Did he?\" "));
        assert!(ends_sentence("Stop!)"));
        assert!(!ends_sentence(" and then,"));
        assert!(!ends_sentence(""));
    }

    #[test]
    fn the_latest_sentence_end_wins_and_moves_into_its_pause() {
        // 30 frames: speech, pause at 10..14, speech, pause at 20..22, speech.
        let speech = flags("ssssssssss....ssssss..ssssssss");
        let energy = vec![1.0; 30];
        let segs = [seg(0, 11, true), seg(11, 21, true), seg(21, 30, false)];
        let texts = ["First one.".to_string(), " and then".into(), " more".into()];
        // The sentence end (segment 1, ends at 11) beats the later plain end (21).
        assert_eq!(
            choose(&speech, &energy, &segs, &texts),
            Cut::Segments {
                frame: 12,
                segments: 1
            }
        );
        // No sentence end: the latest complete segment, snapped into its pause (20..22).
        let texts = ["First one".to_string(), " and then".into(), " more".into()];
        assert_eq!(
            choose(&speech, &energy, &segs, &texts),
            Cut::Segments {
                frame: 21,
                segments: 2
            }
        );
    }

    #[test]
    fn segments_too_early_or_incomplete_fall_back_to_the_best_pause() {
        let speech = flags("ssssssssssssssss..sss.ssssss....ss");
        let energy = vec![1.0; speech.len()];
        // One segment ending before a third of the window, one cut off.
        let segs = [seg(0, 5, true), seg(5, 34, false)];
        let texts = ["Hi.".to_string(), " rest".into()];
        // Longest pause in the second half: 28..32 -> middle 30.
        assert_eq!(
            choose(&speech, &energy, &segs, &texts),
            Cut::Pause { frame: 30 }
        );
        // No pause at all: after the quietest frame of the second half.
        let speech = vec![true; 20];
        let mut energy = vec![1.0; 20];
        energy[4] = 0.0; // first half: ignored
        energy[15] = 0.1;
        assert_eq!(choose(&speech, &energy, &[], &[]), Cut::Pause { frame: 16 });
    }

    #[test]
    fn a_far_pause_does_not_move_the_cut() {
        let speech = flags(&format!("{}{}", "s".repeat(50), ".".repeat(10)));
        let energy = vec![1.0; 60];
        let segs = [seg(0, 30, true)];
        let texts = ["Long.".to_string()];
        assert_eq!(
            choose(&speech, &energy, &segs, &texts),
            Cut::Segments {
                frame: 30,
                segments: 1
            }
        );
    }
}
