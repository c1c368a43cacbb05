//! Thin, safe wrappers over the Linux primitives the rest of the crate builds on.
//!
//! Layering as in iceoryx2: this module knows syscalls and nothing about rings or messages;
//! `ring` and `protocol` build on it.

pub mod alloc_count;
pub mod clock;
pub mod fd_passing;
pub mod futex;
pub mod memfd;
pub mod peer;
pub mod shared_word;
