//! The model on disk ([`files`]) and its ONNX Runtime sessions ([`session`]).

pub mod files;
pub mod session;
