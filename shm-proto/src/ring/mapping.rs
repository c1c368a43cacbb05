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
    /// The creator maps everything read-write and keeps the fd to hand it out.
    Owner { _map: MmapMut, fd: OwnedFd },
    /// Readers map header + slots read-only and only the wake words read-write.
    Reader { _ro: Mmap, _wake: MmapMut },
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
    /// Creates a sealed memfd for `capacity` slots and initialises its header.
    pub(crate) fn create(capacity: u32) -> Result<Mapping, RingError> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(RingError::BadCapacity(capacity.into()));
        }
        let geometry = Geometry::for_capacity(capacity);
        let fd = memfd::create_sealed("v2m-ring", geometry.total_len)
            .map_err(RingError::io("creating the ring memfd"))?;
        // SAFETY: the memfd is ours alone (nobody else has the fd yet), sealed against
        // shrinking, and exactly `total_len` long.
        let mut map = unsafe {
            MmapOptions::new()
                .len(geometry.total_len as usize)
                .map_mut(&fd)
        }
        .map_err(RingError::io("mapping the ring"))?;
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
            addr_of_mut!((*header).wake_offset).write(geometry.wake_offset);
            addr_of_mut!((*header).total_len).write(geometry.total_len);
            addr_of_mut!((*header).session_capacity).write(SESSION_CAPACITY as u32);
            addr_of_mut!((*header).writer_pid).write(std::process::id());
        }
        // SAFETY: both offsets lie inside the mapping (Geometry::for_capacity) and are aligned
        // to REGION_ALIGN, more than Slot's and Wake's alignment.
        let (slots, wake) = unsafe {
            (
                base.add(geometry.slots_offset as usize).cast::<Slot>(),
                base.add(geometry.wake_offset as usize).cast::<Wake>(),
            )
        };
        Ok(Mapping {
            backing: Backing::Owner { _map: map, fd },
            header,
            slots,
            wake,
            geometry,
        })
    }

    /// Maps a ring received from another process, validating everything in its header first.
    pub(crate) fn open(fd: OwnedFd) -> Result<Mapping, RingError> {
        let len = memfd::len(&fd).map_err(RingError::io("reading the ring's size"))?;
        let need = size_of::<Header>() as u64;
        if len < need {
            return Err(RingError::TooSmall { len, need });
        }
        if !memfd::seals(&fd)
            .map_err(RingError::io("reading the ring's seals"))?
            .contains(memfd::RING_SEALS)
        {
            return Err(RingError::NotSealed);
        }
        // SAFETY: the fd is sealed against shrinking (checked just above), so every page of
        // `len` bytes stays backed for the mapping's lifetime.
        let ro = unsafe { MmapOptions::new().len(len as usize).map(&fd) }
            .map_err(RingError::io("mapping the ring read-only"))?;
        // SAFETY: the mapping is page-aligned and at least size_of::<Header>() long; every
        // field is an integer or an atomic, valid for any bit pattern.
        let header = unsafe { &*ro.as_ptr().cast::<Header>() };
        let geometry = validate(header, len)?;
        // SAFETY: wake_offset is REGION_ALIGN-aligned (validated, so page-aligned) and
        // wake_offset + WAKE_REGION <= len (validated); the fd is sealed against shrinking.
        let mut wake_map = unsafe {
            MmapOptions::new()
                .offset(geometry.wake_offset)
                .len(WAKE_REGION as usize)
                .map_mut(&fd)
        }
        .map_err(RingError::io("mapping the ring's wake words"))?;
        let base = ro.as_ptr();
        // SAFETY: slots_offset < wake_offset <= len, validated.
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

    /// The memfd, for the creator only.
    pub(crate) fn owner_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.backing {
            Backing::Owner { fd, .. } => Some(fd.as_fd()),
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
    check("wake_offset", h.wake_offset, g.wake_offset)?;
    check("total_len", h.total_len, g.total_len)?;
    if g.total_len > len {
        return Err(RingError::Truncated {
            total_len: g.total_len,
            len,
        });
    }
    Ok(g)
}
