//! v2m-rt, the capture daemon: capture from a cpal input device (or a WAV file) into an rtrb
//! queue ([`capture`]), the DSP chain that turns it into the ring's 16 kHz frames ([`dsp`]),
//! the engine that switches sources under one ring writer ([`engine`]), and the control
//! server with sessions, workers and supervision ([`server`]).
#![deny(missing_docs, unsafe_code)]

pub mod capture;
pub mod config;
pub mod dsp;
pub mod engine;
pub mod metrics;
pub mod server;
