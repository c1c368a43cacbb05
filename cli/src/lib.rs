//! v2m-cli's library: exit codes, delivering text (clipboard, typing, notification), refining
//! it with an LLM, bringing the daemon up, rendering events. The binary parses arguments and calls these.
#![deny(missing_docs, unsafe_code)]

pub mod deliver;
pub mod exit;
pub mod listen;
pub mod refine;
pub mod up;
