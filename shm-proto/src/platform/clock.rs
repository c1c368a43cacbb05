//! The one clock every process stamps audio with.

/// Nanoseconds on `CLOCK_MONOTONIC`.
///
/// The same clock in every process of the machine, so a capture time stamped by v2m-rt can be
/// compared with the time a worker reads the frame. Served from the vDSO: no syscall, no
/// allocation, usable on the realtime paths.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_ns_advances() {
        let a = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = monotonic_ns();
        assert!(b - a >= 2_000_000, "clock went {a} -> {b}");
    }
}
