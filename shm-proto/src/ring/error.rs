//! Everything that can go wrong creating, opening or using a ring.

use std::io;

/// A ring error. Header errors name the field and both values, so a mismatched peer can be
/// diagnosed from one log line.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A syscall failed (memfd_create, ftruncate, mmap, fstat…).
    #[error("ring: {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A capacity that is not a power of two in the accepted range.
    #[error(
        "ring: capacity {0} frames is not a power of two between {min} and {max}",
        min = super::layout::MIN_CAPACITY,
        max = super::layout::MAX_CAPACITY
    )]
    BadCapacity(u64),
    /// The shared memory is smaller than a header.
    #[error("ring: the shared memory is {len} bytes, smaller than a ring header ({need} bytes)")]
    TooSmall {
        /// Bytes in the file.
        len: u64,
        /// Bytes a header needs.
        need: u64,
    },
    /// Not a v2m ring at all.
    #[error("ring header: bad magic {found:#018x} (expected {expected:#018x}): not a v2m ring")]
    BadMagic {
        /// What the header holds.
        found: u64,
        /// [`super::layout::MAGIC`].
        expected: u64,
    },
    /// A v2m ring of another layout version.
    #[error(
        "ring header: layout version {found}, this build understands {expected}: \
         v2m-rt and the worker come from different builds"
    )]
    VersionMismatch {
        /// Version in the header.
        found: u32,
        /// This build's version.
        expected: u32,
    },
    /// A geometry field that disagrees with this build's layout or with the mapping.
    #[error("ring header: {field} is {found}, expected {expected}")]
    Geometry {
        /// Header field name.
        field: &'static str,
        /// Value in the header.
        found: u64,
        /// Value this build computes.
        expected: u64,
    },
    /// The header promises more bytes than the file has.
    #[error("ring header: describes {total_len} bytes but the shared memory has only {len}")]
    Truncated {
        /// Length the header describes.
        total_len: u64,
        /// Length of the file.
        len: u64,
    },
    /// The ring is not sealed against resizing (it could shrink under the reader: SIGBUS) and
    /// against new writes, or its wake words against resizing.
    #[error("ring: the shared memory is not sealed (size fixed, no new writes)")]
    NotSealed,
    /// A welcome came with another number of descriptors than the ring's two.
    #[error("ring: {0} descriptors came with the welcome, not 2 (ring and wake words)")]
    Descriptors(usize),
    /// Session id 0 means "no session" and cannot be opened.
    #[error("session: id 0 is reserved for \"no session\"")]
    SessionIdZero,
    /// A session with this id is already in the table.
    #[error("session {0}: already exists")]
    SessionExists(u64),
    /// No session with this id in the table (never opened, or evicted as too old).
    #[error("session {0}: unknown (never opened, or no longer among the recent sessions)")]
    SessionUnknown(u64),
    /// The session was already closed.
    #[error("session {id}: already closed at sequence {end_seq}")]
    SessionClosed {
        /// The session.
        id: u64,
        /// Where it was closed.
        end_seq: u64,
    },
    /// Closing before the first frame.
    #[error("session {id}: cannot end at sequence {end_seq}, before its first frame {first_seq}")]
    SessionEndBeforeStart {
        /// The session.
        id: u64,
        /// Its first frame.
        first_seq: u64,
        /// The requested end.
        end_seq: u64,
    },
}

impl RingError {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> RingError {
        move |source| RingError::Io { context, source }
    }
}
