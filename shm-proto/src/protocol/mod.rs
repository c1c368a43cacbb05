//! The control protocol: messages and their framing on the Unix socket.

mod framing;
mod messages;
mod read_lag;

pub use framing::{
    FrameError, LEN_PREFIX, MAX_FRAME_LEN, decode_payload, encode_frame, payload_len, read_frame,
    read_frame_with_fds, write_frame, write_frame_with_fds,
};
pub use messages::*;
pub use read_lag::{READ_LAG_MAX_MS, ReadLag};
