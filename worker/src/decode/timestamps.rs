//! Timestamp decoding: Whisper's `ApplyTimestampRules` on the logits of each step, and the
//! split of a timestamped hypothesis into segments (faster-whisper's
//! `_split_segments_by_timestamps`).
//!
//! A timestamp token `<|t|>` stands for `t × 0.02 s` from the window's start: one 20 ms ring
//! frame per unit, so a timestamp index is a frame offset.

use super::greedy::log_sum_exp;

/// Seconds per timestamp unit.
pub const SECONDS_PER_UNIT: f32 = 0.02;
/// Latest timestamp allowed first (Whisper's `max_initial_timestamp`, 1 s).
pub const MAX_INITIAL_UNITS: usize = 50;

/// The logit rules for one vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct TimestampRules {
    eot: usize,
    begin: usize,
    vocab: usize,
}

/// One segment of a timestamped hypothesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedSegment {
    /// Start, in timestamp units (frames) from the window's start.
    pub start: u32,
    /// End, in the same units.
    pub end: u32,
    /// Its text tokens (no timestamps).
    pub tokens: Vec<u32>,
    /// Whether its end timestamp was decoded (a segment cut off by the window's end is not).
    pub complete: bool,
}

/// A hypothesis split into segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timestamped {
    /// The segments, in order.
    pub segments: Vec<TimedSegment>,
}

impl TimestampRules {
    /// Rules for a vocabulary whose end-of-text is `eot` and whose timestamps run from `begin`
    /// to `vocab − 1`.
    pub fn new(eot: usize, begin: usize, vocab: usize) -> TimestampRules {
        TimestampRules { eot, begin, vocab }
    }

    /// The first timestamp token.
    pub fn timestamp_begin(&self) -> usize {
        self.begin
    }

    /// Whether `token` is a timestamp.
    pub fn is_timestamp(&self, token: usize) -> bool {
        token >= self.begin && token < self.vocab
    }

    /// Masks `logits` (one row) given the tokens sampled so far in this window: timestamps
    /// come in pairs (except right before end-of-text), never decrease, the first token is a
    /// timestamp no later than 1 s, and a timestamp is forced when timestamps together are more
    /// likely than any single text token.
    pub fn apply(&self, logits: &mut [f32], sampled: &[u32]) {
        let begin = self.begin;
        let is_ts = |t: u32| t as usize >= begin;
        let last_was_ts = sampled.last().is_some_and(|&t| is_ts(t));
        let penultimate_was_ts = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
        if last_was_ts {
            if penultimate_was_ts {
                // A pair just closed: text (or end-of-text) must follow.
                logits[begin..].fill(f32::NEG_INFINITY);
            } else {
                // A segment just ended: its partner timestamp, or end-of-text.
                logits[..self.eot].fill(f32::NEG_INFINITY);
            }
        }
        if let Some(&last_ts) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            // Timestamps never decrease, and a segment is never empty.
            let floor = if last_was_ts && !penultimate_was_ts {
                last_ts as usize
            } else {
                last_ts as usize + 1
            };
            let floor = floor.min(logits.len());
            logits[begin..floor].fill(f32::NEG_INFINITY);
        }
        if sampled.is_empty() {
            logits[..begin].fill(f32::NEG_INFINITY);
            let last_allowed = begin + MAX_INITIAL_UNITS;
            if last_allowed + 1 < logits.len() {
                logits[last_allowed + 1..].fill(f32::NEG_INFINITY);
            }
        }
        let total = log_sum_exp(logits);
        let timestamp_logprob = log_sum_exp(&logits[begin..]) - total;
        let max_text = logits[..begin]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max) as f64
            - total;
        if timestamp_logprob > max_text {
            logits[..begin].fill(f32::NEG_INFINITY);
        }
    }

    /// Splits a hypothesis into segments at each pair of consecutive timestamps. A trailing
    /// segment whose end timestamp never came (the window cut it off) is kept, marked
    /// incomplete, ending at the last timestamp seen.
    pub fn split(&self, tokens: &[u32]) -> Timestamped {
        let is_ts = |t: u32| t as usize >= self.begin && (t as usize) < self.vocab;
        let unit = |t: u32| t - self.begin as u32;
        let mut segments = Vec::new();
        let mut start: Option<u32> = None;
        let mut text: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let t = tokens[i];
            if is_ts(t) {
                match start {
                    None => start = Some(unit(t)),
                    Some(s) => {
                        segments.push(TimedSegment {
                            start: s,
                            end: unit(t),
                            tokens: std::mem::take(&mut text),
                            complete: true,
                        });
                        // A pair `<|a|><|a|>` closes one segment and opens the next at the same
                        // time; a lone closing timestamp leaves the next start open.
                        start = match tokens.get(i + 1) {
                            Some(&n) if is_ts(n) => {
                                i += 1;
                                Some(unit(n))
                            }
                            _ => None,
                        };
                    }
                }
            } else {
                if start.is_none() {
                    // Text without an opening timestamp continues from the last end.
                    start = Some(segments.last().map_or(0, |s: &TimedSegment| s.end));
                }
                text.push(t);
            }
            i += 1;
        }
        if !text.is_empty() {
            let s = start.unwrap_or(0);
            segments.push(TimedSegment {
                start: s,
                end: s,
                tokens: text,
                complete: false,
            });
        }
        Timestamped { segments }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EOT: usize = 10;
    const TS: usize = 20;
    const V: usize = 100;

    fn rules() -> TimestampRules {
        TimestampRules::new(EOT, TS, V)
    }

    fn allowed(l: &[f32]) -> Vec<usize> {
        (0..l.len()).filter(|&i| l[i] > f32::NEG_INFINITY).collect()
    }

    #[test]
    fn the_first_token_is_a_timestamp_within_one_second() {
        let mut l = vec![0f32; V];
        rules().apply(&mut l, &[]);
        assert_eq!(
            allowed(&l),
            (TS..V.min(TS + MAX_INITIAL_UNITS + 1)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn timestamps_pair_up_and_never_go_back() {
        let r = rules();
        let t = |u: usize| (TS + u) as u32;
        // After <|0|> text <|5|>: its partner (>= 5) or end-of-text, no text. (End-of-text
        // likely enough that timestamps together do not outweigh it.)
        let mut l = vec![0f32; V];
        l[EOT] = 10.0;
        r.apply(&mut l, &[t(0), 3, t(5)]);
        let a = allowed(&l);
        assert!(a.contains(&EOT) && a.contains(&(TS + 5)) && !a.contains(&3));
        assert!(!a.contains(&(TS + 4)), "no earlier timestamp");
        // After a pair <|5|><|5|>: text only (timestamps need text between).
        let mut l = vec![0f32; V];
        // Text is likelier than all timestamps together here, so nothing forces a timestamp.
        l[3] = 10.0;
        r.apply(&mut l, &[t(0), 3, t(5), t(5)]);
        let a = allowed(&l);
        assert!(a.contains(&3) && a.iter().all(|&i| i < TS));
        // Within text: any later timestamp (strictly after the last one).
        let mut l = vec![0f32; V];
        l[3] = 10.0;
        r.apply(&mut l, &[t(0), 3, t(5), t(5), 4]);
        let a = allowed(&l);
        assert!(!a.contains(&(TS + 5)) && a.contains(&(TS + 6)) && a.contains(&3));
    }

    #[test]
    fn likely_timestamps_win_over_text() {
        let mut l = vec![-100f32; V];
        l[3] = 0.0; // the best text token
        for x in &mut l[TS..] {
            *x = -1.0; // each timestamp less likely, all of them together more
        }
        rules().apply(&mut l, &[(TS as u32), 3]);
        assert!(allowed(&l).iter().all(|&i| i >= TS));
    }

    #[test]
    fn hypotheses_split_into_segments() {
        let r = rules();
        let t = |u: u32| TS as u32 + u;
        // Two complete segments, the second closed by a lone timestamp before end-of-text.
        let s = r.split(&[t(0), 1, 2, t(40), t(40), 3, t(70)]);
        assert_eq!(
            s.segments,
            vec![
                TimedSegment {
                    start: 0,
                    end: 40,
                    tokens: vec![1, 2],
                    complete: true
                },
                TimedSegment {
                    start: 40,
                    end: 70,
                    tokens: vec![3],
                    complete: true
                },
            ]
        );
        // Cut off by the window: the last segment has no end.
        let s = r.split(&[t(0), 1, t(40), t(42), 3, 4]);
        assert_eq!(s.segments.len(), 2);
        assert!(s.segments[0].complete && !s.segments[1].complete);
        assert_eq!(s.segments[1].start, 42);
        assert_eq!(s.segments[1].tokens, vec![3, 4]);
        assert_eq!(r.split(&[]).segments, vec![]);
    }
}
