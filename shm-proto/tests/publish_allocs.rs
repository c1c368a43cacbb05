//! A counting global allocator proves the realtime publish path allocates nothing, including
//! the publishes that issue FUTEX_WAKE to a waiting reader.
//!
//! Counting is per thread, so the test harness's own threads do not disturb the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use v2m_shm_proto::ring::{self, FRAME_SAMPLES, Frame, FrameFlags, FrameMeta, RingReader};
use v2m_tests::alloc_counter::{CountingAlloc, allocs_on_this_thread};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn the_counter_sees_allocations() {
    // Guards the guard: if counting were broken, the zero below would prove nothing.
    let before = allocs_on_this_thread();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
    drop(std::hint::black_box(v));
    assert_eq!(allocs_on_this_thread() - before, 1);
}

#[test]
fn publish_allocates_nothing_even_when_waking_readers() {
    let (mut writer, control) = ring::create(256).unwrap();
    let mut reader = RingReader::open(control.reader_fds().unwrap()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    // A reader that sleeps in FUTEX_WAIT between frames, so publishes take the wake path.
    let reader_thread = std::thread::spawn(move || {
        let mut f = Frame::default();
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            if reader
                .read_timeout(&mut f, Duration::from_millis(50))
                .is_some()
            {
                n += 1;
            }
        }
        n
    });
    let samples = [0.25f32; FRAME_SAMPLES];
    let meta = FrameMeta {
        capture_ns: 1,
        session_id: 3,
        flags: FrameFlags::SPEECH,
    };
    // Warm-up outside the measurement (first touches of pages, lazy statics).
    writer.publish(&samples, meta);
    let before = allocs_on_this_thread();
    for i in 0..20_000u64 {
        writer.publish(&samples, meta);
        if i % 64 == 0 {
            // Give the reader time to go back to sleep so later publishes must wake it.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let allocs = allocs_on_this_thread() - before;
    stop.store(true, Ordering::Relaxed);
    let received = reader_thread.join().unwrap();
    assert_eq!(allocs, 0, "publish allocated {allocs} times");
    assert!(
        writer.wake_calls() > 0,
        "the wake path was never exercised (no waiter seen)"
    );
    assert!(received > 0);
}
