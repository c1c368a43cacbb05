//! v2m-rt, the capture daemon. Built so far: the DSP chain that turns device audio into the
//! ring's 16 kHz frames ([`dsp`]). Capture (cpal), the control server and worker supervision
//! are still to come.
#![deny(missing_docs, unsafe_code)]

pub mod dsp;
