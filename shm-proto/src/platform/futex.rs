//! Shared (inter-process) futex wait and wake.
//!
//! Deliberately *without* `FUTEX_PRIVATE_FLAG`: the waiters are other processes mapping the same
//! memfd, and a private futex is keyed by the address space, so a private wake never reaches
//! them (this is why the `atomic-wait` crate hangs across processes).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How a [`wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by [`wake_all`], or the word no longer held the expected value, or a signal
    /// interrupted the wait. The caller re-checks its condition in every case.
    Woken,
    /// The timeout elapsed.
    TimedOut,
}

/// Sleeps while `word` holds `expected`, at most `timeout`.
///
/// Spurious returns are possible (signals); callers loop on their own condition.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> WaitOutcome {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call (the borrow keeps its
    // mapping alive); `ts` outlives the call; the two trailing arguments are unused by FUTEX_WAIT.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        WaitOutcome::TimedOut
    } else {
        WaitOutcome::Woken
    }
}

/// Wakes every process and thread waiting on `word`. Returns how many were woken.
///
/// One syscall, no allocation, never blocks: safe on the realtime publish path.
pub fn wake_all(word: &AtomicU32) -> usize {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE only reads the address as a key.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    rc.max(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    #[test]
    fn wait_times_out_when_nobody_wakes() {
        let word = AtomicU32::new(7);
        assert_eq!(
            wait(&word, 7, Duration::from_millis(20)),
            WaitOutcome::TimedOut
        );
    }

    #[test]
    fn wait_returns_at_once_when_value_differs() {
        let word = AtomicU32::new(8);
        assert_eq!(wait(&word, 7, Duration::from_secs(30)), WaitOutcome::Woken);
    }

    #[test]
    fn wake_reaches_a_waiting_thread() {
        let word = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&word);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::SeqCst) == 0 {
                if wait(&w2, 0, Duration::from_secs(30)) == WaitOutcome::TimedOut {
                    return false;
                }
            }
            true
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::SeqCst);
        wake_all(&word);
        assert!(t.join().unwrap(), "waiter timed out instead of being woken");
    }
}
