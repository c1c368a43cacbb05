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
    },
    /// Timestamp tokens around segments (Whisper's timestamp rules).
    Timestamps,
}

/// What one decode is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl DecodeRequest<'static> {
    /// A plain pass: no previous text, no prefix, no timestamps (the reference's computation).
    pub const PLAIN: DecodeRequest<'static> = DecodeRequest {
        previous: &[],
        mode: Mode::Text { prefix: &[] },
        speech_heard: false,
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
            Mode::Text { prefix } => std::iter::once(self.no_timestamps)
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
        let (prefix, timestamps) = match req.mode {
            Mode::Text { prefix } => (prefix, false),
            Mode::Timestamps => (&[][..], true),
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
        let mut tokens: Vec<u32> = prefix.to_vec();
        let mut detected_language = None;
        let (mut no_speech_prob, mut logprob_sum, mut steps, mut calls) = (0f32, 0f64, 0u32, 0u32);
        let mut decoded = 0usize;
        let mut fed = 0usize;
        let mut ended = false;
        loop {
            fed += input.len();
            let rows = input.len();
            // The no-speech probability is read at start-of-transcript, in a context's first
            // call (not the language-detection one); the next token comes from the last row.
            let no_speech = self.no_speech.filter(|_| steps == 0 && detect.is_none());
            let wanted: Vec<usize> = match no_speech {
                Some(_) if sot_row + 1 < rows => vec![sot_row, rows - 1],
                _ => vec![rows - 1],
            };
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
                no_speech_prob = softmax_at(&logits[..v], ns);
            }
            let mut last = logits[(wanted.len() - 1) * v..].to_vec();
            if let Some((languages, task)) = detect.take() {
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
                continue;
            }
            let sampled = &tokens[prefix.len()..];
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
                self.rules.apply(&mut last, sampled);
            }
            let next = argmax(&last);
            logprob_sum += log_softmax_at(&last, next) as f64;
            decoded += 1;
            if next == self.eot {
                ended = true;
                break;
            }
            tokens.push(next as u32);
            // The hypothesis (prefix included) stays within Whisper's per-window cap, and every
            // token fed has a position in the decoder's context.
            if tokens.len() >= self.max_tokens || fed + 1 > self.n_ctx {
                break;
            }
            input = vec![next as i64];
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

    /// Splits a timestamp-mode hypothesis into timed segments.
    pub fn segments(&self, decoded: &Decoded) -> Timestamped {
        self.rules.split(&decoded.tokens)
    }
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
        }
        let previous: Vec<u32> = (0..300).map(|i| (i % 200) as u32 + 10).collect();
        let mut m = NoSpeechAtSot(vec![]);
        let req = DecodeRequest {
            previous: &previous,
            mode: Mode::Text { prefix: &[] },
            speech_heard: false,
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
            mode: Mode::Text { prefix: &[40, 41] },
            speech_heard: false,
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
        }
        let mut m = Ts(script.to_vec(), 0, vec![]);
        let req = DecodeRequest {
            previous: &[],
            mode: Mode::Timestamps,
            speech_heard: false,
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
}
