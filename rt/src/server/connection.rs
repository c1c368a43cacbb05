//! One peer connection: a reader thread that decodes frames and hands them to the core, and
//! a writer thread that drains an outbound queue into the socket. The core never blocks on a
//! peer: it only queues, and a peer whose queue holds more than [`MAX_QUEUED_BYTES`] is not
//! reading and is dropped.
//!
//! Limits against a misbehaving peer of the same user: a payload buffer grows only as bytes
//! arrive ([`v2m_shm_proto::protocol::read_frame`]), the hello must come within
//! [`HELLO_DEADLINE`], names and paths are bounded ([`Hello::check`], `RequestBody::check`).

use super::input::{Arrived, ConnId, Input};
use crossbeam::channel::{self, Receiver, Sender};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::platform::peer;
use v2m_shm_proto::protocol::{
    self, DaemonMessage, ErrorKind, ErrorReply, FrameError, Hello, PROTOCOL_VERSION, PeerMessage,
    Response,
};
use v2m_shm_proto::ring::RingFds;

/// Bytes queued for one connection before it counts as not reading (a client that pipelines
/// requests while reading never gets near it; one that never reads does).
pub const MAX_QUEUED_BYTES: usize = 1 << 20;

/// How long a new connection has to say hello.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(5);

/// What the writer thread sends.
pub enum Outgoing {
    /// An encoded frame.
    Frame(Vec<u8>),
    /// An encoded frame shared with other connections (a broadcast event).
    Shared(Arc<Vec<u8>>),
    /// An encoded frame with descriptors attached (the ring's, to a worker).
    WithFds(Vec<u8>, RingFds),
    /// Close the connection once what came before is sent.
    Close,
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Outgoing::Frame(b) | Outgoing::WithFds(b, _) => b.len(),
            Outgoing::Shared(b) => b.len(),
            Outgoing::Close => 0,
        }
    }
}

/// The core's handle on a connection.
#[derive(Clone)]
pub struct Conn {
    /// Its number.
    pub id: ConnId,
    tx: Sender<Outgoing>,
    queued: Arc<AtomicUsize>,
    sock: Arc<UnixStream>,
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The peer is not reading.
    Full,
    /// The connection is gone.
    Gone,
}

/// `msg` as a frame; a reply too large for a frame becomes an error reply to the same request
/// (a status with thousands of workers, say), so the peer is answered, not cut off.
pub fn encode(msg: &DaemonMessage) -> Result<Vec<u8>, FrameError> {
    match protocol::encode_frame(msg) {
        Err(FrameError::TooLarge { len }) => {
            let id = match msg {
                DaemonMessage::Response(r) => r.id,
                _ => 0,
            };
            log::warn!("a {len}-byte message does not fit in a frame; sent an error instead");
            protocol::encode_frame(&DaemonMessage::Response(Response {
                id,
                result: Err(ErrorReply::new(
                    ErrorKind::Internal,
                    format!("the answer ({len} bytes) is larger than a frame"),
                )),
            }))
        }
        other => other,
    }
}

impl Conn {
    /// Queues `msg`; never blocks.
    pub fn send(&self, msg: &DaemonMessage) -> Result<(), SendFailure> {
        let bytes = encode(msg).map_err(|_| SendFailure::Gone)?;
        self.queue(Outgoing::Frame(bytes))
    }

    /// Queues an already encoded frame shared with other connections.
    pub fn send_shared(&self, bytes: &Arc<Vec<u8>>) -> Result<(), SendFailure> {
        self.queue(Outgoing::Shared(Arc::clone(bytes)))
    }

    /// Queues `msg` with the ring's descriptors attached; never blocks.
    pub fn send_with_ring(&self, msg: &DaemonMessage, fds: RingFds) -> Result<(), SendFailure> {
        let bytes = encode(msg).map_err(|_| SendFailure::Gone)?;
        self.queue(Outgoing::WithFds(bytes, fds))
    }

    fn queue(&self, out: Outgoing) -> Result<(), SendFailure> {
        let len = out.len();
        if self.queued.load(Ordering::Acquire) + len > MAX_QUEUED_BYTES {
            return Err(SendFailure::Full);
        }
        self.queued.fetch_add(len, Ordering::AcqRel);
        self.tx.send(out).map_err(|_| SendFailure::Gone)
    }

    /// Whether everything queued has been written to the socket.
    pub fn flushed(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }

    /// Ends the connection after what is queued (a refusal, say) has been sent.
    pub fn finish(&self) {
        if self.tx.send(Outgoing::Close).is_err() {
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
/// go to `core` tagged with `id`. `live` counts open connections (this one until it ends).
pub fn spawn(sock: UnixStream, id: ConnId, core: Sender<Input>, live: Arc<AtomicUsize>) {
    let (tx, rx) = channel::unbounded();
    let sock = Arc::new(sock);
    let queued = Arc::new(AtomicUsize::new(0));
    let conn = Conn {
        id,
        tx,
        queued: Arc::clone(&queued),
        sock: Arc::clone(&sock),
    };
    let writer_sock = Arc::clone(&sock);
    live.fetch_add(1, Ordering::AcqRel);
    let spawned = std::thread::Builder::new()
        .name(format!("v2m-conn{id}-w"))
        .spawn(move || {
            write_loop(&writer_sock, rx, &queued);
            live.fetch_sub(1, Ordering::AcqRel);
        });
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
            conn.finish();
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

/// Refuses a connection beyond the cap: one error frame, then closed.
pub fn refuse(sock: UnixStream, why: &str) {
    use std::io::Write;
    let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
    if let Ok(bytes) = protocol::encode_frame(&error(0, ErrorKind::Busy, why)) {
        let _ = (&sock).write_all(&bytes);
    }
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

fn write_loop(sock: &UnixStream, rx: Receiver<Outgoing>, queued: &AtomicUsize) {
    use std::io::Write;
    for out in rx {
        let len = out.len();
        let ok = match out {
            Outgoing::Frame(bytes) => (&*sock).write_all(&bytes).is_ok(),
            Outgoing::Shared(bytes) => (&*sock).write_all(&bytes).is_ok(),
            Outgoing::WithFds(bytes, fds) => {
                v2m_shm_proto::platform::fd_passing::send_with_fds(sock, &bytes, &fds.as_fds())
                    .is_ok()
            }
            Outgoing::Close => false,
        };
        queued.fetch_sub(len, Ordering::AcqRel);
        if !ok {
            break;
        }
    }
    // Every sender is gone (the core dropped the connection), a close was asked for, or the
    // peer stopped reading.
    let _ = sock.shutdown(std::net::Shutdown::Both);
    queued.store(0, Ordering::Release);
}

fn read_loop(conn: Conn, core: Sender<Input>) {
    let id = conn.id;
    let mut buf = Vec::new();
    let mut stream = &*conn.sock;
    let mut said_hello = false;
    let opened = Instant::now();
    let _ = conn.sock.set_read_timeout(Some(HELLO_DEADLINE));
    let why = loop {
        let msg = match protocol::read_frame::<_, PeerMessage>(&mut stream, &mut buf) {
            Ok(Some(m)) => m,
            Ok(None) => break "closed by the peer".to_string(),
            Err(FrameError::Io(e))
                if !said_hello
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                break format!("no hello within {:?}", opened.elapsed());
            }
            Err(e) => {
                let kind = match &e {
                    FrameError::TooLarge { .. } => Some(ErrorKind::TooLarge),
                    FrameError::Malformed(_) | FrameError::TrailingBytes(_) => {
                        Some(ErrorKind::Malformed)
                    }
                    _ => None,
                };
                let fatal = !e.is_recoverable();
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
            match first_message(&conn, msg) {
                Ok(h) => {
                    said_hello = true;
                    let _ = conn.sock.set_read_timeout(None);
                    if core
                        .send(Input::Hello {
                            conn: conn.clone(),
                            role: h.role,
                        })
                        .is_err()
                    {
                        break "daemon shutting down".into();
                    }
                    continue;
                }
                Err(why) => break why,
            }
        }
        let input = match msg {
            PeerMessage::Hello(_) => {
                let _ = conn.send(&error(0, ErrorKind::InvalidState, "hello was already said"));
                continue;
            }
            PeerMessage::Request(request) => {
                if let Err(e) = request.body.check() {
                    let _ = conn.send(&DaemonMessage::Response(Response {
                        id: request.id,
                        result: Err(e),
                    }));
                    continue;
                }
                Input::Request(Arrived {
                    conn: id,
                    request,
                    at_ns: monotonic_ns(),
                    at: Instant::now(),
                })
            }
            PeerMessage::Worker(msg) => Input::Worker { conn: id, msg },
        };
        if core.send(input).is_err() {
            break "daemon shutting down".into();
        }
    };
    log::debug!("connection {id}: {why}");
    let _ = core.send(Input::Gone { conn: id, why });
    // The writer ends once the core drops its handle too, after answering what this peer
    // asked before it closed its side (a peer may half-close and wait for the answers).
    drop(conn);
}

/// Checks the first message: a hello of this protocol with bounded names. Anything else is
/// answered with why, and ends the connection.
fn first_message(conn: &Conn, msg: PeerMessage) -> Result<Hello, String> {
    let refuse = |id, kind, message: String, why: &str| {
        let _ = conn.send(&error(id, kind, message));
        Err(why.to_string())
    };
    match msg {
        PeerMessage::Hello(h) if h.protocol == PROTOCOL_VERSION => match h.check() {
            Ok(()) => Ok(h),
            Err(e) => refuse(0, e.kind, e.message, "bad hello"),
        },
        PeerMessage::Hello(h) => refuse(
            0,
            ErrorKind::VersionMismatch,
            format!(
                "peer speaks protocol {}, v2m-rt speaks {PROTOCOL_VERSION}: use matching builds",
                h.protocol
            ),
            "protocol version mismatch",
        ),
        PeerMessage::Request(r) => refuse(
            r.id,
            ErrorKind::HelloRequired,
            "send a hello before any request".into(),
            "request before hello",
        ),
        PeerMessage::Worker(_) => refuse(
            0,
            ErrorKind::HelloRequired,
            "send a hello before anything else".into(),
            "worker message before hello",
        ),
    }
}
