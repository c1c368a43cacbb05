//! A microphone that goes away and comes back: v2m-rt captures from a private PulseAudio
//! server through ALSA's pulse plugin (`v2m_tests::pulse_mic`), and the test kills the server
//! (the stream stops delivering without an error, as a crashed sound server or some USB
//! microphones do) and starts it again.

mod support;

use std::time::Duration;
use support::{Daemon, DaemonOptions, FakeWorker, final_text, scratch};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::protocol::{Reply, RequestBody};
use v2m_shm_proto::ring::{Frame, FrameFlags};
use v2m_tests::pulse_mic::{self, PulseMic};
use v2m_tests::watchdog::Watchdog;

fn on_pulse(name: &str) -> (Daemon, PulseMic) {
    PulseMic::require();
    let mut pulse = None;
    let d = DaemonOptions::new(scratch(name))
        .device(pulse_mic::DEVICE)
        .start_prepared(|dir, xdg| pulse = Some(PulseMic::start(dir, xdg)))
        .unwrap_or_else(|e| panic!("{e}"));
    (d, pulse.unwrap())
}

#[test]
fn a_microphone_that_goes_away_is_reopened_and_the_session_goes_on() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "device loss");
    let (d, mut pulse) = on_pulse("device-loss");
    let mut w = FakeWorker::connect(&d.socket, "reader");
    d.wait_frames(10);
    let s = d.status();
    assert_eq!(s.device.as_deref(), Some(pulse_mic::DEVICE));
    assert_eq!(s.device_error, None);
    let discontinuities = s.ring.discontinuities;

    // A dictation under way when the device goes.
    let mut c = d.client();
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    d.wait_frames(10);
    pulse.kill();

    // Noticed (no audio for 2 s), released, shown in status; control keeps answering.
    d.wait_status(Duration::from_secs(15), "the loss shown", |s| {
        s.device.is_none() && s.device_error.is_some()
    });
    let s = d.status();
    let error = s.device_error.clone().unwrap();
    assert!(error.contains(pulse_mic::DEVICE), "{error}");
    eprintln!("while gone: {error}");
    assert_eq!(c.request(RequestBody::Ping).unwrap(), Reply::Pong);
    assert_eq!(s.session_id, Some(session_id), "the session stays open");
    // Reopening fails while the device is gone, and is retried.
    let frames_gone = s.ring.frames_written;
    std::thread::sleep(Duration::from_millis(1_500));
    let s = d.status();
    assert!(
        s.ring.frames_written <= frames_gone + 1,
        "frames without a device"
    );
    assert!(s.device.is_none() && s.device_error.is_some());

    // The device comes back: reopened (backoff at most 10 s), capture goes on, the gap flagged.
    pulse.restart();
    d.wait_status(Duration::from_secs(20), "the device reopened", |s| {
        s.device.as_deref() == Some(pulse_mic::DEVICE) && s.device_error.is_none()
    });
    d.wait_frames(25);
    let s = d.status();
    assert!(
        s.ring.discontinuities > discontinuities,
        "the gap is not flagged: {s:?}"
    );

    // The session spans the loss: stop still completes, and its frames carry the gap.
    let socket = d.socket.clone();
    let stopper =
        std::thread::spawn(move || Client::connect(&socket).unwrap().request(RequestBody::Stop));
    while w.ring.session(session_id).unwrap().is_open() {
        std::thread::sleep(Duration::from_millis(10));
    }
    w.send(final_text(session_id, "still here"));
    match stopper.join().unwrap().unwrap() {
        Reply::Stopped(f) => assert_eq!(f.text, "still here"),
        other => panic!("stop answered {other:?}"),
    }
    let rec = w.ring.session(session_id).unwrap();
    w.ring.seek(rec.first_seq);
    let mut f = Frame::default();
    let mut gaps = 0;
    for _ in rec.first_seq..rec.end_seq.unwrap() {
        w.ring
            .try_read(&mut f)
            .expect("the session's frames are in the ring");
        gaps += usize::from(f.meta.flags.contains(FrameFlags::DISCONTINUITY));
    }
    assert!(gaps >= 1, "the session's frames do not show the gap");
}

#[test]
fn shutdown_with_a_stalled_device_still_exits() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "shutdown while stalled");
    let (mut d, mut pulse) = on_pulse("device-stalled-shutdown");
    d.wait_frames(10);
    // Gone, and shut down before the stall is noticed: closing the stream cannot finish.
    pulse.kill();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.client().request(RequestBody::Shutdown).unwrap(),
        Reply::ShuttingDown
    );
    let status = d.wait_exit();
    assert!(status.success(), "v2m-rt exited with {status}");
    assert!(!d.socket.exists(), "the socket file is left behind");
}
