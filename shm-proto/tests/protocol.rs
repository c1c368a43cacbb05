//! The control protocol: every message survives a round trip; bad bytes become typed errors.

use proptest::prelude::*;
use std::collections::HashSet;
use std::io::Cursor;
use std::os::unix::net::UnixStream;
use v2m_shm_proto::protocol::*;

fn timings() -> Timings {
    Timings {
        mel_ms: 1.5,
        encoder_ms: 180.25,
        decoder_ms: 42.0,
        tokens: 11,
        audio_first_seq: 100,
        audio_end_seq: 350,
    }
}

fn final_text() -> FinalText {
    FinalText {
        session_id: 7,
        text: "Hello, wörld — ünïcode ✓".into(),
        worker: "w0".into(),
        stop_to_final_ms: 31.5,
        timings: timings(),
        capture_to_read: LagSummary {
            frames: 21,
            p50_ms: 4.0,
            p99_ms: 5.0,
            max_ms: 5.0,
        },
        speculative: true,
        lost_frames: 3,
        segments: vec![TextSegment {
            start_s: 0.5,
            end_s: 2.25,
            text: "Hello, wörld".into(),
            avg_logprob: -0.2,
            no_speech_prob: 0.01,
        }],
    }
}

fn provisional() -> ProvisionalText {
    ProvisionalText {
        session_id: 7,
        stable: "Hello".into(),
        tentative: " wor".into(),
        worker: "w0".into(),
        timings: timings(),
    }
}

fn worker_id() -> WorkerIdentity {
    WorkerIdentity {
        name: "w0".into(),
        model: "tiny.en/int8".into(),
    }
}

fn health() -> WorkerHealth {
    WorkerHealth {
        model_loaded: true,
        execution_provider: "cpu".into(),
        frames_lost: 3,
        note: "CUDA not built".into(),
    }
}

fn read_lag() -> ReadLag {
    ReadLag {
        counts: vec![0, 0, 3, 17, 1],
    }
}

const ALL_KINDS: [ErrorKind; 14] = [
    ErrorKind::HelloRequired,
    ErrorKind::VersionMismatch,
    ErrorKind::PermissionDenied,
    ErrorKind::Malformed,
    ErrorKind::TooLarge,
    ErrorKind::InvalidState,
    ErrorKind::Paused,
    ErrorKind::NoSpeech,
    ErrorKind::Timeout,
    ErrorKind::NoWorker,
    ErrorKind::Device,
    ErrorKind::BadFile,
    ErrorKind::Busy,
    ErrorKind::Internal,
];

// Exhaustive matches without wildcards: adding a variant breaks the build here until the
// samples below cover it.
fn request_index(b: &RequestBody) -> usize {
    match b {
        RequestBody::Ping => 0,
        RequestBody::Start => 1,
        RequestBody::Stop => 2,
        RequestBody::Toggle => 3,
        RequestBody::Cancel => 4,
        RequestBody::Status => 5,
        RequestBody::Subscribe { .. } => 6,
        RequestBody::Pause => 7,
        RequestBody::Resume => 8,
        RequestBody::TranscribeFile { .. } => 9,
        RequestBody::Shutdown => 10,
        RequestBody::Last { .. } => 11,
    }
}

fn reply_index(r: &Reply) -> usize {
    match r {
        Reply::Pong => 0,
        Reply::Started { .. } => 1,
        Reply::Stopped(_) => 2,
        Reply::Cancelled { .. } => 3,
        Reply::Status(_) => 4,
        Reply::Subscribed => 5,
        Reply::Paused => 6,
        Reply::Resumed => 7,
        Reply::Transcribed(_) => 8,
        Reply::ShuttingDown => 9,
        Reply::Last(_) => 10,
    }
}

fn event_index(e: &Event) -> usize {
    match e {
        Event::Provisional(_) => 0,
        Event::Final(_) => 1,
        Event::StateChanged { .. } => 2,
        Event::WorkerUp(_) => 3,
        Event::WorkerDown { .. } => 4,
        Event::ReadLag { .. } => 5,
        Event::Progress { .. } => 6,
    }
}

fn kind_index(k: ErrorKind) -> usize {
    ALL_KINDS.iter().position(|x| *x == k).unwrap()
}

fn peer_messages() -> Vec<PeerMessage> {
    let mut v = vec![
        PeerMessage::Hello(Hello::new(Role::Client)),
        PeerMessage::Hello(Hello::new(Role::Worker(worker_id()))),
        PeerMessage::Worker(WorkerMessage::Provisional(provisional())),
        PeerMessage::Worker(WorkerMessage::Final(final_text())),
        PeerMessage::Worker(WorkerMessage::Health(health())),
        PeerMessage::Worker(WorkerMessage::Heartbeat { pass_ms: Some(812) }),
        PeerMessage::Worker(WorkerMessage::Heartbeat { pass_ms: None }),
        PeerMessage::Worker(WorkerMessage::ReadLag {
            session_id: 7,
            histogram: read_lag(),
        }),
        PeerMessage::Worker(WorkerMessage::Progress {
            session_id: 7,
            next_seq: 12_345,
        }),
    ];
    let bodies = [
        RequestBody::Ping,
        RequestBody::Start,
        RequestBody::Stop,
        RequestBody::Toggle,
        RequestBody::Cancel,
        RequestBody::Status,
        RequestBody::Subscribe { metrics: true },
        RequestBody::Pause,
        RequestBody::Resume,
        RequestBody::TranscribeFile {
            path: "/home/u/rec ording.wav".into(),
        },
        RequestBody::Shutdown,
        RequestBody::Last { count: 3 },
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        v.push(PeerMessage::Request(Request {
            id: u64::MAX - i as u64,
            body,
        }));
    }
    v
}

fn daemon_messages() -> Vec<DaemonMessage> {
    let status = StatusReport {
        state: DaemonState::Recording,
        session_id: Some(7),
        device: Some("default".into()),
        device_error: None,
        ring: RingCounters {
            frames_written: 12345,
            samples_dropped: 2,
            discontinuities: 1,
            capacity: 8192,
        },
        workers: vec![WorkerStatus {
            identity: worker_id(),
            connected: true,
            owns_finals: true,
            health: Some(health()),
            restarts: 1,
            heard_ms_ago: Some(250),
            pass_ms: Some(400),
        }],
        last_session: Some(SessionLatency {
            session_id: 6,
            stop_to_final_ms: 40.0,
            first_provisional_ms: Some(700.0),
        }),
        capture: CaptureMetrics {
            callbacks: 900,
            callback_max_us: 80.5,
            callback_p99_us: 20.0,
            dsp_frame_p50_us: 30.0,
            dsp_frame_p99_us: 90.0,
            capture_to_ring_p50_us: 21_000.0,
            capture_to_ring_p99_us: 23_000.0,
            capture_to_handover_p99_us: 22_500.0,
            handover_to_ring_p99_us: 400.0,
            allocs_after_start: Some(0),
            frees_after_start: Some(0),
        },
    };
    let replies = vec![
        Reply::Pong,
        Reply::Started {
            session_id: 7,
            first_seq: 1000,
        },
        Reply::Stopped(final_text()),
        Reply::Cancelled { session_id: 7 },
        Reply::Status(status),
        Reply::Subscribed,
        Reply::Paused,
        Reply::Resumed,
        Reply::Transcribed(final_text()),
        Reply::ShuttingDown,
        Reply::Last(vec![final_text(), final_text()]),
    ];
    let mut v: Vec<DaemonMessage> = replies
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            DaemonMessage::Response(Response {
                id: i as u64 + 1,
                result: Ok(r),
            })
        })
        .collect();
    for kind in ALL_KINDS {
        v.push(DaemonMessage::Response(Response {
            id: 0,
            result: Err(ErrorReply::new(kind, format!("because {kind}"))),
        }));
    }
    v.extend([
        DaemonMessage::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            daemon_version: "0.1.0".into(),
            ring_attached: true,
        }),
        DaemonMessage::Event(Event::Provisional(provisional())),
        DaemonMessage::Event(Event::Final(final_text())),
        DaemonMessage::Event(Event::WorkerUp(worker_id())),
        DaemonMessage::Event(Event::WorkerDown {
            name: "w0".into(),
            reason: "exited with signal 9".into(),
        }),
        DaemonMessage::Event(Event::ReadLag {
            session_id: 7,
            histogram: read_lag(),
        }),
        DaemonMessage::Event(Event::Progress {
            session_id: 7,
            done_s: 12.5,
            total_s: Some(600.0),
        }),
        DaemonMessage::Assignment(Assignment::Session {
            session_id: 7,
            owns_final: true,
            file: true,
        }),
        DaemonMessage::Assignment(Assignment::Cancel { session_id: 7 }),
        DaemonMessage::Assignment(Assignment::Shutdown),
    ]);
    for state in [
        DaemonState::Idle,
        DaemonState::Recording,
        DaemonState::Finishing,
        DaemonState::Paused,
    ] {
        v.push(DaemonMessage::Event(Event::StateChanged {
            state,
            session_id: None,
        }));
    }
    v
}

fn round_trip<T>(msg: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let bytes = encode_frame(msg).unwrap();
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(len, bytes.len() - 4, "length prefix");
    let mut cursor = Cursor::new(bytes);
    let back: T = read_frame(&mut cursor, &mut Vec::new()).unwrap().unwrap();
    // Nothing left behind, and the next read is a clean end of stream.
    assert!(
        read_frame::<_, T>(&mut cursor, &mut Vec::new())
            .unwrap()
            .is_none()
    );
    back
}

#[test]
fn every_peer_message_round_trips() {
    let msgs = peer_messages();
    let mut seen = HashSet::new();
    for m in &msgs {
        assert_eq!(&round_trip(m), m);
        if let PeerMessage::Request(r) = m {
            seen.insert(request_index(&r.body));
        }
    }
    assert_eq!(seen.len(), 12, "every request variant is sampled");
}

#[test]
fn every_daemon_message_round_trips() {
    let msgs = daemon_messages();
    let (mut replies, mut events, mut kinds) = (HashSet::new(), HashSet::new(), HashSet::new());
    for m in &msgs {
        assert_eq!(&round_trip(m), m);
        match m {
            DaemonMessage::Response(Response { result: Ok(r), .. }) => {
                replies.insert(reply_index(r));
            }
            DaemonMessage::Response(Response { result: Err(e), .. }) => {
                kinds.insert(kind_index(e.kind));
            }
            DaemonMessage::Event(e) => {
                events.insert(event_index(e));
            }
            _ => {}
        }
    }
    assert_eq!(replies.len(), 11, "every reply variant is sampled");
    assert_eq!(events.len(), 7, "every event variant is sampled");
    assert_eq!(kinds.len(), ALL_KINDS.len(), "every error kind is sampled");
}

#[test]
fn several_frames_on_one_stream_read_back_in_order() {
    let msgs = peer_messages();
    let mut bytes = Vec::new();
    for m in &msgs {
        write_frame(&mut bytes, m).unwrap();
    }
    let mut cursor = Cursor::new(bytes);
    let mut buf = Vec::new();
    for m in &msgs {
        let got: PeerMessage = read_frame(&mut cursor, &mut buf).unwrap().unwrap();
        assert_eq!(&got, m);
    }
}

#[test]
fn oversized_length_is_refused_before_reading_the_payload() {
    // A 2 GiB announcement with no payload behind it: refused from the prefix alone.
    let mut cursor = Cursor::new((2u32 << 30).to_le_bytes().to_vec());
    let mut buf = Vec::new();
    let err = read_frame::<_, PeerMessage>(&mut cursor, &mut buf).unwrap_err();
    assert!(
        matches!(err, FrameError::TooLarge { len } if len == 2 << 30),
        "{err}"
    );
    assert!(buf.capacity() < MAX_FRAME_LEN, "nothing was allocated");
    assert!(!err.is_recoverable());
    // Exactly the maximum is allowed through the prefix check; one more is not.
    assert_eq!(
        payload_len((MAX_FRAME_LEN as u32).to_le_bytes()).unwrap(),
        MAX_FRAME_LEN
    );
    assert!(payload_len((MAX_FRAME_LEN as u32 + 1).to_le_bytes()).is_err());
}

#[test]
fn oversized_message_is_refused_when_encoding() {
    let big = PeerMessage::Request(Request {
        id: 1,
        body: RequestBody::TranscribeFile {
            path: "x".repeat(MAX_FRAME_LEN + 1),
        },
    });
    assert!(matches!(
        encode_frame(&big),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn truncated_frames_are_typed_errors() {
    let bytes = encode_frame(&PeerMessage::Hello(Hello::new(Role::Worker(worker_id())))).unwrap();
    for cut in 1..bytes.len() {
        let mut cursor = Cursor::new(bytes[..cut].to_vec());
        let err = read_frame::<_, PeerMessage>(&mut cursor, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, FrameError::Truncated { got, .. } if got == cut),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn garbage_and_trailing_bytes_are_malformed() {
    // Variant index 200 does not exist.
    let mut frame = vec![1, 0, 0, 0, 200];
    let err =
        read_frame::<_, PeerMessage>(&mut Cursor::new(frame.clone()), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    assert!(err.is_recoverable());
    // A valid Ping request followed by a stray byte inside the same frame.
    let mut payload = postcard::to_stdvec(&PeerMessage::Request(Request {
        id: 5,
        body: RequestBody::Ping,
    }))
    .unwrap();
    payload.push(0xAA);
    frame.clear();
    frame.extend((payload.len() as u32).to_le_bytes());
    frame.extend(payload);
    let err = read_frame::<_, PeerMessage>(&mut Cursor::new(frame), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, FrameError::TrailingBytes(1)), "{err}");
}

#[test]
fn a_frame_carries_a_descriptor() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mem_w, _mem_r) = UnixStream::pair().unwrap();
    let welcome = DaemonMessage::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        daemon_version: "t".into(),
        ring_attached: true,
    });
    write_frame_with_fds(&a, &welcome, &[std::os::fd::AsFd::as_fd(&mem_w)]).unwrap();
    // A second, ordinary frame right behind it must not be swallowed.
    write_frame(&mut &a, &DaemonMessage::Event(Event::WorkerUp(worker_id()))).unwrap();
    let (got, fds) = read_frame_with_fds::<DaemonMessage>(&b).unwrap().unwrap();
    assert_eq!(got, welcome);
    assert_eq!(fds.len(), 1, "descriptor missing");
    let next: DaemonMessage = read_frame(&mut &b, &mut Vec::new()).unwrap().unwrap();
    assert_eq!(next, DaemonMessage::Event(Event::WorkerUp(worker_id())));
    drop(a);
    assert!(
        read_frame_with_fds::<DaemonMessage>(&b).unwrap().is_none(),
        "clean end of stream"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the reader: every frame either decodes, or gives a typed
    /// error, and reading stops.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut cursor = Cursor::new(bytes);
        let mut buf = Vec::new();
        for _ in 0..64 {
            match read_frame::<_, PeerMessage>(&mut cursor, &mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let mut cursor = Cursor::new(cursor.into_inner());
        let _ = read_frame::<_, DaemonMessage>(&mut cursor, &mut buf);
    }

    /// Several frames with valid length prefixes and arbitrary payloads, back to back: every
    /// decoder (peer, daemon, worker messages) either decodes each or gives a typed error,
    /// never a panic.
    #[test]
    fn valid_lengths_with_random_payloads_reach_every_decoder(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8)
    ) {
        let mut stream = Vec::new();
        for p in &payloads {
            stream.extend((p.len() as u32).to_le_bytes());
            stream.extend(p);
        }
        let mut buf = Vec::new();
        let mut peer = Cursor::new(stream.clone());
        let mut daemon = Cursor::new(stream);
        for _ in &payloads {
            match read_frame::<_, PeerMessage>(&mut peer, &mut buf) {
                Ok(Some(_)) | Err(FrameError::Malformed(_)) | Err(FrameError::TrailingBytes(_)) => {}
                other => prop_assert!(false, "peer decoder: {:?}", other.map(|_| ())),
            }
            match read_frame::<_, DaemonMessage>(&mut daemon, &mut buf) {
                Ok(Some(_)) | Err(FrameError::Malformed(_)) | Err(FrameError::TrailingBytes(_)) => {}
                other => prop_assert!(false, "daemon decoder: {:?}", other.map(|_| ())),
            }
        }
        prop_assert!(matches!(read_frame::<_, PeerMessage>(&mut peer, &mut buf), Ok(None)));
    }

    /// A valid length prefix followed by arbitrary payload bytes: decoded or Malformed /
    /// TrailingBytes / Truncated, never a panic, never another error.
    #[test]
    fn arbitrary_payloads_give_typed_errors(payload in proptest::collection::vec(any::<u8>(), 0..256), extra in 0usize..3) {
        let mut frame = ((payload.len() + extra) as u32).to_le_bytes().to_vec();
        frame.extend(&payload);
        match read_frame::<_, PeerMessage>(&mut Cursor::new(frame), &mut Vec::new()) {
            Ok(Some(_)) => prop_assert_eq!(extra, 0),
            Ok(None) => prop_assert!(false, "a prefix was present"),
            Err(FrameError::Truncated { .. }) => prop_assert!(extra > 0),
            Err(FrameError::Malformed(_)) | Err(FrameError::TrailingBytes(_)) => prop_assert_eq!(extra, 0),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// Any request round-trips.
    #[test]
    fn arbitrary_requests_round_trip(id in any::<u64>(), path in ".{0,64}", pick in 0usize..12, n in any::<u32>()) {
        let body = match pick {
            0 => RequestBody::Ping, 1 => RequestBody::Start, 2 => RequestBody::Stop,
            3 => RequestBody::Toggle, 4 => RequestBody::Cancel, 5 => RequestBody::Status,
            6 => RequestBody::Subscribe { metrics: n % 2 == 0 }, 7 => RequestBody::Pause,
            8 => RequestBody::Resume, 9 => RequestBody::TranscribeFile { path },
            10 => RequestBody::Last { count: n }, _ => RequestBody::Shutdown,
        };
        let m = PeerMessage::Request(Request { id, body });
        prop_assert_eq!(round_trip(&m), m);
    }
}
