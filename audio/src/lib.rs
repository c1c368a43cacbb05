//! Audio as v2m takes it in, shared by the daemon and the worker: decoding any audio or video
//! file a user has into samples ([`decode`]), resampling to the ring's 16 kHz mono
//! ([`resample`]), cutting it into 20 ms frames ([`frames`]), and WebRTC voice activity on
//! them ([`vad`]).
#![deny(missing_docs)]

pub mod decode;
pub mod frames;
pub mod resample;
pub mod vad;

pub use decode::{AudioInfo, DecodeError, Decoder};
