//! One pass of Whisper over up to 30 s of audio: mel, encoder, greedy decoding, text.

use crate::decode::greedy::{DecodeRequest, Decoded, GreedyDecoder, MAX_PREVIOUS, Mode, StepModel};
use crate::decode::quality::{
    LOGPROB_THRESHOLD, NO_SPEECH_THRESHOLD, compression_ratio, copies_previous, needs_fallback,
};
use crate::decode::repetition::collapse_repeats;
use crate::decode::timestamps::TimedSegment;
use crate::error::WorkerError;
use crate::features::mel::MelSpectrogram;
use crate::model::files::ModelFiles;
use crate::model::session::{Canceller, CrossKv, SelfKv, WhisperSessions};
use crate::runtime::{EpChoice, EpDecision, Runtime};
use crate::tokenizer::Tokenizer;
use std::time::Instant;

/// A window is silence when `no_speech_prob − LOGPROB_WEIGHT × avg_logprob` reaches this.
///
/// Whisper's own rule (no-speech probability above 0.6 *and* mean log-probability below −1)
/// let tiny.en write "you" over silence and a 440 Hz tone. Observed here: tiny.en's
/// hallucinations on silence, low noise and 440 Hz / 1 kHz tones scored 0.94–1.12; real speech
/// at most 0.40 (pocketsphinx-testdata, tiny.en and base) and 0.55 (synthetic German, base,
/// a clip that sat on the corner of a rectangular rule). The threshold sits in the middle of
/// that gap. For dictation, dropping a mumble beats typing a word nobody said.
pub const NO_SPEECH_SCORE: f32 = 0.75;
/// Weight of the (negative) mean log-probability in the no-speech score.
pub const LOGPROB_WEIGHT: f32 = 0.25;

/// The no-speech score of a decode (see [`NO_SPEECH_SCORE`]).
pub fn no_speech_score(decoded: &Decoded) -> f32 {
    decoded.no_speech_prob - LOGPROB_WEIGHT * decoded.avg_logprob
}

/// Whether a decode is judged silence.
pub fn is_silence(decoded: &Decoded) -> bool {
    no_speech_score(decoded) >= NO_SPEECH_SCORE
}

/// Text tokens a decode needs before Whisper's own no-speech rule may judge it (see
/// [`DecodeRequest::speech_heard`]).
pub const SPEECH_TEXT_TOKENS: usize = 10;

/// Fewest text tokens per second of VAD speech a prompted window may decode to before it is
/// decoded again without its prompt. Speech runs at 3–4 tokens a second (English: 2.6 words,
/// 3.3 tokens a second of VAD speech on LibriVox); a prompt that holds the same words as the
/// audio (a passage read again) can make Whisper skip ahead: a 5-minute file gave 38 and 19
/// words for 25 s of speech (1.9 and 1.0 tokens a second). Tokens, not words: some languages
/// do not put spaces between words. Counted from [`MIN_SPEECH_S_TO_COUNT`] on.
pub const MIN_TOKENS_PER_SPEECH_S: f32 = 2.5;
/// Seconds of VAD speech from which a window's text is counted against it.
pub const MIN_SPEECH_S_TO_COUNT: f32 = 8.0;

/// Whether `tokens` text tokens are too few for `speech_s` seconds of speech.
pub fn too_little_text(tokens: usize, speech_s: f32) -> bool {
    speech_s >= MIN_SPEECH_S_TO_COUNT && (tokens as f32) < speech_s * MIN_TOKENS_PER_SPEECH_S
}

/// Whether a decode is silence by Whisper's own rule (no-speech probability above 0.6 and
/// mean log-probability below −1): for audio the VAD heard speech in.
pub fn is_whisper_silence(decoded: &Decoded) -> bool {
    decoded.no_speech_prob > NO_SPEECH_THRESHOLD && decoded.avg_logprob < LOGPROB_THRESHOLD
}

/// How long each part of a pass took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassTimings {
    /// Log-mel.
    pub mel_ms: f32,
    /// Encoder.
    pub encoder_ms: f32,
    /// All decoder calls.
    pub decoder_ms: f32,
    /// First decoder call (the prompt).
    pub decoder_first_ms: f32,
}

impl PassTimings {
    /// The whole pass.
    pub fn total_ms(&self) -> f32 {
        self.mel_ms + self.encoder_ms + self.decoder_ms
    }
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    /// The text, trimmed, with repetition loops collapsed; empty for silence.
    pub text: String,
    /// The hypothesis' text tokens (forced prefix included, timestamps left out); empty for
    /// silence.
    pub tokens: Vec<u32>,
    /// Timed segments (timestamp mode only; empty for silence).
    pub segments: Vec<TimedSegment>,
    /// The raw decode.
    pub decoded: Decoded,
    /// Whether the no-speech rule judged the window silent.
    pub silent: bool,
    /// Whether a repetition loop was collapsed in `text` (its tokens make a poor prompt).
    pub looped: bool,
    /// Language code detected (`--language auto`), e.g. `en`.
    pub language: Option<String>,
    /// Timings.
    pub timings: PassTimings,
}

/// Mel + sessions + tokenizer + decoding policy for one model.
pub struct Transcriber {
    mel: MelSpectrogram,
    sessions: WhisperSessions,
    tokenizer: Tokenizer,
    decoder: GreedyDecoder,
    files: ModelFiles,
    /// The vocabulary prompt's tokens, before every window's previous text.
    vocabulary: Vec<u32>,
}

/// Most tokens the vocabulary prompt may take of the 223 the previous-text prompt has.
pub const MAX_VOCABULARY_TOKENS: usize = 150;

struct Step<'a> {
    sessions: &'a mut WhisperSessions,
    cache: SelfKv,
    cross: &'a CrossKv,
    ms: Vec<f32>,
}

impl StepModel for Step<'_> {
    fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError> {
        let t = Instant::now();
        let logits = self
            .sessions
            .decode(tokens, rows, &mut self.cache, self.cross)?;
        self.ms.push(t.elapsed().as_secs_f32() * 1e3);
        Ok(logits)
    }

    fn restart(&mut self) -> Result<(), WorkerError> {
        self.cache = self.sessions.empty_cache()?;
        Ok(())
    }

    fn truncate(&mut self, len: usize) -> Result<(), WorkerError> {
        self.sessions.truncate_cache(&mut self.cache, len)
    }
}

impl Transcriber {
    /// Loads `files` into ONNX Runtime `rt` ([`crate::runtime::init`]).
    pub fn load(
        rt: &Runtime,
        files: ModelFiles,
        threads: usize,
        ep: EpChoice,
        language: Option<&str>,
    ) -> Result<Transcriber, WorkerError> {
        let tokenizer = Tokenizer::from_file(&files.tokenizer())?;
        let decoder = GreedyDecoder::new(&files, &tokenizer, language)?;
        let sessions = WhisperSessions::load(rt, &files, threads, ep)?;
        Ok(Transcriber {
            mel: MelSpectrogram::new(files.info.n_mels),
            sessions,
            tokenizer,
            decoder,
            files,
            vocabulary: Vec::new(),
        })
    }

    /// Whisper's initial prompt from `words` (names and terms it should spell this way): they
    /// begin every window's previous-text prompt, as faster-whisper's `initial_prompt`, and
    /// the window's previous text follows in the room left.
    pub fn set_vocabulary(&mut self, words: &[String]) -> Result<(), WorkerError> {
        let Some(prompt) = vocabulary_prompt(words) else {
            self.vocabulary.clear();
            return Ok(());
        };
        let tokens = self.tokenizer.encode(&prompt)?;
        if tokens.len() > MAX_VOCABULARY_TOKENS {
            return Err(WorkerError::Usage(format!(
                "[text] vocabulary is {} tokens: at most {MAX_VOCABULARY_TOKENS} fit Whisper's prompt",
                tokens.len()
            )));
        }
        self.vocabulary = tokens;
        Ok(())
    }

    /// The vocabulary prompt's tokens.
    pub fn vocabulary(&self) -> &[u32] {
        &self.vocabulary
    }

    /// Translates speech in any language into English text (Whisper's translate task).
    pub fn translate(&mut self) -> Result<(), WorkerError> {
        self.decoder.translate(&self.tokenizer)
    }

    /// The model's files.
    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// Where inference runs, and why.
    pub fn execution_provider(&self) -> &EpDecision {
        self.sessions.execution_provider()
    }

    /// A handle that aborts this transcriber's pass in flight from another thread.
    pub fn canceller(&self) -> Canceller {
        self.sessions.canceller()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The first timestamp token (`<|0.00|>`); `<|t|>` is it plus `t / 0.02 s`.
    pub fn timestamp_begin(&self) -> u32 {
        self.decoder.timestamp_begin()
    }

    /// The log-mel this transcriber feeds its encoder for `audio`.
    pub fn mel(&self, audio: &[f32]) -> Vec<f32> {
        self.mel.compute(audio)
    }

    /// A plain pass over up to 30 s of 16 kHz mono audio (longer input is cut at 30 s): no
    /// previous text, no prefix, no timestamps. The reference transcriber's computation.
    pub fn transcribe(&mut self, audio: &[f32]) -> Result<Transcript, WorkerError> {
        self.pass(audio, &DecodeRequest::PLAIN)
    }

    /// One pass over up to 30 s of audio as `req` asks.
    pub fn pass(
        &mut self,
        audio: &[f32],
        req: &DecodeRequest<'_>,
    ) -> Result<Transcript, WorkerError> {
        let t = Instant::now();
        let mel = self.mel.compute(audio);
        let mel_ms = t.elapsed().as_secs_f32() * 1e3;
        let mut r = self.pass_mel(mel, req)?;
        r.timings.mel_ms = mel_ms;
        Ok(r)
    }

    /// One pass over a log-mel (`[n_mels][3000]`, as [`Self::mel`] makes it).
    pub fn pass_mel(
        &mut self,
        mel: Vec<f32>,
        req: &DecodeRequest<'_>,
    ) -> Result<Transcript, WorkerError> {
        let t = Instant::now();
        let cross = self.sessions.encode(mel)?;
        let encoder_ms = t.elapsed().as_secs_f32() * 1e3;
        let cache = self.sessions.empty_cache()?;
        let mut step = Step {
            sessions: &mut self.sessions,
            cache,
            cross: &cross,
            ms: Vec::new(),
        };
        let prompt = with_vocabulary(&self.vocabulary, req.previous);
        let prompted = DecodeRequest {
            previous: &prompt,
            ..*req
        };
        let mut decoded = self.decoder.decode(&mut step, &prompted)?;
        let begin = self.decoder.timestamp_begin();
        let judge = |d: &Decoded| {
            // Whisper's own rule only for real text over audio the VAD heard speech in: what
            // tiny.en writes over a tone the VAD takes for speech is a word or two ("You").
            if req.speech_heard && d.text_tokens(begin).len() >= SPEECH_TEXT_TOKENS {
                is_whisper_silence(d)
            } else {
                is_silence(d)
            }
        };
        let mut retried = false;
        if !req.previous.is_empty() {
            let raw = self
                .tokenizer
                .decode(&decoded.text_tokens(self.decoder.timestamp_begin()));
            let silent = judge(&decoded);
            // A prompt raises the no-speech probability of speech it did not predict (seen on
            // synthetic voices): "silence" the model was sure of is checked without it.
            let doubtful_silence = silent && decoded.avg_logprob >= LOGPROB_THRESHOLD;
            let poor_text =
                !silent && needs_fallback(raw.trim(), decoded.avg_logprob, decoded.no_speech_prob);
            let previous_text: Vec<u32> = req
                .previous
                .iter()
                .copied()
                .filter(|&t| t < begin)
                .collect();
            let copy = !silent && copies_previous(&previous_text, &decoded.text_tokens(begin));
            let skipped =
                !silent && too_little_text(decoded.text_tokens(begin).len(), req.speech_s);
            if doubtful_silence || poor_text || copy || skipped {
                // The same audio without the prompt.
                step.restart()?;
                let fresh = DecodeRequest {
                    previous: &self.vocabulary,
                    ..*req
                };
                let again = self.decoder.decode(&mut step, &fresh)?;
                let text = self
                    .tokenizer
                    .decode(&again.text_tokens(self.decoder.timestamp_begin()));
                log::debug!(
                    "window decoded again without its prompt ({}; compression {:.2} -> {:.2}, logprob {:.2} -> {:.2})",
                    if silent {
                        "judged silent"
                    } else if copy {
                        "copied its prompt"
                    } else if skipped {
                        "too little text for its speech"
                    } else {
                        "poor text"
                    },
                    compression_ratio(raw.trim()),
                    compression_ratio(text.trim()),
                    decoded.avg_logprob,
                    again.avg_logprob
                );
                // Doubtful silence: the unprompted judgement stands; a copy too (speech that
                // really repeats itself is read again without the prompt). Too little text:
                // the read with more text. Poor text: the better read.
                let more_text = again.text_tokens(begin).len() > decoded.text_tokens(begin).len();
                if doubtful_silence
                    || copy
                    || (skipped && more_text)
                    || (poor_text
                        && (compression_ratio(text.trim()) <= compression_ratio(raw.trim())
                            || again.avg_logprob > decoded.avg_logprob))
                {
                    decoded = again;
                }
                retried = true;
            }
        }
        let timings = PassTimings {
            mel_ms: 0.0,
            encoder_ms,
            decoder_ms: step.ms.iter().sum(),
            decoder_first_ms: step.ms.first().copied().unwrap_or(0.0),
        };
        let silent = judge(&decoded);
        let (text, tokens, segments, looped) = if silent {
            (String::new(), Vec::new(), Vec::new(), false)
        } else {
            let tokens = decoded.text_tokens(self.decoder.timestamp_begin());
            let raw = self.tokenizer.decode(&tokens);
            let text = collapse_repeats(raw.trim());
            // A retried window leaves no prompt either: the next starts afresh.
            let looped =
                retried || text.split_whitespace().count() != raw.split_whitespace().count();
            let segments = match req.mode {
                Mode::Timestamps => self.decoder.segments(&decoded).segments,
                Mode::Text { .. } => Vec::new(),
            };
            (text, tokens, segments, looped)
        };
        let language = decoded
            .detected_language
            .and_then(|id| self.tokenizer.language_code(id))
            .map(str::to_owned);
        Ok(Transcript {
            text,
            tokens,
            segments,
            decoded,
            silent,
            looped,
            language,
            timings,
        })
    }
}

/// The prompt's tokens: the vocabulary first, then as much of the window's `previous` text
/// (its end) as fits in Whisper's [`MAX_PREVIOUS`].
fn with_vocabulary(vocabulary: &[u32], previous: &[u32]) -> Vec<u32> {
    let room = MAX_PREVIOUS.saturating_sub(vocabulary.len());
    let tail = &previous[previous.len().saturating_sub(room)..];
    vocabulary.iter().chain(tail).copied().collect()
}

/// The text of the vocabulary prompt: the words as one sentence (" Kubernetes, Grafana."), so
/// that the window's own text starts a sentence of its own rather than going on with a list.
/// `None` when there are no words.
pub fn vocabulary_prompt(words: &[String]) -> Option<String> {
    let words: Vec<&str> = words
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty())
        .collect();
    let last = words.last()?;
    let end = if last.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    Some(format!(" {}{end}", words.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_too_short_for_its_speech_is_counted_from_8_s_of_speech() {
        // 25 s of speech: 85 tokens is speech's pace, 48 a skip.
        assert!(!too_little_text(85, 25.0));
        assert!(too_little_text(48, 25.0));
        // Short windows are not judged: a word or two for a few seconds is normal.
        assert!(!too_little_text(2, 7.9));
        assert!(too_little_text(19, 8.0));
    }

    #[test]
    fn the_vocabulary_prompt_is_one_sentence_and_keeps_its_place() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            vocabulary_prompt(&words(&["Kubernetes", " Grafana "])).as_deref(),
            Some(" Kubernetes, Grafana.")
        );
        assert_eq!(
            vocabulary_prompt(&words(&["Hello there!"])).as_deref(),
            Some(" Hello there!")
        );
        assert_eq!(vocabulary_prompt(&words(&["", "  "])), None);
        // The vocabulary first, then the end of the previous text in the room left.
        let vocabulary = [1, 2, 3];
        let previous: Vec<u32> = (100..400).collect();
        let p = with_vocabulary(&vocabulary, &previous);
        assert_eq!(p.len(), MAX_PREVIOUS);
        assert_eq!(&p[..3], &vocabulary);
        assert_eq!(p[3], 400 - (MAX_PREVIOUS as u32 - 3));
        assert_eq!(*p.last().unwrap(), 399);
        assert_eq!(with_vocabulary(&[], &[5, 6]), [5, 6]);
        assert_eq!(with_vocabulary(&[7], &[]), [7]);
    }
}
