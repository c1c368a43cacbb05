//! v2m-rt's side of the worker protocol, played by a test: a real ring, a real socket, the
//! real `v2m-worker run` binary in its own process. (v2m-rt plays it in production.)

use crate::ring_peer::accept_and_send_ring;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::protocol::{self, Assignment, DaemonMessage, PeerMessage, WorkerMessage};
use v2m_shm_proto::ring::{
    self, FRAME_NS, FRAME_SAMPLES, FrameFlags, FrameMeta, RingControl, RingWriter,
};

/// A fake v2m-rt: ring + listening socket.
pub struct FakeDaemon {
    /// The ring's control side (sessions, reader fds).
    pub control: RingControl,
    /// The ring's writer, for a test to publish frames with (taken by a publishing thread).
    pub writer: Option<RingWriter>,
    listener: UnixListener,
    /// The socket workers connect to.
    pub socket: PathBuf,
}

/// One connected worker.
pub struct WorkerConn {
    sock: UnixStream,
    /// Everything the worker sent, with the instant it arrived.
    pub messages: Receiver<(Instant, WorkerMessage)>,
}

impl FakeDaemon {
    /// A ring of the default capacity and a socket in a fresh scratch folder for `name`.
    pub fn new(name: &str) -> FakeDaemon {
        let dir = crate::fixtures::scratch(&format!("fake-rt-{name}"));
        let socket = dir.join("control.sock");
        let (writer, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
        FakeDaemon {
            control,
            writer: Some(writer),
            listener: UnixListener::bind(&socket).unwrap(),
            socket,
        }
    }

    /// Starts `v2m-worker run` against this daemon.
    pub fn spawn_worker(&self, name: &str) -> Child {
        self.spawn_worker_with(name, &[])
    }

    /// Starts `v2m-worker run` with extra arguments.
    pub fn spawn_worker_with(&self, name: &str, extra: &[&str]) -> Child {
        Command::new(super::bin("v2m-worker"))
            .args([
                "run",
                "--ep",
                "cpu",
                "--threads",
                "2",
                "--name",
                name,
                "--socket",
            ])
            .arg(&self.socket)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn v2m-worker")
    }

    /// Accepts a worker's hello and hands it the ring.
    pub fn accept(&self) -> WorkerConn {
        let sock = accept_and_send_ring(&self.listener, &self.control.reader_fds().unwrap());
        let (tx, messages) = mpsc::channel();
        let mut read = sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            while let Ok(Some(PeerMessage::Worker(m))) =
                protocol::read_frame::<_, PeerMessage>(&mut read, &mut buf)
            {
                if tx.send((Instant::now(), m)).is_err() {
                    return;
                }
            }
        });
        WorkerConn { sock, messages }
    }
}

impl WorkerConn {
    /// Assigns a dictation session whose final it owns.
    pub fn assign(&mut self, session_id: u64) {
        self.assign_as(session_id, true, false);
    }

    /// Assigns a session, owning its final or not, as a file's or a dictation's.
    pub fn assign_as(&mut self, session_id: u64, owns_final: bool, file: bool) {
        let a = DaemonMessage::Assignment(Assignment::Session {
            session_id,
            owns_final,
            file,
        });
        protocol::write_frame(&mut self.sock, &a).unwrap();
    }

    /// Tells the worker to shut down.
    pub fn shutdown(&mut self) {
        let _ = protocol::write_frame(
            &mut self.sock,
            &DaemonMessage::Assignment(Assignment::Shutdown),
        );
    }

    /// Collects messages until a final arrives; returns everything with arrival times.
    pub fn until_final(&self, limit: Duration) -> Vec<(Instant, WorkerMessage)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self
                .messages
                .recv_timeout(left)
                .expect("no final text from the worker in time");
            let done = matches!(m.1, WorkerMessage::Final(_));
            out.push(m);
            if done {
                return out;
            }
        }
    }
}

/// Publishes `audio` (16 kHz mono) into the ring at real-time pace, one 20 ms frame at a time,
/// with `flags` as VAD flags, under `session_id`. Calls `at_frame(i)` before each frame.
pub fn publish_paced(
    writer: &mut RingWriter,
    audio: &[f32],
    flags: &[bool],
    session_id: u64,
    mut at_frame: impl FnMut(usize),
) {
    let start = monotonic_ns();
    for (i, chunk) in audio.chunks(FRAME_SAMPLES).enumerate() {
        at_frame(i);
        let due = start + i as u64 * FRAME_NS;
        let now = monotonic_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        let mut samples = [0f32; FRAME_SAMPLES];
        samples[..chunk.len()].copy_from_slice(chunk);
        let meta = FrameMeta {
            capture_ns: monotonic_ns(),
            session_id,
            flags: if flags[i] {
                FrameFlags::SPEECH
            } else {
                FrameFlags::empty()
            },
        };
        writer.publish(&samples, meta);
    }
}
