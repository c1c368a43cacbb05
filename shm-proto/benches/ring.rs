//! Ring benchmark: the writer here, a reader in a child process (this same binary re-executed)
//! that receives the memfd over a Unix socket, as a worker does.
//!
//! 1. Real-time pace: one 20 ms frame every 20 ms; the reader sleeps in FUTEX_WAIT between
//!    frames. Wake latency = from just before publish to the reader holding the frame copy
//!    (both on CLOCK_MONOTONIC, which all processes share).
//! 2. As fast as possible: frames back to back; throughput = audio published and received per
//!    wall-clock second, in multiples of real time. The ring never waits for readers, so a
//!    reader preempted for a few milliseconds would be lapped and the run would measure an
//!    overload, not throughput: the reader acknowledges each half-ring over the socket and
//!    the writer stays at most one ring ahead (flow control in the benchmark, not the ring).
//!
//! 3. The floor, in the same run: the bare wake-up of a sleeping process by another through a
//!    shared futex word at the same 20 ms cadence, no ring (`platform::shared_word`). The
//!    ring's wake can only be slower; the target is wake p99 ≤ 1.5 × floor p99 + 20 µs.
//!
//! `cargo bench -p v2m-shm-proto --bench ring [-- --rt-frames N --fast-frames M]`
//! Last line: `ring: frames=… wake_p50_us=… wake_p99_us=… floor_p50_us=… floor_p99_us=… lost=… throughput_x_realtime=…`

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::platform::futex;
use v2m_shm_proto::platform::shared_word::SharedWord;
use v2m_shm_proto::protocol::{self, DaemonMessage, Hello, PeerMessage, Role, WorkerIdentity};
use v2m_shm_proto::ring::{
    self, FRAME_NS, FRAME_SAMPLES, Frame, FrameFlags, FrameMeta, RingFds, RingReader,
};
use v2m_tests::ring_peer::accept_and_send_ring;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .map(|i| args[i + 1].parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--reader-child") {
        reader_child(
            Path::new(&args[i + 1]),
            args[i + 2].parse().unwrap(),
            args[i + 3].parse().unwrap(),
        );
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--floor-child") {
        floor_child(Path::new(&args[i + 1]), args[i + 2].parse().unwrap());
        return;
    }
    let rt_frames = arg(&args, "--rt-frames", 1000);
    let fast_frames = arg(&args, "--fast-frames", 200_000);

    let rt = run(rt_frames, Some(FRAME_NS));
    println!(
        "realtime: frames={} lost={} wake_p50_us={:.1} wake_p90_us={:.1} wake_p99_us={:.1} wake_max_us={:.1} publish_p50_us={:.1} publish_p99_us={:.1}",
        rt.received,
        rt.lost,
        rt.p50_ns as f64 / 1e3,
        rt.p90_ns as f64 / 1e3,
        rt.p99_ns as f64 / 1e3,
        rt.max_ns as f64 / 1e3,
        rt.publish_p50_ns as f64 / 1e3,
        rt.publish_p99_ns as f64 / 1e3
    );
    let (floor_p50, floor_p99) = floor(rt_frames);
    println!(
        "floor: wakes={rt_frames} wake_p50_us={:.1} wake_p99_us={:.1} (shared futex, no ring)",
        floor_p50 as f64 / 1e3,
        floor_p99 as f64 / 1e3
    );
    let fast = run(fast_frames, None);
    let elapsed = fast.last_recv_ns - fast.start_ns;
    let x_realtime = (fast_frames * FRAME_NS) as f64 / elapsed as f64;
    println!(
        "fast: frames={} lost={} elapsed_ms={:.1} frames_per_s={:.0} publish_to_read_p50_us={:.1}",
        fast.received,
        fast.lost,
        elapsed as f64 / 1e6,
        fast_frames as f64 / (elapsed as f64 / 1e9),
        fast.p50_ns as f64 / 1e3
    );
    println!(
        "ring: frames={} wake_p50_us={:.1} wake_p99_us={:.1} floor_p50_us={:.1} floor_p99_us={:.1} lost={} throughput_x_realtime={:.0}",
        rt.received + rt.lost + fast.received + fast.lost,
        rt.p50_ns as f64 / 1e3,
        rt.p99_ns as f64 / 1e3,
        floor_p50 as f64 / 1e3,
        floor_p99 as f64 / 1e3,
        rt.lost + fast.lost,
        x_realtime
    );
}

/// The floor: `wakes` wake-ups of a child sleeping on a shared futex word, one every 20 ms,
/// each stamped just before the wake; returns the child's p50 and p99 (ns).
fn floor(wakes: u64) -> (u64, u64) {
    let (shared, fd) = SharedWord::create().unwrap();
    let path = format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--floor-child")
        .arg(&path)
        .arg(wakes.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    std::thread::sleep(Duration::from_millis(50));
    let start_ns = monotonic_ns();
    for i in 1..=wakes {
        let due = start_ns + i * FRAME_NS;
        let now = monotonic_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        shared.stamp_ns().store(monotonic_ns(), Ordering::SeqCst);
        shared.word().fetch_add(1, Ordering::SeqCst);
        futex::wake_all(shared.word());
    }
    let line = lines.next().unwrap().unwrap();
    child.wait().unwrap();
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    (field("p50_ns"), field("p99_ns"))
}

/// The floor's sleeping process: waits on the word until it moves, `wakes` times.
fn floor_child(path: &Path, wakes: u64) {
    let shared = SharedWord::open(path).unwrap();
    let mut latencies = Vec::with_capacity(wakes as usize);
    let mut seen = shared.word().load(Ordering::SeqCst);
    println!("ready");
    while (latencies.len() as u64) < wakes {
        let now_word = shared.word().load(Ordering::SeqCst);
        if now_word != seen {
            latencies.push(monotonic_ns().saturating_sub(shared.stamp_ns().load(Ordering::SeqCst)));
            // Several moves at once (a late wake) count once each; none here at 20 ms.
            seen = now_word;
            continue;
        }
        if futex::wait(shared.word(), seen, Duration::from_secs(10)) == futex::WaitOutcome::TimedOut
        {
            panic!("no wake within 10 s");
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("result p50_ns={} p99_ns={}", pct(0.5), pct(0.99));
}

struct RunResult {
    received: u64,
    lost: u64,
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    max_ns: u64,
    start_ns: u64,
    last_recv_ns: u64,
    publish_p50_ns: u64,
    publish_p99_ns: u64,
}

/// One writer/reader run; `pace` is the interval between frames, `None` for back to back with
/// the reader acknowledging every half ring.
fn run(frames: u64, pace: Option<u64>) -> RunResult {
    let chunk = if pace.is_some() {
        0
    } else {
        ring::DEFAULT_CAPACITY as u64 / 2
    };
    let dir = std::env::temp_dir().join(format!("v2m-ring-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (mut writer, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--reader-child")
        .arg(&path)
        .arg(frames.to_string())
        .arg(chunk.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sock = accept_and_send_ring(&listener, &control.reader_fds().unwrap());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    // Let the reader settle into its wait.
    std::thread::sleep(Duration::from_millis(50));

    let samples: [f32; FRAME_SAMPLES] = std::array::from_fn(|i| (i as f32 * 0.01).sin());
    let mut publish_ns = Vec::with_capacity(frames as usize);
    let start_ns = monotonic_ns();
    let mut ack = [0u8; 1];
    for i in 0..frames {
        // Before chunk k, wait for the ack of chunk k-2: at most one ring ahead of the reader.
        if chunk > 0 && i % chunk == 0 && i >= 2 * chunk {
            std::io::Read::read_exact(&mut sock, &mut ack).unwrap();
        }
        if let Some(interval) = pace {
            let due = start_ns + i * interval;
            let now = monotonic_ns();
            if due > now {
                std::thread::sleep(Duration::from_nanos(due - now));
            }
        }
        let meta = FrameMeta {
            capture_ns: monotonic_ns(),
            session_id: 1,
            flags: FrameFlags::SPEECH,
        };
        writer.publish(&samples, meta);
        publish_ns.push(monotonic_ns() - meta.capture_ns);
    }
    publish_ns.sort_unstable();
    let line = lines.next().unwrap().unwrap();
    child.wait().unwrap();
    drop(sock);
    let _ = std::fs::remove_dir_all(&dir);
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    RunResult {
        received: field("received"),
        lost: field("lost"),
        p50_ns: field("p50_ns"),
        p90_ns: field("p90_ns"),
        p99_ns: field("p99_ns"),
        max_ns: field("max_ns"),
        start_ns,
        last_recv_ns: field("last_recv_ns"),
        publish_p50_ns: publish_ns[publish_ns.len() / 2],
        publish_p99_ns: publish_ns[(publish_ns.len() - 1) * 99 / 100],
    }
}

/// The reader process: reads until `frames` are accounted for, then prints its figures.
fn reader_child(socket: &Path, frames: u64, chunk: u64) {
    let mut sock = UnixStream::connect(socket).unwrap();
    let hello = PeerMessage::Hello(Hello::new(Role::Worker(WorkerIdentity {
        name: "bench".into(),
        model: "none".into(),
    })));
    protocol::write_frame(&mut sock, &hello).unwrap();
    let (_, fds) = protocol::read_frame_with_fds::<DaemonMessage>(&sock)
        .unwrap()
        .unwrap();
    let mut reader = RingReader::open(RingFds::from_received(fds).unwrap()).unwrap();
    reader.seek(0);
    let mut latencies = Vec::with_capacity(frames as usize);
    let mut frame = Frame::default();
    let (mut received, mut lost, mut last_recv_ns) = (0u64, 0u64, 0u64);
    println!("ready");
    while received + lost < frames {
        match reader.read_timeout(&mut frame, Duration::from_secs(10)) {
            Some(info) => {
                let now = monotonic_ns();
                latencies.push(now.saturating_sub(frame.meta.capture_ns));
                last_recv_ns = now;
                received += 1;
                lost += info.lost;
                if chunk > 0 && received % chunk == 0 {
                    std::io::Write::write_all(&mut sock, b"a").unwrap();
                }
            }
            None if reader.write_seq() > reader.position() => {}
            None => panic!("writer silent"),
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "result received={received} lost={lost} p50_ns={} p90_ns={} p99_ns={} max_ns={} last_recv_ns={last_recv_ns}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}
