//! A counting global allocator: the proof behind "the realtime paths allocate and free
//! nothing".
//!
//! It counts allocations and frees per thread (for tests that measure one thread's work) and,
//! across all threads, those made while a thread has declared itself realtime with
//! [`set_realtime`] (for v2m-rt, which reports both counts in `status`). A reallocation counts
//! as both. Install it with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;`; without it the counters
//! stay at zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Delegates to the system allocator and counts.
pub struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static FREES: Cell<u64> = const { Cell::new(0) };
    static REALTIME: Cell<bool> = const { Cell::new(false) };
}

static REALTIME_ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALTIME_FREES: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn count_free() {
    let _ = FREES.try_with(|c| c.set(c.get() + 1));
    if REALTIME.try_with(Cell::get).unwrap_or(false) {
        REALTIME_FREES.fetch_add(1, Ordering::Relaxed);
    }
}

fn count() {
    // `try_with`: a thread being torn down has no locals left; its allocations go uncounted.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    if REALTIME.try_with(Cell::get).unwrap_or(false) {
        REALTIME_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: delegates every call to the system allocator unchanged; only counts. Counting
// touches const-initialised thread locals and atomics, neither of which allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_free();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        count_free();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
}

/// Allocations made on this thread so far.
pub fn allocs_on_this_thread() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Frees (and reallocations) made on this thread so far.
pub fn frees_on_this_thread() -> u64 {
    FREES.with(Cell::get)
}

/// Declares the calling thread realtime (or not any more): from now on its allocations add
/// to [`realtime_allocs`]. Allocation-free and lock-free, so it may be called in a callback.
pub fn set_realtime(on: bool) {
    let _ = REALTIME.try_with(|r| r.set(on));
}

/// Allocations made by threads while they were realtime, over the whole process.
pub fn realtime_allocs() -> u64 {
    REALTIME_ALLOCS.load(Ordering::Relaxed)
}

/// Frees made by threads while they were realtime, over the whole process.
pub fn realtime_frees() -> u64 {
    REALTIME_FREES.load(Ordering::Relaxed)
}

/// Whether [`CountingAlloc`] is the global allocator (it has counted at least once).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}
