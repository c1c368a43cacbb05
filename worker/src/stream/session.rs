//! One dictation session followed frame by frame: provisional passes at most every 500 ms over
//! the uncommitted audio, LocalAgreement-2 for the stable part, a final pass and a commit at
//! every VAD pause (so cost stays bounded however long the dictation), and at the end a last
//! pass over whatever is uncommitted. A session that ends after a pause needs no last pass.

use super::agreement::advance_stable;
use super::segment::{Segment, SegmentPolicy, Segmenter};
use crate::error::WorkerError;
use crate::transcriber::{Transcriber, Transcript};
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::Timings;
use v2m_shm_proto::ring::{FRAME_SAMPLES, Frame, FrameFlags};

/// Streaming policy.
#[derive(Debug, Clone, Copy)]
pub struct StreamPolicy {
    /// Segment cutting.
    pub segments: SegmentPolicy,
    /// Shortest time between provisional passes.
    pub provisional_interval: Duration,
}

impl Default for StreamPolicy {
    fn default() -> StreamPolicy {
        StreamPolicy {
            segments: SegmentPolicy::default(),
            provisional_interval: Duration::from_millis(500),
        }
    }
}

/// Text so far: committed segments, the stable part of the open one, and its tentative tail.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Committed text plus the agreed prefix of the open segment.
    pub stable: String,
    /// The rest of the latest hypothesis.
    pub tentative: String,
    /// What the pass that produced this cost (zero for a commit without a new pass).
    pub timings: Timings,
}

/// A session being followed.
pub struct SessionStream {
    policy: StreamPolicy,
    segmenter: Segmenter,
    /// Sequence number of `audio[0]`: the open segment's first frame.
    audio_seq: u64,
    audio: Vec<f32>,
    next_seq: u64,
    committed: Vec<String>,
    /// The open segment's latest hypothesis and the words of it that are stable.
    hypothesis: String,
    stable: String,
    /// Last (stable, tentative) sent, so unchanged text is not sent again.
    last_sent: (String, String),
    last_pass: Option<Instant>,
    frames_since_pass: usize,
    lost: u64,
}

fn join(parts: &[String], extra: &str) -> String {
    let mut words: Vec<&str> = parts.iter().map(String::as_str).collect();
    words.push(extra);
    words
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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

impl SessionStream {
    /// Follows a session whose first frame is `first_seq`.
    pub fn new(policy: StreamPolicy, first_seq: u64) -> SessionStream {
        SessionStream {
            policy,
            segmenter: Segmenter::new(policy.segments, 0),
            audio_seq: first_seq,
            audio: Vec::new(),
            next_seq: first_seq,
            committed: Vec::new(),
            hypothesis: String::new(),
            stable: String::new(),
            last_sent: (String::new(), String::new()),
            last_pass: None,
            frames_since_pass: 0,
            lost: 0,
        }
    }

    /// Sequence number of the next frame this session expects.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Frames lost to ring overruns (replaced by silence).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Committed text so far.
    pub fn committed(&self) -> String {
        join(&self.committed, "")
    }

    /// Adds a frame. Frames the ring lost before it (`frame.seq` beyond the expected one)
    /// become silence, so segment timing stays true. When a pause ends a segment, it is
    /// transcribed and committed, and an update is returned.
    pub fn push(
        &mut self,
        frame: &Frame,
        t: &mut Transcriber,
    ) -> Result<Option<Update>, WorkerError> {
        let update = self.fill_lost_until(frame.seq, t)?;
        let speech = frame.meta.flags.contains(FrameFlags::SPEECH);
        Ok(self.push_samples(&frame.samples, speech, t)?.or(update))
    }

    /// Counts frames before `seq` that the ring lost as such and puts silence in their place.
    pub fn fill_lost_until(
        &mut self,
        seq: u64,
        t: &mut Transcriber,
    ) -> Result<Option<Update>, WorkerError> {
        let mut update = None;
        while self.next_seq < seq {
            self.lost += 1;
            update = self
                .push_samples(&[0.0; FRAME_SAMPLES], false, t)?
                .or(update);
        }
        Ok(update)
    }

    fn push_samples(
        &mut self,
        samples: &[f32; FRAME_SAMPLES],
        speech: bool,
        t: &mut Transcriber,
    ) -> Result<Option<Update>, WorkerError> {
        self.audio.extend_from_slice(samples);
        self.next_seq += 1;
        self.frames_since_pass += 1;
        let energy = samples.iter().map(|s| s * s).sum::<f32>() / FRAME_SAMPLES as f32;
        match self.segmenter.push(speech, energy) {
            Some(seg) => self.commit(seg, t).map(Some),
            None => Ok(None),
        }
    }

    /// Final pass over a finished segment; its text joins the committed text.
    fn commit(&mut self, seg: Segment, t: &mut Transcriber) -> Result<Update, WorkerError> {
        let base = self.audio_seq;
        let len = seg.end - seg.start;
        let mut timings = Timings {
            audio_first_seq: base,
            audio_end_seq: base + len as u64,
            ..Timings::default()
        };
        if seg.has_speech {
            let r = t.transcribe(&self.audio[..len * FRAME_SAMPLES])?;
            timings = timings_of(&r, base, base + len as u64);
            if !r.text.is_empty() {
                self.committed.push(r.text);
            }
        }
        self.audio.drain(..len * FRAME_SAMPLES);
        self.audio_seq += len as u64;
        self.hypothesis.clear();
        self.stable.clear();
        self.last_sent = (self.committed(), String::new());
        Ok(Update {
            stable: self.committed(),
            tentative: String::new(),
            timings,
        })
    }

    /// A provisional pass over the open segment, if one is due: at least the interval since the
    /// last, new audio since, and speech in the open segment.
    pub fn provisional(
        &mut self,
        t: &mut Transcriber,
        now: Instant,
    ) -> Result<Option<Update>, WorkerError> {
        let due = self
            .last_pass
            .is_none_or(|last| now.duration_since(last) >= self.policy.provisional_interval);
        if !due || self.frames_since_pass == 0 || !self.segmenter.has_speech() {
            return Ok(None);
        }
        self.last_pass = Some(now);
        self.frames_since_pass = 0;
        let end = self.audio_seq + (self.audio.len() / FRAME_SAMPLES) as u64;
        let r = t.transcribe(&self.audio)?;
        let (stable, tentative) = advance_stable(&self.stable, &self.hypothesis, &r.text);
        self.hypothesis = r.text.clone();
        self.stable = stable;
        let shown = (join(&self.committed, &self.stable), tentative);
        if shown == self.last_sent {
            return Ok(None);
        }
        self.last_sent = shown.clone();
        Ok(Some(Update {
            stable: shown.0,
            tentative: shown.1,
            timings: timings_of(&r, self.audio_seq, end),
        }))
    }

    /// The session ended: the final text. A last pass runs only if the open segment holds
    /// speech; after a pause the committed text is the answer.
    pub fn finish(&mut self, t: &mut Transcriber) -> Result<(String, Timings), WorkerError> {
        let end = self.audio_seq + (self.audio.len() / FRAME_SAMPLES) as u64;
        let mut timings = Timings {
            audio_first_seq: self.audio_seq,
            audio_end_seq: end,
            ..Timings::default()
        };
        if self.segmenter.has_speech() && !self.audio.is_empty() {
            let r = t.transcribe(&self.audio)?;
            timings = timings_of(&r, self.audio_seq, end);
            if !r.text.is_empty() {
                self.committed.push(r.text);
            }
        }
        self.audio.clear();
        Ok((self.committed(), timings))
    }
}
