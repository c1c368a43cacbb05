//! The contract between v2m's processes, and nothing else: the shared-memory audio ring
//! ([`ring`]), the control protocol and its framing ([`protocol`]), where the processes find
//! each other ([`paths`]), and the Linux primitives under them ([`platform`]).
//!
//! Every other v2m crate depends on this one; it depends on none of them. All of v2m's
//! `unsafe` lives here, each block with a `// SAFETY:` comment.
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod client;
pub mod paths;
pub mod platform;
pub mod protocol;
pub mod ring;
