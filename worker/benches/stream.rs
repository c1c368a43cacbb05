//! Streaming benchmark: the real worker process follows sessions through a real ring, fed the
//! pocketsphinx-testdata recordings at real-time pace. For each recording, two sessions:
//! stopped 800 ms after the speech (after a pause: the answer should come from committed text)
//! and stopped right at its end (during speech: one last pass needed).
//!
//! `cargo bench -p v2m-worker --bench stream` (scripts/bench-worker.sh runs it). Last line:
//! `stream: stop_after_pause_p50_ms=… stop_during_speech_p50_ms=… provisional_interval_p50_ms=…`

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::WorkerMessage;
use v2m_shm_proto::ring::RingWriter;
use v2m_tests::daemon::fake::{FakeDaemon, WorkerConn, publish_paced};
use v2m_worker::audio::read_audio;
use v2m_worker::audio::speech_flags;

fn p50(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn p90(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[(v.len() - 1) * 9 / 10]
    }
}

/// One session: returns stop→final ms and the gaps between provisional passes.
fn session(
    daemon: &mut FakeDaemon,
    writer: &mut RingWriter,
    conn: &mut WorkerConn,
    id: u64,
    audio: &[f32],
) -> (f64, Vec<f64>, String) {
    let flags = speech_flags(audio, 3).unwrap();
    daemon.control.open_session(id, writer.next_seq()).unwrap();
    conn.assign(id);
    publish_paced(writer, audio, &flags, id, |_| {});
    daemon.control.close_session(id, writer.next_seq()).unwrap();
    let stop = Instant::now();
    let messages = conn.until_final(Duration::from_secs(120));
    let mut passes = Vec::new();
    let mut latency = 0.0;
    let mut text = String::new();
    for (at, m) in &messages {
        match m {
            WorkerMessage::Provisional(p) if p.timings.tokens > 0 => passes.push(*at),
            WorkerMessage::Final(f) => {
                assert_eq!(f.session_id, id, "final of another session");
                latency = if *at >= stop {
                    at.duration_since(stop).as_secs_f64() * 1e3
                } else {
                    -(stop.duration_since(*at).as_secs_f64() * 1e3)
                };
                text = f.text.clone();
            }
            _ => {}
        }
    }
    let gaps = passes
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
        .collect();
    (latency, gaps, text)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let corpus = support::corpus();
    let mut daemon = FakeDaemon::new("bench-stream");
    let mut child = daemon.spawn_worker("bench");
    let mut conn = daemon.accept();
    let mut writer = daemon.writer.take().unwrap();
    let silence = |ms: usize| vec![0f32; ms * 16];
    let (mut after_pause, mut during_speech, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    let mut id = 0;
    for (path, _) in &corpus {
        let rec = read_audio(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut a = silence(300);
        a.extend(&rec);
        a.extend(silence(800));
        id += 1;
        let (lat, g, text) = session(&mut daemon, &mut writer, &mut conn, id, &a);
        println!("{name:<45} stop after pause:   {lat:>6.0} ms  {text:?}");
        after_pause.push(lat);
        gaps.extend(g);
        let mut b = silence(300);
        b.extend(&rec);
        id += 1;
        let (lat, g, text) = session(&mut daemon, &mut writer, &mut conn, id, &b);
        println!("{name:<45} stop during speech: {lat:>6.0} ms  {text:?}");
        during_speech.push(lat);
        gaps.extend(g);
    }
    conn.shutdown();
    let _ = child.wait();
    println!(
        "stream detail: sessions={} stop_after_pause_p90_ms={:.0} stop_during_speech_p90_ms={:.0} provisional_interval_p90_ms={:.0} intervals={}",
        id,
        p90(&mut after_pause),
        p90(&mut during_speech),
        p90(&mut gaps),
        gaps.len()
    );
    println!(
        "stream: stop_after_pause_p50_ms={:.0} stop_during_speech_p50_ms={:.0} provisional_interval_p50_ms={:.0}",
        p50(&mut after_pause),
        p50(&mut during_speech),
        p50(&mut gaps)
    );
}
