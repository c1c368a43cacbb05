//! Audio as v2m takes it in, shared by the daemon and the worker: decoding any audio or video
//! file a user has into samples ([`decode`]), resampling to the ring's 16 kHz mono
//! ([`resample`]), and WebRTC voice activity on 20 ms frames ([`vad`]).
#![deny(missing_docs)]

pub mod decode;
pub mod resample;
pub mod vad;

pub use decode::{AudioInfo, DecodeError, Decoder};
