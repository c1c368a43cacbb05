//! Greedy decoding with suppression, as the reference transcriber does, plus what long-form and
//! streaming need: Whisper's previous-text prompt (`<|startofprev|>` and the last text tokens),
//! a forced prefix fed in one decoder call (the stable words of a provisional pass), and
//! timestamp decoding under Whisper's timestamp rules (see [`super::timestamps`]).
//!
//! Prompt: `[<|startofprev|> previous…] <|startoftranscript|> [language, task]
//! [<|notimestamps|>] [prefix…]`. Tokens in `suppress_ids` and every special token above
//! end-of-text are never emitted (timestamps excepted in timestamp mode), `suppress_ids_begin`
//! not as the first token, argmax until end-of-text, the token limit or the decoder's context.

use super::timestamps::{TimestampRules, Timestamped};
use crate::error::WorkerError;
use crate::model::files::ModelFiles;
use crate::tokenizer::Tokenizer;

/// What the policy needs from a model: logits for new tokens, the cache kept inside.
pub trait StepModel {
    /// Appends `tokens` to the context; returns the logits of the `rows` listed (indices into
    /// `tokens`, in order) as `[rows.len()][vocab]`, row-major. Only those rows are copied out:
    /// a 225-token prompt has 47 MB of logits (tiny.en), of which decoding reads two rows.
    fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError>;
    /// Empties the context (the cache), keeping the audio.
    fn restart(&mut self) -> Result<(), WorkerError>;
    /// Keeps the first `len` tokens of the context and forgets the rest (a draft's tokens
    /// after the first one decoding disagreed with).
    fn truncate(&mut self, len: usize) -> Result<(), WorkerError>;
}

/// Whisper's default cap on tokens per 30 s window (half the decoder context).
pub const MAX_TOKENS: usize = 224;
/// Previous-text tokens kept in a prompt: the last `MAX_TOKENS − 1`, as faster-whisper keeps
/// (with `<|startofprev|>` they fill half the decoder's context).
pub const MAX_PREVIOUS: usize = MAX_TOKENS - 1;

/// How a pass decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Text only (`<|notimestamps|>`); the hypothesis starts with `prefix`, fed in one call.
    Text {
        /// Tokens the hypothesis must begin with (may be empty).
        prefix: &'a [u32],
        /// Tokens expected after the prefix (an earlier pass's hypothesis of the same audio):
        /// fed with the prompt in one call and checked, not forced. Decoding keeps each one
        /// the model would have chosen itself and goes on one token at a time from the first
        /// it would not: the outcome is greedy decoding's, in fewer calls.
        draft: &'a [u32],
    },
    /// Timestamp tokens around segments (Whisper's timestamp rules).
    Timestamps,
}

/// What one decode is asked to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeRequest<'a> {
    /// Tokens of what was said before (Whisper's previous-text prompt: text tokens, with their
    /// timestamps when they were decoded with them). The last [`MAX_PREVIOUS`] are used; empty
    /// for none.
    pub previous: &'a [u32],
    /// Text only, or with timestamps.
    pub mode: Mode<'a>,
    /// The VAD heard seconds of speech in this audio: only Whisper's own no-speech rule (sure
    /// of silence and unsure of the text) may then call it silence, not v2m's stricter one
    /// for short dictations (see `crate::transcriber::NO_SPEECH_SCORE`).
    pub speech_heard: bool,
    /// Seconds of speech the VAD heard in this audio (0 when unknown): how much text it can
    /// hold at least (see `crate::transcriber::MIN_TOKENS_PER_SPEECH_S`).
    pub speech_s: f32,
}

impl DecodeRequest<'static> {
    /// A plain pass: no previous text, no prefix, no timestamps (the reference's computation).
    pub const PLAIN: DecodeRequest<'static> = DecodeRequest {
        previous: &[],
        mode: Mode::Text {
            prefix: &[],
            draft: &[],
        },
        speech_heard: false,
        speech_s: 0.0,
    };
}

/// The outcome of one greedy decode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The hypothesis: the forced prefix, then the decoded tokens, without end-of-text.
    /// Timestamp tokens included in timestamp mode.
    pub tokens: Vec<u32>,
    /// How many of `tokens` were the forced prefix.
    pub prefix_len: usize,
    /// The language token detected (`--language auto` on a multilingual model).
    pub detected_language: Option<u32>,
    /// Probability of the no-speech token at the start-of-transcript position.
    pub no_speech_prob: f32,
    /// Mean log-probability of the decoded tokens (and end-of-text).
    pub avg_logprob: f32,
    /// Decoder calls made.
    pub steps: u32,
    /// Whether decoding ended with end-of-text (not the token limit or the context).
    pub ended: bool,
}

impl Decoded {
    /// The tokens that are text (no timestamps).
    pub fn text_tokens(&self, timestamp_begin: u32) -> Vec<u32> {
        self.tokens
            .iter()
            .copied()
            .filter(|&t| t < timestamp_begin)
            .collect()
    }
}

/// How the language part of the prompt is formed.
#[derive(Debug, Clone)]
enum Language {
    /// Known in advance: nothing (English-only), or language and task tokens.
    Fixed(Vec<i64>),
    /// Detected at start-of-transcript: the most likely of `languages`; then decoding starts
    /// again with the whole prompt, exactly as with that language fixed.
    Detect { languages: Vec<usize>, task: i64 },
}

/// Greedy decoding policy for one model.
#[derive(Debug, Clone)]
pub struct GreedyDecoder {
    sot: i64,
    sot_prev: Option<i64>,
    no_timestamps: i64,
    language: Language,
    eot: usize,
    no_speech: Option<usize>,
    /// Suppressed in text mode: `suppress_ids` and everything above end-of-text.
    suppress: Vec<bool>,
    suppress_begin: Vec<usize>,
    rules: TimestampRules,
    max_tokens: usize,
    n_ctx: usize,
}

impl GreedyDecoder {
    /// The policy for `files`, in `language` (multilingual models only; `None` for English-only).
    pub fn new(
        files: &ModelFiles,
        tokenizer: &Tokenizer,
        language: Option<&str>,
    ) -> Result<GreedyDecoder, WorkerError> {
        let special = |s: &str| {
            tokenizer
                .special(s)
                .map(|id| id as usize)
                .ok_or_else(|| WorkerError::BadModel {
                    path: files.tokenizer(),
                    reason: format!("no special token {s}"),
                })
        };
        let eot = special("<|endoftext|>")?;
        let sot = special("<|startoftranscript|>")? as i64;
        let no_timestamps = special("<|notimestamps|>")?;
        let language = match (files.info.multilingual, language.unwrap_or("en")) {
            (false, "en" | "auto") => Language::Fixed(Vec::new()),
            (false, other) => {
                return Err(WorkerError::Usage(format!(
                    "{} is English-only: language '{other}' needs a multilingual model (--model base)",
                    files.name
                )));
            }
            (true, "auto") => {
                let languages = files
                    .config
                    .lang_ids
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|&i| (0..files.info.n_vocab as i64).contains(&i))
                    .map(|i| i as usize)
                    .collect::<Vec<_>>();
                if languages.is_empty() {
                    return Err(WorkerError::BadModel {
                        path: files.dir.join("config.json"),
                        reason: "no lang_ids: cannot detect the language".into(),
                    });
                }
                Language::Detect {
                    languages,
                    task: special("<|transcribe|>")? as i64,
                }
            }
            (true, lang) => {
                let lang_token = special(&format!("<|{lang}|>")).map_err(|_| {
                    WorkerError::Usage(format!("language '{lang}' is not one this model knows"))
                })?;
                Language::Fixed(vec![lang_token as i64, special("<|transcribe|>")? as i64])
            }
        };
        let no_speech = special("<|nospeech|>")
            .or_else(|_| special("<|nocaptions|>"))
            .ok();
        let v = files.info.n_vocab;
        let mut suppress = vec![false; v];
        for &i in &files.config.suppress_ids {
            if (0..v as i64).contains(&i) {
                suppress[i as usize] = true;
            }
        }
        for s in suppress.iter_mut().skip(eot + 1) {
            *s = true;
        }
        let suppress_begin = files
            .config
            .suppress_ids_begin
            .clone()
            .unwrap_or_else(|| vec![220, eot as i64])
            .into_iter()
            .filter(|&i| (0..v as i64).contains(&i))
            .map(|i| i as usize)
            .collect();
        Ok(GreedyDecoder {
            sot,
            sot_prev: special("<|startofprev|>").ok().map(|t| t as i64),
            no_timestamps: no_timestamps as i64,
            language,
            eot,
            no_speech,
            suppress,
            suppress_begin,
            rules: TimestampRules::new(eot, no_timestamps + 1, v),
            max_tokens: MAX_TOKENS,
            n_ctx: files.info.n_text_ctx,
        })
    }

    /// Translates into English instead of transcribing: Whisper's `<|translate|>` task token
    /// in place of `<|transcribe|>` (multilingual models only).
    pub fn translate(&mut self, tokenizer: &Tokenizer) -> Result<(), WorkerError> {
        let (Some(transcribe), Some(translate)) = (
            tokenizer.special("<|transcribe|>"),
            tokenizer.special("<|translate|>"),
        ) else {
            return Err(WorkerError::Usage(
                "this model has no translate task (English-only models only transcribe): use a multilingual one (--model base)".into(),
            ));
        };
        match &mut self.language {
            Language::Fixed(tokens) if !tokens.is_empty() => {
                for t in tokens.iter_mut().filter(|t| **t == transcribe as i64) {
                    *t = translate as i64;
                }
            }
            Language::Detect { task, .. } => *task = translate as i64,
            Language::Fixed(_) => {
                return Err(WorkerError::Usage(
                    "translation needs a multilingual model (--model base): this one is English-only".into(),
                ));
            }
        }
        Ok(())
    }

    /// The first timestamp token (`<|0.00|>`); every id from it up is a timestamp.
    pub fn timestamp_begin(&self) -> u32 {
        self.rules.timestamp_begin() as u32
    }

    /// `<|startofprev|>` and the previous text (the last [`MAX_PREVIOUS`] tokens), or nothing.
    fn previous_part(&self, previous: &[u32]) -> Vec<i64> {
        match self.sot_prev {
            Some(sp) if !previous.is_empty() => {
                let keep = &previous[previous.len().saturating_sub(MAX_PREVIOUS)..];
                std::iter::once(sp)
                    .chain(keep.iter().map(|&t| t as i64))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// What follows the language tokens: `<|notimestamps|>` and the prefix, or in timestamp
    /// mode nothing.
    fn mode_part(&self, mode: Mode<'_>) -> Vec<i64> {
        match mode {
            Mode::Text { prefix, .. } => std::iter::once(self.no_timestamps)
                .chain(prefix.iter().map(|&t| t as i64))
                .collect(),
            Mode::Timestamps => Vec::new(),
        }
    }

    /// Decodes greedily until end-of-text, the token limit or the decoder's context.
    pub fn decode(
        &self,
        model: &mut dyn StepModel,
        req: &DecodeRequest<'_>,
    ) -> Result<Decoded, WorkerError> {
        let v = self.suppress.len();
        let (prefix, draft, timestamps) = match req.mode {
            Mode::Text { prefix, draft } => (prefix, draft, false),
            Mode::Timestamps => (&[][..], &[][..], true),
        };
        let mut input = self.previous_part(req.previous);
        let sot_row = input.len();
        input.push(self.sot);
        let mut detect = match &self.language {
            Language::Fixed(tokens) => {
                input.extend(tokens);
                input.extend(self.mode_part(req.mode));
                None
            }
            Language::Detect { languages, task } => Some((languages, *task)),
        };
        // The draft rides along with the whole prompt (after language detection), within the
        // token cap and the decoder's context.
        let room = (self.max_tokens.saturating_sub(prefix.len() + 1))
            .min(self.n_ctx.saturating_sub(input.len() + 1));
        let first_draft = &draft[..draft.len().min(room)];
        // What the next call checks: the draft from this index on.
        let mut pending_draft =
            (detect.is_none() && !first_draft.is_empty()).then_some((0, first_draft));
        if let Some((_, d)) = pending_draft {
            input.extend(d.iter().map(|&t| t as i64));
        }
        let mut tokens: Vec<u32> = prefix.to_vec();
        let mut detected_language = None;
        let (mut no_speech_prob, mut logprob_sum, mut steps, mut calls) = (0f32, 0f64, 0u32, 0u32);
        let mut decoded = 0usize;
        let mut fed = 0usize;
        let mut ended = false;
        // The draft position of the last token decoded.
        let mut cursor = 0;
        'decoding: loop {
            fed += input.len();
            let rows = input.len();
            let (draft_start, drafted) = pending_draft.take().unwrap_or_default();
            // Rows wanted: the no-speech probability is read at start-of-transcript, in a
            // context's first call (not the language-detection one); the next token comes
            // from the last row, or with a draft from each row from the prompt's last on.
            let no_speech = self.no_speech.filter(|_| steps == 0 && detect.is_none());
            let first_next = rows - 1 - drafted.len();
            let mut wanted: Vec<usize> = match no_speech {
                Some(_) if sot_row < first_next => vec![sot_row],
                _ => Vec::new(),
            };
            let ns_row = wanted.len();
            wanted.extend(first_next..rows);
            let logits = model.step(&input, &wanted)?;
            steps += 1;
            calls += 1;
            if logits.len() != wanted.len() * v {
                return Err(WorkerError::Inference(format!(
                    "decoder gave {} logits for {} rows of a {v}-token vocabulary",
                    logits.len(),
                    wanted.len()
                )));
            }
            if let Some(ns) = no_speech {
                // The first row wanted: start-of-transcript's, whether or not the prompt ends
                // there.
                no_speech_prob = softmax_at(&logits[..v], ns);
            }
            if let Some((languages, task)) = detect.take() {
                let last = &logits[(wanted.len() - 1) * v..];
                let lang = *languages
                    .iter()
                    .max_by(|&&a, &&b| last[a].total_cmp(&last[b]).then(b.cmp(&a)))
                    .ok_or_else(|| WorkerError::Inference("no language to detect".into()))?;
                detected_language = Some(lang as u32);
                // A fresh context with the whole prompt in one call: the same computation as
                // with the language given (continuing the cache rounds differently and can
                // flip a near-tie).
                model.restart()?;
                fed = 0;
                steps = 0;
                input = self.previous_part(req.previous);
                input.extend([self.sot, lang as i64, task]);
                input.extend(self.mode_part(req.mode));
                if !first_draft.is_empty() && input.len() + first_draft.len() < self.n_ctx {
                    input.extend(first_draft.iter().map(|&t| t as i64));
                    pending_draft = Some((0, first_draft));
                }
                continue;
            }
            // Row j predicts the token after the prompt and the draft's first j tokens: walk
            // the draft while decoding agrees with it.
            let mut j = 0;
            let next = loop {
                let at = ns_row + j;
                let mut last = logits[at * v..(at + 1) * v].to_vec();
                let next = self.choose(&mut last, &tokens[prefix.len()..], timestamps);
                logprob_sum += log_softmax_at(&last, next) as f64;
                decoded += 1;
                if next == self.eot {
                    ended = true;
                    break 'decoding;
                }
                tokens.push(next as u32);
                if drafted.get(j) != Some(&(next as u32)) {
                    break next;
                }
                j += 1;
            };
            // The draft's tokens after the first one decoding disagreed with leave the context.
            let unused = drafted.len().saturating_sub(j);
            if unused > 0 {
                fed -= unused;
                model.truncate(fed)?;
            }
            // The hypothesis (prefix included) stays within Whisper's per-window cap, and every
            // token fed has a position in the decoder's context.
            if tokens.len() >= self.max_tokens || fed + 1 > self.n_ctx {
                break;
            }
            input = vec![next as i64];
            // Where the draft goes on from what was decoded (it missed or added a word, a
            // comma): the rest rides along with the next token.
            let left = !drafted.is_empty();
            cursor = if left { draft_start + j } else { cursor + 1 };
            if let Some(at) = resume_at(draft, &tokens[prefix.len()..], cursor, left) {
                let room =
                    (self.max_tokens - tokens.len() - 1).min(self.n_ctx.saturating_sub(fed + 2));
                let rest = &draft[at..draft.len().min(at + room)];
                if !rest.is_empty() {
                    input.extend(rest.iter().map(|&t| t as i64));
                    pending_draft = Some((at, rest));
                }
            }
        }
        Ok(Decoded {
            tokens,
            prefix_len: prefix.len(),
            detected_language,
            no_speech_prob,
            avg_logprob: (logprob_sum / decoded.max(1) as f64) as f32,
            steps: calls,
            ended,
        })
    }

    /// The next token from one row of logits: suppression (and at the beginning, the
    /// beginning's), the timestamp rules in timestamp mode, then argmax.
    fn choose(&self, last: &mut [f32], sampled: &[u32], timestamps: bool) -> usize {
        for (i, l) in last.iter_mut().enumerate() {
            if self.suppress[i] && !(timestamps && self.rules.is_timestamp(i)) {
                *l = f32::NEG_INFINITY;
            }
        }
        if sampled.is_empty() {
            for &i in &self.suppress_begin {
                last[i] = f32::NEG_INFINITY;
            }
        }
        if timestamps {
            self.rules.apply(last, sampled);
        }
        argmax(last)
    }

    /// Splits a timestamp-mode hypothesis into timed segments.
    pub fn segments(&self, decoded: &Decoded) -> Timestamped {
        self.rules.split(&decoded.tokens)
    }
}

/// How far before and after the draft position reached a decoded token is looked for in it.
const RESUME_BEHIND: usize = 2;
const RESUME_AHEAD: usize = 8;

/// Where `draft` goes on after the tokens decoded so far (`sampled`), with `cursor` the draft
/// position of the last one: just after the last two found together near `cursor`, else after
/// the last one alone (the draft missed a token or had one too many), else, where decoding
/// just left the draft (`left`), after `cursor` (it put another token in that one's place);
/// `None` past the draft's end.
fn resume_at(draft: &[u32], sampled: &[u32], cursor: usize, left: bool) -> Option<usize> {
    let (&last, before) = sampled.split_last()?;
    let near = cursor.saturating_sub(RESUME_BEHIND)..draft.len().min(cursor + RESUME_AHEAD);
    let found = |with_previous: bool| {
        near.clone().find(|&p| {
            draft[p] == last && (!with_previous || (p > 0 && before.last() == Some(&draft[p - 1])))
        })
    };
    let at = match found(true).or_else(|| found(false)) {
        Some(p) => p + 1,
        None if left => cursor + 1,
        None => return None,
    };
    (at < draft.len()).then_some(at)
}

/// Index of the largest value; the first on ties, as numpy's argmax.
pub(crate) fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// `ln Σ exp(x)` over `x`, stable for large values; `-inf` for an empty or all `-inf` slice.
pub(crate) fn log_sum_exp(x: &[f32]) -> f64 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
    max as f64 + sum.ln()
}

fn log_softmax_at(x: &[f32], i: usize) -> f32 {
    (x[i] as f64 - log_sum_exp(x)) as f32
}

fn softmax_at(x: &[f32], i: usize) -> f32 {
    log_softmax_at(x, i).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake model that prefers a scripted token at each step.
    struct Scripted {
        vocab: usize,
        script: Vec<usize>,
        calls: Vec<Vec<i64>>,
    }

    /// The `rows` of full `[n][vocab]` logits, as a [`StepModel`] returns them.
    fn pick(all: Vec<f32>, rows: &[usize], vocab: usize) -> Vec<f32> {
        rows.iter()
            .flat_map(|&r| all[r * vocab..(r + 1) * vocab].iter().copied())
            .collect()
    }

    impl StepModel for Scripted {
        fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError> {
            let step = self.calls.len();
            self.calls.push(tokens.to_vec());
            let mut logits = vec![0f32; tokens.len() * self.vocab];
            let row = (tokens.len() - 1) * self.vocab;
            // Preferences: scripted token 10, token 3 (always suppressed) 20, and on the first
            // two steps token 220 (suppressed only at the beginning) 15.
            logits[row + self.script[step]] = 10.0;
            logits[row + 3] = 20.0;
            if step < 2 {
                logits[row + 220] = 15.0;
            }
            Ok(pick(logits, rows, self.vocab))
        }

        fn restart(&mut self) -> Result<(), WorkerError> {
            Ok(())
        }

        fn truncate(&mut self, _len: usize) -> Result<(), WorkerError> {
            Ok(())
        }
    }

    const VOCAB: usize = 300;
    const EOT: usize = 250;
    const SOT: i64 = 251;
    const NOTS: i64 = 252;
    const PREV: i64 = 253;

    fn policy() -> GreedyDecoder {
        let mut suppress = vec![false; VOCAB];
        suppress[3] = true;
        for s in suppress.iter_mut().skip(EOT + 1) {
            *s = true;
        }
        GreedyDecoder {
            sot: SOT,
            sot_prev: Some(PREV),
            no_timestamps: NOTS,
            language: Language::Fixed(Vec::new()),
            eot: EOT,
            no_speech: Some(EOT + 4),
            suppress,
            suppress_begin: vec![220, EOT],
            rules: TimestampRules::new(EOT, NOTS as usize + 1, VOCAB),
            max_tokens: 5,
            n_ctx: 448,
        }
    }

    fn scripted(script: Vec<usize>) -> Scripted {
        Scripted {
            vocab: VOCAB,
            script,
            calls: vec![],
        }
    }

    #[test]
    fn suppression_begin_suppression_and_end_of_text() {
        let mut m = scripted(vec![7, 8, EOT]);
        let d = policy().decode(&mut m, &DecodeRequest::PLAIN).unwrap();
        // Step 0: 3 suppressed always, 220 suppressed at the beginning -> 7.
        // Step 1: 220 (15) beats the scripted 8 (10) once begin-suppression is over.
        assert_eq!(d.tokens, [7, 220]);
        assert_eq!(d.steps, 3, "stopped at end-of-text");
        assert!(d.ended);
        assert_eq!(m.calls[0], vec![SOT, NOTS], "the prompt comes first");
        assert_eq!(m.calls[1], vec![7], "then one token at a time");
    }

    #[test]
    fn stops_at_the_token_limit() {
        let mut m = scripted(vec![7; 10]);
        let d = policy().decode(&mut m, &DecodeRequest::PLAIN).unwrap();
        assert_eq!(d.tokens.len(), 5);
        assert_eq!(d.steps, 5);
        assert!(!d.ended);
    }

    #[test]
    fn previous_text_prefixes_the_prompt_and_no_speech_is_read_at_start_of_transcript() {
        struct NoSpeechAtSot(Vec<Vec<i64>>);
        impl StepModel for NoSpeechAtSot {
            fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError> {
                self.0.push(tokens.to_vec());
                let mut l = vec![0f32; tokens.len() * VOCAB];
                // The row of start-of-transcript says "no speech" loudly; others do not.
                if let Some(row) = tokens.iter().position(|&t| t == SOT) {
                    l[row * VOCAB + EOT + 4] = 30.0;
                }
                let last = (tokens.len() - 1) * VOCAB;
                l[last + EOT] = 40.0;
                Ok(pick(l, rows, VOCAB))
            }

            fn restart(&mut self) -> Result<(), WorkerError> {
                Ok(())
            }

            fn truncate(&mut self, _len: usize) -> Result<(), WorkerError> {
                Ok(())
            }
        }
        let previous: Vec<u32> = (0..300).map(|i| (i % 200) as u32 + 10).collect();
        let mut m = NoSpeechAtSot(vec![]);
        let req = DecodeRequest {
            previous: &previous,
            mode: Mode::Text {
                prefix: &[],
                draft: &[],
            },
            speech_heard: false,
            speech_s: 0.0,
        };
        let d = policy().decode(&mut m, &req).unwrap();
        let first = &m.0[0];
        assert_eq!(first[0], PREV);
        assert_eq!(
            first.len(),
            1 + MAX_PREVIOUS + 2,
            "the last 223 previous tokens"
        );
        assert_eq!(first[1], previous[300 - MAX_PREVIOUS] as i64);
        assert_eq!(&first[first.len() - 2..], &[SOT, NOTS]);
        assert!(d.no_speech_prob > 0.99, "{}", d.no_speech_prob);
    }

    #[test]
    fn a_prefix_is_fed_in_the_first_call_and_starts_the_hypothesis() {
        let mut m = scripted(vec![9, 8, EOT]);
        let req = DecodeRequest {
            previous: &[],
            mode: Mode::Text {
                prefix: &[40, 41],
                draft: &[],
            },
            speech_heard: false,
            speech_s: 0.0,
        };
        let d = policy().decode(&mut m, &req).unwrap();
        assert_eq!(m.calls[0], vec![SOT, NOTS, 40, 41]);
        // Begin-suppression applies to the first decoded token (after the prefix).
        assert_eq!(d.tokens, [40, 41, 9, 220]);
        assert_eq!(d.prefix_len, 2);
        // The cap counts the prefix: 5 tokens in all.
        let mut m = scripted(vec![7; 10]);
        let d = policy().decode(&mut m, &req).unwrap();
        assert_eq!(d.tokens.len(), 5);
    }

    #[test]
    fn the_decoders_context_is_never_exceeded() {
        let mut p = policy();
        p.max_tokens = 1000;
        p.n_ctx = 10;
        let mut m = scripted(vec![7; 50]);
        let d = p.decode(&mut m, &DecodeRequest::PLAIN).unwrap();
        let fed: usize = m.calls.iter().map(Vec::len).sum();
        assert!(fed <= 10, "fed {fed} tokens into a 10-token context");
        assert!(!d.ended);
    }

    #[test]
    fn a_detected_language_starts_the_decode_again_as_if_it_were_given() {
        // Step 0 (start-of-transcript alone): language 262 beats 261; the script's 5 is not a
        // language and must not be picked. Then a fresh context with the whole prompt.
        struct Lang(Vec<Vec<i64>>);
        impl StepModel for Lang {
            fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError> {
                let step = self.0.iter().filter(|c| c[0] != -1).count();
                self.0.push(tokens.to_vec());
                let mut l = vec![0f32; tokens.len() * VOCAB];
                let row = (tokens.len() - 1) * VOCAB;
                match step {
                    0 => {
                        l[row + 5] = 50.0;
                        l[row + 261] = 5.0;
                        l[row + 262] = 9.0;
                    }
                    1 => l[row + 42] = 9.0,
                    _ => l[row + EOT] = 9.0,
                }
                Ok(pick(l, rows, VOCAB))
            }

            fn restart(&mut self) -> Result<(), WorkerError> {
                self.0.push(vec![-1]);
                Ok(())
            }

            fn truncate(&mut self, _len: usize) -> Result<(), WorkerError> {
                Ok(())
            }
        }
        let mut p = policy();
        p.language = Language::Detect {
            languages: vec![261, 262],
            task: 270,
        };
        let mut m = Lang(vec![]);
        let d = p.decode(&mut m, &DecodeRequest::PLAIN).unwrap();
        assert_eq!(d.detected_language, Some(262));
        assert_eq!(m.0[0], vec![SOT]);
        assert_eq!(m.0[1], vec![-1], "a fresh context");
        assert_eq!(m.0[2], vec![SOT, 262, 270, NOTS], "the whole prompt again");
        assert_eq!(d.tokens, vec![42]);
    }

    #[test]
    fn timestamp_mode_decodes_segments_in_pairs() {
        // The model wants: <|0.00|> 7 8 <|0.40|> <|0.40|> 9 <|0.80|> eot, with a text token a
        // close second at every step (timestamps must come first).
        let ts = NOTS as usize + 1;
        let script = [ts, 7, 8, ts + 20, ts + 20, 9, ts + 40, EOT];
        struct Ts(Vec<usize>, usize, Vec<Vec<i64>>);
        impl StepModel for Ts {
            fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError> {
                self.2.push(tokens.to_vec());
                let mut l = vec![0f32; tokens.len() * VOCAB];
                let row = (tokens.len() - 1) * VOCAB;
                l[row + self.0[self.1]] = 10.0;
                l[row + 5] = 9.0; // a text token that is always a close second
                self.1 += 1;
                Ok(pick(l, rows, VOCAB))
            }

            fn restart(&mut self) -> Result<(), WorkerError> {
                Ok(())
            }

            fn truncate(&mut self, _len: usize) -> Result<(), WorkerError> {
                Ok(())
            }
        }
        let mut m = Ts(script.to_vec(), 0, vec![]);
        let req = DecodeRequest {
            previous: &[],
            mode: Mode::Timestamps,
            speech_heard: false,
            speech_s: 0.0,
        };
        let mut p = policy();
        p.max_tokens = MAX_TOKENS;
        let d = p.decode(&mut m, &req).unwrap();
        assert_eq!(m.2[0], vec![SOT], "no <|notimestamps|> in timestamp mode");
        let t = |i: usize| (ts + i) as u32;
        assert_eq!(d.tokens, vec![t(0), 7, 8, t(20), t(20), 9, t(40)]);
        let seg = p.segments(&d);
        assert_eq!(seg.segments.len(), 2);
        assert_eq!((seg.segments[0].start, seg.segments[0].end), (0, 20));
        assert_eq!(seg.segments[0].tokens, vec![7, 8]);
        assert_eq!((seg.segments[1].start, seg.segments[1].end), (20, 40));
        assert!(seg.segments.iter().all(|s| s.complete));
        assert_eq!(d.text_tokens(p.timestamp_begin()), vec![7, 8, 9]);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert!((softmax_at(&[0.0, 0.0], 1) - 0.5).abs() < 1e-6);
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY]), f64::NEG_INFINITY);
    }

    /// A fake model that predicts by position: after `n` tokens past the prompt, `script[n]`
    /// (end-of-text past the script). It keeps its context length as a cache would, so a
    /// truncation shows, and prefers the always-suppressed token 3 where `tempt` says.
    struct Positional {
        prompt: usize,
        script: Vec<usize>,
        context: usize,
        calls: Vec<Vec<i64>>,
        truncations: Vec<usize>,
    }

    impl Positional {
        fn new(script: &[usize]) -> Positional {
            Positional {
                prompt: 2, // start-of-transcript, no-timestamps
                script: script.to_vec(),
                context: 0,
                calls: Vec::new(),
                truncations: Vec::new(),
            }
        }
    }

    impl StepModel for Positional {
        fn step(&mut self, tokens: &[i64], rows: &[usize]) -> Result<Vec<f32>, WorkerError> {
            self.calls.push(tokens.to_vec());
            let before = self.context;
            self.context += tokens.len();
            let mut logits = vec![0f32; tokens.len() * VOCAB];
            for r in 0..tokens.len() {
                let past_prompt = (before + r + 1).saturating_sub(self.prompt);
                let next = self.script.get(past_prompt).copied().unwrap_or(EOT);
                logits[r * VOCAB + next] = 10.0;
                logits[r * VOCAB + 3] = 20.0;
            }
            Ok(pick(logits, rows, VOCAB))
        }

        fn restart(&mut self) -> Result<(), WorkerError> {
            self.context = 0;
            Ok(())
        }

        fn truncate(&mut self, len: usize) -> Result<(), WorkerError> {
            assert!(len <= self.context, "truncate to {len} of {}", self.context);
            self.context = len;
            self.truncations.push(len);
            Ok(())
        }
    }

    fn with_draft(draft: &[u32]) -> DecodeRequest<'_> {
        DecodeRequest {
            previous: &[],
            mode: Mode::Text { prefix: &[], draft },
            speech_heard: false,
            speech_s: 0.0,
        }
    }

    /// The test policy with Whisper's own token cap.
    fn roomy() -> GreedyDecoder {
        GreedyDecoder {
            max_tokens: MAX_TOKENS,
            ..policy()
        }
    }

    #[test]
    fn a_right_draft_is_checked_in_one_call() {
        let script = [40, 41, 42, 43, 44];
        let mut plain = Positional::new(&script);
        let expected = roomy().decode(&mut plain, &DecodeRequest::PLAIN).unwrap();
        assert_eq!(expected.tokens, [40, 41, 42, 43, 44]);
        assert_eq!(plain.calls.len(), 6, "one call per token and end-of-text");

        let mut m = Positional::new(&script);
        let d = roomy()
            .decode(&mut m, &with_draft(&[40, 41, 42, 43, 44]))
            .unwrap();
        assert_eq!(
            d,
            Decoded {
                steps: 1,
                ..expected.clone()
            }
        );
        assert_eq!(m.calls, [vec![SOT, NOTS, 40, 41, 42, 43, 44]]);
        assert!(m.truncations.is_empty());
    }

    #[test]
    fn decoding_leaves_a_draft_where_it_disagrees_and_drops_the_rest_from_the_context() {
        let script = [40, 41, 42, 43, 44];
        let expected = roomy()
            .decode(&mut Positional::new(&script), &DecodeRequest::PLAIN)
            .unwrap();
        // Wrong from its third token on (one of them the suppressed 3).
        let mut m = Positional::new(&script);
        let d = roomy()
            .decode(&mut m, &with_draft(&[40, 41, 99, 3, 44, 45]))
            .unwrap();
        assert_eq!(d.tokens, expected.tokens);
        assert!(d.ended);
        assert!((d.avg_logprob - expected.avg_logprob).abs() < 1e-6);
        // The context keeps the prompt and the two right tokens; 42 goes in next, with the
        // draft after the token it replaced (wrong again: the context keeps 42), then 43 with
        // the rest, right up to its last token.
        assert_eq!(m.truncations, [4, 5]);
        assert_eq!(&m.calls[1..], [vec![42, 3, 44, 45], vec![43, 44, 45]]);
        // A draft that runs past the end: end-of-text ends it in the first call.
        let mut m = Positional::new(&script);
        let d = roomy()
            .decode(&mut m, &with_draft(&[40, 41, 42, 43, 44, 45, 46]))
            .unwrap();
        assert_eq!(d.tokens, expected.tokens);
        assert_eq!(m.calls.len(), 1);
        // A draft wrong from the start rode in the prompt's call: as many calls as without.
        let mut m = Positional::new(&script);
        let d = roomy().decode(&mut m, &with_draft(&[77, 78])).unwrap();
        assert_eq!(d.tokens, expected.tokens);
        assert_eq!(m.truncations, [2, 3]);
        assert_eq!(m.calls.len(), 6);
    }

    #[test]
    fn a_draft_that_missed_or_added_a_token_is_picked_up_again() {
        let script: Vec<usize> = (40..52).collect();
        let expected = roomy()
            .decode(&mut Positional::new(&script), &DecodeRequest::PLAIN)
            .unwrap();
        assert_eq!(expected.steps, 13);
        // 43 missing: 40-42 right, 43 decoded alone, the rest right after it.
        let missing: Vec<u32> = [40, 41, 42, 44, 45, 46, 47, 48, 49, 50, 51].into();
        // 99 one too many: 40-43 right, 44 decoded, found in the draft, the rest right.
        let extra: Vec<u32> = [40, 41, 42, 43, 99, 44, 45, 46, 47, 48, 49, 50, 51].into();
        // 99 in 43's place: the rest after it.
        let replaced: Vec<u32> = [40, 41, 42, 99, 44, 45, 46, 47, 48, 49, 50, 51].into();
        for draft in [&missing, &extra, &replaced] {
            let mut m = Positional::new(&script);
            let d = roomy().decode(&mut m, &with_draft(draft)).unwrap();
            assert_eq!(d.tokens, expected.tokens, "{draft:?}");
            assert!(d.ended);
            assert!(m.calls.len() <= 3, "{draft:?}: {:?}", m.calls);
        }
    }

    #[test]
    fn resuming_looks_near_where_decoding_left_the_draft() {
        let draft = [10, 11, 12, 13, 14, 12, 15];
        // The last two decoded tokens together win over the last alone.
        assert_eq!(resume_at(&draft, &[14, 12], 4, false), Some(6));
        assert_eq!(resume_at(&draft, &[11, 12], 2, false), Some(3));
        // The last alone, the first time near the cursor.
        assert_eq!(resume_at(&draft, &[99, 13], 2, false), Some(4));
        // Nowhere: after the cursor where decoding just left the draft, else nothing; at the
        // end, nothing.
        assert_eq!(resume_at(&draft, &[99], 2, true), Some(3));
        assert_eq!(resume_at(&draft, &[99], 2, false), None);
        assert_eq!(resume_at(&draft, &[99], 6, true), None);
        // Far ahead of the cursor is not looked at.
        let long = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(resume_at(&long, &[12], 0, false), None);
        assert_eq!(resume_at(&long, &[12], 0, true), Some(1));
    }

    #[test]
    fn a_draft_stays_within_the_token_cap() {
        let script: Vec<usize> = (0..300).map(|i| 10 + i % 200).collect();
        let draft: Vec<u32> = script.iter().map(|&t| t as u32).collect();
        for (policy, cap) in [(roomy(), MAX_TOKENS), (policy(), 5)] {
            let mut m = Positional::new(&script);
            let d = policy.decode(&mut m, &with_draft(&draft)).unwrap();
            let expected = policy
                .decode(&mut Positional::new(&script), &DecodeRequest::PLAIN)
                .unwrap();
            assert_eq!(d.tokens, expected.tokens);
            assert_eq!(d.tokens.len(), cap);
            assert!(m.calls[0].len() < 2 + cap, "{} fed", m.calls[0].len());
            assert_eq!(m.calls.len(), 1);
        }
    }
}
