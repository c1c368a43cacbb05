//! Text after transcription, shared by the client and the worker: transcript formats
//! ([`transcript`]) and a file job's progress on a terminal ([`progress`]).
#![deny(missing_docs)]

pub mod progress;
pub mod transcript;
