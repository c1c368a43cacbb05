//! A ring reader in its own process, for the cross-process tests.
//!
//! usage: ring-peer SOCKET FRAMES [--report-every K] [--pause-after M]
//!
//! Connects to SOCKET as a worker, receives the ring's memfd, reads from frame 0 until FRAMES
//! frames are accounted for (received + lost), checking each against the test pattern.
//! Prints `progress N` every K frames, `paused N` and waits for a line on stdin after M frames,
//! and finally `done received=… lost=… mismatches=… out_of_order=… first_after_loss=… last=…`.
//! Exits 3 if the writer stays silent for 20 s.

use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use v2m_shm_proto::protocol::{self, DaemonMessage, Hello, PeerMessage, Role, WorkerIdentity};
use v2m_shm_proto::ring::{Frame, RingFds, RingReader};
use v2m_tests::pattern;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let socket = &args[1];
    let frames: u64 = args[2].parse().expect("FRAMES");
    let flag = |name: &str| -> Option<u64> {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].parse().expect("number"))
    };
    let report_every = flag("--report-every").unwrap_or(1024);
    let pause_after = flag("--pause-after");

    let mut sock = UnixStream::connect(socket).expect("connect");
    let hello = PeerMessage::Hello(Hello::new(Role::Worker(WorkerIdentity {
        name: format!("ring-peer-{}", std::process::id()),
        model: "none".into(),
    })));
    protocol::write_frame(&mut sock, &hello).expect("hello");
    let (welcome, fds) = protocol::read_frame_with_fds::<DaemonMessage>(&sock)
        .expect("welcome")
        .expect("daemon closed");
    assert!(matches!(welcome, DaemonMessage::Welcome(_)));
    let mut reader = match RingFds::from_received(fds).and_then(RingReader::open) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ring-peer: {e}");
            std::process::exit(2);
        }
    };
    reader.seek(0);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut frame = Frame::default();
    let (mut received, mut lost, mut mismatches, mut out_of_order) = (0u64, 0u64, 0u64, 0u64);
    let (mut first_after_loss, mut expected) = (0u64, 0u64);
    while received + lost < frames {
        let Some(info) = reader.read_timeout(&mut frame, Duration::from_secs(20)) else {
            if reader.write_seq() > reader.position() {
                continue;
            }
            writeln!(out, "writer silent at {}", reader.position()).unwrap();
            std::process::exit(3);
        };
        if info.lost > 0 && first_after_loss == 0 {
            first_after_loss = frame.seq;
        }
        lost += info.lost;
        expected += info.lost;
        if frame.seq != expected {
            out_of_order += 1;
        }
        expected = frame.seq + 1;
        if !pattern::matches(&frame) {
            mismatches += 1;
        }
        received += 1;
        if received % report_every == 0 {
            writeln!(out, "progress {}", reader.position()).unwrap();
            out.flush().unwrap();
        }
        if pause_after == Some(received) {
            writeln!(out, "paused {}", reader.position()).unwrap();
            out.flush().unwrap();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).unwrap();
        }
    }
    writeln!(
        out,
        "done received={received} lost={lost} mismatches={mismatches} \
         out_of_order={out_of_order} first_after_loss={first_after_loss} last={}",
        frame.seq
    )
    .unwrap();
}
