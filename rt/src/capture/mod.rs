//! Capture: the cpal input callback copies samples into an rtrb queue and returns; the DSP
//! thread drains the queue into the [`crate::dsp::Dsp`] chain.

mod callback;
mod device;
mod dsp_thread;

pub use callback::{CallbackStats, CallbackWriter, Stamp};
pub use device::{Capture, CaptureError, CaptureQueue, InputFormat, open};
pub use dsp_thread::{DspThread, spawn_dsp_thread};
