//! Following audio as it arrives: where to cut segments ([`segment`]), which words are stable
//! ([`agreement`]).

pub mod agreement;
pub mod segment;
pub mod session;
