//! Decoding policy, apart from the model sessions: what to feed, what to forbid, when to stop.

pub mod greedy;
pub mod quality;
pub mod repetition;
pub mod timestamps;
