//! Mapping a ring's memfd and handing out typed views of it.

use super::error::RingError;
use super::layout::{
    FRAME_SAMPLES, Geometry, HEADER_REGION, Header, LAYOUT_VERSION, MAGIC, MAX_CAPACITY,
    MIN_CAPACITY, SAMPLE_RATE, SESSION_CAPACITY, SLOT_SIZE, Slot, WAKE_REGION, Wake,
};
use crate::platform::memfd;
use memmap2::{Mmap, MmapMut, MmapOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::addr_of_mut;

#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "the ring needs lock-free 64-bit atomic loads that never write (readers map read-only)"
);

/// Keeps the memory alive; never touched directly after construction.
enum Backing {
    /// The creator maps both memfds read-write and keeps their fds to hand them out.
    Owner {
        _map: MmapMut,
        _wake: MmapMut,
        fd: OwnedFd,
        wake_fd: OwnedFd,
    },
    /// Readers map the ring read-only and only the wake words read-write.
    Reader { _ro: Mmap, _wake: MmapMut },
}

/// A reader's descriptors of a ring: the ring itself (read-only), and its wake words.
#[derive(Debug)]
pub struct RingFds {
    /// Header and slots: a read-only descriptor of a memfd sealed against any new write.
    pub ring: OwnedFd,
    /// The futex word and waiter count.
    pub wake: OwnedFd,
}

impl RingFds {
    /// Duplicates both descriptors (a second reader in the same process).
    pub fn try_clone(&self) -> std::io::Result<RingFds> {
        Ok(RingFds {
            ring: self.ring.try_clone()?,
            wake: self.wake.try_clone()?,
        })
    }

    /// The two descriptors that came with a welcome, in the order they were sent.
    pub fn from_received(fds: Vec<OwnedFd>) -> Result<RingFds, RingError> {
        let n = fds.len();
        let mut it = fds.into_iter();
        match (it.next(), it.next(), it.next()) {
            (Some(ring), Some(wake), None) => Ok(RingFds { ring, wake }),
            _ => Err(RingError::Descriptors(n)),
        }
    }

    /// Both as borrowed descriptors, in sending order.
    pub fn as_fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.ring.as_fd(), self.wake.as_fd()]
    }
}

/// A mapped ring: raw pointers into the mapping plus what keeps the mapping alive.
pub(crate) struct Mapping {
    backing: Backing,
    header: *const Header,
    slots: *const Slot,
    wake: *const Wake,
    geometry: Geometry,
}

// SAFETY: every location another thread or process may write concurrently is an atomic; the
// non-atomic header fields are written only before the Mapping exists for anyone else. The raw
// pointers stay valid as long as `backing` lives, which is as long as `self`.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access goes through atomics only.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Creates the ring and wake memfds for `capacity` slots, initialises the header, and
    /// seals the ring against any new write access once it is mapped here.
    pub(crate) fn create(capacity: u32) -> Result<Mapping, RingError> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(RingError::BadCapacity(capacity.into()));
        }
        let geometry = Geometry::for_capacity(capacity);
        let fd = memfd::create("v2m-ring", geometry.total_len)
            .map_err(RingError::io("creating the ring memfd"))?;
        let wake_fd = memfd::create("v2m-ring-wake", WAKE_REGION)
            .map_err(RingError::io("creating the wake memfd"))?;
        memfd::add_seals(&wake_fd, memfd::WAKE_SEALS)
            .map_err(RingError::io("sealing the wake memfd"))?;
        // Every mapping here is populated up front (MAP_POPULATE): a page's first touch would
        // otherwise be a page fault on the realtime writer thread, or in a reader just after its
        // wake-up, once per 4 KiB for the ring's first lap.
        // SAFETY: the memfd is ours alone (nobody else has the fd yet), sealed against
        // shrinking, and exactly `total_len` long.
        let mut map = unsafe {
            MmapOptions::new()
                .len(geometry.total_len as usize)
                .populate()
                .map_mut(&fd)
        }
        .map_err(RingError::io("mapping the ring"))?;
        // SAFETY: as above, for the wake memfd of WAKE_REGION bytes.
        let mut wake_map = unsafe {
            MmapOptions::new()
                .len(WAKE_REGION as usize)
                .populate()
                .map_mut(&wake_fd)
        }
        .map_err(RingError::io("mapping the wake words"))?;
        // From now on nobody (this process included) gets new write access to the ring: only
        // the mapping above writes it.
        memfd::add_seals(&fd, memfd::RING_SEALS).map_err(RingError::io("sealing the ring"))?;
        let base = map.as_mut_ptr();
        let header = base.cast::<Header>();
        // SAFETY: the mapping is page-aligned, zero-filled and larger than a Header; nobody else
        // can see it yet, so plain writes to the immutable geometry fields race with nothing.
        unsafe {
            addr_of_mut!((*header).magic).write(MAGIC);
            addr_of_mut!((*header).version).write(LAYOUT_VERSION);
            addr_of_mut!((*header).header_len).write(HEADER_REGION as u32);
            addr_of_mut!((*header).sample_rate).write(SAMPLE_RATE);
            addr_of_mut!((*header).frame_samples).write(FRAME_SAMPLES as u32);
            addr_of_mut!((*header).capacity).write(capacity);
            addr_of_mut!((*header).slot_size).write(SLOT_SIZE as u32);
            addr_of_mut!((*header).slots_offset).write(geometry.slots_offset);
            addr_of_mut!((*header).total_len).write(geometry.total_len);
            addr_of_mut!((*header).session_capacity).write(SESSION_CAPACITY as u32);
            addr_of_mut!((*header).writer_pid).write(std::process::id());
        }
        // SAFETY: slots_offset lies inside the mapping (Geometry::for_capacity) and is aligned
        // to REGION_ALIGN, more than Slot's alignment.
        let slots = unsafe { base.add(geometry.slots_offset as usize).cast::<Slot>() };
        let wake = wake_map.as_mut_ptr().cast::<Wake>();
        Ok(Mapping {
            backing: Backing::Owner {
                _map: map,
                _wake: wake_map,
                fd,
                wake_fd,
            },
            header,
            slots,
            wake,
            geometry,
        })
    }

    /// Maps a ring received from another process, validating everything in its header first.
    pub(crate) fn open(fds: RingFds) -> Result<Mapping, RingError> {
        let len = memfd::len(&fds.ring).map_err(RingError::io("reading the ring's size"))?;
        let need = size_of::<Header>() as u64;
        if len < need {
            return Err(RingError::TooSmall { len, need });
        }
        let sealed = |fd: &OwnedFd, seals| {
            memfd::seals(fd)
                .map(|s| s.contains(seals))
                .map_err(RingError::io("reading the ring's seals"))
        };
        if !sealed(&fds.ring, memfd::RING_SEALS)? || !sealed(&fds.wake, memfd::WAKE_SEALS)? {
            return Err(RingError::NotSealed);
        }
        let wake_len = memfd::len(&fds.wake).map_err(RingError::io("reading the wake size"))?;
        if wake_len < WAKE_REGION {
            return Err(RingError::TooSmall {
                len: wake_len,
                need: WAKE_REGION,
            });
        }
        // SAFETY: the fd is sealed against shrinking (checked just above), so every page of
        // `len` bytes stays backed for the mapping's lifetime.
        let ro = unsafe {
            MmapOptions::new()
                .len(len as usize)
                .populate()
                .map(&fds.ring)
        }
        .map_err(RingError::io("mapping the ring read-only"))?;
        // SAFETY: the mapping is page-aligned and at least size_of::<Header>() long; every
        // field is an integer or an atomic, valid for any bit pattern.
        let header = unsafe { &*ro.as_ptr().cast::<Header>() };
        let geometry = validate(header, len)?;
        // SAFETY: the wake memfd is sealed against shrinking and at least WAKE_REGION long.
        let mut wake_map = unsafe {
            MmapOptions::new()
                .len(WAKE_REGION as usize)
                .populate()
                .map_mut(&fds.wake)
        }
        .map_err(RingError::io("mapping the ring's wake words"))?;
        let base = ro.as_ptr();
        // SAFETY: slots_offset < total_len <= len, validated.
        let slots = unsafe { base.add(geometry.slots_offset as usize) }.cast::<Slot>();
        let wake = wake_map.as_mut_ptr().cast::<Wake>().cast_const();
        Ok(Mapping {
            header: base.cast::<Header>(),
            slots,
            wake,
            geometry,
            backing: Backing::Reader {
                _ro: ro,
                _wake: wake_map,
            },
        })
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: valid for the mapping's lifetime, which `&self` bounds (see `impl Sync`).
        unsafe { &*self.header }
    }

    pub(crate) fn wake(&self) -> &Wake {
        // SAFETY: as for `header`.
        unsafe { &*self.wake }
    }

    /// The slot that frame `seq` lives in.
    #[inline]
    pub(crate) fn slot(&self, seq: u64) -> &Slot {
        let index = (seq & (self.geometry.capacity as u64 - 1)) as usize;
        // SAFETY: index < capacity, and the slots region holds `capacity` slots (validated).
        unsafe { &*self.slots.add(index) }
    }

    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Descriptors for a new reader: the ring reopened read-only, the wake words duplicated.
    /// `None` for a reader's mapping (only the creator hands out the ring).
    pub(crate) fn reader_fds(&self) -> Option<std::io::Result<RingFds>> {
        match &self.backing {
            Backing::Owner { fd, wake_fd, .. } => Some((|| {
                Ok(RingFds {
                    ring: memfd::reopen_read_only(fd)?,
                    wake: wake_fd.try_clone()?,
                })
            })()),
            Backing::Reader { .. } => None,
        }
    }
}

/// Checks every header field against this build's layout and the file's real length.
fn validate(h: &Header, len: u64) -> Result<Geometry, RingError> {
    if h.magic != MAGIC {
        return Err(RingError::BadMagic {
            found: h.magic,
            expected: MAGIC,
        });
    }
    if h.version != LAYOUT_VERSION {
        return Err(RingError::VersionMismatch {
            found: h.version,
            expected: LAYOUT_VERSION,
        });
    }
    let check = |field: &'static str, found: u64, expected: u64| {
        if found == expected {
            Ok(())
        } else {
            Err(RingError::Geometry {
                field,
                found,
                expected,
            })
        }
    };
    check("header_len", h.header_len.into(), HEADER_REGION)?;
    check("sample_rate", h.sample_rate.into(), SAMPLE_RATE.into())?;
    check(
        "frame_samples",
        h.frame_samples.into(),
        FRAME_SAMPLES as u64,
    )?;
    check("slot_size", h.slot_size.into(), SLOT_SIZE)?;
    check(
        "session_capacity",
        h.session_capacity.into(),
        SESSION_CAPACITY as u64,
    )?;
    let capacity = h.capacity;
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        return Err(RingError::BadCapacity(capacity.into()));
    }
    let g = Geometry::for_capacity(capacity);
    check("slots_offset", h.slots_offset, g.slots_offset)?;
    check("total_len", h.total_len, g.total_len)?;
    if g.total_len > len {
        return Err(RingError::Truncated {
            total_len: g.total_len,
            len,
        });
    }
    Ok(g)
}
