//! What peers say: hellos, worker messages, and peers that leave.

use super::{Core, Effect};
use crate::server::connection::Conn;
use crate::server::input::ConnId;
use crate::server::peers::PeerKind;
use std::time::Instant;
use v2m_shm_proto::protocol::{
    Assignment, DaemonMessage, ErrorKind, ErrorReply, Event, PROTOCOL_VERSION, Response, Role,
    Welcome, WorkerMessage,
};

impl Core {
    pub(super) fn hello(&mut self, conn: Conn, role: Role, now: Instant) {
        let welcome = |ring_attached| {
            DaemonMessage::Welcome(Welcome {
                protocol: PROTOCOL_VERSION,
                daemon_version: env!("CARGO_PKG_VERSION").to_string(),
                ring_attached,
            })
        };
        let identity = match role {
            Role::Client => {
                if conn.send(&welcome(false)).is_ok() {
                    let kind = PeerKind::Client {
                        subscribed: false,
                        metrics: false,
                    };
                    self.peers.add(conn, kind);
                }
                return;
            }
            Role::Worker(identity) => identity,
        };
        if let Err(e) = self.workers.hello(identity.clone(), conn.id, now) {
            let refusal = DaemonMessage::Response(Response {
                id: 0,
                result: Err(e),
            });
            let _ = conn.send(&refusal);
            return conn.finish();
        }
        let fds = match self.control.reader_fds() {
            Ok(fds) => fds,
            Err(e) => {
                log::error!("cannot hand out the ring: {e}");
                self.workers.gone(conn.id);
                return conn.close();
            }
        };
        let owner_before = self.workers.owner().map(str::to_owned);
        if conn.send_with_ring(&welcome(true), fds).is_err() {
            self.workers.gone(conn.id);
            return;
        }
        let (id, name) = (conn.id, identity.name.clone());
        log::info!("worker {name} ({}) connected", identity.model);
        self.peers
            .add(conn, PeerKind::Worker { name: name.clone() });
        let mut fx = vec![Effect::Broadcast(Event::WorkerUp(identity))];
        // Everything not yet transcribed, from its first frame.
        let owns = self.workers.owner() == Some(name.as_str());
        for session_id in self.sessions.untranscribed() {
            let a = Assignment::Session {
                session_id,
                owns_final: owns,
                file: self.sessions.is_file(session_id),
            };
            fx.extend(self.deliver(id, &DaemonMessage::Assignment(a)));
        }
        if self.workers.owner() != owner_before.as_deref() {
            log::info!("finals now come from worker {name}");
            self.sessions
                .owner_changed(&mut fx, now, self.workers.owner());
        }
        self.apply(fx);
    }

    /// Forgets a connection and what depended on it; `force` closes it at once (a peer not
    /// reading). Its writer still delivers what is queued otherwise.
    pub(super) fn drop_peer(&mut self, conn: ConnId, why: &str, force: bool) -> Vec<Effect> {
        let Some((c, kind)) = self.peers.remove(conn) else {
            return Vec::new();
        };
        if force {
            c.close();
        }
        self.held.retain(|a| a.conn != conn);
        self.sessions.waiter_gone(conn);
        if self.file_job.as_ref().is_some_and(|j| j.waiter() == conn) {
            // Whoever wanted the file's text left (Ctrl-C in the client): stop at once.
            log::info!("the file's requester left: transcription cancelled");
            self.abort_file(None);
        }
        let mut fx = Vec::new();
        if let PeerKind::Worker { name } = kind {
            let owner_before = self.workers.owner().map(str::to_owned);
            self.workers.gone(conn);
            log::warn!("worker {name} disconnected: {why}");
            fx.push(Effect::Broadcast(Event::WorkerDown {
                name,
                reason: why.to_string(),
            }));
            if self.workers.owner() != owner_before.as_deref() {
                self.sessions
                    .owner_changed(&mut fx, Instant::now(), self.workers.owner());
            }
        }
        fx
    }

    /// Queues `msg` for `conn`; a peer that cannot take it is dropped (effects returned).
    pub(super) fn deliver(&mut self, conn: ConnId, msg: &DaemonMessage) -> Vec<Effect> {
        match self.peers.send(conn, msg) {
            Ok(()) => Vec::new(),
            Err(f) => self.drop_peer(conn, &format!("cannot take messages ({f:?})"), true),
        }
    }

    pub(super) fn worker_message(&mut self, conn: ConnId, msg: WorkerMessage, now: Instant) {
        let name = match self.peers.kind(conn) {
            Some(PeerKind::Worker { name }) => name.clone(),
            Some(PeerKind::Client { .. }) => {
                let e = ErrorReply::new(
                    ErrorKind::PermissionDenied,
                    "worker messages need a worker hello",
                );
                let fx = vec![Effect::Reply {
                    conn,
                    id: 0,
                    result: Err(e),
                }];
                return self.apply(fx);
            }
            None => return,
        };
        self.workers.heard(conn, now);
        let is_owner = self.workers.owner() == Some(name.as_str());
        let mut fx = Vec::new();
        match msg {
            WorkerMessage::Health(h) => self.workers.set_health(conn, h),
            WorkerMessage::Heartbeat { pass_ms } => self.workers.heartbeat(conn, pass_ms),
            WorkerMessage::Provisional(mut p) => {
                p.worker = name;
                if self.sessions.on_provisional(p.session_id, now) && is_owner {
                    fx.push(Effect::Broadcast(Event::Provisional(p)));
                }
            }
            WorkerMessage::ReadLag {
                session_id,
                histogram,
            } if is_owner => fx.push(Effect::Broadcast(Event::ReadLag {
                session_id,
                histogram,
            })),
            WorkerMessage::ReadLag { .. } => {}
            WorkerMessage::Progress {
                session_id,
                next_seq,
            } if is_owner => self.file_progress(session_id, next_seq),
            WorkerMessage::Progress { .. } => {}
            WorkerMessage::Final(mut f) => {
                f.worker = name.clone();
                self.sessions.on_final(&mut fx, now, &name, is_owner, f);
            }
        }
        self.apply(fx);
    }
}
