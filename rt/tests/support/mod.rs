//! A test playing a worker against the real v2m-rt (started by v2m-tests' daemon harness).
#![allow(dead_code)]

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{
    self, Assignment, DaemonMessage, FinalText, Hello, PeerMessage, ProvisionalText, Role, Timings,
    WorkerIdentity, WorkerMessage,
};
use v2m_shm_proto::ring::{RingFds, RingReader};

#[allow(unused_imports)] // each test binary uses its own part
pub use v2m_tests::daemon::{Daemon, DaemonOptions};
#[allow(unused_imports)]
pub use v2m_tests::fixtures::{SPEECH, scratch};

/// A worker's final text for `session_id`.
pub fn final_text(session_id: u64, text: &str) -> WorkerMessage {
    WorkerMessage::Final(FinalText {
        session_id,
        text: text.into(),
        worker: String::new(),
        stop_to_final_ms: 0.0,
        timings: Timings::default(),
        capture_to_read: Default::default(),
        speculative: false,
        lost_frames: 0,
        segments: Vec::new(),
    })
}

/// A worker's provisional text for `session_id` (all of it stable).
pub fn provisional(session_id: u64, text: &str) -> WorkerMessage {
    WorkerMessage::Provisional(ProvisionalText {
        session_id,
        stable: text.into(),
        tentative: String::new(),
        worker: String::new(),
        timings: Timings::default(),
    })
}

/// Resident memory of process `pid`, MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The test in a worker's role: hello as a worker, the ring, assignments in, text out.
pub struct FakeWorker {
    pub sock: UnixStream,
    pub ring: RingReader,
    pub messages: Receiver<DaemonMessage>,
}

impl FakeWorker {
    pub fn connect(socket: &Path, name: &str) -> FakeWorker {
        let mut sock = UnixStream::connect(socket).unwrap();
        let hello = PeerMessage::Hello(Hello::new(Role::Worker(WorkerIdentity {
            name: name.into(),
            model: "fake/test".into(),
        })));
        protocol::write_frame(&mut sock, &hello).unwrap();
        let (welcome, fds) = protocol::read_frame_with_fds::<DaemonMessage>(&sock)
            .unwrap()
            .expect("a welcome");
        assert!(
            matches!(welcome, DaemonMessage::Welcome(ref w) if w.ring_attached),
            "{welcome:?}"
        );
        let ring = RingReader::open(RingFds::from_received(fds).unwrap()).unwrap();
        let (tx, messages) = mpsc::channel();
        let mut read = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while let Ok(Some(m)) = protocol::read_frame::<_, DaemonMessage>(&mut read, &mut buf) {
                if tx.send(m).is_err() {
                    return;
                }
            }
        });
        FakeWorker {
            sock,
            ring,
            messages,
        }
    }

    pub fn assignment(&self, within: Duration) -> Assignment {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(DaemonMessage::Assignment(a)) => return a,
                Ok(_) => continue,
                Err(e) => panic!("no assignment within {within:?}: {e}"),
            }
        }
    }

    pub fn send(&mut self, msg: WorkerMessage) {
        protocol::write_frame(&mut self.sock, &PeerMessage::Worker(msg)).unwrap();
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}
