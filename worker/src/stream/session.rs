//! One dictation followed frame by frame, with full-context windows.
//!
//! - The open window runs from the last hard commit to now (at most the model's 30 s), and
//!   every pass decodes all of it, with the committed text as Whisper's previous-text prompt.
//! - Provisional passes run when there is new speech, at most every `provisional_interval`,
//!   with the stable tokens (LocalAgreement-2) fed as a forced prefix.
//! - When the VAD has heard `pause_frames` of non-speech after speech, a speculative final
//!   runs at once over the window up to that point. If the session ends with no speech after
//!   it, it is the final: no pass after `stop`.
//! - A hard commit happens only when the window would outgrow 30 s: one pass with timestamps
//!   finds the segments, the window is cut at the best of them ([`super::cut`]), their text is
//!   committed and prompts the next window.
//!
//! Whether a commit happens, where, and what the final pass covers depend on the audio and its
//! VAD flags alone, never on timing, so a file transcribed offline through the same stream
//! ([`crate::offline`]) gives the live final token for token. A pass's audio is anchored on
//! the samples themselves ([`Anchor`]), not on the 20 ms frames, so this holds wherever the
//! recording falls on the session's frame grid.

use super::agreement::stable_len;
use super::cut::{self, Cut};
use super::window::{Anchor, PassAudio, Window, anchor_span, anchored};
use crate::decode::greedy::{DecodeRequest, Mode};
use crate::decode::timestamps::TimedSegment;
use crate::error::WorkerError;
use crate::transcriber::{PassTimings, Transcriber, Transcript};
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::Timings;
use v2m_shm_proto::ring::{FRAME_SAMPLES, Frame, FrameFlags};

/// What the stream needs of a model: a pass, and how its tokens read.
pub trait PassModel {
    /// One pass over up to 30 s of audio.
    fn pass(&mut self, audio: &[f32], req: &DecodeRequest<'_>) -> Result<Transcript, WorkerError>;
    /// The text of `tokens`.
    fn text(&self, tokens: &[u32]) -> String;
    /// Whether `token` begins a word (its text starts with a space).
    fn starts_word(&self, token: u32) -> bool;
    /// The first timestamp token (`<|0.00|>`).
    fn timestamp_begin(&self) -> u32;
}

impl PassModel for Transcriber {
    fn pass(&mut self, audio: &[f32], req: &DecodeRequest<'_>) -> Result<Transcript, WorkerError> {
        Transcriber::pass(self, audio, req)
    }

    fn text(&self, tokens: &[u32]) -> String {
        self.tokenizer().decode(tokens)
    }

    fn starts_word(&self, token: u32) -> bool {
        self.tokenizer().starts_word(token)
    }

    fn timestamp_begin(&self) -> u32 {
        Transcriber::timestamp_begin(self)
    }
}

/// The tokens a committed window leaves in the next window's prompt: with timestamps when it
/// was decoded with them, as faster-whisper does (a prompt of bare text makes the model drop
/// timestamps in the windows after it), else its text tokens.
fn prompt_tokens(
    segments: &[TimedSegment],
    text_tokens: &[u32],
    model: &dyn PassModel,
) -> Vec<u32> {
    if segments.is_empty() {
        return text_tokens.to_vec();
    }
    let ts = |unit: u32| model.timestamp_begin() + unit;
    let mut out = Vec::new();
    for s in segments {
        out.push(ts(s.start));
        out.extend_from_slice(&s.tokens);
        if s.complete {
            out.push(ts(s.end));
        }
    }
    out
}

/// Streaming policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamPolicy {
    /// Shortest time between provisional passes.
    pub provisional_interval: Duration,
    /// Speech frames a window needs before its first provisional pass.
    pub first_provisional_frames: usize,
    /// Non-speech frames after speech that start the speculative final.
    pub pause_frames: usize,
    /// Longest window, in frames (1500: Whisper's 30 s).
    pub max_window_frames: usize,
    /// Frames a window keeps while it holds no speech.
    pub lead_frames: usize,
    /// Final passes with timestamps, so every window's text has timed segments (subtitles).
    pub timestamps: bool,
    /// Passes before the end at all (provisional and speculative): off for a worker whose
    /// final answers nobody's `stop` (nobody sees its provisional text) and for files.
    pub live_passes: bool,
    /// Where a pass's audio begins and ends, to the sample; `None`: the window's frames.
    pub anchor: Option<Anchor>,
}

impl Default for StreamPolicy {
    fn default() -> StreamPolicy {
        StreamPolicy {
            provisional_interval: Duration::from_millis(500),
            first_provisional_frames: 10,
            pause_frames: 8,
            max_window_frames: 1500,
            lead_frames: 50,
            timestamps: false,
            live_passes: true,
            // 100 ms before the first loud sample, 140 ms after the last (inside the 160 ms
            // pause, so the speculative final's audio is whole); loud: an eighth of the
            // window's peak, 18 dB under it, above the noise floor of a dictation and within
            // its words (unless the peak is a knock: over 4 times what its loudest 50 ms reach).
            anchor: Some(Anchor {
                lead: 100 * 16,
                tail: 140 * 16,
                fraction: 0.125,
                level_samples: 50 * 16,
            }),
        }
    }
}

/// Text so far: committed text plus the stable part of the window, and its tentative tail.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Committed text plus the agreed prefix of the open window.
    pub stable: String,
    /// The rest of the latest hypothesis.
    pub tentative: String,
    /// What the pass that produced this cost.
    pub timings: Timings,
}

/// The pass the stream wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// Over the whole window, for provisional text.
    Provisional,
    /// Over the window up to `end` (a pause after speech): the final, unless speech follows.
    Speculative {
        /// One past the last frame it covers.
        end: u64,
    },
}

/// A span of text with where it lies in the session's frames.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedText {
    /// First frame.
    pub start_seq: u64,
    /// One past the last frame.
    pub end_seq: u64,
    /// The text, trimmed.
    pub text: String,
}

/// One window's outcome: committed (hard commit or the session's end).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowText {
    /// The window's frames.
    pub start_seq: u64,
    /// One past its last frame (the cut, or where the final pass ended).
    pub end_seq: u64,
    /// Its text.
    pub text: String,
    /// Timed segments (from timestamp passes), or one span of the whole text.
    pub segments: Vec<TimedText>,
    /// The pass(es) that made it, summed.
    pub timings: PassTimings,
    /// Tokens decoded.
    pub tokens: usize,
    /// No-speech probability and mean log-probability of its last pass.
    pub no_speech_prob: f32,
    /// See above.
    pub avg_logprob: f32,
}

/// The session's final text.
#[derive(Debug, Clone, PartialEq)]
pub struct Final {
    /// The whole dictation.
    pub text: String,
    /// The pass that produced the last window's text (zeros when none was needed).
    pub timings: Timings,
    /// Whether that pass was the speculative final (ready before the session ended).
    pub speculative: bool,
    /// Every window.
    pub windows: Vec<WindowText>,
}

impl Final {
    /// Its text in timed pieces, seconds from frame `first_seq` (the session's first).
    pub fn text_segments(&self, first_seq: u64) -> Vec<v2m_shm_proto::protocol::TextSegment> {
        let seconds = |seq: u64| seq.saturating_sub(first_seq) as f64 * 0.02;
        self.windows
            .iter()
            .flat_map(|w| {
                w.segments
                    .iter()
                    .map(move |g| v2m_shm_proto::protocol::TextSegment {
                        start_s: seconds(g.start_seq),
                        end_s: seconds(g.end_seq),
                        text: g.text.clone(),
                        avg_logprob: w.avg_logprob,
                        no_speech_prob: w.no_speech_prob,
                    })
            })
            .collect()
    }
}

/// `start..end` (session frames) narrowed to the speech in it (flags in `speech` from
/// `window_start` on): from its first to its last run of speech frames, leaving out a short
/// run (under 400 ms) cut off by a pause of 500 ms or more at either edge (the next
/// segment's onset, or the previous one's tail). Unchanged when it holds no speech.
fn narrow_to_speech(speech: &[bool], window_start: u64, start: u64, end: u64) -> (u64, u64) {
    const SHORT_RUN: usize = 20;
    const LONG_PAUSE: usize = 25;
    let index = |seq: u64| (seq.saturating_sub(window_start) as usize).min(speech.len());
    let (from, to) = (index(start), index(end));
    let flags = &speech[from..to.max(from)];
    // Runs of speech as (first, past the last) frame.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &f) in flags.iter().enumerate() {
        match runs.last_mut() {
            Some(r) if f && r.1 == i => r.1 = i + 1,
            _ if f => runs.push((i, i + 1)),
            _ => {}
        }
    }
    let mut kept = &runs[..];
    while kept.len() > 1 && kept[0].1 - kept[0].0 < SHORT_RUN && kept[1].0 - kept[0].1 >= LONG_PAUSE
    {
        kept = &kept[1..];
    }
    while let [.., before, last] = kept
        && last.1 - last.0 < SHORT_RUN
        && last.0 - before.1 >= LONG_PAUSE
    {
        kept = &kept[..kept.len() - 1];
    }
    let base = window_start + from as u64;
    match (kept.first(), kept.last()) {
        (Some(a), Some(z)) => (base + a.0 as u64, base + z.1 as u64),
        _ => (start, end),
    }
}

/// VAD speech frames (2 s) after which a window is speech unless Whisper itself says silence:
/// v2m's stricter no-speech rule is for the noise and hums of short dictations, and would drop
/// whole windows of real speech the model is a little unsure of.
const SPEECH_HEARD_FRAMES: usize = 100;

/// A decode that stopped this far (1 s) before the speech did covered only part of it; and a
/// part shorter than this is not committed on its own (each step forward is at least 1 s).
const MIN_DECODED_FRAMES: usize = 50;

struct Speculative {
    window_start: u64,
    end: u64,
    result: Transcript,
    timings: Timings,
}

/// A session being followed.
pub struct SessionStream {
    policy: StreamPolicy,
    window: Window,
    /// Committed windows, in order.
    windows: Vec<WindowText>,
    /// Text tokens of the committed text since the prompt was last reset (loops reset it).
    prompt: Vec<u32>,
    /// The window's latest hypothesis (text tokens) and how many of them are stable.
    hypothesis: Vec<u32>,
    stable: usize,
    last_provisional: Option<Instant>,
    /// Window end when the last provisional pass ran: speech at or after it is new.
    provisional_end: u64,
    speculative: Option<Speculative>,
    last_sent: (String, String),
    lost: u64,
}

fn timings_of(r: &Transcript, first: u64, end: u64) -> Timings {
    Timings {
        mel_ms: r.timings.mel_ms,
        encoder_ms: r.timings.encoder_ms,
        decoder_ms: r.timings.decoder_ms,
        tokens: r.decoded.tokens.len() as u32,
        audio_first_seq: first,
        audio_end_seq: end,
    }
}

fn join<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn add(a: &mut PassTimings, b: &PassTimings) {
    a.mel_ms += b.mel_ms;
    a.encoder_ms += b.encoder_ms;
    a.decoder_ms += b.decoder_ms;
}

impl SessionStream {
    /// Follows a session whose first frame is `first_seq`.
    pub fn new(policy: StreamPolicy, first_seq: u64) -> SessionStream {
        SessionStream {
            policy,
            window: Window::new(first_seq),
            windows: Vec::new(),
            prompt: Vec::new(),
            hypothesis: Vec::new(),
            stable: 0,
            last_provisional: None,
            provisional_end: first_seq,
            speculative: None,
            last_sent: (String::new(), String::new()),
            lost: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &StreamPolicy {
        &self.policy
    }

    /// Sequence number of the next frame this session expects.
    pub fn next_seq(&self) -> u64 {
        self.window.end_seq()
    }

    /// Frames lost to ring overruns (replaced by silence).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Committed text so far.
    pub fn committed(&self) -> String {
        join(self.windows.iter().map(|w| w.text.as_str()))
    }

    /// The open window's VAD flags and first frame (for the pass watcher).
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Adds a ring frame. Frames the ring lost before it become silence.
    pub fn push(
        &mut self,
        frame: &Frame,
        model: &mut dyn PassModel,
    ) -> Result<Option<Update>, WorkerError> {
        let update = self.fill_lost_until(frame.seq, model)?;
        let speech = frame.meta.flags.contains(FrameFlags::SPEECH);
        Ok(self.push_samples(&frame.samples, speech, model)?.or(update))
    }

    /// Counts frames before `seq` that the ring lost and puts silence in their place.
    pub fn fill_lost_until(
        &mut self,
        seq: u64,
        model: &mut dyn PassModel,
    ) -> Result<Option<Update>, WorkerError> {
        let mut update = None;
        while self.next_seq() < seq {
            self.lost += 1;
            update = self
                .push_samples(&[0.0; FRAME_SAMPLES], false, model)?
                .or(update);
        }
        Ok(update)
    }

    /// Adds the next frame; a window that would outgrow the limit is committed first.
    pub fn push_samples(
        &mut self,
        samples: &[f32; FRAME_SAMPLES],
        speech: bool,
        model: &mut dyn PassModel,
    ) -> Result<Option<Update>, WorkerError> {
        let update = if self.window_full() {
            Some(self.commit(model)?)
        } else {
            None
        };
        self.window.push(samples, speech);
        self.window.trim_silence(self.policy.lead_frames);
        Ok(update)
    }

    /// Whether the window has no room for another frame. Its passes begin at the audio's
    /// anchor, so it is full when the longest window lies after the anchor, not after its first
    /// frame: the commit pass then takes the same samples whatever grid the frames lie on (the
    /// window's end is a frame, its anchor a sample), and live and offline commit the same
    /// text. Before the anchor a window holds at most `lead_frames` more.
    fn window_full(&self) -> bool {
        let (len, max) = (self.window.len(), self.policy.max_window_frames);
        match &self.policy.anchor {
            _ if len < max => false,
            None => true,
            Some(_) if len >= max + self.policy.lead_frames => true,
            Some(a) => {
                let audio = self.window.audio_until(self.window.end_seq());
                let max_samples = max * FRAME_SAMPLES;
                let pass = anchor_span(audio, a, max_samples);
                audio.len() as i64 - pass.offset() >= max_samples as i64
            }
        }
    }

    /// One pass over the window up to `end`: its audio as the policy's anchor takes it, its
    /// timestamps as frames of the window.
    fn pass_over(
        &self,
        end: u64,
        req: &DecodeRequest<'_>,
        model: &mut dyn PassModel,
    ) -> Result<Transcript, WorkerError> {
        let audio = self.window.audio_until(end);
        let pass = match &self.policy.anchor {
            Some(a) => anchored(audio, a, self.policy.max_window_frames * FRAME_SAMPLES),
            None => PassAudio {
                samples: audio.into(),
                offset: 0,
            },
        };
        let mut r = model.pass(&pass.samples, req)?;
        let shift = |t: u32| (t as i64 + pass.offset_frames()).max(0) as u32;
        for s in &mut r.segments {
            (s.start, s.end) = (shift(s.start), shift(s.end));
        }
        Ok(r)
    }

    fn request<'a>(&'a self, mode: Mode<'a>) -> DecodeRequest<'a> {
        let speech = self.window.speech().iter().filter(|&&s| s).count();
        DecodeRequest {
            previous: &self.prompt,
            mode,
            speech_heard: speech >= SPEECH_HEARD_FRAMES,
            speech_s: speech as f32 * 0.02,
        }
    }

    /// A final pass decodes freely; in text mode the latest hypothesis of the window is its
    /// draft (checked token by token, never forced: the outcome is the same, in fewer calls).
    fn final_mode(&self) -> Mode<'_> {
        if self.policy.timestamps {
            Mode::Timestamps
        } else {
            Mode::Text {
                prefix: &[],
                draft: &self.hypothesis,
            }
        }
    }

    /// `segments` of a pass over `start..end` as session spans, each narrowed to the speech
    /// the VAD heard in it (Whisper starts a segment where the previous one ended, silence
    /// included: subtitles would show text over the pause); without segments (a text-only
    /// pass), its whole `text` as one.
    fn spans(
        &self,
        segments: &[TimedSegment],
        text: &str,
        model: &dyn PassModel,
        start: u64,
        end: u64,
    ) -> Vec<TimedText> {
        if segments.is_empty() {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![TimedText {
                    start_seq: start,
                    end_seq: end,
                    text: text.to_string(),
                }]
            };
        }
        let (window_start, speech) = (self.window.start_seq(), self.window.speech());
        segments
            .iter()
            .filter_map(|s| {
                let text = model.text(&s.tokens).trim().to_string();
                let a = (start + s.start as u64).min(end);
                // A segment whose end timestamp never came runs to the end of the audio.
                let z = if s.complete {
                    (start + s.end.max(s.start) as u64).min(end)
                } else {
                    end
                };
                let (a, z) = narrow_to_speech(speech, window_start, a, z);
                (!text.is_empty()).then_some(TimedText {
                    start_seq: a,
                    end_seq: z,
                    text,
                })
            })
            .collect()
    }

    /// Commits text and moves the prompt on; a loop resets the prompt (a repeated phrase in
    /// it makes the next window repeat too).
    fn record(&mut self, w: WindowText, tokens: &[u32], looped: bool) {
        if looped {
            self.prompt.clear();
        } else {
            self.prompt.extend_from_slice(tokens);
        }
        self.windows.push(w);
    }

    /// The window is full. If it ends in a pause after its speech, it is committed up to
    /// where its final pass would end (the speculative final's result, when it has one).
    /// Otherwise one pass with timestamps finds the segments, the window is cut at the best
    /// segment end, and the text before the cut is committed.
    fn commit(&mut self, model: &mut dyn PassModel) -> Result<Update, WorkerError> {
        let start = self.window.start_seq();
        let end = self.window.end_seq();
        let final_end = self.window.final_end(self.policy.pause_frames);
        if final_end < end {
            let spec = self
                .speculative
                .take()
                .filter(|s| s.window_start == start && s.end == final_end);
            let r = match spec {
                Some(s) => s.result,
                None => self.pass_over(final_end, &self.request(self.final_mode()), model)?,
            };
            if let Some(update) = self.commit_decoded_part(&r, final_end, model) {
                return Ok(update);
            }
            let spans = self.spans(&r.segments, &r.text, model, start, final_end);
            let frame = (final_end - start) as usize;
            return Ok(self.commit_window(
                frame,
                r.text.clone(),
                prompt_tokens(&r.segments, &r.tokens, model),
                spans,
                r.timings,
                &r,
            ));
        }
        let r = self.pass_over(end, &self.request(Mode::Timestamps), model)?;
        let texts: Vec<String> = r.segments.iter().map(|s| model.text(&s.tokens)).collect();
        let (speech, energy) = (self.window.speech(), self.window.energy());
        let mut timings = r.timings;
        let (frame, text, tokens, spans, last) = match cut::choose(
            speech,
            energy,
            if r.silent { &[] } else { &r.segments },
            &texts,
        ) {
            Cut::Segments { frame, segments } => {
                let kept = &r.segments[..segments];
                let tokens = prompt_tokens(kept, &[], model);
                let text = join(texts[..segments].iter().map(String::as_str));
                let spans = self.spans(kept, &text, model, start, start + frame as u64);
                (frame, text, tokens, spans, r)
            }
            Cut::Pause { frame } => {
                let cut_seq = start + frame as u64;
                if !r.silent && self.window.has_speech_before(cut_seq) {
                    let mode = self.final_mode();
                    let p = self.pass_over(cut_seq, &self.request(mode), model)?;
                    if let Some(update) = self.commit_decoded_part(&p, cut_seq, model) {
                        return Ok(update);
                    }
                    add(&mut timings, &p.timings);
                    let spans = self.spans(&p.segments, &p.text, model, start, cut_seq);
                    let tokens = prompt_tokens(&p.segments, &p.tokens, model);
                    (frame, p.text.clone(), tokens, spans, p)
                } else {
                    (frame, String::new(), Vec::new(), Vec::new(), r)
                }
            }
        };
        Ok(self.commit_window(frame, text, tokens, spans, timings, &last))
    }

    /// Where a timestamped decode of the window up to `until` stopped, when that is well before
    /// the speech in it does (Whisper ended early, or ran out of tokens): the frame after its
    /// last complete segment, and how many segments that keeps. faster-whisper seeks to that
    /// timestamp and decodes the rest in the next window; so does v2m.
    fn decoded_part(&self, r: &Transcript, until: u64) -> Option<(usize, usize)> {
        if r.silent || r.segments.is_empty() {
            return None;
        }
        let start = self.window.start_seq();
        let kept = r.segments.iter().take_while(|s| s.complete).count();
        let frame = r.segments[..kept].last().map_or(0, |s| s.end as usize);
        let last_speech = self
            .window
            .speech()
            .iter()
            .take((until - start) as usize)
            .rposition(|&s| s)?;
        (frame >= MIN_DECODED_FRAMES && last_speech > frame + MIN_DECODED_FRAMES)
            .then_some((frame, kept))
    }

    /// Commits the part of the window `r` decoded, if it decoded only part of its speech
    /// (see [`Self::decoded_part`]); the rest stays in the window.
    fn commit_decoded_part(
        &mut self,
        r: &Transcript,
        until: u64,
        model: &dyn PassModel,
    ) -> Option<Update> {
        let (frame, kept) = self.decoded_part(r, until)?;
        let start = self.window.start_seq();
        let segments = &r.segments[..kept];
        let texts: Vec<String> = segments.iter().map(|s| model.text(&s.tokens)).collect();
        let text = join(texts.iter().map(String::as_str));
        let spans = self.spans(segments, &text, model, start, start + frame as u64);
        let tokens = prompt_tokens(segments, &[], model);
        log::debug!(
            "the decode stopped at {:.2} s of a window whose speech goes on: the rest is decoded next",
            frame as f32 * 0.02
        );
        Some(self.commit_window(frame, text, tokens, spans, r.timings, r))
    }

    /// Commits the window's first `frame` frames with their text; `last` is the pass that
    /// produced it.
    fn commit_window(
        &mut self,
        frame: usize,
        text: String,
        tokens: Vec<u32>,
        spans: Vec<TimedText>,
        timings: PassTimings,
        last: &Transcript,
    ) -> Update {
        let start = self.window.start_seq();
        let end = self.window.end_seq();
        let cut_seq = start + frame as u64;
        log::debug!(
            "hard commit at frame {cut_seq} ({} s into a {} s window): {text:?}",
            frame as f32 * 0.02,
            (end - start) as f32 * 0.02
        );
        self.record(
            WindowText {
                start_seq: start,
                end_seq: cut_seq,
                text,
                segments: spans,
                timings,
                tokens: last.decoded.tokens.len(),
                no_speech_prob: last.decoded.no_speech_prob,
                avg_logprob: last.decoded.avg_logprob,
            },
            &tokens,
            last.looped,
        );
        self.window.drop_front(frame);
        self.hypothesis.clear();
        self.stable = 0;
        self.speculative = None;
        self.last_sent = (self.committed(), String::new());
        Update {
            stable: self.committed(),
            tentative: String::new(),
            timings: timings_of(last, start, end),
        }
    }

    /// Where a speculative final would end now: a pause after speech is long enough.
    fn speculative_target(&self) -> Option<u64> {
        let last = self.window.last_speech_seq()?;
        let end = last + 1 + self.policy.pause_frames as u64;
        (self.window.end_seq() >= end).then_some(end)
    }

    /// The pass due at `now`, if any: a speculative final as soon as a pause is long enough
    /// (once per pause), else a provisional pass when there is new speech and the interval has
    /// passed.
    pub fn next_pass(&self, now: Instant) -> Option<PassKind> {
        if !self.policy.live_passes {
            return None;
        }
        if let Some(end) = self.speculative_target() {
            let done = self
                .speculative
                .as_ref()
                .is_some_and(|s| s.window_start == self.window.start_seq() && s.end == end);
            return (!done).then_some(PassKind::Speculative { end });
        }
        let last_speech = self.window.last_speech_seq()?;
        let speech_frames = self.window.speech().iter().filter(|&&s| s).count();
        let due = self.provisional_due(now);
        (last_speech >= self.provisional_end
            && speech_frames >= self.policy.first_provisional_frames
            && due)
            .then_some(PassKind::Provisional)
    }

    fn provisional_due(&self, now: Instant) -> bool {
        self.last_provisional
            .is_none_or(|t| now.duration_since(t) >= self.policy.provisional_interval)
    }

    /// When the interval since the last provisional pass is over (`None`: already).
    pub fn provisional_due_at(&self) -> Option<Instant> {
        self.last_provisional
            .map(|t| t + self.policy.provisional_interval)
    }

    /// Runs `kind`. A cancelled pass ([`WorkerError::Cancelled`]) changes nothing.
    pub fn run(
        &mut self,
        kind: PassKind,
        model: &mut dyn PassModel,
        now: Instant,
    ) -> Result<Option<Update>, WorkerError> {
        match kind {
            PassKind::Provisional => self.run_provisional(model, now),
            PassKind::Speculative { end } => self.run_speculative(end, model),
        }
    }

    fn run_provisional(
        &mut self,
        model: &mut dyn PassModel,
        now: Instant,
    ) -> Result<Option<Update>, WorkerError> {
        let start = self.window.start_seq();
        let end = self.window.end_seq();
        // The stable words are forced; the rest of the latest hypothesis is a draft.
        let (prefix, draft) = self.hypothesis.split_at(self.stable);
        let r = self.pass_over(end, &self.request(Mode::Text { prefix, draft }), model)?;
        self.provisional_end = end;
        // The interval spaces out what is shown; a pass that heard nothing yet (the first
        // syllables of a dictation) showed nothing, so the next may follow it at once.
        if !(r.silent || r.tokens.is_empty()) {
            self.last_provisional = Some(now);
        }
        Ok(self.hypothesis(&r, model, start, end))
    }

    fn run_speculative(
        &mut self,
        end: u64,
        model: &mut dyn PassModel,
    ) -> Result<Option<Update>, WorkerError> {
        let start = self.window.start_seq();
        let r = self.pass_over(end, &self.request(self.final_mode()), model)?;
        let timings = timings_of(&r, start, end);
        let update = self.hypothesis(&r, model, start, end);
        self.speculative = Some(Speculative {
            window_start: start,
            end,
            result: r,
            timings,
        });
        Ok(update)
    }

    /// Takes a pass' hypothesis: stable tokens by agreement with the previous one, and the
    /// text to show if it changed.
    fn hypothesis(
        &mut self,
        r: &Transcript,
        model: &dyn PassModel,
        start: u64,
        end: u64,
    ) -> Option<Update> {
        if r.silent {
            return None;
        }
        if !r.tokens.starts_with(&self.hypothesis[..self.stable]) {
            // A pass without the forced prefix (the speculative final) heard the stable words
            // differently: what was shown stays, and agreement goes on from the last
            // provisional hypothesis. The final, when it comes, replaces the whole text.
            log::debug!("a pass disagrees with the stable words: nothing shown from it");
            return None;
        }
        let stable = stable_len(&self.hypothesis, &r.tokens, self.stable, |t| {
            model.starts_word(t)
        });
        self.hypothesis = r.tokens.clone();
        self.stable = stable;
        let full = model.text(&self.hypothesis);
        let stable_text = model.text(&self.hypothesis[..self.stable]);
        let tentative = full
            .strip_prefix(&stable_text)
            .unwrap_or(&full)
            .trim()
            .to_string();
        let committed = self.committed();
        let shown = (join([committed.as_str(), stable_text.as_str()]), tentative);
        if shown == self.last_sent {
            return None;
        }
        self.last_sent = shown.clone();
        Some(Update {
            stable: shown.0,
            tentative: shown.1,
            timings: timings_of(r, start, end),
        })
    }

    /// The session ended before frame `end` (every frame before it pushed): the final text.
    /// The speculative final is the answer when the session ended with no speech after it;
    /// otherwise one last pass over the window (only if it holds speech).
    pub fn finish(&mut self, end: u64, model: &mut dyn PassModel) -> Result<Final, WorkerError> {
        debug_assert!(self.next_seq() >= end, "frames before the end are pushed");
        let start = self.window.start_seq();
        let final_end = self.window.final_end(self.policy.pause_frames).min(end);
        let spec = self
            .speculative
            .take()
            .filter(|s| s.window_start == start && s.end == final_end);
        let (result, timings, speculative) = match spec {
            Some(s) => (Some(s.result), s.timings, true),
            None if self.window.has_speech_before(final_end) => {
                let mode = self.final_mode();
                let r = self.pass_over(final_end, &self.request(mode), model)?;
                let t = timings_of(&r, start, final_end);
                (Some(r), t, false)
            }
            None => (
                None,
                Timings {
                    audio_first_seq: start,
                    audio_end_seq: final_end,
                    ..Timings::default()
                },
                false,
            ),
        };
        if let Some(r) = &result
            && self.decoded_part(r, final_end).is_some()
        {
            // Part decoded: commit it and decode the rest.
            self.commit_decoded_part(r, final_end, model);
            return self.finish(end, model);
        }
        if let Some(r) = result {
            let spans = self.spans(&r.segments, &r.text, model, start, final_end);
            self.record(
                WindowText {
                    start_seq: start,
                    end_seq: final_end,
                    text: r.text.clone(),
                    segments: spans,
                    timings: r.timings,
                    tokens: r.decoded.tokens.len(),
                    no_speech_prob: r.decoded.no_speech_prob,
                    avg_logprob: r.decoded.avg_logprob,
                },
                &r.tokens,
                r.looped,
            );
        }
        self.window.drop_front(self.window.len());
        Ok(Final {
            text: self.committed(),
            timings,
            speculative,
            windows: std::mem::take(&mut self.windows),
        })
    }
}

#[cfg(test)]
mod tests;
