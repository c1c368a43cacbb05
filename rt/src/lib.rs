//! v2m-rt, the capture daemon. Built so far: capture from a cpal input device into an rtrb
//! queue ([`capture`]) and the DSP chain that turns it into the ring's 16 kHz frames
//! ([`dsp`]). The control server and worker supervision are still to come.
#![deny(missing_docs, unsafe_code)]

pub mod capture;
pub mod dsp;
