//! Frames on the control socket: a u32 little-endian length, then that many bytes of postcard.
//!
//! A reader refuses a length above [`MAX_FRAME_LEN`] before allocating anything, and turns a
//! truncated or undecodable payload into a [`FrameError`], never a panic.

use crate::platform::fd_passing;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Largest payload accepted, in bytes (1 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Bytes of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    /// The length prefix announces more than [`MAX_FRAME_LEN`]; nothing was allocated.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes", max = MAX_FRAME_LEN)]
    TooLarge {
        /// The announced (or attempted) length.
        len: u64,
    },
    /// The stream ended inside a frame.
    #[error("truncated frame: stream ended after {got} of {expected} bytes")]
    Truncated {
        /// Bytes the frame needed (prefix included).
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// The payload is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(#[source] postcard::Error),
    /// The payload decoded but bytes were left over.
    #[error("malformed frame: {0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[source] postcard::Error),
}

impl FrameError {
    /// Whether the connection can go on after this error. After an oversized length the
    /// stream position is lost, and after an I/O error or truncation there is no stream.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            FrameError::Malformed(_) | FrameError::TrailingBytes(_)
        )
    }
}

/// Encodes `msg` as one frame (prefix + payload).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; LEN_PREFIX];
    out = postcard::to_extend(msg, out).map_err(FrameError::Encode)?;
    let len = out.len() - LEN_PREFIX;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len: len as u64 });
    }
    out[..LEN_PREFIX].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Decodes one payload (without prefix), refusing trailing bytes.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(payload).map_err(FrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

/// Checks a length prefix.
pub fn payload_len(prefix: [u8; LEN_PREFIX]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len: len as u64 });
    }
    Ok(len)
}

/// Writes `msg` as one frame with one `write_all`.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode_frame(msg)?)?;
    Ok(())
}

/// Reads as many bytes as arrive, up to `buf.len()`; stops early only at end of stream.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads one frame. `Ok(None)` at a clean end of stream (between frames). `buf` is reused
/// between calls to avoid an allocation per message.
pub fn read_frame<R: Read, T: DeserializeOwned>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<T>, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    match read_full(r, &mut prefix)? {
        0 => return Ok(None),
        LEN_PREFIX => {}
        got => {
            return Err(FrameError::Truncated {
                expected: LEN_PREFIX,
                got,
            });
        }
    }
    read_payload(r, payload_len(prefix)?, buf).map(Some)
}

/// Bytes the payload buffer grows by: a peer that announces a large frame and sends little of
/// it costs this much, not the length it announced.
const READ_CHUNK: usize = 16 * 1024;

fn read_payload<R: Read, T: DeserializeOwned>(
    r: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<T, FrameError> {
    buf.clear();
    while buf.len() < len {
        let start = buf.len();
        let want = (len - start).min(READ_CHUNK);
        buf.resize(start + want, 0);
        let got = read_full(r, &mut buf[start..])?;
        buf.truncate(start + got);
        if got < want {
            return Err(FrameError::Truncated {
                expected: LEN_PREFIX + len,
                got: LEN_PREFIX + buf.len(),
            });
        }
    }
    decode_payload(buf)
}

/// Writes `msg` as one frame with `fds` attached (SCM_RIGHTS).
pub fn write_frame_with_fds<T: Serialize>(
    sock: &UnixStream,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), FrameError> {
    fd_passing::send_with_fds(sock, &encode_frame(msg)?, fds)?;
    Ok(())
}

/// Reads one frame and the descriptors attached to it, if any. Reads nothing past the frame.
pub fn read_frame_with_fds<T: DeserializeOwned>(
    sock: &UnixStream,
) -> Result<Option<(T, Vec<OwnedFd>)>, FrameError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    let mut fds = Vec::new();
    while got < LEN_PREFIX {
        let (n, received) = fd_passing::recv_with_fds(sock, &mut prefix[got..])?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                expected: LEN_PREFIX,
                got,
            });
        }
        fds.extend(received);
        got += n;
    }
    let len = payload_len(prefix)?;
    let msg = read_payload(&mut &*sock, len, &mut Vec::new())?;
    Ok(Some((msg, fds)))
}
