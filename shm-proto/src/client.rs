//! A blocking control client: connect, say hello, send requests, read events. What v2m-cli
//! and the integration tests speak to v2m-rt with.
//!
//! Responses and events share the connection; [`Client::request`] keeps events that arrive
//! before its answer for [`Client::next_event`], so neither is lost or mistaken for the other.

use crate::protocol::{
    self, DaemonMessage, ErrorReply, Event, FrameError, Hello, PeerMessage, Reply, Request,
    RequestBody, Role, Welcome,
};
use std::collections::VecDeque;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("v2m-rt is not running (no daemon at {path}): start it with `v2m-cli up` or `v2m-rt`")]
    NotRunning {
        /// The socket tried.
        path: PathBuf,
        /// Why connecting failed.
        #[source]
        source: io::Error,
    },
    /// The socket is there but this user may not use it (its directory or file permissions).
    #[error(
        "cannot connect to {path}: {source} (check the permissions of the socket and its folder)"
    )]
    NoAccess {
        /// The socket tried.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another user's process serves the socket: its answers are not to be trusted (they
    /// could be typed into this user's windows).
    #[error("{path} is served by uid {uid}, not by this user (uid {me}): refusing to talk to it")]
    NotOurs {
        /// The socket.
        path: PathBuf,
        /// The server's uid.
        uid: u32,
        /// Ours.
        me: u32,
    },
    /// The connection failed or a frame could not be read.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The daemon closed the connection.
    #[error("v2m-rt closed the connection")]
    Closed,
    /// No answer or event within the timeout.
    #[error("no answer from v2m-rt within {0:?}")]
    TimedOut(Duration),
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(ErrorReply),
    /// The daemon said something out of turn.
    #[error("unexpected message from v2m-rt: {0}")]
    Unexpected(String),
}

/// A connection to v2m-rt as a control client.
pub struct Client {
    sock: UnixStream,
    buf: Vec<u8>,
    next_id: u64,
    events: VecDeque<Event>,
    welcome: Welcome,
}

impl Client {
    /// Connects to the socket at `path`, checks that this user's process serves it, and says
    /// hello.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let sock = UnixStream::connect(path).map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied => ClientError::NoAccess {
                path: path.to_owned(),
                source,
            },
            _ => ClientError::NotRunning {
                path: path.to_owned(),
                source,
            },
        })?;
        let me = crate::platform::peer::current_uid();
        let server = crate::platform::peer::peer_cred(&sock).map_err(FrameError::Io)?;
        if server.uid != me {
            return Err(ClientError::NotOurs {
                path: path.to_owned(),
                uid: server.uid,
                me,
            });
        }
        let mut client = Client {
            sock,
            buf: Vec::new(),
            next_id: 1,
            events: VecDeque::new(),
            welcome: Welcome {
                protocol: 0,
                daemon_version: String::new(),
                ring_attached: false,
            },
        };
        protocol::write_frame(
            &mut client.sock,
            &PeerMessage::Hello(Hello::new(Role::Client)),
        )?;
        match client.read()? {
            DaemonMessage::Welcome(w) => client.welcome = w,
            DaemonMessage::Response(r) => {
                return Err(match r.result {
                    Err(e) => ClientError::Refused(e),
                    Ok(reply) => ClientError::Unexpected(format!("{reply:?}")),
                });
            }
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        Ok(client)
    }

    /// The daemon's hello.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The socket, for timeouts or shutting it down.
    pub fn socket(&self) -> &UnixStream {
        &self.sock
    }

    /// How long a read may block (`None`: forever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }

    /// Sends `body` and waits for its answer; a refusal is [`ClientError::Refused`].
    pub fn request(&mut self, body: RequestBody) -> Result<Reply, ClientError> {
        self.exchange(body, None)
    }

    /// As [`Client::request`], handing each event that arrives before the answer to
    /// `on_event` (a file's progress comes this way) instead of keeping it for
    /// [`Client::next_event`].
    pub fn request_with_events(
        &mut self,
        body: RequestBody,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Reply, ClientError> {
        self.exchange(body, Some(&mut on_event))
    }

    fn exchange(
        &mut self,
        body: RequestBody,
        mut on_event: Option<&mut dyn FnMut(&Event)>,
    ) -> Result<Reply, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        protocol::write_frame(&mut self.sock, &PeerMessage::Request(Request { id, body }))?;
        loop {
            match self.read()? {
                DaemonMessage::Response(r) if r.id == id => {
                    return r.result.map_err(ClientError::Refused);
                }
                DaemonMessage::Event(e) => match on_event.as_mut() {
                    Some(f) => f(&e),
                    None => self.events.push_back(e),
                },
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// The next event (after [`RequestBody::Subscribe`]), waiting at most `timeout`
    /// (`None`: forever). Timing out leaves the connection usable.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Event, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        self.sock
            .set_read_timeout(timeout)
            .map_err(FrameError::Io)?;
        let got = self.read();
        self.sock.set_read_timeout(None).map_err(FrameError::Io)?;
        match got {
            Ok(DaemonMessage::Event(e)) => Ok(e),
            Ok(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            Err(ClientError::Frame(FrameError::Io(e)))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(ClientError::TimedOut(timeout.unwrap_or_default()))
            }
            Err(e) => Err(e),
        }
    }

    fn read(&mut self) -> Result<DaemonMessage, ClientError> {
        protocol::read_frame(&mut self.sock, &mut self.buf)?.ok_or(ClientError::Closed)
    }
}
