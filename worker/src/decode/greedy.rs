//! Greedy decoding with suppression, exactly as the reference transcriber does: prompt
//! (start-of-transcript, language and task for multilingual models, no-timestamps), tokens in
//! `suppress_ids` and everything above end-of-text never emitted, `suppress_ids_begin` not
//! emitted first, argmax until end-of-text or the token limit.

use crate::error::WorkerError;
use crate::model::files::ModelFiles;
use crate::tokenizer::Tokenizer;

/// What the policy needs from a model: logits for new tokens, the cache kept inside.
pub trait StepModel {
    /// Logits (`[tokens.len()][vocab]`, row-major) for `tokens`, appended to the context.
    fn step(&mut self, tokens: &[i64]) -> Result<Vec<f32>, WorkerError>;
}

/// The outcome of one greedy decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Tokens emitted, without prompt or end-of-text.
    pub tokens: Vec<u32>,
    /// The language token detected (`--language auto` on a multilingual model).
    pub detected_language: Option<u32>,
    /// Probability of the no-speech token at the start-of-transcript position.
    pub no_speech_prob: f32,
    /// Mean log-probability of the emitted tokens (and end-of-text).
    pub avg_logprob: f32,
    /// Decoder calls made.
    pub steps: u32,
}

/// How the prompt is formed.
#[derive(Debug, Clone)]
enum Prompt {
    /// Known in advance: start-of-transcript[, language, transcribe], no-timestamps.
    Fixed(Vec<i64>),
    /// Start-of-transcript alone first; the most likely language token among `languages`
    /// then continues the prompt with `rest` (transcribe, no-timestamps), on the same cache.
    Detect {
        sot: i64,
        languages: Vec<usize>,
        rest: Vec<i64>,
    },
}

/// Greedy decoding policy for one model.
#[derive(Debug, Clone)]
pub struct GreedyDecoder {
    prompt: Prompt,
    eot: usize,
    no_speech: Option<usize>,
    suppress: Vec<bool>,
    suppress_begin: Vec<usize>,
    max_tokens: usize,
}

/// Whisper's default cap on tokens per 30 s window (half the decoder context).
pub const MAX_TOKENS: usize = 224;

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
        let notimestamps = special("<|notimestamps|>")? as i64;
        let prompt = match (files.info.multilingual, language.unwrap_or("en")) {
            (false, "en" | "auto") => Prompt::Fixed(vec![sot, notimestamps]),
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
                Prompt::Detect {
                    sot,
                    languages,
                    rest: vec![special("<|transcribe|>")? as i64, notimestamps],
                }
            }
            (true, lang) => {
                let lang_token = special(&format!("<|{lang}|>")).map_err(|_| {
                    WorkerError::Usage(format!("language '{lang}' is not one this model knows"))
                })?;
                Prompt::Fixed(vec![
                    sot,
                    lang_token as i64,
                    special("<|transcribe|>")? as i64,
                    notimestamps,
                ])
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
            prompt,
            eot,
            no_speech,
            suppress,
            suppress_begin,
            max_tokens: MAX_TOKENS,
        })
    }

    /// Decodes greedily until end-of-text or the token limit.
    pub fn decode(&self, model: &mut dyn StepModel) -> Result<Decoded, WorkerError> {
        let v = self.suppress.len();
        let mut tokens = Vec::new();
        let (mut input, mut detecting) = match &self.prompt {
            Prompt::Fixed(p) => (p.clone(), false),
            Prompt::Detect { sot, .. } => (vec![*sot], true),
        };
        let mut detected_language = None;
        let (mut no_speech_prob, mut logprob_sum, mut steps) = (0f32, 0f64, 0u32);
        let mut generated = 0;
        let mut step = 0;
        while generated < self.max_tokens {
            let logits = model.step(&input)?;
            steps += 1;
            let rows = input.len();
            if logits.len() != rows * v {
                return Err(WorkerError::Inference(format!(
                    "decoder gave {} logits for {rows} tokens of a {v}-token vocabulary",
                    logits.len()
                )));
            }
            if step == 0
                && let Some(ns) = self.no_speech
            {
                // The start-of-transcript position is the prompt's first token.
                no_speech_prob = softmax_at(&logits[..v], ns);
            }
            step += 1;
            let mut last = logits[(rows - 1) * v..].to_vec();
            if detecting {
                let Prompt::Detect {
                    languages, rest, ..
                } = &self.prompt
                else {
                    unreachable!("detecting implies a detect prompt")
                };
                let lang = *languages
                    .iter()
                    .max_by(|&&a, &&b| last[a].total_cmp(&last[b]).then(b.cmp(&a)))
                    .expect("languages is not empty");
                detected_language = Some(lang as u32);
                input = std::iter::once(lang as i64)
                    .chain(rest.iter().copied())
                    .collect();
                detecting = false;
                continue;
            }
            let first = generated == 0;
            generated += 1;
            for (l, &s) in last.iter_mut().zip(&self.suppress) {
                if s {
                    *l = f32::NEG_INFINITY;
                }
            }
            if first {
                for &i in &self.suppress_begin {
                    last[i] = f32::NEG_INFINITY;
                }
            }
            let next = argmax(&last);
            logprob_sum += log_softmax_at(&last, next) as f64;
            if next == self.eot {
                break;
            }
            tokens.push(next as u32);
            input = vec![next as i64];
        }
        let n = (tokens.len() + 1) as f64;
        Ok(Decoded {
            tokens,
            detected_language,
            no_speech_prob,
            avg_logprob: (logprob_sum / n) as f32,
            steps,
        })
    }
}

/// Index of the largest value; the first on ties, as numpy's argmax.
fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

fn log_softmax_at(x: &[f32], i: usize) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = x.iter().map(|&v| ((v - max) as f64).exp()).sum();
    ((x[i] - max) as f64 - sum.ln()) as f32
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

    impl StepModel for Scripted {
        fn step(&mut self, tokens: &[i64]) -> Result<Vec<f32>, WorkerError> {
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
            Ok(logits)
        }
    }

    fn policy(vocab: usize, eot: usize) -> GreedyDecoder {
        let mut suppress = vec![false; vocab];
        suppress[3] = true;
        for s in suppress.iter_mut().skip(eot + 1) {
            *s = true;
        }
        GreedyDecoder {
            prompt: Prompt::Fixed(vec![eot as i64 + 1, eot as i64 + 2]),
            eot,
            no_speech: Some(eot + 3),
            suppress,
            suppress_begin: vec![220, eot],
            max_tokens: 5,
        }
    }

    #[test]
    fn suppression_begin_suppression_and_end_of_text() {
        let (vocab, eot) = (300, 250);
        let mut m = Scripted {
            vocab,
            script: vec![7, 8, eot],
            calls: vec![],
        };
        let d = policy(vocab, eot).decode(&mut m).unwrap();
        // Step 0: 3 suppressed always, 220 suppressed at the beginning -> 7.
        // Step 1: 220 (15) beats the scripted 8 (10) once begin-suppression is over.
        assert_eq!(d.tokens, [7, 220]);
        assert_eq!(d.steps, 3, "stopped at end-of-text");
        assert_eq!(m.calls[0], vec![251, 252], "the prompt comes first");
        assert_eq!(m.calls[1], vec![7], "then one token at a time");
    }

    #[test]
    fn stops_at_the_token_limit() {
        let (vocab, eot) = (300, 250);
        let mut m = Scripted {
            vocab,
            script: vec![7; 10],
            calls: vec![],
        };
        let d = policy(vocab, eot).decode(&mut m).unwrap();
        assert_eq!(d.tokens.len(), 5);
        assert_eq!(d.steps, 5);
    }

    #[test]
    fn language_detection_continues_the_prompt_on_the_same_cache() {
        let (vocab, eot) = (300, 250);
        // Step 0 (start-of-transcript alone): language 262 beats 261; the script's 5 is not a
        // language and must not be picked. Then the prompt goes on with it.
        struct Lang(Vec<Vec<i64>>);
        impl StepModel for Lang {
            fn step(&mut self, tokens: &[i64]) -> Result<Vec<f32>, WorkerError> {
                let step = self.0.len();
                self.0.push(tokens.to_vec());
                let mut l = vec![0f32; tokens.len() * 300];
                let row = (tokens.len() - 1) * 300;
                match step {
                    0 => {
                        l[row + 5] = 50.0;
                        l[row + 261] = 5.0;
                        l[row + 262] = 9.0;
                    }
                    1 => l[row + 42] = 9.0,
                    _ => l[row + 250] = 9.0,
                }
                Ok(l)
            }
        }
        let mut p = policy(vocab, eot);
        p.prompt = Prompt::Detect {
            sot: 251,
            languages: vec![261, 262],
            rest: vec![270, 271],
        };
        let mut m = Lang(vec![]);
        let d = p.decode(&mut m).unwrap();
        assert_eq!(d.detected_language, Some(262));
        assert_eq!(m.0[0], vec![251]);
        assert_eq!(m.0[1], vec![262, 270, 271]);
        assert_eq!(d.tokens, vec![42]);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert!((softmax_at(&[0.0, 0.0], 1) - 0.5).abs() < 1e-6);
    }
}
