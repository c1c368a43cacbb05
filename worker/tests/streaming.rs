//! The worker following sessions through a real ring, in its own process, fed real recordings
//! at real-time pace: finals equal the offline transcripts token for token (wherever the
//! recording falls on the session's frame grid), the speculative final answers a stop after a
//! pause, long dictations are committed as files are.

mod support;

use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{FinalText, WorkerMessage};
use v2m_shm_proto::ring::{FRAME_SAMPLES, RingWriter};
use v2m_tests::daemon::fake::{FakeDaemon, WorkerConn, publish_paced};
use v2m_worker::audio::read_audio;
use v2m_worker::audio::speech_flags;
use v2m_worker::offline::transcribe_recording;
use v2m_worker::stream::session::StreamPolicy;

/// Two librivox sentences with a 1 s pause between and 0.3 s after.
fn dictation() -> (Vec<f32>, usize) {
    let corpus = support::corpus();
    let first = read_audio(&corpus[0].0).unwrap();
    let first_frames = first.len() / FRAME_SAMPLES;
    let mut audio = first;
    audio.extend(std::iter::repeat_n(0f32, 16_000));
    audio.extend(read_audio(&corpus[1].0).unwrap());
    audio.extend(std::iter::repeat_n(0f32, 4_800));
    (audio, first_frames)
}

fn offline_text(audio: &[f32]) -> String {
    let mut t = support::transcriber();
    transcribe_recording(&mut t, audio, 3, StreamPolicy::default())
        .unwrap()
        .text
}

/// Publishes `audio` as session `id` at real-time pace, closes it, and returns the worker's
/// messages with the instant the session was closed.
fn dictate(
    daemon: &mut FakeDaemon,
    writer: &mut RingWriter,
    conn: &mut WorkerConn,
    id: u64,
    audio: &[f32],
) -> (Vec<(Instant, WorkerMessage)>, Instant) {
    let flags = speech_flags(audio, 3).unwrap();
    daemon.control.open_session(id, writer.next_seq()).unwrap();
    conn.assign(id);
    publish_paced(writer, audio, &flags, id, |_| {});
    daemon.control.close_session(id, writer.next_seq()).unwrap();
    let closed = Instant::now();
    (conn.until_final(Duration::from_secs(120)), closed)
}

fn final_of(messages: &[(Instant, WorkerMessage)]) -> (Instant, FinalText) {
    match messages.last() {
        Some((at, WorkerMessage::Final(f))) => (*at, f.clone()),
        other => panic!("no final: {other:?}"),
    }
}

#[test]
fn finals_after_a_pause_are_speculative_and_equal_the_offline_transcripts() {
    let corpus = support::corpus();
    let mut daemon = FakeDaemon::new("speculative");
    let mut child = daemon.spawn_worker("w");
    let mut conn = daemon.accept();
    let mut writer = daemon.writer.take().unwrap();
    let mut t = support::transcriber();
    let mut latencies = Vec::new();
    for (i, (path, _)) in corpus.iter().enumerate() {
        let recording = read_audio(path).unwrap();
        let expected =
            transcribe_recording(&mut t, &recording, 3, StreamPolicy::default()).unwrap();
        // The recording as dictated: it lands anywhere on the session's 20 ms frame grid
        // (here 0.3 s and a few samples after its first frame; a file's grid starts at its
        // first sample), then 0.6 s of silence before stop.
        let mut audio = vec![0f32; 4_800 + 37 * (2 * i + 1)];
        audio.extend_from_slice(&recording);
        audio.resize(audio.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES, 0.0);
        audio.extend(std::iter::repeat_n(0f32, 9_600));
        let (messages, closed) = dictate(&mut daemon, &mut writer, &mut conn, i as u64 + 1, &audio);
        let (at, f) = final_of(&messages);
        let ms = at.saturating_duration_since(closed).as_secs_f64() * 1e3;
        eprintln!(
            "{}: final {ms:.0} ms after the end ({}): {:?}",
            path.file_name().unwrap().to_string_lossy(),
            if f.speculative {
                "speculative"
            } else {
                "pass after the end"
            },
            f.text
        );
        assert_eq!(f.text, expected.text, "{}", path.display());
        assert!(
            f.speculative,
            "{}: 0.6 s of pause, yet a pass ran after the end",
            path.display()
        );
        latencies.push(ms);
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!("end→final p50 {:.0} ms", latencies[latencies.len() / 2]);
    conn.shutdown();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_dictation_longer_than_a_window_is_committed_as_the_file_is() {
    let corpus = support::corpus();
    // 5 librivox recordings, 0.7 s apart, twice: about 55 s, two hard commits.
    let mut audio = Vec::new();
    for i in (0..5).chain(0..5) {
        audio.extend(read_audio(&corpus[i].0).unwrap());
        audio.extend(std::iter::repeat_n(0f32, 11_200));
    }
    assert!(audio.len() > 50 * 16_000);
    let mut t = support::transcriber();
    let offline = transcribe_recording(&mut t, &audio, 3, StreamPolicy::default()).unwrap();
    assert!(offline.windows.len() >= 2, "{:?}", offline.windows);
    let mut daemon = FakeDaemon::new("long");
    let mut child = daemon.spawn_worker("w");
    let mut conn = daemon.accept();
    let mut writer = daemon.writer.take().unwrap();
    let (messages, _) = dictate(&mut daemon, &mut writer, &mut conn, 1, &audio);
    let (_, f) = final_of(&messages);
    eprintln!(
        "{} windows offline; final: {:?}",
        offline.windows.len(),
        f.text
    );
    assert_eq!(f.text, offline.text);
    // Provisional text carried the committed windows: it never lost them.
    let committed = &offline.windows[0].text;
    let after_commit = messages.iter().filter_map(|(_, m)| match m {
        WorkerMessage::Provisional(p)
            if p.timings.audio_first_seq > offline.windows[0].start_seq =>
        {
            Some(p.stable.clone())
        }
        _ => None,
    });
    for stable in after_commit {
        assert!(stable.starts_with(committed.as_str()), "{stable:?}");
    }
    conn.shutdown();
    assert!(child.wait().unwrap().success());
}

#[test]
fn provisional_text_streams_and_stable_text_only_grows() {
    let (audio, first_frames) = dictation();
    let mut daemon = FakeDaemon::new("stream");
    let mut child = daemon.spawn_worker("w1");
    let mut conn = daemon.accept();
    let mut writer = daemon.writer.take().unwrap();
    let (messages, _) = dictate(&mut daemon, &mut writer, &mut conn, 1, &audio);
    conn.shutdown();
    let status = child.wait().unwrap();
    assert!(status.success(), "worker exit: {status}");

    let mut passes = Vec::new();
    let mut last_stable = String::new();
    for (at, m) in &messages {
        if let WorkerMessage::Provisional(p) = m {
            assert_eq!(p.session_id, 1);
            eprintln!(
                "+{:>6.0} ms  [{} frames, {} tokens] {:?} | {:?}",
                at.duration_since(messages[0].0).as_secs_f64() * 1e3,
                p.timings.audio_end_seq - p.timings.audio_first_seq,
                p.timings.tokens,
                p.stable,
                p.tentative
            );
            // One window throughout: stable words are never retracted.
            assert!(
                p.stable.starts_with(&last_stable),
                "stable text shrank: {last_stable:?} -> {:?}",
                p.stable
            );
            last_stable = p.stable.clone();
            if p.timings.audio_end_seq <= first_frames as u64 {
                passes.push(p.timings.audio_end_seq);
            }
        }
    }
    let (_, f) = final_of(&messages);
    assert_eq!(f.text, offline_text(&audio));
    // Every 500 ms at best; on a loaded 2-core machine a pass alone can take over a second.
    assert!(
        passes.len() >= 3,
        "expected provisional passes during 7 s of speech, got {}",
        passes.len()
    );
    // Each pass hears more of the sentence than the one before. How far apart they come is a
    // figure, not a test: `cargo bench -p v2m-worker --bench stream` prints
    // provisional_interval_p50_ms.
    assert!(
        passes.windows(2).all(|w| w[0] < w[1]),
        "passes over the same audio twice: {passes:?}"
    );
}

#[test]
fn a_worker_killed_mid_session_is_replaced_and_the_text_is_whole() {
    let (audio, _) = dictation();
    let flags = speech_flags(&audio, 3).unwrap();
    let expected = offline_text(&audio);
    let mut daemon = FakeDaemon::new("kill");
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
    let (_, f) = final_of(&messages);
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
    let audio = read_audio(&corpus[10].0).unwrap(); // goforward
    let flags = speech_flags(&audio, 3).unwrap();
    let mut daemon = FakeDaemon::new("pressure");
    // Any machine is "under pressure" below 100% available memory.
    let mut child = daemon.spawn_worker_with("w", &["--unload-below-percent", "100"]);
    let mut conn = daemon.accept();
    let health = |conn: &WorkerConn| loop {
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
    let (_, f) = final_of(&messages);
    assert_eq!(f.text, offline_text(&audio));
    assert!(f.text.contains("forward"), "{}", f.text);
    conn.shutdown();
    assert!(child.wait().unwrap().success());
}
