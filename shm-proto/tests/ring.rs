//! The ring within one process: order, contents, metadata, overruns, sessions, bad headers.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::time::Duration;
use v2m_shm_proto::platform::memfd;
use v2m_shm_proto::ring::{
    self, FRAME_SAMPLES, Frame, FrameFlags, FrameMeta, Readiness, RingControl, RingError, RingFds,
    RingReader, RingWriter,
};

/// Deterministic, distinct contents for frame `seq`.
fn samples_for(seq: u64) -> [f32; FRAME_SAMPLES] {
    std::array::from_fn(|i| ((seq * 331 + i as u64 * 7) % 65_536) as f32 / 32_768.0 - 1.0)
}

fn meta_for(seq: u64) -> FrameMeta {
    FrameMeta {
        capture_ns: 1_000_000_000 + seq * ring::FRAME_NS,
        session_id: seq / 10,
        flags: FrameFlags((seq % 4) as u32),
    }
}

fn publish_n(w: &mut RingWriter, n: u64) {
    for _ in 0..n {
        let seq = w.next_seq();
        assert_eq!(w.publish(&samples_for(seq), meta_for(seq)), seq);
    }
}

fn reader_of(control: &RingControl) -> RingReader {
    RingReader::open(control.reader_fds().unwrap()).unwrap()
}

fn assert_frame(frame: &Frame, seq: u64) {
    assert_eq!(frame.seq, seq);
    assert_eq!(frame.meta, meta_for(seq), "metadata of frame {seq}");
    assert_eq!(frame.samples, samples_for(seq), "samples of frame {seq}");
}

#[test]
fn frames_arrive_in_order_with_contents_and_metadata() {
    let (mut w, control) = ring::create(64).unwrap();
    let mut r = reader_of(&control);
    assert_eq!(r.position(), 0);
    let mut f = Frame::default();
    assert!(r.try_read(&mut f).is_none(), "empty ring");
    publish_n(&mut w, 40);
    for seq in 0..40 {
        let info = r.try_read(&mut f).expect("published frame");
        assert_eq!(info.lost, 0);
        assert_frame(&f, seq);
    }
    assert!(r.try_read(&mut f).is_none());
    assert_eq!(control.write_seq(), 40);
    assert_eq!(r.write_seq(), 40);
    assert_eq!(r.writer_pid(), std::process::id());
    assert_eq!(r.geometry(), control.geometry());
}

#[test]
fn a_new_reader_starts_at_the_newest_frame_and_can_seek_back() {
    let (mut w, control) = ring::create(64).unwrap();
    publish_n(&mut w, 10);
    let mut r = reader_of(&control);
    assert_eq!(r.position(), 10);
    r.seek(3);
    let mut f = Frame::default();
    r.try_read(&mut f).unwrap();
    assert_frame(&f, 3);
}

#[test]
fn every_reader_sees_every_frame() {
    let (mut w, control) = ring::create(32).unwrap();
    let mut readers: Vec<RingReader> = (0..3).map(|_| reader_of(&control)).collect();
    let mut f = Frame::default();
    for seq in 0..100 {
        publish_n(&mut w, 1);
        for r in &mut readers {
            assert_eq!(r.try_read(&mut f).unwrap().lost, 0);
            assert_frame(&f, seq);
        }
    }
}

#[test]
fn overrun_counts_exactly_the_lost_frames_and_resumes_on_intact_ones() {
    let cap = 16u64;
    let (mut w, control) = ring::create(cap as u32).unwrap();
    let mut r = reader_of(&control);
    let mut f = Frame::default();
    publish_n(&mut w, 5);
    for seq in 0..5 {
        r.try_read(&mut f).unwrap();
        assert_frame(&f, seq);
    }
    // The reader stalls while the writer laps it: 5 + 100 published, cursor at 5.
    publish_n(&mut w, 100);
    let w_seq = 105;
    let oldest = w_seq - cap; // 89: still intact, the writer is idle
    let info = r.try_read(&mut f).unwrap();
    assert_eq!(info.lost, oldest - 5, "exactly the overwritten frames");
    assert_frame(&f, oldest);
    for seq in oldest + 1..w_seq {
        assert_eq!(r.try_read(&mut f).unwrap().lost, 0);
        assert_frame(&f, seq);
    }
    assert_eq!(r.lost_total(), oldest - 5);
    assert!(r.try_read(&mut f).is_none());
    // Seeking to a frame long gone is reported the same way.
    r.seek(0);
    assert_eq!(r.try_read(&mut f).unwrap().lost, oldest);
    assert_frame(&f, oldest);
    // Exactly one capacity behind is still intact.
    r.seek(w_seq - cap);
    assert_eq!(r.try_read(&mut f).unwrap().lost, 0);
    assert_frame(&f, w_seq - cap);
}

#[test]
fn seek_to_oldest_reads_the_whole_ring() {
    let (mut w, control) = ring::create(8).unwrap();
    publish_n(&mut w, 20);
    let mut r = reader_of(&control);
    r.seek_to_oldest();
    let mut f = Frame::default();
    for seq in 12..20 {
        assert_eq!(r.try_read(&mut f).unwrap().lost, 0);
        assert_frame(&f, seq);
    }
}

#[test]
fn wait_times_out_on_a_silent_ring_and_wakes_on_publish() {
    let (mut w, control) = ring::create(8).unwrap();
    let mut r = reader_of(&control);
    assert_eq!(r.wait(Duration::from_millis(30)), Readiness::TimedOut);
    let t = std::thread::spawn(move || {
        let mut f = Frame::default();
        let info = r.read_timeout(&mut f, Duration::from_secs(60));
        (info, f.seq)
    });
    // Publish once the reader sleeps (each wait has its deadline).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while control.waiting_readers() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never waited"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    publish_n(&mut w, 1);
    let (info, seq) = t.join().unwrap();
    assert_eq!(info.map(|i| i.lost), Some(0), "woken with the frame");
    assert_eq!(seq, 0);
    assert_eq!(
        w.wake_calls(),
        1,
        "exactly one wake for the sleeping reader"
    );
}

#[test]
fn publishing_without_waiters_makes_no_wake_call() {
    let (mut w, control) = ring::create(8).unwrap();
    let _r = reader_of(&control);
    publish_n(&mut w, 50);
    assert_eq!(w.wake_calls(), 0);
}

#[test]
fn sessions_open_close_and_look_up() {
    let (mut w, mut control) = ring::create(64).unwrap();
    publish_n(&mut w, 30);
    let rec = control.open_session(1, 15).unwrap();
    assert!(rec.is_open());
    let r = reader_of(&control);
    assert_eq!(r.session(1), Some(rec));
    assert_eq!(r.session(2), None);
    let closed = control.close_session(1, 30).unwrap();
    assert_eq!(closed.first_seq, 15);
    assert_eq!(closed.end_seq, Some(30));
    assert_eq!(r.session(1), Some(closed), "the reader sees the close");
    assert!(matches!(
        control.close_session(1, 31),
        Err(RingError::SessionClosed { id: 1, end_seq: 30 })
    ));
    assert!(matches!(
        control.close_session(9, 31),
        Err(RingError::SessionUnknown(9))
    ));
    assert!(matches!(
        control.open_session(1, 40),
        Err(RingError::SessionExists(1))
    ));
    assert!(matches!(
        control.open_session(0, 40),
        Err(RingError::SessionIdZero)
    ));
    control.open_session(2, 40).unwrap();
    assert!(matches!(
        control.close_session(2, 39),
        Err(RingError::SessionEndBeforeStart { .. })
    ));
    let ids: Vec<u64> = r.recent_sessions().iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn the_session_table_keeps_the_most_recent_sessions() {
    let (_w, mut control) = ring::create(8).unwrap();
    let n = ring::SESSION_CAPACITY as u64 + 10;
    for id in 1..=n {
        control.open_session(id, id * 100).unwrap();
        control.close_session(id, id * 100 + 50).unwrap();
    }
    let recent = control.recent_sessions();
    assert_eq!(recent.len(), ring::SESSION_CAPACITY);
    assert_eq!(
        recent.first().unwrap().id,
        n - ring::SESSION_CAPACITY as u64 + 1
    );
    assert_eq!(recent.last().unwrap().id, n);
    assert_eq!(control.session(1), None, "evicted");
    assert_eq!(control.session(n).unwrap().end_seq, Some(n * 100 + 50));
}

#[test]
fn bad_capacities_are_refused() {
    for cap in [0, 1, 3, 100, ring::MAX_CAPACITY * 2] {
        assert!(
            matches!(ring::create(cap), Err(RingError::BadCapacity(c)) if c == cap as u64),
            "capacity {cap}"
        );
    }
    assert_eq!(ring::capacity_for_seconds(120.0).unwrap(), 8192);
    assert_eq!(ring::capacity_for_seconds(0.0).unwrap(), 2);
    assert!(ring::capacity_for_seconds(1e12).is_err());
}

/// Sealed memfds as a ring's: `ring` bytes (first `len` of them), and fresh wake words.
fn sealed_fds(ring: &[u8], len: u64) -> RingFds {
    let fd = memfd::create("copy", len).unwrap();
    File::from(fd.try_clone().unwrap())
        .write_all_at(&ring[..ring.len().min(len as usize)], 0)
        .unwrap();
    memfd::add_seals(&fd, memfd::RING_SEALS).unwrap();
    let wake = memfd::create("wake", ring::WAKE_REGION).unwrap();
    memfd::add_seals(&wake, memfd::WAKE_SEALS).unwrap();
    RingFds { ring: fd, wake }
}

/// A fresh ring's bytes (read through the read-only descriptor a reader gets).
fn ring_bytes(capacity: u32) -> Vec<u8> {
    let (_w, control) = ring::create(capacity).unwrap();
    let src = File::from(control.reader_fds().unwrap().ring);
    let mut bytes = vec![0u8; control.geometry().total_len as usize];
    src.read_exact_at(&mut bytes, 0).unwrap();
    bytes
}

/// Writes `bytes` at `offset` into a copy of a fresh ring and tries to open it.
fn open_corrupted(offset: u64, bytes: &[u8]) -> Result<RingReader, RingError> {
    let mut ring = ring_bytes(8);
    ring[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    let len = ring.len() as u64;
    RingReader::open(sealed_fds(&ring, len))
}

#[test]
fn a_reader_cannot_write_the_ring() {
    use std::os::unix::fs::FileExt;
    let (mut w, control) = ring::create(8).unwrap();
    let fds = control.reader_fds().unwrap();
    // The descriptor a worker gets is read-only: no writable shared mapping, no write.
    // SAFETY: a test mapping of a sealed memfd that outlives it; never dereferenced.
    let writable = unsafe { memmap2::MmapOptions::new().map_mut(&fds.ring) };
    assert!(
        writable.is_err(),
        "a writable mapping of the reader's descriptor"
    );
    assert!(
        File::from(fds.ring.try_clone().unwrap())
            .write_at(b"x", 0)
            .is_err()
    );
    // Even reopened for writing it is sealed against any new write access.
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fds.ring)
    );
    let rw = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    assert!(rw.write_at(b"x", 0).is_err(), "the seal refuses writes");
    // SAFETY: as above.
    assert!(unsafe { memmap2::MmapOptions::new().map_mut(&rw) }.is_err());
    // The writer's own mapping still publishes, and a reader reads what it published.
    let mut r = RingReader::open(fds).unwrap();
    r.seek(0);
    publish_n(&mut w, 2);
    let mut f = Frame::default();
    r.try_read(&mut f).unwrap();
    assert_frame(&f, 0);
}

#[test]
fn a_header_with_wrong_magic_is_refused() {
    let err = open_corrupted(0, b"NOT-RING").err().unwrap();
    assert!(matches!(err, RingError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("not a v2m ring"), "{err}");
}

#[test]
fn a_header_with_another_version_is_refused() {
    let err = open_corrupted(8, &99u32.to_le_bytes()).err().unwrap();
    assert!(
        matches!(
            err,
            RingError::VersionMismatch {
                found: 99,
                expected: ring::LAYOUT_VERSION
            }
        ),
        "{err}"
    );
}

#[test]
fn a_header_with_wrong_sizes_is_refused() {
    // Field offsets (repr(C)): magic 0, version 8, header_len 12, sample_rate 16,
    // frame_samples 20, capacity 24, slot_size 28, slots_offset 32, reserved 40, total_len 48.
    let cases: [(u64, Vec<u8>, &str); 6] = [
        (12, 4096u32.to_le_bytes().to_vec(), "header_len"),
        (16, 48_000u32.to_le_bytes().to_vec(), "sample_rate"),
        (20, 480u32.to_le_bytes().to_vec(), "frame_samples"),
        (28, 64u32.to_le_bytes().to_vec(), "slot_size"),
        (32, 1u64.to_le_bytes().to_vec(), "slots_offset"),
        (48, (1u64 << 40).to_le_bytes().to_vec(), "total_len"),
    ];
    for (offset, bytes, field) in cases {
        let err = open_corrupted(offset, &bytes).err().unwrap();
        assert!(
            matches!(&err, RingError::Geometry { field: f, .. } if *f == field),
            "{field}: {err}"
        );
        assert!(err.to_string().contains(field), "{err}");
    }
    // A capacity that is not a power of two.
    let err = open_corrupted(24, &12u32.to_le_bytes()).err().unwrap();
    assert!(matches!(err, RingError::BadCapacity(12)), "{err}");
    // A larger capacity than the file holds: geometry follows the capacity, so the header's
    // own offsets disagree first.
    let err = open_corrupted(24, &(1u32 << 20).to_le_bytes())
        .err()
        .unwrap();
    assert!(matches!(err, RingError::Geometry { .. }), "{err}");
}

#[test]
fn an_unsealed_or_tiny_file_is_refused() {
    let plain = || -> OwnedFd {
        nix::sys::memfd::memfd_create("not-a-ring", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap()
    };
    let fds = |ring: &OwnedFd, wake: &OwnedFd| RingFds {
        ring: ring.try_clone().unwrap(),
        wake: wake.try_clone().unwrap(),
    };
    let (ring_fd, wake) = (plain(), plain());
    let err = RingReader::open(fds(&ring_fd, &wake)).err().unwrap();
    assert!(matches!(err, RingError::TooSmall { len: 0, .. }), "{err}");
    nix::unistd::ftruncate(&ring_fd, 1 << 20).unwrap();
    let err = RingReader::open(fds(&ring_fd, &wake)).err().unwrap();
    assert!(matches!(err, RingError::NotSealed), "{err}");
    // Sealed against resizing but still writable: refused too.
    let writable = memfd::create("writable", 1 << 20).unwrap();
    memfd::add_seals(&writable, memfd::WAKE_SEALS).unwrap();
    let good = sealed_fds(&ring_bytes(8), 1 << 20);
    let err = RingReader::open(RingFds {
        ring: writable,
        wake: good.wake,
    })
    .err()
    .unwrap();
    assert!(matches!(err, RingError::NotSealed), "{err}");
    // Three descriptors with a welcome instead of two.
    let extra = vec![plain(), plain(), plain()];
    assert!(matches!(
        RingFds::from_received(extra),
        Err(RingError::Descriptors(3))
    ));
}

#[test]
fn a_header_describing_more_than_the_file_is_refused() {
    // A correct header for capacity 8 in a file sealed shorter than the header says.
    let bytes = ring_bytes(8);
    let short = bytes.len() as u64 - 65536; // the last slots are missing
    let err = RingReader::open(sealed_fds(&bytes, short)).err().unwrap();
    assert!(matches!(err, RingError::Truncated { .. }), "{err}");
}

#[test]
fn closing_a_session_wakes_a_waiting_reader() {
    let (mut w, mut control) = ring::create(8).unwrap();
    publish_n(&mut w, 3);
    control.open_session(1, 0).unwrap();
    let r = reader_of(&control);
    let t = std::thread::spawn(move || r.wait(Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(50));
    control.close_session(1, 3).unwrap();
    assert_eq!(t.join().unwrap(), Readiness::SessionChanged);
}

#[test]
fn a_session_ends_with_the_frame_holding_the_stop_instant() {
    let (mut w, control) = ring::create(64).unwrap();
    assert_eq!(control.end_at(1_000), None, "nothing published");
    let ms = 1_000_000u64;
    let publish_at = |w: &mut RingWriter, t: u64| {
        w.publish(
            &[0.0; FRAME_SAMPLES],
            FrameMeta {
                capture_ns: t,
                ..FrameMeta::default()
            },
        )
    };
    // Frames 0..3 captured at 100, 120, 140 ms.
    for i in 0..3 {
        publish_at(&mut w, (100 + 20 * i) * ms);
    }
    // An instant inside the newest frame: it ends the session.
    assert_eq!(control.end_at(150 * ms), Some(3));
    // After the newest frame's audio: not published yet.
    assert_eq!(control.end_at(160 * ms), None);
    assert_eq!(control.end_at(175 * ms), None);
    // Inside an older frame: one past it.
    assert_eq!(control.end_at(125 * ms), Some(2));
    assert_eq!(control.end_at(120 * ms), Some(2));
    assert_eq!(control.end_at(119 * ms), Some(1));
    // A gap (the device was lost for a second): an instant in it ends after the frame before.
    publish_at(&mut w, 1_200 * ms);
    assert_eq!(control.end_at(500 * ms), Some(3));
    assert_eq!(control.end_at(1_210 * ms), Some(4));
    assert_eq!(control.capture_ns(0), Some(100 * ms));
    assert_eq!(control.capture_ns(4), None);
}
