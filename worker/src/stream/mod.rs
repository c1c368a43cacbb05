//! Following audio as it arrives: the open window ([`window`]), where a full one is cut
//! ([`cut`]), which tokens are stable ([`agreement`]), and the session that ties them to passes
//! ([`session`]).

pub mod agreement;
pub mod cut;
pub mod session;
pub mod window;
