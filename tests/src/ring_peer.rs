//! The daemon side of a ring handshake, as the test writer plays it: accept a worker's hello,
//! answer with a welcome carrying the ring's memfd. The peer side is `src/bin/ring-peer.rs`.

use std::os::unix::net::{UnixListener, UnixStream};
use v2m_shm_proto::protocol::{self, DaemonMessage, PROTOCOL_VERSION, PeerMessage, Role, Welcome};
use v2m_shm_proto::ring::RingFds;

/// Accepts one connection, checks its hello is a worker's, and hands it the ring.
pub fn accept_and_send_ring(listener: &UnixListener, ring: &RingFds) -> UnixStream {
    let (mut sock, _) = listener.accept().expect("accept");
    let hello: PeerMessage = protocol::read_frame(&mut sock, &mut Vec::new())
        .expect("read hello")
        .expect("peer closed before hello");
    match hello {
        PeerMessage::Hello(h) if h.protocol == PROTOCOL_VERSION => {
            assert!(matches!(h.role, Role::Worker(_)), "peer is not a worker")
        }
        other => panic!("expected a hello, got {other:?}"),
    }
    let welcome = DaemonMessage::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        daemon_version: "test".into(),
        ring_attached: true,
    });
    protocol::write_frame_with_fds(&sock, &welcome, &ring.as_fds()).expect("send ring");
    sock
}

/// The figures a ring-peer prints last, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Frames received.
    pub received: u64,
    /// Frames reported lost.
    pub lost: u64,
    /// Frames whose contents or metadata differed from the pattern.
    pub mismatches: u64,
    /// Frames whose sequence number was not the one expected.
    pub out_of_order: u64,
    /// Sequence number of the first frame after the first loss (0 if none).
    pub first_after_loss: u64,
    /// Sequence number of the last frame received.
    pub last: u64,
}

impl PeerReport {
    /// Parses `done key=value…`.
    pub fn parse(line: &str) -> Option<PeerReport> {
        let rest = line.strip_prefix("done ")?;
        let mut r = PeerReport::default();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "received" => r.received = v,
                "lost" => r.lost = v,
                "mismatches" => r.mismatches = v,
                "out_of_order" => r.out_of_order = v,
                "first_after_loss" => r.first_after_loss = v,
                "last" => r.last = v,
                _ => return None,
            }
        }
        Some(r)
    }
}
