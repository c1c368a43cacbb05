//! Text after transcription, shared by the client and the worker: transcript formats
//! ([`transcript`]).
#![deny(missing_docs)]

pub mod transcript;
