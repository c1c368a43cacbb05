//! faster-whisper's check of a window's decode: text that compresses too well (a loop of
//! sentences, which [`super::repetition`] cannot see past eight words) or that the model was
//! unsure of is decoded again. faster-whisper retries at rising temperatures; v2m retries
//! without the previous-text prompt (the usual cause: the prompt talked the model into
//! repeating it), deterministically, and the session starts the next window afresh.

use std::io::Write;

/// faster-whisper's `compression_ratio_threshold`.
pub const COMPRESSION_RATIO_THRESHOLD: f32 = 2.4;
/// faster-whisper's `log_prob_threshold`.
pub const LOGPROB_THRESHOLD: f32 = -1.0;
/// faster-whisper's `no_speech_threshold`: unsure text over likely silence is not retried.
pub const NO_SPEECH_THRESHOLD: f32 = 0.6;

/// UTF-8 length over zlib-compressed length (Python's `zlib.compress`, level 6).
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    // Writing to a Vec cannot fail.
    let compressed = z
        .write_all(text.as_bytes())
        .and_then(|_| z.finish())
        .map(|v| v.len())
        .unwrap_or(text.len());
    text.len() as f32 / compressed.max(1) as f32
}

/// Text tokens in a row that, found in the previous text too, make a window a copy of its
/// prompt: two sentences' worth of common words would rarely repeat by chance.
pub const COPIED_RUN: usize = 8;
/// How far back in the prompt a copy is looked for: its last sentence or two, what the model
/// copies. Speech that really repeats itself (a reading of the same passage twice) usually
/// repeats something said longer ago and is not decoded twice.
pub const COPIED_TAIL: usize = 4 * COPIED_RUN;

/// Whether `decoded` (text tokens) begins with [`COPIED_RUN`] tokens found in a row in the
/// last [`COPIED_TAIL`] tokens of `previous` (the prompt's text tokens): the prompt talked the
/// model into copying it, a hallucination the compression ratio cannot see when the copy is
/// one sentence ("He might even have been made amiable himself." again at the start of the
/// window after the one that ended with it).
pub fn copies_previous(previous: &[u32], decoded: &[u32]) -> bool {
    let tail = &previous[previous.len().saturating_sub(COPIED_TAIL)..];
    decoded.len() >= COPIED_RUN
        && tail
            .windows(COPIED_RUN)
            .any(|p| p == &decoded[..COPIED_RUN])
}

/// Whether a decode should be tried again (faster-whisper's `needs_fallback`).
pub fn needs_fallback(text: &str, avg_logprob: f32, no_speech_prob: f32) -> bool {
    let unsure = avg_logprob < LOGPROB_THRESHOLD;
    if unsure && no_speech_prob > NO_SPEECH_THRESHOLD {
        return false;
    }
    unsure || compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_loops_compress_too_well_and_speech_does_not() {
        let speech = "And Mr. John Dashwood had then leisure to consider how much there might \
                      be prudently in his power to do for them.";
        assert!(
            compression_ratio(speech) < 1.6,
            "{}",
            compression_ratio(speech)
        );
        let looped = "Had he married a more amiable woman. ".to_string()
            + &"And he was a little bit more amiable than he was. ".repeat(6);
        assert!(
            compression_ratio(&looped) > 2.4,
            "{}",
            compression_ratio(&looped)
        );
        assert!(!needs_fallback(speech, -0.2, 0.1));
        assert!(needs_fallback(&looped, -0.2, 0.1));
        assert!(needs_fallback(speech, -1.3, 0.1), "unsure text");
        assert!(
            !needs_fallback(speech, -1.3, 0.9),
            "unsure text over silence"
        );
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn a_window_that_begins_with_the_end_of_its_prompt_is_a_copy() {
        let previous: Vec<u32> = (100..160).collect();
        // The prompt's last sentence again, then new words.
        let copied: Vec<u32> = (150..160).chain(500..510).collect();
        assert!(copies_previous(&previous, &copied));
        // Seven tokens in common are not enough; new text shares nothing.
        let near: Vec<u32> = (153..160).chain(500..510).collect();
        assert!(!copies_previous(&previous, &near));
        assert!(!copies_previous(&previous, &(500..540).collect::<Vec<_>>()));
        // Something said longer ago, or a repeat later in the window: speech, not a copy.
        assert!(!copies_previous(&previous, &(100..120).collect::<Vec<_>>()));
        let later: Vec<u32> = (500..510).chain(150..160).collect();
        assert!(!copies_previous(&previous, &later));
        assert!(!copies_previous(&[], &copied));
    }
}
