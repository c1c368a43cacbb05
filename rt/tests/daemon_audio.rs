//! Real recorded speech through the running v2m-rt: the FIFO microphone at 48 kHz stereo
//! into a session, and a WAV file through `transcribe-file`; the test reads the ring as a
//! worker does.

mod support;

use std::path::Path;
use std::time::Duration;
use support::{Daemon, FakeWorker, SPEECH, final_text};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::protocol::{Reply, RequestBody};
use v2m_shm_proto::ring::{FRAME_NS, FRAME_SAMPLES, Frame, FrameFlags, RingReader};
use v2m_tests::fifo_mic::{mono16k, sox_raw};
use v2m_tests::signal::correlation;
use v2m_tests::watchdog::Watchdog;

/// Where `speech` best lines up inside `out`, and how well.
fn align(speech: &[f32], out: &[f32]) -> (usize, f64) {
    let energy = |x: &[f32]| {
        x.chunks(FRAME_SAMPLES)
            .position(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt() > 0.02)
            .unwrap()
            * FRAME_SAMPLES
    };
    let guess = energy(out) as i64 - energy(speech) as i64;
    (guess - 960..=guess + 960)
        .filter(|d| *d >= 0 && (*d as usize) < out.len())
        .map(|d| (d as usize, correlation(speech, &out[d as usize..])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

fn session_frames(ring: &mut RingReader, first: u64, end: u64) -> Vec<Frame> {
    ring.seek(first);
    let mut frames = Vec::new();
    let mut f = Frame::default();
    while frames.len() < (end - first) as usize {
        let info = ring
            .try_read(&mut f)
            .expect("the session's frames are in the ring");
        assert_eq!(info.lost, 0);
        frames.push(f.clone());
    }
    frames
}

/// Stops the session as a client does and answers the stop as its worker once v2m-rt has
/// closed it; returns when it closed and its frames.
fn stop_and_read(
    d: &Daemon,
    w: &mut FakeWorker,
    session_id: u64,
    text: &str,
) -> (std::time::Instant, Vec<Frame>) {
    let socket = d.socket.clone();
    let stopper =
        std::thread::spawn(move || Client::connect(&socket).unwrap().request(RequestBody::Stop));
    while w.ring.session(session_id).unwrap().is_open() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let closed = std::time::Instant::now();
    w.send(final_text(session_id, text));
    assert!(matches!(
        stopper.join().unwrap().unwrap(),
        Reply::Stopped(_)
    ));
    let rec = w.ring.session(session_id).unwrap();
    let frames = session_frames(&mut w.ring, rec.first_seq, rec.end_seq.unwrap());
    (closed, frames)
}

#[test]
fn a_dictation_from_the_fifo_microphone_is_whole_in_its_session() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "dictation audio");
    let d = Daemon::start("dictation", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "reader");
    let speech = mono16k(Path::new(SPEECH));
    let mic = sox_raw(
        Path::new(SPEECH),
        &["-r", "48000", "-c", "2"],
        &["pad", "1", "1"],
    );
    // Enough captured for the whole 300 ms pre-roll to exist before `start`.
    d.wait_frames(25);
    let mut c = d.client();
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    let started = std::time::Instant::now();
    let clip = d.mic.play(&mic);
    clip.wait_started();
    d.mic.wait_idle();
    std::thread::sleep(Duration::from_millis(300));
    let (closed, frames) = stop_and_read(&d, &mut w, session_id, "heard");
    let stopped = closed - started;
    // Contiguous: one frame per 20 ms of capture, no gaps, no discontinuity.
    assert!(
        frames
            .windows(2)
            .all(|p| p[1].meta.capture_ns - p[0].meta.capture_ns == FRAME_NS)
    );
    assert!(
        frames
            .iter()
            .all(|f| !f.meta.flags.contains(FrameFlags::DISCONTINUITY))
    );
    // The pre-roll: 300 ms published before the session began, so not marked as its own (the
    // DSP thread sees the new id a block later, hence up to two more).
    let unmarked = frames
        .iter()
        .take_while(|f| f.meta.session_id != session_id)
        .count();
    assert!(
        (15..=17).contains(&unmarked),
        "the session should reach back 300 ms (15 frames) before start: {unmarked}"
    );
    // The frames add up to the time the session was open, plus the 300 ms pre-roll.
    let expected = (stopped.as_secs_f64() + 0.3) / 0.02;
    eprintln!("{} frames, {expected:.1} expected", frames.len());
    assert!(
        (frames.len() as f64 - expected).abs() <= 3.0,
        "{} frames for {expected:.1}",
        frames.len()
    );
    let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    let (at, best) = align(&speech, &out);
    eprintln!("correlation {best:.4} at {at}");
    assert!(
        best > 0.99,
        "the session's audio differs from the recording: {best}"
    );
    assert!(
        at + speech.len() <= out.len(),
        "the recording's end is missing"
    );
    // VAD: speech in the recording, not in the second of silence before it.
    let first = at / FRAME_SAMPLES;
    let lead = &frames[first.saturating_sub(40)..first.saturating_sub(5)];
    let body = &frames[first + 10..(at + speech.len()) / FRAME_SAMPLES - 10];
    let speechy = |fs: &[Frame]| {
        fs.iter()
            .filter(|f| f.meta.flags.contains(FrameFlags::SPEECH))
            .count()
    };
    eprintln!(
        "VAD: lead {}/{} body {}/{}",
        speechy(lead),
        lead.len(),
        speechy(body),
        body.len()
    );
    assert!(
        speechy(lead) * 20 <= lead.len().max(1),
        "silence flagged as speech"
    );
    assert!(speechy(body) * 10 >= body.len() * 6, "speech not flagged");
    // Frames carry their session id (the pre-roll's were published before the session).
    assert!(frames.last().unwrap().meta.session_id == session_id);
}

#[test]
fn clicks_half_a_second_apart_stay_8000_samples_apart_on_a_busy_machine() {
    // A 2 ms click every 500 ms for 8 s, with both cores kept busy: a period of audio lost or
    // repeated anywhere between the microphone and the ring (the FIFO microphone once threw
    // 10 ms away whenever its reader fell behind) moves every later click.
    let _wd = Watchdog::arm(Duration::from_secs(120), "click train");
    let d = Daemon::start("clicks", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "reader");
    const CLICKS: usize = 16;
    const APART_48K: usize = 24_000;
    let mut mic = vec![0u8; (CLICKS * APART_48K + 4_800) * 4];
    for k in 0..CLICKS {
        for i in 0..96 {
            let v: i16 = if (i / 12) % 2 == 0 { 20_000 } else { -20_000 };
            let o = (k * APART_48K + i) * 4;
            mic[o..o + 2].copy_from_slice(&v.to_le_bytes());
            mic[o + 2..o + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    d.wait_frames(25);
    let mut c = d.client();
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                }
            })
        })
        .collect();
    let clip = d.mic.play(&mic);
    clip.wait_started();
    d.mic.wait_idle();
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    spinners.into_iter().for_each(|t| t.join().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let (_, frames) = stop_and_read(&d, &mut w, session_id, "clicks");
    let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    // Each click's first sample over 0.2 (the clicks are 0.6 at full scale).
    let mut at = Vec::new();
    let mut i = 0;
    while i < out.len() {
        if out[i].abs() > 0.2 {
            at.push(i);
            i += 4_000;
        } else {
            i += 1;
        }
    }
    let apart: Vec<usize> = at.windows(2).map(|p| p[1] - p[0]).collect();
    eprintln!("{} clicks, {apart:?} samples apart", at.len());
    assert_eq!(at.len(), CLICKS, "clicks in the session");
    assert!(
        apart.iter().all(|&a| a.abs_diff(APART_48K / 3) <= 1),
        "audio lost or repeated between clicks: {apart:?} samples apart (8000 each)"
    );
}

#[test]
fn stop_keeps_every_sample_captured_before_it() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "stop at the end of speech");
    let d = Daemon::start("stop-end", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "reader");
    let speech = mono16k(Path::new(SPEECH));
    // Half a second of silence before the speech, nothing after it: no padding to hide a cut.
    let mic = sox_raw(
        Path::new(SPEECH),
        &["-r", "48000", "-c", "2"],
        &["pad", "0.5", "0"],
    );
    d.wait_frames(25);
    let mut c = d.client();
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    let first_seq = w.ring.session(session_id).unwrap().first_seq;
    let _clip = d.mic.play(&mic);
    // Aim the stop 10 ms past the speech's end on v2m-rt's own frame timeline: the speech's
    // onset as it arrives in the ring, plus its length. (Aiming by the feeder's clock missed
    // by up to 45 ms on a loaded CI machine: the timeline and the feeder differ by up to
    // 22 ms under load, and ALSA reads the pipe up to 21 ms late.)
    let loud = 0.1 * speech.iter().fold(0f32, |m, s| m.max(s.abs()));
    let onset = |x: &[f32]| x.iter().position(|s| s.abs() > loud);
    let lead = onset(&speech).unwrap() as u64;
    let sample_ns = FRAME_NS / FRAME_SAMPLES as u64;
    w.ring.seek(first_seq);
    let mut f = Frame::default();
    let onset_ns = loop {
        w.ring
            .read_timeout(&mut f, Duration::from_secs(10))
            .expect("the session's frames keep coming");
        if let Some(i) = onset(&f.samples) {
            break f.meta.capture_ns + i as u64 * sample_ns - lead * sample_ns;
        }
    };
    let stop_at = onset_ns + speech.len() as u64 * sample_ns + 10_000_000;
    std::thread::sleep(Duration::from_nanos(stop_at.saturating_sub(monotonic_ns())));
    let mut stopper = d.client();
    let stop_ns = monotonic_ns();
    let stop = std::thread::spawn(move || stopper.request(RequestBody::Stop));
    while w.ring.session(session_id).unwrap().is_open() {
        std::thread::sleep(Duration::from_millis(2));
    }
    w.send(final_text(session_id, "heard"));
    assert!(matches!(stop.join().unwrap().unwrap(), Reply::Stopped(_)));

    let rec = w.ring.session(session_id).unwrap();
    let frames = session_frames(&mut w.ring, rec.first_seq, rec.end_seq.unwrap());
    // The last frame is the one holding the stop instant (v2m-rt stamps the request a moment
    // after the test does: 5 ms allowed).
    let last = frames.last().unwrap().meta.capture_ns;
    eprintln!(
        "last frame starts {:.1} ms before the stop",
        (stop_ns as f64 - last as f64) / 1e6
    );
    assert!(
        last <= stop_ns + 5_000_000 && stop_ns < last + FRAME_NS,
        "the session's last frame ({last}) does not hold the stop instant ({stop_ns})"
    );
    // All of the speech is in the session, and it ended just before the stop.
    let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    let (at, best) = align(&speech, &out);
    assert!(best > 0.99, "the session's audio differs: {best}");
    let speech_end = at + speech.len();
    assert!(
        speech_end <= out.len(),
        "the last {} samples of speech were cut off",
        speech_end - out.len()
    );
    let end_frame = &frames[(speech_end - 1) / FRAME_SAMPLES];
    let captured = end_frame.meta.capture_ns
        + ((speech_end - 1) % FRAME_SAMPLES) as u64 * 1_000_000_000 / 16_000;
    let before_stop_ms = (stop_ns as f64 - captured as f64) / 1e6;
    eprintln!("speech ended {before_stop_ms:.1} ms before the stop");
    assert!(
        (-5.0..=60.0).contains(&before_stop_ms),
        "the stop was not right at the end of speech: {before_stop_ms:.1} ms"
    );
}

#[test]
fn transcribe_file_runs_a_wav_through_dsp_into_its_own_session() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "transcribe-file audio");
    let d = Daemon::start("file", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "reader");
    // 44.1 kHz stereo: the general resampling path.
    let wav = d.dir.join("speech44.wav");
    let ok = std::process::Command::new("sox")
        .arg("-D")
        .args([SPEECH, "-r", "44100", "-c", "2"])
        .arg(&wav)
        .status()
        .unwrap();
    assert!(ok.success());
    let speech = mono16k(Path::new(SPEECH));
    let path = wav.display().to_string();
    let socket = d.socket.clone();
    let asker = std::thread::spawn(move || {
        Client::connect(&socket)
            .unwrap()
            .request(RequestBody::TranscribeFile { path })
    });
    let v2m_shm_proto::protocol::Assignment::Session { session_id, .. } =
        w.assignment(Duration::from_secs(10))
    else {
        panic!()
    };
    while w.ring.session(session_id).unwrap().is_open() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rec = w.ring.session(session_id).unwrap();
    let frames = session_frames(&mut w.ring, rec.first_seq, rec.end_seq.unwrap());
    let want = speech.len().div_ceil(FRAME_SAMPLES);
    eprintln!("{} frames for {} samples", frames.len(), speech.len());
    assert!(
        frames.len() >= want && frames.len() <= want + 2,
        "{} frames for {want}",
        frames.len()
    );
    assert!(frames.iter().all(|f| f.meta.session_id == session_id));
    let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    let (at, best) = align(&speech, &out);
    eprintln!("correlation {best:.4} at {at}");
    assert!(best > 0.99, "file audio differs from the source: {best}");
    assert!(at < 160, "the file starts {at} samples into its session");
    w.send(final_text(session_id, "heard"));
    match asker.join().unwrap().unwrap() {
        Reply::Transcribed(f) => assert_eq!((f.session_id, f.text.as_str()), (session_id, "heard")),
        other => panic!("{other:?}"),
    }
    // Back on the microphone afterwards.
    d.wait_frames(10);
    assert_eq!(d.status().device.as_deref(), Some("alsa:v2mmic"));
}

#[test]
fn a_dictation_longer_than_the_ring_is_whole_for_a_worker_that_keeps_up() {
    let _wd = Watchdog::arm(Duration::from_secs(400), "200 s dictation");
    let d = Daemon::start("long-dictation", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "reader");
    let capacity = u64::from(d.status().ring.capacity);
    // The recording 29 times over: 206 s, more than the ring's 164 s.
    let speech = mono16k(Path::new(SPEECH));
    let mic = sox_raw(
        Path::new(SPEECH),
        &["-r", "48000", "-c", "2"],
        &["repeat", "28", "pad", "0", "1"],
    );
    d.wait_frames(25);
    let mut c = d.client();
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    let clip = d.mic.play(&mic);
    let first = w.ring.session(session_id).unwrap().first_seq;
    // The worker reads as the audio comes, as a real one does.
    let mut frames: Vec<Frame> = Vec::new();
    let mut f = Frame::default();
    w.ring.seek(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(clip.seconds as u64 + 60);
    let mut stopper = None;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the dictation never ended"
        );
        if let Some(info) = w.ring.read_timeout(&mut f, Duration::from_millis(100)) {
            assert_eq!(info.lost, 0, "frames lost at {}", f.seq);
            let rec = w.ring.session(session_id).unwrap();
            if rec.end_seq.is_some_and(|end| f.seq >= end) {
                break;
            }
            frames.push(f.clone());
        }
        if stopper.is_none() && d.mic.idle() {
            let socket = d.socket.clone();
            stopper = Some(std::thread::spawn(move || {
                Client::connect(&socket).unwrap().request(RequestBody::Stop)
            }));
        }
    }
    w.send(final_text(session_id, "heard"));
    let stopped = stopper.expect("stopped").join().unwrap();
    assert!(matches!(stopped, Ok(Reply::Stopped(_))), "{stopped:?}");
    let rec = w.ring.session(session_id).unwrap();
    let end = rec.end_seq.unwrap();
    // Frames after the end that were read before the session was closed are not the session's.
    frames.retain(|f| f.seq < end);
    assert_eq!(frames.len() as u64, end - first);
    assert!(
        frames.len() as u64 > capacity + 1000,
        "{} frames: not longer than the ring ({capacity})",
        frames.len()
    );
    assert!(frames.windows(2).all(|p| p[1].seq == p[0].seq + 1));
    // The first and the last of the 29 recordings are in it, intact, where they belong.
    let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    let (at, best) = align(&speech, &out[..out.len().min(20 * 16_000)]);
    assert!(best > 0.99, "the first recording differs: {best}");
    let last = at + 28 * speech.len();
    let (at_last, best_last) = (last.saturating_sub(960)..=last + 960)
        .filter(|&d| d + speech.len() <= out.len())
        .map(|d| (d, correlation(&speech, &out[d..])))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the last recording within the session");
    eprintln!("first at {at} ({best:.4}), last at {at_last} ({best_last:.4})");
    assert!(best_last > 0.99, "the last recording differs: {best_last}");
}
