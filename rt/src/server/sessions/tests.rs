use super::*;
use v2m_shm_proto::protocol::{DaemonState, HISTORY_LEN, LagSummary, Timings};

const MS: Duration = Duration::from_millis(1);

fn sessions() -> Sessions {
    Sessions::new(Duration::from_secs(30), 15)
}

fn ring(write_seq: u64) -> RingView {
    RingView {
        write_seq,
        capacity: 8192,
    }
}

fn waiter(conn: u64, request: u64) -> Waiter {
    Waiter {
        conn: ConnId(conn),
        request,
    }
}

fn final_text(session_id: u64, text: &str) -> FinalText {
    FinalText {
        session_id,
        text: text.into(),
        worker: "w".into(),
        stop_to_final_ms: 0.0,
        timings: Timings::default(),
        capture_to_read: LagSummary::default(),
        speculative: false,
        lost_frames: 0,
        segments: Vec::new(),
    }
}

fn replies(fx: &[Effect]) -> Vec<(u64, u64, Result<Reply, ErrorReply>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Reply { conn, id, result } => Some((conn.0, *id, result.clone())),
            _ => None,
        })
        .collect()
}

fn broadcast_finals(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Broadcast(Event::Final(f)) => Some(f.text.clone()),
            _ => None,
        })
        .collect()
}

/// Starts a session at write position `at`; returns its id.
fn started(s: &mut Sessions, now: Instant, at: u64) -> u64 {
    let mut fx = Vec::new();
    match s.start(&mut fx, now, ring(at)).unwrap() {
        Reply::Started { session_id, .. } => session_id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_session_reaches_back_by_the_pre_roll_but_not_into_the_last_one() {
    let now = Instant::now();
    let mut s = sessions();
    let mut fx = Vec::new();
    let r = s.start(&mut fx, now, ring(100)).unwrap();
    assert_eq!(
        r,
        Reply::Started {
            session_id: 1,
            first_seq: 85
        }
    );
    assert_eq!(
        fx,
        [
            Effect::Open {
                session: 1,
                first_seq: 85
            },
            Effect::AssignAll { session: 1 }
        ]
    );
    // A second start while recording is refused and changes nothing.
    let mut fx = Vec::new();
    let e = s.start(&mut fx, now, ring(101)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidState);
    assert!(fx.is_empty());
    // Stopped at 110: the next session starts no earlier than 110.
    assert_eq!(s.stop(&mut fx, now, waiter(1, 1), 110, true), None);
    let mut fx = Vec::new();
    let Reply::Started { first_seq, .. } = s.start(&mut fx, now, ring(115)).unwrap() else {
        panic!()
    };
    assert_eq!(first_seq, 110);
    // Early in the ring's life: no further back than frame 0.
    let mut s = sessions();
    let Reply::Started { first_seq, .. } = s.start(&mut fx, now, ring(3)).unwrap() else {
        panic!()
    };
    assert_eq!(first_seq, 0);
}

#[test]
fn stop_closes_at_the_given_frame_and_the_owners_final_answers_it() {
    let t0 = Instant::now();
    let mut s = sessions();
    let id = started(&mut s, t0, 100);
    let mut fx = Vec::new();
    assert_eq!(
        s.stop(&mut fx, t0, waiter(7, 3), 130, true),
        None,
        "answered later"
    );
    assert_eq!(
        fx,
        [Effect::Close {
            session: id,
            end_seq: 130
        }]
    );
    assert_eq!(s.state(false), DaemonState::Finishing);
    let mut fx = Vec::new();
    s.on_final(
        &mut fx,
        t0 + 250 * MS,
        "w",
        true,
        final_text(id, "hello there"),
    );
    let r = replies(&fx);
    assert_eq!(r.len(), 1);
    let (conn, req, Ok(Reply::Stopped(f))) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!((*conn, *req), (7, 3));
    assert_eq!(f.text, "hello there");
    assert!((f.stop_to_final_ms - 250.0).abs() < 1.0);
    assert_eq!(broadcast_finals(&fx), ["hello there"]);
    assert_eq!(s.history(5).len(), 1);
    assert_eq!(s.state(false), DaemonState::Idle);
    assert_eq!(s.last_latency().unwrap().session_id, id);
}

#[test]
fn stop_without_a_recording_or_a_worker_is_refused() {
    let now = Instant::now();
    let mut s = sessions();
    let mut fx = Vec::new();
    let r = s.stop(&mut fx, now, waiter(1, 1), 10, true).unwrap();
    assert_eq!(r.unwrap_err().kind, ErrorKind::InvalidState);
    started(&mut s, now, 100);
    let r = s.stop(&mut fx, now, waiter(1, 1), 110, false).unwrap();
    assert_eq!(r.unwrap_err().kind, ErrorKind::NoWorker);
    assert_eq!(s.state(false), DaemonState::Idle, "nothing left waiting");
}

#[test]
fn an_empty_final_is_no_speech() {
    let now = Instant::now();
    let mut s = sessions();
    let id = started(&mut s, now, 100);
    let mut fx = Vec::new();
    s.stop(&mut fx, now, waiter(1, 9), 120, true);
    let mut fx = Vec::new();
    s.on_final(&mut fx, now, "w", true, final_text(id, "  "));
    let r = replies(&fx);
    assert_eq!(r[0].2.clone().unwrap_err().kind, ErrorKind::NoSpeech);
}

#[test]
fn a_non_owners_final_waits_until_ownership_moves_to_it() {
    let now = Instant::now();
    let mut s = sessions();
    let a = started(&mut s, now, 100);
    let mut fx = Vec::new();
    s.stop(&mut fx, now, waiter(1, 1), 120, true);
    let mut fx = Vec::new();
    s.on_final(&mut fx, now, "other", false, final_text(a, "from other"));
    assert!(fx.is_empty(), "not the owner's: nobody answered");
    // Ownership moves to a worker that has not sent one: the session is assigned to it.
    s.owner_changed(&mut fx, now, Some("third"));
    assert_eq!(fx, [Effect::AssignOwner { session: a }]);
    // It moves to "other": its stored final answers.
    let mut fx = Vec::new();
    s.owner_changed(&mut fx, now, Some("other"));
    assert_eq!(broadcast_finals(&fx), ["from other"]);
    assert_eq!(replies(&fx).len(), 1);
}

#[test]
fn a_final_after_the_timeout_is_kept_and_broadcast() {
    let t0 = Instant::now();
    let mut s = sessions();
    let id = started(&mut s, t0, 100);
    let mut fx = Vec::new();
    s.stop(&mut fx, t0, waiter(2, 4), 120, true);
    assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(30)));
    let mut fx = Vec::new();
    s.expire(&mut fx, t0 + Duration::from_secs(29), "worker w");
    assert!(fx.is_empty(), "not yet");
    s.expire(
        &mut fx,
        t0 + Duration::from_secs(30),
        "worker w: last heard 29 s ago",
    );
    let r = replies(&fx);
    let e = r[0].2.clone().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.message.contains("last heard 29 s ago"), "{}", e.message);
    assert!(e.message.contains("v2m-cli last"), "{}", e.message);
    assert_eq!(s.state(false), DaemonState::Idle, "nobody waits now");
    // 35 s after stop the worker sends it: broadcast and kept, no second reply.
    let mut fx = Vec::new();
    s.on_final(
        &mut fx,
        t0 + Duration::from_secs(35),
        "w",
        true,
        final_text(id, "late"),
    );
    assert!(replies(&fx).is_empty());
    assert_eq!(broadcast_finals(&fx), ["late"]);
    let h = s.history(10);
    assert_eq!(h.last().unwrap().text, "late");
    assert!(h.last().unwrap().stop_to_final_ms >= 35_000.0);
    // An overdue session is forgotten after OVERDUE_KEEP.
    let b = started(&mut s, t0, 200);
    s.stop(&mut fx, t0, waiter(2, 5), 220, true);
    s.expire(&mut fx, t0 + Duration::from_secs(31), "x");
    s.expire(&mut fx, t0 + Duration::from_secs(31) + OVERDUE_KEEP, "x");
    let mut fx = Vec::new();
    s.on_final(
        &mut fx,
        t0 + OVERDUE_KEEP * 2,
        "w",
        true,
        final_text(b, "too late"),
    );
    assert!(fx.is_empty());
}

#[test]
fn a_waiter_that_left_gets_nothing_but_subscribers_do() {
    let now = Instant::now();
    let mut s = sessions();
    let id = started(&mut s, now, 100);
    let mut fx = Vec::new();
    s.stop(&mut fx, now, waiter(3, 1), 120, true);
    s.waiter_gone(ConnId(3));
    let mut fx = Vec::new();
    s.on_final(&mut fx, now, "w", true, final_text(id, "still here"));
    assert!(replies(&fx).is_empty());
    assert_eq!(broadcast_finals(&fx), ["still here"]);
}

#[test]
fn cancel_drops_the_recording_the_file_or_the_newest_awaited_session() {
    let now = Instant::now();
    let mut s = sessions();
    let mut fx = Vec::new();
    assert_eq!(
        s.cancel(&mut fx, 0, 0).unwrap_err().message,
        "nothing to cancel"
    );
    let id = started(&mut s, now, 100);
    let mut fx = Vec::new();
    assert_eq!(
        s.cancel(&mut fx, 125, 130).unwrap(),
        Reply::Cancelled { session_id: id }
    );
    assert_eq!(
        fx,
        [
            Effect::Close {
                session: id,
                end_seq: 125
            },
            Effect::CancelAll { session: id }
        ]
    );
    // A file being transcribed: feeding stops, its waiter is told.
    let mut fx = Vec::new();
    let f = s.start_file(&mut fx, now, waiter(4, 8), 200).unwrap();
    let mut fx = Vec::new();
    assert_eq!(
        s.cancel(&mut fx, 0, 260).unwrap(),
        Reply::Cancelled { session_id: f }
    );
    assert!(fx.contains(&Effect::StopFile));
    assert!(fx.contains(&Effect::Close {
        session: f,
        end_seq: 260
    }));
    let r = replies(&fx);
    assert_eq!((r[0].0, r[0].1), (4, 8));
    assert!(r[0].2.clone().unwrap_err().message.contains("cancelled"));
    // A stopped session still awaiting its final: its waiter is told.
    let g = started(&mut s, now, 300);
    s.stop(&mut fx, now, waiter(5, 1), 320, true);
    let mut fx = Vec::new();
    assert_eq!(
        s.cancel(&mut fx, 0, 0).unwrap(),
        Reply::Cancelled { session_id: g }
    );
    assert_eq!(replies(&fx)[0].0, 5);
    assert_eq!(s.state(false), DaemonState::Idle);
}

#[test]
fn a_file_is_answered_with_its_transcription() {
    let now = Instant::now();
    let mut s = sessions();
    let mut fx = Vec::new();
    let id = s.start_file(&mut fx, now, waiter(6, 2), 400).unwrap();
    assert_eq!(
        fx,
        [
            Effect::Open {
                session: id,
                first_seq: 400
            },
            Effect::AssignAll { session: id }
        ]
    );
    // No dictation meanwhile.
    let mut fx = Vec::new();
    assert!(
        s.start(&mut fx, now, ring(410))
            .unwrap_err()
            .message
            .contains("file")
    );
    assert_eq!(s.state(true), DaemonState::Finishing);
    s.file_fed(&mut fx, now, 650);
    assert_eq!(
        fx,
        [Effect::Close {
            session: id,
            end_seq: 650
        }]
    );
    let mut fx = Vec::new();
    s.on_final(&mut fx, now, "w", true, final_text(id, "file text"));
    assert!(matches!(&replies(&fx)[0].2, Ok(Reply::Transcribed(f)) if f.text == "file text"));
}

#[test]
fn the_history_keeps_the_newest_finals() {
    let now = Instant::now();
    let mut s = sessions();
    for i in 0..HISTORY_LEN + 5 {
        let id = started(&mut s, now, 100 * (i as u64 + 1));
        let mut fx = Vec::new();
        s.stop(&mut fx, now, waiter(1, 1), 100 * (i as u64 + 1) + 10, true);
        s.on_final(
            &mut fx,
            now,
            "w",
            true,
            final_text(id, &format!("text {i}")),
        );
    }
    assert_eq!(s.history(1000).len(), HISTORY_LEN);
    let last3: Vec<String> = s.history(3).into_iter().map(|f| f.text).collect();
    let n = HISTORY_LEN + 5;
    assert_eq!(
        last3,
        [
            format!("text {}", n - 3),
            format!("text {}", n - 2),
            format!("text {}", n - 1)
        ]
    );
}

#[test]
fn shutdown_tells_every_waiter_and_closes_the_recording() {
    let now = Instant::now();
    let mut s = sessions();
    let a = started(&mut s, now, 100);
    let mut fx = Vec::new();
    s.stop(&mut fx, now, waiter(1, 1), 110, true);
    let b = started(&mut s, now, 200);
    let mut fx = Vec::new();
    s.shutdown(&mut fx, 240);
    assert!(fx.contains(&Effect::Close {
        session: b,
        end_seq: 240
    }));
    let r = replies(&fx);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].2.clone().unwrap_err().kind, ErrorKind::Internal);
    assert!(s.untranscribed().is_empty(), "{a} and {b} are gone");
    assert_eq!(s.state(false), DaemonState::Idle);
}

#[test]
fn a_new_worker_is_given_every_session_not_yet_transcribed() {
    let now = Instant::now();
    let mut s = sessions();
    let a = started(&mut s, now, 100);
    let mut fx = Vec::new();
    s.stop(&mut fx, now, waiter(1, 1), 110, true);
    let b = started(&mut s, now, 200);
    assert_eq!(s.untranscribed(), [a, b]);
    assert!(s.on_provisional(b, now));
    assert!(!s.on_provisional(99, now));
}
