//! What a same-user process could do to a running v2m-rt (real binary, real FIFO microphone,
//! real sockets), each once found to hang or bloat it: file jobs on FIFOs and huge sparse
//! files, oversized hellos and hundreds of fake workers, connections that send only a length,
//! a descriptor flood under `ulimit -n 1024`, subscribers that never read, signals during
//! start-up, and whatever may sit at the socket path. Every wait has its deadline.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Daemon, DaemonOptions, FakeWorker, final_text, provisional, rss_mib, scratch};
use v2m_shm_proto::client::{Client, ClientError};
use v2m_shm_proto::protocol::{
    self, Assignment, DaemonMessage, DaemonState, ErrorKind, Event, Hello, PeerMessage, Reply,
    RequestBody, Role, WorkerIdentity,
};
use v2m_tests::watchdog::Watchdog;

/// A client whose every answer must come within `within`.
fn client_within(d: &Daemon, within: Duration) -> Result<Client, ClientError> {
    let c = Client::connect(&d.socket)?;
    c.set_timeout(Some(within)).unwrap();
    Ok(c)
}

/// `ping` answered within 2 s (a fresh connection each time).
fn pong_within_2s(d: &Daemon) {
    let t = Instant::now();
    let mut c = client_within(d, Duration::from_secs(2)).expect("connect");
    assert_eq!(c.request(RequestBody::Ping).unwrap(), Reply::Pong);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Waits until `ok` holds, failing with `what` after `within`.
fn wait_until(within: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A WAV header announcing `data_bytes` of 16 kHz mono 16-bit PCM.
fn wav_header(data_bytes: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&16_000u32.to_le_bytes());
    h.extend_from_slice(&32_000u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_bytes.to_le_bytes());
    h
}

#[test]
fn file_jobs_on_a_fifo_or_a_huge_sparse_file_never_block_control() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "hostile: file jobs");
    let d = Daemon::start("hostile-files", &[], None);
    let _w = FakeWorker::connect(&d.socket, "fake");

    // A FIFO nobody writes: opening it for reading would block for good.
    let fifo = d.dir.join("pipe.wav");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let path = fifo.display().to_string();
    let socket = d.socket.clone();
    let job = std::thread::spawn(move || {
        let mut c = Client::connect(&socket).unwrap();
        c.set_timeout(Some(Duration::from_secs(10))).unwrap();
        c.request(RequestBody::TranscribeFile { path })
    });
    pong_within_2s(&d);
    match job.join().unwrap() {
        Err(ClientError::Refused(e)) => {
            assert_eq!(e.kind, ErrorKind::BadFile);
            assert!(e.message.contains("pipe.wav"), "{}", e.message);
        }
        other => panic!("a FIFO was not refused: {other:?}"),
    }

    // A sparse WAV announcing 1 GiB (9 hours): streamed a piece at a time, never loaded;
    // control answers meanwhile and memory stays flat; cancel ends it.
    let huge = d.dir.join("huge.wav");
    let mut f = std::fs::File::create(&huge).unwrap();
    let data = (1u32 << 30) - 64;
    f.write_all(&wav_header(data)).unwrap();
    f.set_len(44 + data as u64).unwrap();
    drop(f);
    let before = rss_mib(d.child.id());
    let path = huge.display().to_string();
    let socket = d.socket.clone();
    let job = std::thread::spawn(move || {
        let mut c = Client::connect(&socket).unwrap();
        c.set_timeout(Some(Duration::from_secs(60))).unwrap();
        c.request(RequestBody::TranscribeFile { path })
    });
    d.wait_status(Duration::from_secs(10), "the file job runs", |s| {
        s.state != DaemonState::Idle
    });
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        pong_within_2s(&d);
        std::thread::sleep(Duration::from_millis(200));
    }
    let during = rss_mib(d.child.id());
    assert!(
        during < before + 50.0,
        "RSS {before:.0} -> {during:.0} MiB with a 1 GiB file open"
    );
    d.client()
        .request(RequestBody::Cancel)
        .expect("cancel the file job");
    let answer = job.join().unwrap();
    assert!(
        matches!(answer, Err(ClientError::Refused(_))),
        "a cancelled file job: {answer:?}"
    );
    pong_within_2s(&d);
}

#[test]
fn oversized_hellos_and_hundreds_of_departed_workers_leave_status_answering() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "hostile: hellos");
    let d = Daemon::start("hostile-hello", &[], None);
    // A worker name of ~1 MiB (the frame limit): refused with an error, nothing kept.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = PeerMessage::Hello(Hello::new(Role::Worker(WorkerIdentity {
        name: "w".repeat(1_000_000),
        model: "fake/test".into(),
    })));
    protocol::write_frame(&mut s, &hello).unwrap();
    let mut buf = Vec::new();
    match protocol::read_frame::<_, DaemonMessage>(&mut s, &mut buf) {
        Ok(Some(DaemonMessage::Response(r))) => {
            let e = r.result.expect_err("a 1 MiB name accepted");
            assert_eq!(e.kind, ErrorKind::Malformed, "{e:?}");
        }
        other => panic!("a 1 MiB name: {other:?}"),
    }
    drop(s);
    // 300 workers come and go, each under its own name: none stays listed.
    for i in 0..300 {
        drop(FakeWorker::connect(&d.socket, &format!("fake-{i}")));
    }
    d.wait_status(Duration::from_secs(30), "departed workers removed", |s| {
        s.workers.is_empty()
    });
    pong_within_2s(&d);
}

#[test]
fn connections_that_send_only_a_length_cost_nothing_and_are_closed_after_the_hello_deadline() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "hostile: lengths");
    let d = Daemon::start("hostile-lengths", &[], None);
    let before = rss_mib(d.child.id());
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        // A frame of 1 MiB announced, none of it sent.
        s.write_all(&((1u32 << 20) - 1).to_le_bytes()).unwrap();
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_mib(d.child.id());
    assert!(
        during < before + 60.0,
        "RSS {before:.0} -> {during:.0} MiB for 200 announced lengths"
    );
    pong_within_2s(&d);
    // No hello within the deadline (5 s): each is closed (EOF, or a reset).
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut rest = Vec::new();
        let r = s.read_to_end(&mut rest);
        assert!(
            !matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut),
            "a silent connection still open after the hello deadline: {r:?}"
        );
    }
    pong_within_2s(&d);
}

#[test]
fn under_ulimit_1024_a_flood_of_idle_connections_leaves_control_answering() {
    let _wd = Watchdog::arm(Duration::from_secs(180), "hostile: descriptors");
    // The test holds 1100 descriptors itself.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        hard.min(8192),
        hard,
    )
    .expect("raise this test's descriptor limit");
    let d = DaemonOptions::new(scratch("hostile-fds"))
        .wrapper(&["prlimit", "--nofile=1024:1024", "--"])
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.child.id())).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(nofile.contains("1024"), "{nofile}");
    let mut held = Vec::new();
    for _ in 0..1100 {
        match UnixStream::connect(&d.socket) {
            Ok(s) => held.push(s),
            Err(e) => panic!("connect #{}: {e}", held.len()),
        }
    }
    // Beyond the cap new connections are refused at once ("busy"), never left hanging.
    let t = Instant::now();
    match client_within(&d, Duration::from_secs(3)).and_then(|mut c| c.request(RequestBody::Ping)) {
        Ok(Reply::Pong) => {}
        Err(ClientError::Refused(e)) => assert_eq!(e.kind, ErrorKind::Busy, "{e:?}"),
        other => panic!("ping during the flood: {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The silent ones are closed at the hello deadline; then control is whole again.
    drop(held);
    wait_until(Duration::from_secs(30), "ping after the flood", || {
        client_within(&d, Duration::from_secs(2))
            .and_then(|mut c| c.request(RequestBody::Ping))
            .is_ok_and(|r| r == Reply::Pong)
    });
}

#[test]
fn subscribers_that_never_read_are_bounded_in_bytes_and_a_reader_gets_everything() {
    let _wd = Watchdog::arm(Duration::from_secs(180), "hostile: subscribers");
    let d = Daemon::start("hostile-subscribers", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "fake");
    let mut sleepers = Vec::new();
    for _ in 0..200 {
        let mut c = Client::connect(&d.socket).unwrap();
        assert_eq!(
            c.request(RequestBody::Subscribe { metrics: false })
                .unwrap(),
            Reply::Subscribed
        );
        sleepers.push(c);
    }
    let mut reader = Client::connect(&d.socket).unwrap();
    assert_eq!(
        reader
            .request(RequestBody::Subscribe { metrics: false })
            .unwrap(),
        Reply::Subscribed
    );
    let before = rss_mib(d.child.id());
    let frames_before = d.status().ring.frames_written;
    let Reply::Started { session_id, .. } = d.client().request(RequestBody::Start).unwrap() else {
        panic!("start refused")
    };
    w.assignment(Duration::from_secs(10));
    // 600 events of 8 KiB, read by one subscriber as they come.
    let counter = std::thread::spawn(move || {
        let mut seen = 0;
        loop {
            match reader.next_event(Some(Duration::from_secs(30))) {
                Ok(Event::Provisional(_)) => seen += 1,
                Ok(Event::Final(_)) => return seen,
                Ok(_) => {}
                Err(e) => panic!("the reading subscriber after {seen} events: {e}"),
            }
        }
    });
    let mut peak = before;
    for i in 0..600 {
        let text = format!("{i:05} {}", "x".repeat(8 * 1024));
        w.send(provisional(session_id, &text));
        if i % 50 == 0 {
            peak = peak.max(rss_mib(d.child.id()));
            // At the pace of a fast worker, not a flood the reader cannot follow.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let stop = {
        let socket = d.socket.clone();
        std::thread::spawn(move || Client::connect(&socket).unwrap().request(RequestBody::Stop))
    };
    d.wait_status(Duration::from_secs(10), "stop waits for the final", |s| {
        s.state == DaemonState::Finishing
    });
    w.send(final_text(session_id, "done"));
    assert!(matches!(stop.join().unwrap(), Ok(Reply::Stopped(_))));
    assert_eq!(counter.join().unwrap(), 600, "the reader missed events");
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_mib(d.child.id());
    peak = peak.max(after);
    eprintln!("RSS before {before:.0} MiB, peak {peak:.0}, after {after:.0}");
    // 200 × 600 × 8 KiB = 940 MiB if queues were unbounded; 1 MiB per connection at most.
    assert!(
        peak < before + 260.0,
        "peak RSS {peak:.0} MiB from {before:.0}"
    );
    assert!(after < before + 260.0, "RSS stays at {after:.0} MiB");
    // Capture went on all along (the FIFO microphone delivers 50 frames a second).
    d.wait_frames(25);
    assert!(d.status().ring.frames_written > frames_before + 25);
    pong_within_2s(&d);
    drop(sleepers);
}

/// v2m-rt with `args` (its stdout/stderr captured), killed by SIGTERM after `after`;
/// returns its exit status and stderr.
fn terminated_after(args: &[&str], dir: &Path, after: Duration) -> (i32, String, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_v2m-rt"))
        .args(args)
        .arg("--socket")
        .arg(dir.join("control.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let t = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let deadline = t + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("v2m-rt {args:?} ignored SIGTERM for 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    (code, err, t.elapsed())
}

#[test]
fn signals_end_start_up_and_odd_config_files_are_refused() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "hostile: start-up");
    let dir = scratch("hostile-startup");
    // `--input` a FIFO nobody writes: SIGTERM still ends it.
    let fifo = dir.join("mic.wav");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (code, err, _) = terminated_after(
        &["--input", fifo.to_str().unwrap()],
        &dir,
        Duration::from_millis(500),
    );
    assert_ne!(code, 0, "{err}");
    // Config files that are not regular, or too long: refused at once, naming the file.
    let big = dir.join("big.toml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    for config in ["/dev/zero", fifo.to_str().unwrap(), big.to_str().unwrap()] {
        let (code, err, _) = terminated_after(
            &["--input", support::SPEECH, "--config", config],
            &dir,
            Duration::from_millis(1500),
        );
        assert_ne!(code, 0);
        assert!(err.contains(config), "{config}: {err}");
        assert!(
            err.contains("not a regular file") || err.contains("at most 1 MiB"),
            "{config}: {err}"
        );
    }
}

#[test]
fn whatever_sits_at_the_socket_path_is_named_and_left_alone() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "hostile: socket path");
    let dir = scratch("hostile-path");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = dir.join("control.sock");
    let rt = |socket: &Path| {
        Command::new(env!("CARGO_BIN_EXE_v2m-rt"))
            .args(["--input", support::SPEECH, "--socket"])
            .arg(socket)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // A dangling symlink: named, not followed, not replaced.
    std::os::unix::fs::symlink(dir.join("nowhere"), &socket).unwrap();
    let out = rt(&socket);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("a symlink") && err.contains("control.sock"),
        "{err}"
    );
    assert!(std::fs::symlink_metadata(&socket).unwrap().is_symlink());
    assert!(!dir.join("nowhere").exists());
    std::fs::remove_file(&socket).unwrap();
    // A regular file: named and kept.
    std::fs::write(&socket, "mine").unwrap();
    let out = rt(&socket);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("a regular file"), "{err}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "mine");
    std::fs::remove_file(&socket).unwrap();
    // A folder others may write: refused whatever path was given.
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = rt(&open.join("control.sock"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("open"), "{err}");
    assert!(!open.join("control.sock").exists());
}

#[test]
fn a_client_sending_a_byte_at_a_time_slows_nobody() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "hostile: slowloris");
    let d = Daemon::start("hostile-slow", &[], None);
    let hello = {
        let mut buf = Vec::new();
        let msg = PeerMessage::Hello(Hello::new(Role::Client));
        protocol::write_frame(&mut buf, &msg).unwrap();
        buf
    };
    let socket = d.socket.clone();
    let slow = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&socket).unwrap();
        for b in &hello {
            if s.write_all(std::slice::from_ref(b)).is_err() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        true
    });
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        pong_within_2s(&d);
    }
    // Its hello (3 s in coming, under the 5 s deadline) was still taken whole.
    assert!(slow.join().unwrap(), "the slow client was cut off");
}

#[test]
fn fifty_dictations_leave_memory_and_descriptors_flat() {
    let _wd = Watchdog::arm(Duration::from_secs(180), "hostile: cycles");
    let d = Daemon::start("hostile-cycles", &[], None);
    let mut w = FakeWorker::connect(&d.socket, "fake");
    let fds = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let pid = d.child.id();
    // The worker answers each session once it is closed, as a real one does.
    std::thread::spawn(move || {
        loop {
            let session_id = match w.messages.recv_timeout(Duration::from_secs(60)) {
                Ok(DaemonMessage::Assignment(Assignment::Session { session_id, .. })) => session_id,
                Ok(_) => continue,
                Err(_) => return, // the daemon is gone: the test is over
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while w.ring.session(session_id).unwrap().is_open() {
                assert!(
                    Instant::now() < deadline,
                    "session {session_id} never closed"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            w.send(final_text(session_id, &format!("cycle {session_id}")));
        }
    });
    let mut c = d.client();
    let cycle = |c: &mut Client, i: usize| {
        let Reply::Started { session_id, .. } = c.request(RequestBody::Start).unwrap() else {
            panic!("start {i} refused")
        };
        match c.request(RequestBody::Stop).unwrap() {
            Reply::Stopped(f) => assert_eq!(f.text, format!("cycle {session_id}")),
            other => panic!("stop {i}: {other:?}"),
        }
    };
    for i in 0..5 {
        cycle(&mut c, i);
    }
    let (rss0, fds0) = (rss_mib(pid), fds(pid));
    for i in 5..55 {
        cycle(&mut c, i);
    }
    let (rss1, fds1) = (rss_mib(pid), fds(pid));
    eprintln!("after 5 cycles: {rss0:.1} MiB, {fds0} fds; after 55: {rss1:.1} MiB, {fds1} fds");
    assert!(fds1 <= fds0, "descriptors {fds0} -> {fds1}");
    assert!(rss1 < rss0 + 8.0, "RSS {rss0:.1} -> {rss1:.1} MiB");
}

#[test]
fn after_kill_9_a_new_daemon_takes_the_socket_cleanly() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "hostile: kill -9");
    let mut d = Daemon::start("hostile-kill9", &[], None);
    d.child.kill().unwrap();
    d.wait_exit();
    // The dead daemon's socket is still there; nobody listens on it.
    assert!(d.socket.exists());
    let mut again = Command::new(env!("CARGO_BIN_EXE_v2m-rt"))
        .args(["--input", support::SPEECH, "--socket"])
        .arg(&d.socket)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the new daemon answers", || {
        Client::connect(&d.socket)
            .and_then(|mut c| c.request(RequestBody::Ping))
            .is_ok_and(|r| r == Reply::Pong)
    });
    // A second one refuses to take a live daemon's socket.
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-rt"))
        .args(["--input", support::SPEECH, "--socket"])
        .arg(&d.socket)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    let mut c = Client::connect(&d.socket).unwrap();
    assert_eq!(
        c.request(RequestBody::Shutdown).unwrap(),
        Reply::ShuttingDown
    );
    wait_until(Duration::from_secs(20), "the new daemon exits", || {
        again.try_wait().unwrap().is_some()
    });
}

#[test]
fn a_full_disk_under_the_log_changes_nothing() {
    let _wd = Watchdog::arm(Duration::from_secs(60), "hostile: full disk");
    let dir = scratch("hostile-full");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = dir.join("control.sock");
    // Every write to its log fails with ENOSPC, from the first line on.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut rt = Command::new(env!("CARGO_BIN_EXE_v2m-rt"))
        .args(["--input", support::SPEECH, "--socket"])
        .arg(&socket)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "v2m-rt answers", || {
        Client::connect(&socket)
            .and_then(|mut c| c.request(RequestBody::Ping))
            .is_ok_and(|r| r == Reply::Pong)
    });
    let mut c = Client::connect(&socket).unwrap();
    for _ in 0..20 {
        assert_eq!(c.request(RequestBody::Ping).unwrap(), Reply::Pong);
        assert!(matches!(
            c.request(RequestBody::Status).unwrap(),
            Reply::Status(_)
        ));
    }
    // A start without a worker is refused (and logged, into the full disk): still serving.
    assert!(c.request(RequestBody::Start).is_err());
    assert!(
        rt.try_wait().unwrap().is_none(),
        "v2m-rt died writing its log"
    );
    assert_eq!(
        c.request(RequestBody::Shutdown).unwrap(),
        Reply::ShuttingDown
    );
    wait_until(Duration::from_secs(20), "v2m-rt exits", || {
        rt.try_wait().unwrap().is_some()
    });
}
