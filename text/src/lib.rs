//! Text after transcription, shared by the client and the worker: the `[text]` and `[refine]`
//! configuration ([`config`]), deterministic clean-up ([`rules`]), transcript formats
//! ([`transcript`]) and a file job's progress on a terminal ([`progress`]).
#![deny(missing_docs)]

pub mod config;
pub mod progress;
pub mod rules;
pub mod transcript;
