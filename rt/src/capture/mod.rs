//! Capture: the cpal input callback copies samples into an rtrb queue and returns; the DSP
//! thread drains the queue into the [`crate::dsp::Dsp`] chain. A WAV file can stand in for
//! the device.

mod callback;
mod device;
mod dsp_thread;
mod file;
mod stream_error;

pub use callback::{CallbackStats, CallbackWriter, Stamp};
pub use device::{Capture, CaptureError, CaptureQueue, InputFormat, list_inputs, open};
pub use dsp_thread::{DspParams, DspShared, DspThread, spawn_dsp_thread};
pub use file::{FileError, FileFeeder, Pace, WavAudio, read_wav};
pub use stream_error::{StreamErrorEffect, effect_of};
