//! The model on disk ([`files`]), the models installed ([`installed`]) and a model's ONNX
//! Runtime sessions ([`session`]).

pub mod files;
pub mod installed;
pub mod session;
