//! Capture: the cpal input callback copies samples into an rtrb queue and returns; the DSP
//! thread ([`crate::dsp::spawn_dsp_thread`]) drains it. A file can stand in for the device.

mod callback;
mod device;
mod file;
mod stream_error;

pub use callback::{CallbackStats, CallbackWriter, Stamp};
pub use device::{Capture, CaptureError, CaptureQueue, InputFormat, list_inputs, open};
pub use file::{DecodeError, Decoder, FeedProgress, FileFeeder, Pace};
pub use stream_error::{StreamErrorEffect, StreamErrors, effect_of, on_stream_error};
