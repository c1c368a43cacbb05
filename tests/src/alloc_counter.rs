//! The counting global allocator for allocation- and free-freedom tests: the one v2m-rt itself runs
//! with (`v2m_shm_proto::platform::alloc_count`). Counting is per thread, so the test
//! harness's own threads do not disturb a count. Install it in a test binary with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.

pub use v2m_shm_proto::platform::alloc_count::{
    CountingAlloc, allocs_on_this_thread, frees_on_this_thread,
};
