//! The worker following a session through a real ring, in its own process, fed a real
//! recording at real-time pace.

mod support;

use std::time::{Duration, Instant};
use support::daemon::{TestDaemon, publish_paced};
use v2m_shm_proto::protocol::WorkerMessage;
use v2m_shm_proto::ring::FRAME_SAMPLES;
use v2m_worker::audio::read_wav;
use v2m_worker::offline::transcribe_recording;
use v2m_worker::stream::segment::SegmentPolicy;
use v2m_worker::vad::speech_flags;

/// Two librivox sentences with a 1 s pause between (a segment commit) and 0.3 s after.
fn dictation() -> (Vec<f32>, usize) {
    let corpus = support::corpus();
    let first = read_wav(&corpus[0].0).unwrap();
    let first_frames = first.len() / FRAME_SAMPLES;
    let mut audio = first;
    audio.extend(std::iter::repeat_n(0f32, 16_000));
    audio.extend(read_wav(&corpus[1].0).unwrap());
    audio.extend(std::iter::repeat_n(0f32, 4_800));
    (audio, first_frames)
}

fn offline_text(audio: &[f32]) -> String {
    let mut t = support::transcriber();
    transcribe_recording(&mut t, audio, 3, SegmentPolicy::default())
        .unwrap()
        .text
}

#[test]
fn provisional_text_streams_and_the_final_equals_the_offline_transcript() {
    let (audio, first_frames) = dictation();
    let flags = speech_flags(&audio, 3);
    let expected = offline_text(&audio);
    let mut daemon = TestDaemon::new("stream");
    let mut child = daemon.spawn_worker("w1");
    let mut conn = daemon.accept();
    daemon.control.open_session(1, 0).unwrap();
    conn.assign(1);
    let mut writer = daemon.writer.take().unwrap();
    publish_paced(&mut writer, &audio, &flags, 1, |_| {});
    let stop = Instant::now();
    daemon.control.close_session(1, writer.next_seq()).unwrap();
    let messages = conn.until_final(Duration::from_secs(120));
    conn.shutdown();
    let status = child.wait().unwrap();
    assert!(status.success(), "worker exit: {status}");

    let mut passes = Vec::new();
    let mut last_stable = String::new();
    for (at, m) in &messages {
        match m {
            WorkerMessage::Provisional(p) => {
                assert_eq!(p.session_id, 1);
                eprintln!(
                    "+{:>6.0} ms  [{}] {:?} | {:?}",
                    at.duration_since(messages[0].0).as_secs_f64() * 1e3,
                    p.timings.tokens,
                    p.stable,
                    p.tentative
                );
                // Within the first sentence (one segment), stable words are never retracted.
                if p.timings.audio_end_seq <= first_frames as u64 {
                    assert!(
                        p.stable.starts_with(&last_stable),
                        "stable text shrank: {last_stable:?} -> {:?}",
                        p.stable
                    );
                    last_stable = p.stable.clone();
                }
                if p.timings.tokens > 0 && p.timings.audio_end_seq <= first_frames as u64 {
                    let pass_ms = p.timings.mel_ms + p.timings.encoder_ms + p.timings.decoder_ms;
                    passes.push((*at, pass_ms));
                }
            }
            WorkerMessage::Final(f) => {
                eprintln!(
                    "final after stop: {:.0} ms: {:?}",
                    at.duration_since(stop).as_secs_f64() * 1e3,
                    f.text
                );
                assert_eq!(f.session_id, 1);
                assert_eq!(f.text, expected, "streaming final differs from offline");
            }
            WorkerMessage::Health(_) => {}
        }
    }
    assert!(
        passes.len() >= 5,
        "expected provisional passes during 7 s of speech, got {}",
        passes.len()
    );
    // While the first sentence is spoken, passes come at most 500 ms plus one pass apart
    // (200 ms allowed for the scheduler of a loaded 2-core machine).
    for w in passes.windows(2) {
        let gap = w[1].0.duration_since(w[0].0).as_secs_f64() * 1e3;
        let bound = 500.0 + w[1].1 as f64 + 200.0;
        assert!(gap <= bound, "provisional gap {gap:.0} ms > {bound:.0} ms");
    }
}

#[test]
fn a_worker_killed_mid_session_is_replaced_and_the_text_is_whole() {
    let (audio, _) = dictation();
    let flags = speech_flags(&audio, 3);
    let expected = offline_text(&audio);
    let mut daemon = TestDaemon::new("kill");
    let mut first = daemon.spawn_worker("victim");
    let mut conn = daemon.accept();
    daemon.control.open_session(7, 0).unwrap();
    conn.assign(7);
    let mut writer = daemon.writer.take().unwrap();
    let kill_at = 4 * 50; // 4 s into the dictation
    let mut replacement = None;
    let conn = &mut conn;
    publish_paced(&mut writer, &audio, &flags, 7, |i| {
        if i == kill_at {
            assert!(
                conn.messages
                    .try_iter()
                    .any(|(_, m)| matches!(m, WorkerMessage::Provisional(_))),
                "the first worker was not transcribing yet"
            );
            first.kill().unwrap();
            // Reaped below; a SIGKILLed process cannot take part any more.
            // A new worker: loads, connects, and is given the open session.
            let child = daemon.spawn_worker("replacement");
            let mut c = daemon.accept();
            c.assign(7);
            replacement = Some((child, c));
        }
    });
    assert!(!first.wait().unwrap().success(), "the victim was killed");
    daemon.control.close_session(7, writer.next_seq()).unwrap();
    let (mut child, mut conn2) = replacement.expect("the replacement started");
    let messages = conn2.until_final(Duration::from_secs(120));
    let WorkerMessage::Final(f) = &messages.last().unwrap().1 else {
        unreachable!()
    };
    assert_eq!(
        f.text, expected,
        "the replacement lost part of the dictation"
    );
    conn2.shutdown();
    assert!(child.wait().unwrap().success());
}

#[test]
fn under_memory_pressure_the_model_is_unloaded_and_reloaded_for_the_next_session() {
    let corpus = support::corpus();
    let audio = read_wav(&corpus[10].0).unwrap(); // goforward
    let flags = speech_flags(&audio, 3);
    let mut daemon = TestDaemon::new("pressure");
    // Any machine is "under pressure" below 100% available memory.
    let mut child = daemon.spawn_worker_with("w", &["--unload-below-percent", "100"]);
    let mut conn = daemon.accept();
    let health = |conn: &support::daemon::WorkerConn| loop {
        match conn.messages.recv_timeout(Duration::from_secs(60)) {
            Ok((_, WorkerMessage::Health(h))) => return h,
            Ok(_) => continue,
            Err(e) => panic!("no health report: {e}"),
        }
    };
    assert!(health(&conn).model_loaded, "loaded and warm at start");
    let unloaded = health(&conn);
    assert!(!unloaded.model_loaded, "{unloaded:?}");
    assert!(unloaded.note.contains("MemAvailable"), "{}", unloaded.note);
    daemon.control.open_session(3, 0).unwrap();
    conn.assign(3);
    let mut writer = daemon.writer.take().unwrap();
    publish_paced(&mut writer, &audio, &flags, 3, |_| {});
    daemon.control.close_session(3, writer.next_seq()).unwrap();
    let messages = conn.until_final(Duration::from_secs(120));
    assert!(
        messages
            .iter()
            .any(|(_, m)| matches!(m, WorkerMessage::Health(h) if h.model_loaded)),
        "the model was reloaded for the session"
    );
    let WorkerMessage::Final(f) = &messages.last().unwrap().1 else {
        unreachable!()
    };
    assert_eq!(f.text, offline_text(&audio));
    assert!(f.text.contains("forward"), "{}", f.text);
    conn.shutdown();
    assert!(child.wait().unwrap().success());
}
