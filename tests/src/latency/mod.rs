//! Latency measurement of the whole pipeline (scripts/latency.sh drives the `v2m-latency`
//! binary): real recordings through the FIFO microphone at real-time pace, the real daemon,
//! worker and model, figures from the client's clock and the worker's own report.

pub mod corpus;
pub mod measure;
pub mod offline;
pub mod report;
pub mod rig;
