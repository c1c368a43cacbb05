//! The ring across real processes: the writer here, readers in child `ring-peer` processes that
//! receive the memfd over a Unix socket (SCM_RIGHTS), exactly as workers will.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use v2m_shm_proto::ring::{self, RingControl, RingWriter};
use v2m_tests::pattern;
use v2m_tests::ring_peer::{PeerReport, accept_and_send_ring};
use v2m_tests::watchdog::Watchdog;

/// A running ring-peer with its output followed by a thread.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    progress: Arc<AtomicU64>,
    lines: mpsc::Receiver<String>,
    _sock: UnixStream,
}

impl Peer {
    fn spawn(
        listener: &UnixListener,
        socket: &PathBuf,
        control: &RingControl,
        frames: u64,
        extra: &[&str],
    ) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ring-peer"))
            .arg(socket)
            .arg(frames.to_string())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ring-peer");
        let sock = accept_and_send_ring(listener, &control.reader_fds().unwrap());
        let progress = Arc::new(AtomicU64::new(0));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let p = Arc::clone(&progress);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("progress ") {
                    p.store(n.parse().unwrap(), Ordering::SeqCst);
                } else if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            progress,
            lines,
            _sock: sock,
        }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("ring-peer said nothing")
    }

    fn finish(mut self) -> PeerReport {
        let line = self.next_line();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "ring-peer failed: {status} ({line})");
        PeerReport::parse(&line).unwrap_or_else(|| panic!("bad report: {line}"))
    }
}

fn listener(name: &str) -> (UnixListener, PathBuf) {
    let dir = std::env::temp_dir().join(format!("v2m-ring-xp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    (UnixListener::bind(&path).unwrap(), path)
}

/// Publishes pattern frames until `until`, never more than `slack` ahead of the slowest of
/// `peers` (test flow control: the ring itself never waits for readers).
fn publish_paced(w: &mut RingWriter, until: u64, peers: &[&Peer], slack: u64) {
    while w.next_seq() < until {
        let slowest = peers
            .iter()
            .map(|p| p.progress.load(Ordering::SeqCst))
            .min()
            .unwrap_or(u64::MAX);
        if w.next_seq() >= slowest.saturating_add(slack) {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        let seq = w.next_seq();
        w.publish(&pattern::samples_for(seq), pattern::meta_for(seq));
    }
}

#[test]
fn two_reader_processes_receive_every_frame_in_order() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "two readers, 100k frames");
    const FRAMES: u64 = 100_000;
    let (mut w, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let (l, path) = listener("two");
    let a = Peer::spawn(&l, &path, &control, FRAMES, &["--report-every", "256"]);
    let b = Peer::spawn(&l, &path, &control, FRAMES, &["--report-every", "256"]);
    publish_paced(&mut w, FRAMES, &[&a, &b], ring::DEFAULT_CAPACITY as u64 / 2);
    for peer in [a, b] {
        let r = peer.finish();
        assert_eq!(
            r,
            PeerReport {
                received: FRAMES,
                lost: 0,
                mismatches: 0,
                out_of_order: 0,
                first_after_loss: 0,
                last: FRAMES - 1,
            }
        );
    }
}

#[test]
fn a_paused_reader_reports_the_exact_loss_and_resumes_on_intact_frames() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "paused reader");
    const CAP: u64 = 1024;
    const PAUSE_AT: u64 = 100;
    const LAPPED_TO: u64 = 5_100;
    const TOTAL: u64 = 8_000;
    let (mut w, control) = ring::create(CAP as u32).unwrap();
    let (l, path) = listener("pause");
    let mut peer = Peer::spawn(
        &l,
        &path,
        &control,
        TOTAL,
        &[
            "--report-every",
            "16",
            "--pause-after",
            &PAUSE_AT.to_string(),
        ],
    );
    publish_paced(&mut w, PAUSE_AT, &[&peer], CAP / 2);
    assert_eq!(peer.next_line(), format!("paused {PAUSE_AT}"));
    // While it sleeps, the writer laps it several times, then goes quiet.
    for seq in PAUSE_AT..LAPPED_TO {
        w.publish(&pattern::samples_for(seq), pattern::meta_for(seq));
    }
    peer.stdin.take().unwrap().write_all(b"resume\n").unwrap();
    // The oldest intact frame is LAPPED_TO - CAP: the reader must resume exactly there.
    let expected_lost = LAPPED_TO - CAP - PAUSE_AT;
    peer.progress.store(LAPPED_TO - CAP, Ordering::SeqCst);
    publish_paced(&mut w, TOTAL, &[&peer], CAP / 2);
    let r = peer.finish();
    assert_eq!(r.lost, expected_lost, "{r:?}");
    assert_eq!(r.first_after_loss, LAPPED_TO - CAP, "{r:?}");
    assert_eq!(r.received, TOTAL - expected_lost, "{r:?}");
    assert_eq!(r.mismatches, 0, "frames after the loss are intact: {r:?}");
    assert_eq!(r.out_of_order, 0, "{r:?}");
}

#[test]
fn a_reader_killed_while_waiting_never_stalls_the_writer() {
    let _wd = Watchdog::arm(Duration::from_secs(300), "killed reader");
    const FRAMES: u64 = 100_000;
    let (mut w, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let (l, path) = listener("kill");
    let victim = Peer::spawn(&l, &path, &control, u64::MAX, &["--report-every", "1"]);
    let survivor = Peer::spawn(&l, &path, &control, FRAMES, &["--report-every", "256"]);
    publish_paced(&mut w, 10, &[&victim], 4);
    while victim.progress.load(Ordering::SeqCst) < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The victim is now asleep in FUTEX_WAIT, counted as a waiter. Kill it there.
    std::thread::sleep(Duration::from_millis(100));
    let mut victim = victim;
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let wakes_before = w.wake_calls();
    publish_paced(
        &mut w,
        FRAMES,
        &[&survivor],
        ring::DEFAULT_CAPACITY as u64 / 2,
    );
    assert_eq!(
        control.write_seq(),
        FRAMES,
        "the writer got through every frame"
    );
    assert!(
        w.wake_calls() > wakes_before,
        "the dead waiter was woken (and ignored) rather than waited for"
    );
    let r = survivor.finish();
    assert_eq!((r.received, r.lost, r.mismatches), (FRAMES, 0, 0), "{r:?}");
}

#[test]
fn a_reader_in_another_process_is_refused_a_corrupt_ring() {
    use std::os::unix::fs::FileExt;
    use v2m_shm_proto::platform::memfd;
    // A ring-sized, sealed memfd whose header is all zeros.
    let (_w, control) = ring::create(8).unwrap();
    let fd = memfd::create("corrupt", control.geometry().total_len).unwrap();
    std::fs::File::from(fd.try_clone().unwrap())
        .write_all_at(&[0u8; 8], 0)
        .unwrap();
    memfd::add_seals(&fd, memfd::RING_SEALS).unwrap();
    let fds = v2m_shm_proto::ring::RingFds {
        ring: fd,
        wake: control.reader_fds().unwrap().wake,
    };
    let (l, path) = listener("corrupt");
    let child = Command::new(env!("CARGO_BIN_EXE_ring-peer"))
        .arg(&path)
        .arg("1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _sock = accept_and_send_ring(&l, &fds);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad magic"), "{stderr}");
}
