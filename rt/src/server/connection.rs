//! One peer connection: a reader thread that decodes frames and hands them to the core, and
//! a writer thread that drains a bounded outbound queue into the socket. The core never
//! blocks on a peer: it only `try_send`s, and a peer whose queue is full is dropped.

use super::core::Input;
use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use v2m_shm_proto::platform::peer;
use v2m_shm_proto::protocol::{
    self, DaemonMessage, ErrorKind, ErrorReply, FrameError, PROTOCOL_VERSION, PeerMessage, Response,
};

/// Messages queued per connection before it counts as not reading.
pub const OUTBOUND_QUEUE: usize = 512;

/// Connection number, unique for the daemon's life.
pub type ConnId = u64;

/// What the writer thread sends.
pub enum Outgoing {
    /// An encoded frame.
    Frame(Vec<u8>),
    /// An encoded frame with a descriptor attached (the ring, to a worker).
    WithFd(Vec<u8>, OwnedFd),
    /// Close the connection once what came before is sent.
    Close,
}

/// The core's handle on a connection.
#[derive(Clone)]
pub struct Conn {
    /// Its number.
    pub id: ConnId,
    tx: Sender<Outgoing>,
    sock: Arc<UnixStream>,
}

/// Why a message could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// The peer is not reading.
    Full,
    /// The connection is gone.
    Gone,
}

impl Conn {
    /// Queues `msg`; never blocks.
    pub fn send(&self, msg: &DaemonMessage) -> Result<(), SendFailure> {
        let bytes = protocol::encode_frame(msg).map_err(|_| SendFailure::Gone)?;
        self.queue(Outgoing::Frame(bytes))
    }

    /// Queues `msg` with `fd` attached; never blocks.
    pub fn send_with_fd(&self, msg: &DaemonMessage, fd: OwnedFd) -> Result<(), SendFailure> {
        let bytes = protocol::encode_frame(msg).map_err(|_| SendFailure::Gone)?;
        self.queue(Outgoing::WithFd(bytes, fd))
    }

    fn queue(&self, out: Outgoing) -> Result<(), SendFailure> {
        self.tx.try_send(out).map_err(|e| match e {
            TrySendError::Full(_) => SendFailure::Full,
            TrySendError::Disconnected(_) => SendFailure::Gone,
        })
    }

    /// Whether everything queued has been handed to the writer thread.
    pub fn flushed(&self) -> bool {
        self.tx.is_empty()
    }

    /// Ends the connection after what is queued (a refusal, say) has been sent.
    pub fn finish(&self) {
        if self.queue(Outgoing::Close).is_err() {
            self.close();
        }
    }

    /// Ends the connection now: both threads finish, the peer sees the socket close.
    pub fn close(&self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

fn error(id: u64, kind: ErrorKind, message: impl Into<String>) -> DaemonMessage {
    DaemonMessage::Response(Response {
        id,
        result: Err(ErrorReply::new(kind, message)),
    })
}

/// Takes a freshly accepted socket: checks the peer's uid, starts its two threads. Messages
/// go to `core` tagged with `id`.
pub fn spawn(sock: UnixStream, id: ConnId, core: Sender<Input>) {
    let (tx, rx) = channel::bounded(OUTBOUND_QUEUE);
    let sock = Arc::new(sock);
    let conn = Conn {
        id,
        tx,
        sock: Arc::clone(&sock),
    };
    let writer_sock = Arc::clone(&sock);
    let spawned = std::thread::Builder::new()
        .name(format!("v2m-conn{id}-w"))
        .spawn(move || write_loop(&writer_sock, rx));
    if spawned.is_err() {
        log::error!("connection {id}: cannot start its writer thread; closed");
        conn.close();
        return;
    }
    let me = peer::current_uid();
    match peer::peer_cred(&sock) {
        Ok(cred) if cred.uid == me => {}
        Ok(cred) => {
            log::warn!(
                "connection {id}: refused uid {} (pid {}), not {me}",
                cred.uid,
                cred.pid
            );
            let _ = conn.send(&error(
                0,
                ErrorKind::PermissionDenied,
                format!("v2m-rt serves uid {me} only"),
            ));
            drop(conn); // the writer sends the refusal, then sees the queue closed
            return;
        }
        Err(e) => {
            log::warn!("connection {id}: SO_PEERCRED failed ({e}); closed");
            conn.close();
            return;
        }
    }
    let spawned = std::thread::Builder::new()
        .name(format!("v2m-conn{id}-r"))
        .spawn(move || read_loop(conn, core));
    if spawned.is_err() {
        log::error!("connection {id}: cannot start its reader thread");
    }
}

fn write_loop(sock: &UnixStream, rx: Receiver<Outgoing>) {
    use std::io::Write;
    for out in rx {
        let ok = match out {
            Outgoing::Frame(bytes) => (&*sock).write_all(&bytes).is_ok(),
            Outgoing::WithFd(bytes, fd) => {
                v2m_shm_proto::platform::fd_passing::send_with_fd(sock, &bytes, fd.as_fd()).is_ok()
            }
            Outgoing::Close => false,
        };
        if !ok {
            break;
        }
    }
    // Every sender is gone (the core dropped the connection), a close was asked for, or the
    // peer stopped reading.
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

fn read_loop(conn: Conn, core: Sender<Input>) {
    let id = conn.id;
    let mut buf = Vec::new();
    let mut stream = &*conn.sock;
    let mut said_hello = false;
    let why = loop {
        let msg = match protocol::read_frame::<_, PeerMessage>(&mut stream, &mut buf) {
            Ok(Some(m)) => m,
            Ok(None) => break "closed by the peer".to_string(),
            Err(e) => {
                let (kind, fatal) = match &e {
                    FrameError::TooLarge { .. } => (Some(ErrorKind::TooLarge), true),
                    FrameError::Malformed(_) | FrameError::TrailingBytes(_) => {
                        (Some(ErrorKind::Malformed), false)
                    }
                    _ => (None, true),
                };
                if let Some(kind) = kind {
                    let _ = conn.send(&error(0, kind, e.to_string()));
                }
                if fatal || !said_hello {
                    break e.to_string();
                }
                continue;
            }
        };
        if !said_hello {
            match msg {
                PeerMessage::Hello(h) if h.protocol == PROTOCOL_VERSION => {
                    said_hello = true;
                    if core
                        .send(Input::Hello {
                            conn: conn.clone(),
                            role: h.role,
                        })
                        .is_err()
                    {
                        break "daemon shutting down".into();
                    }
                }
                PeerMessage::Hello(h) => {
                    let _ = conn.send(&error(
                        0,
                        ErrorKind::VersionMismatch,
                        format!(
                            "peer speaks protocol {}, v2m-rt speaks {PROTOCOL_VERSION}: use matching builds",
                            h.protocol
                        ),
                    ));
                    break "protocol version mismatch".into();
                }
                PeerMessage::Request(r) => {
                    let _ = conn.send(&error(
                        r.id,
                        ErrorKind::HelloRequired,
                        "send a hello before any request",
                    ));
                    break "request before hello".into();
                }
                PeerMessage::Worker(_) => {
                    let _ = conn.send(&error(
                        0,
                        ErrorKind::HelloRequired,
                        "send a hello before anything else",
                    ));
                    break "worker message before hello".into();
                }
            }
            continue;
        }
        let input = match msg {
            PeerMessage::Hello(_) => {
                let _ = conn.send(&error(0, ErrorKind::InvalidState, "hello was already said"));
                continue;
            }
            PeerMessage::Request(request) => Input::Request { conn: id, request },
            PeerMessage::Worker(msg) => Input::Worker { conn: id, msg },
        };
        if core.send(input).is_err() {
            break "daemon shutting down".into();
        }
    };
    log::debug!("connection {id}: {why}");
    // Drop our sender so the writer ends once the refusal (if any) is out.
    let _ = core.send(Input::Gone { conn: id, why });
    drop(conn);
}
