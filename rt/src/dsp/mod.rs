//! The DSP thread's work: downmix, resample to 16 kHz, cut 20 ms frames, VAD, publish.
//! Allocation-free once built (a counting-allocator test drives it for a minute of audio).

mod pipeline;
mod resample;

pub use pipeline::{Dsp, DspError, DspStats};
pub use resample::MonoResampler;
