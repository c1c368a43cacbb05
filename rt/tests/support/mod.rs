//! A real v2m-rt in its own process, on the FIFO microphone, and a test playing a worker.
#![allow(dead_code)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::protocol::{
    self, Assignment, DaemonMessage, FinalText, Hello, PeerMessage, ProvisionalText, Reply,
    RequestBody, Role, StatusReport, Timings, WorkerIdentity, WorkerMessage,
};
use v2m_shm_proto::ring::{RingFds, RingReader};
use v2m_tests::fifo_mic::{self, FifoMic};

#[allow(unused_imports)] // each test binary uses its own part
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

/// A running v2m-rt.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub mic: FifoMic,
}

impl Daemon {
    /// v2m-rt on a FIFO microphone with `args`, its config (if any) in `config`.
    pub fn start(name: &str, args: &[&str], config: Option<&str>) -> Daemon {
        Self::start_on(name, fifo_mic::DEVICE, args, config, |_, _| {})
    }

    /// v2m-rt capturing from `device`; `prepare` gets the scratch directory and the
    /// `XDG_CONFIG_HOME` (whose ALSA configuration has the FIFO microphone) before it starts.
    pub fn start_on(
        name: &str,
        device: &str,
        args: &[&str],
        config: Option<&str>,
        prepare: impl FnOnce(&Path, &Path),
    ) -> Daemon {
        Self::launch(name, &[], device, args, config, prepare)
    }

    /// v2m-rt on the FIFO microphone run through `wrapper` (a command that execs the rest
    /// of its arguments, such as `prlimit --nofile=1024 --`).
    pub fn start_wrapped(
        name: &str,
        wrapper: &[&str],
        args: &[&str],
        config: Option<&str>,
    ) -> Daemon {
        Self::launch(name, wrapper, fifo_mic::DEVICE, args, config, |_, _| {})
    }

    fn launch(
        name: &str,
        wrapper: &[&str],
        device: &str,
        args: &[&str],
        config: Option<&str>,
        prepare: impl FnOnce(&Path, &Path),
    ) -> Daemon {
        let dir = scratch(name);
        let mic = FifoMic::new(&dir);
        prepare(&dir, mic.xdg_config_home());
        let socket = dir.join("control.sock");
        let rt = env!("CARGO_BIN_EXE_v2m-rt");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(rt);
                c
            }
            None => Command::new(rt),
        };
        cmd.args(["--device", device, "--socket"])
            .arg(&socket)
            .args(args)
            .env("XDG_CONFIG_HOME", mic.xdg_config_home())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        if let Some(text) = config {
            let path = dir.join("config.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let child = cmd.spawn().expect("spawn v2m-rt");
        let mut d = Daemon {
            child,
            socket,
            dir,
            mic,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("v2m-rt exited at start: {status}");
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "v2m-rt not listening after 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to v2m-rt")
    }

    pub fn status(&self) -> StatusReport {
        match self.client().request(RequestBody::Status).unwrap() {
            Reply::Status(s) => s,
            other => panic!("status answered {other:?}"),
        }
    }

    /// Waits until the ring has `frames` more frames than now.
    pub fn wait_frames(&self, frames: u64) {
        let from = self.status().ring.frames_written;
        let within = Duration::from_millis(frames * 20) + Duration::from_secs(30);
        self.wait_status(within, "ring frames", |s| {
            s.ring.frames_written >= from + frames
        });
    }

    /// Polls status until `ok` holds; fails naming `what` after `within`.
    pub fn wait_status(&self, within: Duration, what: &str, ok: impl Fn(&StatusReport) -> bool) {
        let since = Instant::now();
        loop {
            let s = self.status();
            if ok(&s) {
                return;
            }
            assert!(
                since.elapsed() < within,
                "{what}: not within {within:?}: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the daemon to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
