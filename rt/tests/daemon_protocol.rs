//! The control protocol against a running v2m-rt (real binary, real FIFO microphone): every
//! request and its errors, hostile bytes, many subscribers, a client that never reads.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use support::{Daemon, FakeWorker, final_text, provisional};
use v2m_shm_proto::client::{Client, ClientError};
use v2m_shm_proto::protocol::{
    self, Assignment, DaemonMessage, DaemonState, ErrorKind, Event, Hello, PeerMessage, Reply,
    Request, RequestBody, Role,
};
use v2m_tests::watchdog::Watchdog;

fn refused(r: Result<Reply, ClientError>) -> ErrorKind {
    match r {
        Err(ClientError::Refused(e)) => {
            assert!(!e.message.is_empty());
            e.kind
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Reads what the daemon says on a raw socket until it closes (or 5 s pass).
fn answers(mut s: UnixStream) -> Vec<DaemonMessage> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Ok(Some(m)) = protocol::read_frame::<_, DaemonMessage>(&mut s, &mut buf) {
        out.push(m);
    }
    out
}

fn error_kinds(msgs: &[DaemonMessage]) -> Vec<ErrorKind> {
    msgs.iter()
        .filter_map(|m| match m {
            DaemonMessage::Response(r) => r.result.as_ref().err().map(|e| e.kind),
            _ => None,
        })
        .collect()
}

#[test]
fn every_request_and_its_errors() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "requests");
    let d = Daemon::start("requests", &["--stop-timeout-ms", "1500"], None);
    let mut c = d.client();
    assert_eq!(c.request(RequestBody::Ping).unwrap(), Reply::Pong);
    let s = d.status();
    assert_eq!(s.state, DaemonState::Idle);
    assert_eq!(s.device.as_deref(), Some("alsa:v2mmic"));
    assert!(s.workers.is_empty());

    // No worker: nothing could transcribe.
    assert_eq!(refused(c.request(RequestBody::Start)), ErrorKind::NoWorker);
    assert_eq!(
        refused(c.request(RequestBody::Stop)),
        ErrorKind::InvalidState
    );
    assert_eq!(
        refused(c.request(RequestBody::Cancel)),
        ErrorKind::InvalidState
    );
    // Files: refused clearly before anything else happens.
    for (path, why) in [
        ("relative.wav".to_string(), "absolute"),
        ("/nonexistent/x.wav".to_string(), "No such file"),
        (
            d.dir.join("config.txt").display().to_string(),
            "not an audio or video file",
        ),
    ] {
        std::fs::write(d.dir.join("config.txt"), "not audio").unwrap();
        match c.request(RequestBody::TranscribeFile { path: path.clone() }) {
            Err(ClientError::Refused(e)) => {
                assert_eq!(e.kind, ErrorKind::BadFile, "{path}");
                assert!(e.message.contains(why), "{path}: {}", e.message);
            }
            other => panic!("{path}: {other:?}"),
        }
    }

    // A worker: start, toggle, cancel, stop with text, no speech, timeout.
    let mut w = FakeWorker::connect(&d.socket, "fake");
    let Reply::Started {
        session_id,
        first_seq,
    } = c.request(RequestBody::Start).unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        w.assignment(Duration::from_secs(5)),
        Assignment::Session { session_id: s, owns_final: true, file: false } if s == session_id
    ));
    let rec = w
        .ring
        .session(session_id)
        .expect("the session is in the ring's table");
    assert_eq!(rec.first_seq, first_seq);
    assert!(rec.is_open());
    assert_eq!(
        refused(c.request(RequestBody::Start)),
        ErrorKind::InvalidState
    );
    assert_eq!(
        refused(c.request(RequestBody::Pause)),
        ErrorKind::InvalidState
    );
    assert_eq!(d.status().state, DaemonState::Recording);
    assert_eq!(d.status().session_id, Some(session_id));
    assert_eq!(
        c.request(RequestBody::Cancel).unwrap(),
        Reply::Cancelled { session_id }
    );
    assert_eq!(
        w.assignment(Duration::from_secs(5)),
        Assignment::Cancel { session_id }
    );
    assert!(!w.ring.session(session_id).unwrap().is_open());

    // toggle starts; stop waits for the worker's final.
    let Reply::Started { session_id, .. } = c.request(RequestBody::Toggle).unwrap() else {
        panic!()
    };
    w.assignment(Duration::from_secs(5));
    d.wait_frames(10);
    let socket = d.socket.clone();
    let stopper = std::thread::spawn(move || {
        Client::connect(&socket)
            .unwrap()
            .request(RequestBody::Toggle)
    });
    while w.ring.session(session_id).unwrap().is_open() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rec = w.ring.session(session_id).unwrap();
    assert!(rec.end_seq.unwrap() >= rec.first_seq + 10);
    assert_eq!(d.status().state, DaemonState::Finishing);
    w.send(final_text(session_id, "hello world"));
    match stopper.join().unwrap().unwrap() {
        Reply::Stopped(f) => {
            assert_eq!(
                (f.session_id, f.text.as_str(), f.worker.as_str()),
                (session_id, "hello world", "fake")
            );
        }
        other => panic!("{other:?}"),
    }
    let s = d.status();
    assert_eq!(s.last_session.unwrap().session_id, session_id);
    assert_eq!(s.state, DaemonState::Idle);

    // An empty final: no speech detected.
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    w.assignment(Duration::from_secs(5));
    let socket = d.socket.clone();
    let stopper =
        std::thread::spawn(move || Client::connect(&socket).unwrap().request(RequestBody::Stop));
    // A final comes after the session is closed (stop waits for the audio before it).
    let closed_by = std::time::Instant::now() + Duration::from_secs(10);
    while w.ring.session(session_id).unwrap().is_open() {
        assert!(
            std::time::Instant::now() < closed_by,
            "stop never closed the session"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    w.send(final_text(session_id, " "));
    assert_eq!(refused(stopper.join().unwrap()), ErrorKind::NoSpeech);

    // No final at all: a timeout, and the daemon goes on.
    c.request(RequestBody::Start).unwrap();
    w.assignment(Duration::from_secs(5));
    assert_eq!(refused(c.request(RequestBody::Stop)), ErrorKind::Timeout);
    assert_eq!(c.request(RequestBody::Ping).unwrap(), Reply::Pong);

    // Pause releases the input; start is refused; resume reopens it.
    assert_eq!(c.request(RequestBody::Pause).unwrap(), Reply::Paused);
    let s = d.status();
    assert_eq!((s.state, s.device.clone()), (DaemonState::Paused, None));
    assert_eq!(refused(c.request(RequestBody::Start)), ErrorKind::Paused);
    let frozen = d.status().ring.frames_written;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        d.status().ring.frames_written,
        frozen,
        "paused, yet frames arrive"
    );
    assert_eq!(c.request(RequestBody::Resume).unwrap(), Reply::Resumed);
    d.wait_frames(10);
    let s = d.status();
    assert_eq!(s.state, DaemonState::Idle);
    assert!(s.ring.discontinuities >= 1, "the gap is flagged");
    assert_eq!(s.workers.len(), 1);
    assert!(s.workers[0].connected && s.workers[0].owns_finals);
    assert_eq!(s.capture.allocs_after_start, Some(0));
    assert!(s.capture.callbacks > 0);

    // Shutdown: answered, socket removed, workers told, exit 0.
    let mut d = d;
    assert_eq!(
        c.request(RequestBody::Shutdown).unwrap(),
        Reply::ShuttingDown
    );
    assert_eq!(w.assignment(Duration::from_secs(5)), Assignment::Shutdown);
    assert!(d.wait_exit().success());
    assert!(!d.socket.exists(), "the socket file is removed");
}

#[test]
fn hostile_bytes_get_errors_and_the_daemon_keeps_serving_and_capturing() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "hostile bytes");
    let d = Daemon::start("hostile", &[], None);
    let hello = protocol::encode_frame(&PeerMessage::Hello(Hello::new(Role::Client))).unwrap();
    let request = protocol::encode_frame(&PeerMessage::Request(Request {
        id: 9,
        body: RequestBody::Ping,
    }))
    .unwrap();

    // Garbage after a hello: an error reply, and the connection still works.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&hello).unwrap();
    s.write_all(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    s.write_all(&request).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let got = answers(s);
    assert_eq!(error_kinds(&got), [ErrorKind::Malformed]);
    assert!(got.iter().any(
        |m| matches!(m, DaemonMessage::Response(r) if r.id == 9 && r.result == Ok(Reply::Pong))
    ));

    // A 2 GiB length prefix: refused, connection closed, nothing allocated.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&hello).unwrap();
    s.write_all(&(2u32 << 30).to_le_bytes()).unwrap();
    assert_eq!(error_kinds(&answers(s)), [ErrorKind::TooLarge]);

    // A truncated frame: the connection ends.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&hello).unwrap();
    s.write_all(&request[..request.len() - 2]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(error_kinds(&answers(s)).is_empty());

    // A request before hello: refused and closed.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&request).unwrap();
    let got = answers(s);
    assert_eq!(error_kinds(&got), [ErrorKind::HelloRequired]);

    // Pure noise instead of a hello.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _ = answers(s);

    // A wrong protocol version.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let old = protocol::encode_frame(&PeerMessage::Hello(Hello {
        protocol: 999,
        role: Role::Client,
    }))
    .unwrap();
    s.write_all(&old).unwrap();
    assert_eq!(error_kinds(&answers(s)), [ErrorKind::VersionMismatch]);

    // A client sending worker output.
    let mut c = UnixStream::connect(&d.socket).unwrap();
    c.write_all(&hello).unwrap();
    protocol::write_frame(&mut c, &PeerMessage::Worker(final_text(1, "x"))).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(error_kinds(&answers(c)), [ErrorKind::PermissionDenied]);

    // A client that vanishes mid-frame.
    {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.write_all(&hello).unwrap();
        s.write_all(&[200, 0]).unwrap();
    }

    // Still serving, still capturing.
    let before = d.status().ring.frames_written;
    d.wait_frames(20);
    let mut c = d.client();
    assert_eq!(c.request(RequestBody::Ping).unwrap(), Reply::Pong);
    assert!(d.status().ring.frames_written >= before + 20);
}

#[test]
fn fifty_subscribers_get_every_event_and_a_client_that_never_reads_stalls_nobody() {
    let _wd = Watchdog::arm(Duration::from_secs(180), "subscribers");
    let d = Daemon::start("subscribers", &[], None);
    // One that subscribes and then never reads a byte.
    let mut idle = d.client();
    assert_eq!(
        idle.request(RequestBody::Subscribe { metrics: false })
            .unwrap(),
        Reply::Subscribed
    );
    // Fifty that read, connecting at once.
    let socket = d.socket.clone();
    let subscribers: Vec<_> = (0..50)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&socket).unwrap();
                assert_eq!(
                    c.request(RequestBody::Subscribe { metrics: false })
                        .unwrap(),
                    Reply::Subscribed
                );
                c
            })
        })
        .map(|h| h.join().unwrap())
        .collect();
    let mut w = FakeWorker::connect(&d.socket, "fake");
    let mut c = d.client();
    let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
        panic!()
    };
    w.assignment(Duration::from_secs(5));
    // 2000 provisional events of 2 KiB: far more than the idle client's socket and queue hold.
    let text = "x".repeat(2048);
    // Readers that keep up (the worker waits for them every 100 events, as a real one is
    // paced by the audio) are never dropped, however loaded the machine is.
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|mut c| {
            let received = received.clone();
            std::thread::spawn(move || {
                let mut provisional = 0;
                loop {
                    match c.next_event(Some(Duration::from_secs(60))).unwrap() {
                        Event::Provisional(_) => {
                            provisional += 1;
                            received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Event::Final(f) => return (provisional, f.text),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for batch in 1..=20 {
        for _ in 0..100 {
            w.send(provisional(session_id, &text));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while received.load(std::sync::atomic::Ordering::Relaxed) < 50 * 100 * batch {
            assert!(
                std::time::Instant::now() < deadline,
                "the readers stopped receiving in batch {batch}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let socket = d.socket.clone();
    let stopper =
        std::thread::spawn(move || Client::connect(&socket).unwrap().request(RequestBody::Stop));
    while w.ring.session(session_id).unwrap().is_open() {
        std::thread::sleep(Duration::from_millis(10));
    }
    w.send(final_text(session_id, "done"));
    assert!(matches!(
        stopper.join().unwrap().unwrap(),
        Reply::Stopped(_)
    ));
    for r in readers {
        assert_eq!(r.join().unwrap(), (2000, "done".to_string()));
    }
    // The idle client was dropped, not waited for: its socket is closed after what it holds.
    let mut raw = idle.socket().try_clone().unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        match raw.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("the non-reading client was not disconnected: {e}"),
        }
    }
    assert!(total < 2000 * 2048, "it got everything: {total} bytes");
    assert_eq!(d.client().request(RequestBody::Ping).unwrap(), Reply::Pong);
}

#[test]
fn a_worker_that_reconnects_mid_session_still_completes_the_stop() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "reconnect");
    let d = Daemon::start("reconnect", &[], None);
    let w = FakeWorker::connect(&d.socket, "w1");
    let mut c = d.client();
    let Reply::Started {
        session_id,
        first_seq,
    } = c.request(RequestBody::Start).unwrap()
    else {
        panic!()
    };
    w.assignment(Duration::from_secs(5));
    d.wait_frames(5);
    drop(w);
    // Not supervised by this daemon: once gone it is no longer listed.
    d.wait_status(Duration::from_secs(30), "no longer listed", |s| {
        !s.workers.iter().any(|w| w.identity.name == "w1")
    });
    let socket = d.socket.clone();
    let stopper =
        std::thread::spawn(move || Client::connect(&socket).unwrap().request(RequestBody::Stop));
    std::thread::sleep(Duration::from_millis(200));
    // The replacement is assigned the session, reads it from its first frame, answers.
    let mut w = FakeWorker::connect(&d.socket, "w1");
    assert!(matches!(
        w.assignment(Duration::from_secs(5)),
        Assignment::Session { session_id: s, owns_final: true, file: false } if s == session_id
    ));
    let rec = w.ring.session(session_id).unwrap();
    assert_eq!(rec.first_seq, first_seq);
    assert!(!rec.is_open());
    w.ring.seek(rec.first_seq);
    let mut f = v2m_shm_proto::ring::Frame::default();
    assert!(w.ring.try_read(&mut f).is_some_and(|i| i.lost == 0));
    assert_eq!(f.seq, first_seq);
    w.send(final_text(session_id, "still here"));
    match stopper.join().unwrap().unwrap() {
        Reply::Stopped(f) => assert_eq!(f.text, "still here"),
        other => panic!("{other:?}"),
    }
    // A second worker of the same name is refused while the first is connected.
    let mut dup = UnixStream::connect(&d.socket).unwrap();
    protocol::write_frame(
        &mut dup,
        &PeerMessage::Hello(Hello::new(Role::Worker(
            v2m_shm_proto::protocol::WorkerIdentity {
                name: "w1".into(),
                model: "x".into(),
            },
        ))),
    )
    .unwrap();
    assert_eq!(error_kinds(&answers(dup)), [ErrorKind::InvalidState]);
}
