//! The DSP thread ([`thread`]) and its work ([`pipeline`]): downmix, resample to 16 kHz,
//! cut 20 ms frames, VAD, publish. Allocation-free once built (a counting-allocator test
//! drives it for a minute of audio).

mod error;
mod pipeline;
mod thread;

pub use error::DspError;
pub use pipeline::{Dsp, DspStats, FrameLatency};
pub use thread::{DspParams, DspShared, DspThread, spawn_dsp_thread};
pub use v2m_audio::resample::MonoResampler;
