//! Helpers shared by the integration tests and the peer processes they start.
#![deny(missing_docs)]

pub mod alloc_counter;
pub mod fifo_mic;
pub mod latency;
pub mod pattern;
pub mod ring_peer;
pub mod watchdog;
