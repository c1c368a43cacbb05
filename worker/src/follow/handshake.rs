//! Saying hello to v2m-rt as a worker and receiving the ring's descriptors with the welcome.

use crate::error::{ConnectionKind, WorkerError};
use std::os::unix::net::UnixStream;
use std::path::Path;
use v2m_shm_proto::protocol::{self, DaemonMessage, Hello, PeerMessage, Role, WorkerIdentity};
use v2m_shm_proto::ring::RingFds;

/// Connects to `socket`, says hello as worker `name` running `model`, and returns the
/// connection with the ring's descriptors.
pub fn connect(
    socket: &Path,
    name: &str,
    model: &str,
) -> Result<(UnixStream, RingFds), WorkerError> {
    use ConnectionKind::*;
    let conn = |kind| {
        move |e: std::io::Error| WorkerError::connection(kind, format!("{}: {e}", socket.display()))
    };
    let mut sock = UnixStream::connect(socket).map_err(conn(Connect))?;
    let hello = PeerMessage::Hello(Hello::new(Role::Worker(WorkerIdentity {
        name: name.to_string(),
        model: model.to_string(),
    })));
    protocol::write_frame(&mut sock, &hello).map_err(|e| WorkerError::connection(Protocol, e))?;
    let (welcome, fds) = protocol::read_frame_with_fds::<DaemonMessage>(&sock)
        .map_err(|e| WorkerError::connection(Protocol, e))?
        .ok_or_else(|| WorkerError::connection(Closed, "v2m-rt closed the connection"))?;
    match welcome {
        DaemonMessage::Welcome(_) => {}
        DaemonMessage::Response(r) => {
            return Err(match r.result {
                Err(e) => WorkerError::connection(Refused, e),
                Ok(_) => WorkerError::connection(Protocol, "unexpected reply to hello"),
            });
        }
        other => {
            return Err(WorkerError::connection(
                Protocol,
                format!("expected a welcome, got {other:?}"),
            ));
        }
    }
    let fds = RingFds::from_received(fds).map_err(|e| WorkerError::connection(Ring, e))?;
    Ok((sock, fds))
}
