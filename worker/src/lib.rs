//! v2m-worker: Whisper on ONNX Runtime.
//!
//! Layered like candle's and transcribe-rs's Whisper: [`features`] (log-mel), [`model`]
//! (files on disk, ONNX sessions: tensors only), [`decode`] (greedy policy, suppression,
//! repetition), [`tokenizer`], and [`transcriber`] tying one pass together. [`runtime`] loads
//! ONNX Runtime and picks the execution provider.
#![deny(missing_docs, unsafe_code)]

pub mod audio;
pub mod config;
pub mod decode;
pub mod error;
pub mod eval;
pub mod features;
pub mod follow;
pub mod memory;
pub mod model;
pub mod offline;
pub mod runtime;
pub mod stream;
pub mod tokenizer;
pub mod transcriber;

pub use error::WorkerError;
