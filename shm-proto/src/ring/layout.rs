//! The ring's memory layout: the only thing writer and readers must agree on byte for byte.
//!
//! Two memfds:
//!
//! ```text
//! ring:  offset 0            HEADER_REGION                 total_len
//!        | Header (geometry,  | Slot 0 | Slot 1 | … | Slot cap-1 | pad |
//!        |  write_seq,        |
//!        |  session table)    |        sealed F_SEAL_FUTURE_WRITE; readers get it O_RDONLY
//! wake:  | futex word | waiters |      readers map it read-write
//! ```
//!
//! The ring is sealed against any new write once the writer has mapped it, and readers are
//! handed a read-only descriptor of it: a reader physically cannot write audio or sessions
//! (a writable shared mapping of its descriptor fails). Only the wake-up words, in a memfd of
//! their own, are writable by readers.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// `b"V2M-RING"` as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"V2M-RING");
/// Bumped whenever anything in this file changes.
pub const LAYOUT_VERSION: u32 = 2;
/// Sample rate of every frame in the ring.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per frame: 20 ms at 16 kHz, mono.
pub const FRAME_SAMPLES: usize = 320;
/// Duration of one frame in nanoseconds.
pub const FRAME_NS: u64 = 20_000_000;
/// Recent sessions remembered in the header.
pub const SESSION_CAPACITY: usize = 64;
/// Alignment (and minimum size) of each region of the mapping.
pub const REGION_ALIGN: u64 = 64 * 1024;
/// Smallest capacity accepted (slots).
pub const MIN_CAPACITY: u32 = 2;
/// Largest capacity accepted (slots): about 93 hours, 22 GB. Guards against absurd headers.
pub const MAX_CAPACITY: u32 = 1 << 24;
/// Default capacity: 8192 frames = 163.84 s, "at least two minutes of audio".
pub const DEFAULT_CAPACITY: u32 = 8192;

/// Slot stamp / session stamp value meaning "being written".
pub(crate) const fn is_writing(stamp: u64) -> bool {
    stamp & 1 == 1
}

/// The stamp a slot carries once frame `seq` is completely written. Stamps only grow, so a
/// reader can tell "not yet written" (smaller) from "overwritten" (larger).
pub(crate) const fn done_stamp(seq: u64) -> u64 {
    2 * seq + 2
}

/// The stamp a slot carries while frame `seq` is being written.
pub(crate) const fn writing_stamp(seq: u64) -> u64 {
    2 * seq + 1
}

/// Fixed part at offset 0. Geometry fields are written once, before the fd is shared, and
/// never again; readers validate them once and keep their own copy.
#[repr(C)]
pub(crate) struct Header {
    pub magic: u64,
    pub version: u32,
    pub header_len: u32,
    pub sample_rate: u32,
    pub frame_samples: u32,
    pub capacity: u32,
    pub slot_size: u32,
    pub slots_offset: u64,
    /// Unused (the wake words have a memfd of their own since layout 2); zero.
    pub reserved: u64,
    pub total_len: u64,
    pub session_capacity: u32,
    /// Process id of the writer (diagnostics: lets a reader tell whose ring it holds).
    pub writer_pid: u32,
    /// Frames published so far = sequence number of the next frame. Only the writer stores.
    pub write_seq: CachePadded<AtomicU64>,
    /// Sessions opened so far; the next one goes to `sessions[head % SESSION_CAPACITY]`.
    pub session_head: CachePadded<AtomicU64>,
    pub sessions: [SessionSlot; SESSION_CAPACITY],
}

/// One session record, guarded by its own seqlock stamp.
#[repr(C, align(64))]
pub(crate) struct SessionSlot {
    /// Even: stable; odd: being written. Incremented twice per update.
    pub stamp: AtomicU64,
    /// Session id; 0 = empty slot.
    pub id: AtomicU64,
    pub first_seq: AtomicU64,
    /// Exclusive end; [`super::session::OPEN`] while the session is open.
    pub end_seq: AtomicU64,
}

/// One 20 ms frame and its metadata, guarded by a seqlock stamp (see [`done_stamp`]).
///
/// Samples are stored as `AtomicU32` bit patterns: a reader may copy while the writer overwrites
/// (that is what the stamp re-check detects), and with atomics that race is defined behaviour.
/// Relaxed atomic loads and stores compile to plain moves.
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub stamp: AtomicU64,
    pub capture_ns: AtomicU64,
    pub session_id: AtomicU64,
    pub flags: AtomicU32,
    pub _reserved: AtomicU32,
    pub samples: [AtomicU32; FRAME_SAMPLES],
}

/// The wake-up words, the only part of the mapping readers write.
#[repr(C)]
pub(crate) struct Wake {
    /// Bumped by every publish; readers FUTEX_WAIT on it.
    pub futex: CachePadded<AtomicU32>,
    /// Readers currently inside (or about to enter) FUTEX_WAIT.
    pub waiters: CachePadded<AtomicU32>,
}

/// Byte size of the header region.
pub const HEADER_REGION: u64 = round_up(size_of::<Header>() as u64, REGION_ALIGN);
/// Byte size of one slot.
pub const SLOT_SIZE: u64 = size_of::<Slot>() as u64;
/// Byte size of the wake memfd.
pub const WAKE_REGION: u64 = round_up(size_of::<Wake>() as u64, REGION_ALIGN);

const _: () = assert!(HEADER_REGION == REGION_ALIGN);
const _: () = assert!(SLOT_SIZE.is_multiple_of(64));

/// Rounds `x` up to a multiple of `align` (a power of two).
pub const fn round_up(x: u64, align: u64) -> u64 {
    (x + align - 1) & !(align - 1)
}

/// Where everything lies for a ring of `capacity` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Slots in the ring (a power of two).
    pub capacity: u32,
    /// Byte offset of slot 0.
    pub slots_offset: u64,
    /// Total length of the ring memfd.
    pub total_len: u64,
}

impl Geometry {
    /// The layout for `capacity` slots. The caller has checked `capacity`.
    pub const fn for_capacity(capacity: u32) -> Geometry {
        let slots_offset = HEADER_REGION;
        Geometry {
            capacity,
            slots_offset,
            total_len: round_up(slots_offset + capacity as u64 * SLOT_SIZE, REGION_ALIGN),
        }
    }

    /// Audio the ring holds, in nanoseconds.
    pub const fn duration_ns(&self) -> u64 {
        self.capacity as u64 * FRAME_NS
    }
}
