//! A futex word and a timestamp in one page of shared memory: the bare cross-process wake-up,
//! with no ring and no frame, that the ring benchmark measures as the machine's floor.

use super::memfd;
use memmap2::{MmapMut, MmapOptions};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Bytes mapped: one page.
const LEN: u64 = 4096;

#[repr(C)]
struct Layout {
    word: AtomicU32,
    _pad: u32,
    stamp_ns: AtomicU64,
}

/// A [`Layout`] in a shared mapping of a memfd.
pub struct SharedWord {
    map: MmapMut,
}

// The map is only ever reached through atomics (`layout`).
const _: () = assert!(std::mem::size_of::<Layout>() as u64 <= LEN);

impl SharedWord {
    /// A new zeroed word, and the memfd another process can map it from (see [`Self::open`]).
    pub fn create() -> io::Result<(SharedWord, OwnedFd)> {
        let fd = memfd::create("v2m-shared-word", LEN)?;
        let word = Self::map(File::from(fd.try_clone()?))?;
        Ok((word, fd))
    }

    /// Maps the word from a path to its memfd (such as `/proc/<pid>/fd/<n>` of the process
    /// that created it).
    pub fn open(path: &Path) -> io::Result<SharedWord> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Self::map(file)
    }

    fn map(file: File) -> io::Result<SharedWord> {
        if file.metadata()?.len() < LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "shared word: the memfd is shorter than a page",
            ));
        }
        // SAFETY: the memfd is sealed against shrinking (memfd::create) and at least LEN
        // long, so the mapping stays backed; every access goes through atomics, which other
        // processes mapping it may change at any time.
        let map = unsafe { MmapOptions::new().len(LEN as usize).map_mut(&file)? };
        Ok(SharedWord { map })
    }

    fn layout(&self) -> &Layout {
        // SAFETY: the mapping is page-aligned and LEN ≥ size_of::<Layout>() (checked at
        // compile time above); Layout holds only atomics, valid for any bit pattern, including
        // the zeroes of a new memfd; it lives as long as `self.map`.
        unsafe { &*self.map.as_ptr().cast::<Layout>() }
    }

    /// The futex word (for [`super::futex::wait`] and [`super::futex::wake_all`]).
    pub fn word(&self) -> &AtomicU32 {
        &self.layout().word
    }

    /// A timestamp slot (`CLOCK_MONOTONIC` ns) beside it.
    pub fn stamp_ns(&self) -> &AtomicU64 {
        &self.layout().stamp_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering;

    #[test]
    fn two_mappings_of_one_word_see_each_other() {
        let (a, fd) = SharedWord::create().unwrap();
        let b = SharedWord::open(Path::new(&format!("/proc/self/fd/{}", fd.as_raw_fd()))).unwrap();
        a.word().store(7, Ordering::SeqCst);
        b.stamp_ns().store(42, Ordering::SeqCst);
        assert_eq!(b.word().load(Ordering::SeqCst), 7);
        assert_eq!(a.stamp_ns().load(Ordering::SeqCst), 42);
    }
}
