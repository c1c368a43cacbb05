//! One measured dictation: start, the recording through the microphone, stop at a chosen delay
//! after its speech ends; every figure from the client's own clock and the worker's report.

use super::corpus::{SpeechSpan, Utterance};
use super::rig::Rig;
use crate::fifo_mic::mic_pcm;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use v2m_shm_proto::client::ClientError;
use v2m_shm_proto::protocol::{ErrorKind, Event, ReadLag, Reply, RequestBody};

/// What one run measured. Times in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// The set the recording belongs to.
    #[serde(default)]
    pub set: String,
    /// The recording.
    pub utterance: String,
    /// Stop was pressed this long after the speech ended.
    pub stop_delay_ms: u32,
    /// Length of the speech in it.
    pub speech_ms: f64,
    /// Stop request sent → final text received (the client's round trip).
    pub stop_to_final_ms: f64,
    /// End of speech entering the microphone → final text received.
    pub speech_end_to_final_ms: f64,
    /// Speech onset entering the microphone → first provisional event with text.
    pub first_provisional_ms: Option<f64>,
    /// Gaps between consecutive provisional events of the session.
    pub provisional_intervals_ms: Vec<f64>,
    /// The worker's capture→read lags of the session's live frames.
    pub capture_to_read: ReadLag,
    /// What should have been heard.
    pub reference: String,
    /// What came back (empty: no speech detected).
    pub text: String,
    /// How long the worker's pass that produced the final took (`None` when none was needed).
    #[serde(default)]
    pub final_pass_ms: Option<f64>,
    /// Whether the final was the speculative one, ready before `stop`.
    #[serde(default)]
    pub speculative: bool,
    /// The same recording transcribed offline (`v2m-worker transcribe`), when measured.
    #[serde(default)]
    pub offline: Option<String>,
    /// And offline begun at later frame phases ([`super::offline::PHASE_SHIFTS_MS`]).
    #[serde(default)]
    pub offline_phases: Vec<String>,
}

/// Measures one dictation of `u` (whose speech is at `span`), stopping `stop_delay` after the
/// speech ends.
pub fn measure(
    rig: &mut Rig,
    u: &Utterance,
    span: SpeechSpan,
    stop_delay: Duration,
) -> Result<Measurement, String> {
    let pcm = mic_pcm(&u.wav);
    while rig.events.try_recv().is_ok() {}
    let session = match rig.control.request(RequestBody::Start) {
        Ok(Reply::Started { session_id, .. }) => session_id,
        other => return Err(format!("start: {other:?}")),
    };
    let clip = rig.mic().play(&pcm);
    let began = clip.wait_started();
    let onset = began + Duration::from_secs_f64(span.onset_s);
    let end = began + Duration::from_secs_f64(span.end_s);
    std::thread::sleep((end + stop_delay).saturating_duration_since(Instant::now()));
    let stop_sent = Instant::now();
    let reply = rig.control.request(RequestBody::Stop);
    let answered = Instant::now();
    let (text, final_pass_ms, speculative) = match reply {
        Ok(Reply::Stopped(f)) => {
            let t = &f.timings;
            let pass = (t.mel_ms + t.encoder_ms + t.decoder_ms) as f64;
            (f.text, (pass > 0.0).then_some(pass), f.speculative)
        }
        Err(ClientError::Refused(e)) if e.kind == ErrorKind::NoSpeech => {
            (String::new(), None, false)
        }
        other => return Err(format!("stop: {other:?}")),
    };

    // The session's provisional events and its capture→read histogram, as the subscriber got
    // them (the final follows them).
    let mut provisional = Vec::new();
    let mut capture_to_read = ReadLag::default();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rig.events.recv_timeout(left) {
            Ok((at, Event::Provisional(p))) if p.session_id == session => {
                let has_text = !(p.stable.trim().is_empty() && p.tentative.trim().is_empty());
                provisional.push((at, has_text));
            }
            Ok((
                _,
                Event::ReadLag {
                    session_id,
                    histogram,
                },
            )) if session_id == session => capture_to_read = histogram,
            Ok((_, Event::Final(f))) if f.session_id == session => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    rig.mic().wait_idle();
    std::thread::sleep(Duration::from_millis(300));

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let signed_ms = |later: Instant, earlier: Instant| match later.checked_duration_since(earlier) {
        Some(d) => ms(d),
        None => -ms(earlier - later),
    };
    Ok(Measurement {
        set: u.set.clone(),
        utterance: u.name.clone(),
        stop_delay_ms: stop_delay.as_millis() as u32,
        speech_ms: (span.end_s - span.onset_s) * 1e3,
        stop_to_final_ms: ms(answered - stop_sent),
        speech_end_to_final_ms: signed_ms(answered, end),
        first_provisional_ms: provisional
            .iter()
            .find(|(_, has_text)| *has_text)
            .map(|(at, _)| signed_ms(*at, onset)),
        provisional_intervals_ms: provisional
            .windows(2)
            .map(|w| ms(w[1].0 - w[0].0))
            .collect(),
        capture_to_read,
        reference: u.reference.clone(),
        text,
        final_pass_ms,
        speculative,
        offline: None,
        offline_phases: Vec::new(),
    })
}
