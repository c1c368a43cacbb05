//! Ending the processes a test or tool started.

use std::process::Child;
use std::time::{Duration, Instant};

/// Gives `child` up to `grace` to exit by itself (after it was asked to), then kills it; reaps
/// it either way.
pub fn wait_or_kill(child: &mut Child, grace: Duration) {
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
