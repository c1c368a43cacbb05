//! The control core: one thread that owns the daemon's state (sessions, workers, the audio
//! engine) and answers everything the connections hand it. Connections never block it: it
//! only queues messages to them (see [`super::connection`]).

use super::connection::{Conn, ConnId, SendFailure};
use super::supervisor::Supervisor;
use crate::capture::{Pace, read_wav};
use crate::engine::{Engine, LiveSource};
use crossbeam::channel::{Receiver, RecvTimeoutError};
use nix::sys::signal::Signal;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use v2m_shm_proto::platform::alloc_count;
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::protocol::{
    Assignment, CaptureMetrics, DaemonMessage, DaemonState, ErrorKind, ErrorReply, Event,
    FinalText, PROTOCOL_VERSION, Reply, Request, RequestBody, Response, RingCounters, Role,
    SessionLatency, StatusReport, Welcome, WorkerHealth, WorkerIdentity, WorkerMessage,
    WorkerStatus,
};
use v2m_shm_proto::ring::{FRAME_NS, RingControl};

/// What reaches the core.
pub enum Input {
    /// A peer said a hello of the right version.
    Hello {
        /// Its connection.
        conn: Conn,
        /// Client or worker.
        role: Role,
    },
    /// A request from a peer that said hello.
    Request {
        /// From.
        conn: ConnId,
        /// What.
        request: Request,
    },
    /// A worker's output.
    Worker {
        /// From.
        conn: ConnId,
        /// What.
        msg: WorkerMessage,
    },
    /// A connection ended.
    Gone {
        /// Which.
        conn: ConnId,
        /// Why.
        why: String,
    },
    /// A supervised worker process exited.
    ChildExited {
        /// Its index in the supervisor.
        index: usize,
        /// Its pid.
        pid: u32,
        /// Exit status, as text.
        status: String,
    },
    /// SIGINT or SIGTERM.
    Signal(String),
}

/// Settings the core runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Frames of pre-roll.
    pub pre_roll_frames: u64,
    /// How long `stop` waits for the final text.
    pub stop_timeout: Duration,
    /// Whose finals answer `stop`; `None`: the first configured, else the first connected.
    pub final_worker: Option<String>,
    /// Live audio source.
    pub live: LiveSource,
}

enum PeerKind {
    Client { subscribed: bool },
    Worker { name: String },
}

struct Peer {
    conn: Conn,
    kind: PeerKind,
}

struct WorkerEntry {
    identity: WorkerIdentity,
    conn: Option<ConnId>,
    health: Option<WorkerHealth>,
    order: u64,
}

struct Session {
    id: u64,
    started: Instant,
    first_provisional: Option<Instant>,
    finals: HashMap<String, FinalText>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Waits {
    Stop,
    File,
}

struct Pending {
    session: Session,
    waiter: Option<(ConnId, u64)>,
    waits: Waits,
    asked: Instant,
    deadline: Instant,
}

/// How long a request that ends audio (stop, cancel, pause) waits for the frames captured
/// before it; a device that delivers nothing meanwhile does not hold it longer.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// How often the loop looks at the ring while a request waits for its audio.
const DRAIN_POLL: Duration = Duration::from_millis(1);

/// A request held until the audio captured before it is in the ring, with every request the
/// same peers sent after it (they are answered in order).
struct Deferred {
    conn: ConnId,
    request: Request,
    /// CLOCK_MONOTONIC ns when it arrived: the instant the session ends.
    at_ns: u64,
    received: Instant,
}

/// The daemon's state and its event loop.
pub struct Core {
    rx: Receiver<Input>,
    control: RingControl,
    engine: Engine,
    settings: Settings,
    supervisor: Supervisor,
    peers: HashMap<ConnId, Peer>,
    workers: Vec<WorkerEntry>,
    next_order: u64,
    next_session: u64,
    recording: Option<Session>,
    finishing: Vec<Pending>,
    file_job: Option<(Session, (ConnId, u64))>,
    paused: bool,
    device: Option<String>,
    device_error: Option<String>,
    reopen_at: Option<Instant>,
    reopen_backoff: Duration,
    overruns_logged: u64,
    last_state: DaemonState,
    last_session: Option<SessionLatency>,
    last_end_seq: u64,
    shutting_down: Option<Instant>,
    failed: Option<String>,
    deferred: VecDeque<Deferred>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> Result<Reply, ErrorReply> {
    Err(ErrorReply::new(kind, message))
}

impl Core {
    /// A core over a running engine (`device` names its live source).
    pub fn new(
        rx: Receiver<Input>,
        control: RingControl,
        engine: Engine,
        device: String,
        settings: Settings,
        supervisor: Supervisor,
    ) -> Core {
        Core {
            rx,
            control,
            engine,
            settings,
            supervisor,
            peers: HashMap::new(),
            workers: Vec::new(),
            next_order: 0,
            next_session: 1,
            recording: None,
            finishing: Vec::new(),
            file_job: None,
            paused: false,
            device: Some(device),
            device_error: None,
            reopen_at: None,
            reopen_backoff: Duration::from_secs(1),
            overruns_logged: 0,
            last_state: DaemonState::Idle,
            last_session: None,
            last_end_seq: 0,
            shutting_down: None,
            failed: None,
            deferred: VecDeque::new(),
        }
    }

    /// Runs until shutdown; `Err` with the reason if the daemon failed.
    pub fn run(mut self) -> Result<(), String> {
        self.supervisor.tick();
        loop {
            let wait = if self.deferred.is_empty() {
                Duration::from_millis(50)
            } else {
                DRAIN_POLL
            };
            match self.rx.recv_timeout(wait) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.run_deferred();
            self.tick();
            self.announce_state();
            if self.shutdown_done() {
                break;
            }
        }
        let _ = self.engine.stop();
        // Let the writers deliver the last answers (the shutdown reply) before exiting.
        let peers: Vec<Conn> = self.peers.drain().map(|(_, p)| p.conn).collect();
        let until = Instant::now() + Duration::from_secs(1);
        while peers.iter().any(|c| !c.flushed()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        for c in &peers {
            c.close();
        }
        match self.failed {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Hello { conn, role } => self.hello(conn, role),
            Input::Request { conn, request } => {
                self.deferred.push_back(Deferred {
                    conn,
                    request,
                    at_ns: monotonic_ns(),
                    received: Instant::now(),
                });
                self.run_deferred();
            }
            Input::Worker { conn, msg } => self.worker_message(conn, msg),
            Input::Gone { conn, why } => self.gone(conn, &why, false),
            Input::ChildExited { index, pid, status } => {
                self.supervisor.exited(index, pid, &status);
            }
            Input::Signal(name) => {
                log::info!("{name}: shutting down");
                self.begin_shutdown();
            }
        }
    }

    // ----- connections -------------------------------------------------------------------

    fn hello(&mut self, conn: Conn, role: Role) {
        let welcome = |attached| {
            DaemonMessage::Welcome(Welcome {
                protocol: PROTOCOL_VERSION,
                daemon_version: env!("CARGO_PKG_VERSION").to_string(),
                ring_attached: attached,
            })
        };
        match role {
            Role::Client => {
                if conn.send(&welcome(false)).is_ok() {
                    self.peers.insert(
                        conn.id,
                        Peer {
                            conn,
                            kind: PeerKind::Client { subscribed: false },
                        },
                    );
                }
            }
            Role::Worker(identity) => {
                let name = identity.name.clone();
                if self
                    .workers
                    .iter()
                    .any(|w| w.identity.name == name && w.conn.is_some())
                {
                    let _ = conn.send(&DaemonMessage::Response(Response {
                        id: 0,
                        result: Err(ErrorReply::new(
                            ErrorKind::InvalidState,
                            format!("a worker named {name:?} is already connected"),
                        )),
                    }));
                    conn.finish();
                    return;
                }
                let fd = match self.control.fd().try_clone_to_owned() {
                    Ok(fd) => fd,
                    Err(e) => {
                        log::error!("cannot duplicate the ring fd: {e}");
                        conn.close();
                        return;
                    }
                };
                if conn.send_with_fd(&welcome(true), fd).is_err() {
                    return;
                }
                let owner_before = self.owner();
                let order = self.next_order;
                self.next_order += 1;
                match self.workers.iter_mut().find(|w| w.identity.name == name) {
                    Some(w) => {
                        w.identity = identity.clone();
                        w.conn = Some(conn.id);
                        w.order = order;
                    }
                    None => self.workers.push(WorkerEntry {
                        identity: identity.clone(),
                        conn: Some(conn.id),
                        health: None,
                        order,
                    }),
                }
                log::info!("worker {name} ({}) connected", identity.model);
                self.peers.insert(
                    conn.id,
                    Peer {
                        conn,
                        kind: PeerKind::Worker { name: name.clone() },
                    },
                );
                self.broadcast(&Event::WorkerUp(identity));
                // Everything not yet transcribed, from its first frame.
                let owner = self.owner();
                let mut ids: Vec<u64> = self.finishing.iter().map(|p| p.session.id).collect();
                ids.extend(self.recording.as_ref().map(|s| s.id));
                ids.extend(self.file_job.as_ref().map(|(s, _)| s.id));
                ids.sort_unstable();
                for id in ids {
                    self.assign_to(&name, id, owner.as_deref() == Some(&name));
                }
                if owner != owner_before {
                    self.owner_changed();
                }
            }
        }
    }

    /// Forgets a connection. Its writer still delivers what is queued (the answer to a last
    /// request), then closes; `force` closes at once (a peer that is not reading).
    fn gone(&mut self, conn: ConnId, why: &str, force: bool) {
        let Some(peer) = self.peers.remove(&conn) else {
            return;
        };
        if force {
            peer.conn.close();
        }
        for p in &mut self.finishing {
            if p.waiter.is_some_and(|(c, _)| c == conn) {
                p.waiter = None;
            }
        }
        if let PeerKind::Worker { name } = peer.kind {
            let owner_before = self.owner();
            if let Some(w) = self.workers.iter_mut().find(|w| w.identity.name == name) {
                w.conn = None;
            }
            log::warn!("worker {name} disconnected: {why}");
            self.broadcast(&Event::WorkerDown {
                name,
                reason: why.to_string(),
            });
            if self.owner() != owner_before {
                self.owner_changed();
            }
        }
    }

    /// Sends to one peer; a peer that is not reading is dropped.
    fn send(&mut self, conn: ConnId, msg: &DaemonMessage) {
        let Some(peer) = self.peers.get(&conn) else {
            return;
        };
        match peer.conn.send(msg) {
            Ok(()) => {}
            Err(SendFailure::Full) => {
                log::warn!("connection {conn} is not reading; disconnected");
                self.gone(conn, "not reading its messages", true);
            }
            Err(SendFailure::Gone) => self.gone(conn, "connection lost", true),
        }
    }

    fn reply(&mut self, conn: ConnId, id: u64, result: Result<Reply, ErrorReply>) {
        self.send(conn, &DaemonMessage::Response(Response { id, result }));
    }

    fn broadcast(&mut self, event: &Event) {
        let to: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.kind, PeerKind::Client { subscribed: true }))
            .map(|(id, _)| *id)
            .collect();
        let msg = DaemonMessage::Event(event.clone());
        for id in to {
            self.send(id, &msg);
        }
    }

    // ----- workers -----------------------------------------------------------------------

    /// The worker whose finals answer `stop`, if connected.
    fn owner(&self) -> Option<String> {
        let wanted = self
            .settings
            .final_worker
            .clone()
            .or_else(|| self.supervisor.workers.first().map(|w| w.spec.name.clone()));
        match wanted {
            Some(name) => self
                .workers
                .iter()
                .find(|w| w.identity.name == name && w.conn.is_some())
                .map(|w| w.identity.name.clone()),
            None => self
                .workers
                .iter()
                .filter(|w| w.conn.is_some())
                .min_by_key(|w| w.order)
                .map(|w| w.identity.name.clone()),
        }
    }

    /// Whether a worker is connected, or may come back (one was seen, or one is supervised):
    /// the audio waits in the ring for it.
    fn any_worker_possible(&self) -> bool {
        !self.workers.is_empty() || !self.supervisor.workers.is_empty()
    }

    fn worker_conn(&self, name: &str) -> Option<ConnId> {
        self.workers
            .iter()
            .find(|w| w.identity.name == name)
            .and_then(|w| w.conn)
    }

    fn assign_to(&mut self, name: &str, session_id: u64, owns_final: bool) {
        if let Some(conn) = self.worker_conn(name) {
            self.send(
                conn,
                &DaemonMessage::Assignment(Assignment::Session {
                    session_id,
                    owns_final,
                }),
            );
        }
    }

    fn assign_all(&mut self, session_id: u64) {
        let owner = self.owner();
        let names: Vec<String> = self
            .workers
            .iter()
            .filter(|w| w.conn.is_some())
            .map(|w| w.identity.name.clone())
            .collect();
        for name in names {
            let owns = owner.as_deref() == Some(name.as_str());
            self.assign_to(&name, session_id, owns);
        }
    }

    fn tell_all_workers(&mut self, a: Assignment) {
        let conns: Vec<ConnId> = self.workers.iter().filter_map(|w| w.conn).collect();
        let msg = DaemonMessage::Assignment(a);
        for c in conns {
            self.send(c, &msg);
        }
    }

    /// A new owner: sessions waiting for a final take its stored final, or are assigned to it.
    fn owner_changed(&mut self) {
        let Some(owner) = self.owner() else {
            return;
        };
        log::info!("finals now come from worker {owner}");
        let mut i = 0;
        while i < self.finishing.len() {
            if let Some(f) = self.finishing[i].session.finals.get(&owner).cloned() {
                self.complete(i, f);
            } else {
                let id = self.finishing[i].session.id;
                self.assign_to(&owner, id, true);
                i += 1;
            }
        }
    }

    fn worker_message(&mut self, conn: ConnId, msg: WorkerMessage) {
        let name = match self.peers.get(&conn).map(|p| &p.kind) {
            Some(PeerKind::Worker { name }) => name.clone(),
            Some(PeerKind::Client { .. }) => {
                self.reply(
                    conn,
                    0,
                    err(
                        ErrorKind::PermissionDenied,
                        "worker messages need a worker hello",
                    ),
                );
                return;
            }
            None => return,
        };
        let is_owner = self.owner().as_deref() == Some(name.as_str());
        match msg {
            WorkerMessage::Health(h) => {
                if let Some(w) = self.workers.iter_mut().find(|w| w.identity.name == name) {
                    w.health = Some(h);
                }
            }
            WorkerMessage::Provisional(mut p) => {
                p.worker = name;
                if let Some(s) = self.session_mut(p.session_id)
                    && s.first_provisional.is_none()
                {
                    s.first_provisional = Some(Instant::now());
                }
                if is_owner {
                    self.broadcast(&Event::Provisional(p));
                }
            }
            WorkerMessage::Final(mut f) => {
                f.worker = name.clone();
                let Some(i) = self
                    .finishing
                    .iter()
                    .position(|p| p.session.id == f.session_id)
                else {
                    log::debug!("final for session {} not awaited; ignored", f.session_id);
                    return;
                };
                if is_owner {
                    self.complete(i, f);
                } else {
                    self.finishing[i].session.finals.insert(name, f);
                }
            }
        }
    }

    fn session_mut(&mut self, id: u64) -> Option<&mut Session> {
        if let Some(s) = self.recording.as_mut().filter(|s| s.id == id) {
            return Some(s);
        }
        if let Some((s, _)) = self.file_job.as_mut().filter(|(s, _)| s.id == id) {
            return Some(s);
        }
        self.finishing
            .iter_mut()
            .map(|p| &mut p.session)
            .find(|s| s.id == id)
    }

    /// The owner's final for `finishing[i]`: answer the waiter, tell subscribers.
    fn complete(&mut self, i: usize, mut f: FinalText) {
        let p = self.finishing.remove(i);
        f.stop_to_final_ms = p.asked.elapsed().as_secs_f32() * 1e3;
        log::info!(
            "session {}: final from {} after {:.0} ms: {:?}",
            p.session.id,
            f.worker,
            f.stop_to_final_ms,
            f.text
        );
        self.last_session = Some(SessionLatency {
            session_id: p.session.id,
            stop_to_final_ms: f.stop_to_final_ms,
            first_provisional_ms: p
                .session
                .first_provisional
                .map(|t| (t - p.session.started).as_secs_f32() * 1e3),
        });
        if let Some((conn, id)) = p.waiter {
            let result = if f.text.trim().is_empty() {
                err(
                    ErrorKind::NoSpeech,
                    format!("no speech detected in session {}", p.session.id),
                )
            } else if p.waits == Waits::File {
                Ok(Reply::Transcribed(f.clone()))
            } else {
                Ok(Reply::Stopped(f.clone()))
            };
            self.reply(conn, id, result);
        }
        self.broadcast(&Event::Final(f));
    }

    // ----- requests ----------------------------------------------------------------------

    /// Whether `body` ends the open session's audio (or releases the microphone): it waits
    /// until every frame captured before it has been published.
    fn ends_audio(&self, body: &RequestBody) -> bool {
        let ends = match body {
            RequestBody::Stop | RequestBody::Cancel | RequestBody::Toggle => {
                self.recording.is_some()
            }
            RequestBody::Pause => true,
            _ => false,
        };
        ends && self.engine.is_running() && self.file_job.is_none()
    }

    /// Answers the held requests in order; one that ends audio goes when the frame holding
    /// its instant is in the ring (so `stop` keeps the last word), or after [`DRAIN_LIMIT`].
    fn run_deferred(&mut self) {
        while let Some(d) = self.deferred.front() {
            let end = if self.ends_audio(&d.request.body) {
                match self.control.end_at(d.at_ns) {
                    Some(end) => Some(end),
                    None if d.received.elapsed() < DRAIN_LIMIT => return,
                    None => {
                        log::warn!(
                            "the frames captured before a {:?} request did not come within {DRAIN_LIMIT:?}; ending at the last one",
                            d.request.body
                        );
                        Some(self.control.write_seq())
                    }
                }
            } else {
                None
            };
            let Some(d) = self.deferred.pop_front() else {
                return;
            };
            let id = d.request.id;
            if let Some(result) = self.request(d.conn, d.request, d.received, end) {
                self.reply(d.conn, id, result);
            }
        }
    }

    /// Answers a request received at `received`; `end` is where the audio it ends stops
    /// (`None`: the last frame published). `None` when the answer comes later (stop,
    /// transcribe-file).
    fn request(
        &mut self,
        conn: ConnId,
        request: Request,
        received: Instant,
        end: Option<u64>,
    ) -> Option<Result<Reply, ErrorReply>> {
        if self.shutting_down.is_some() {
            return Some(err(ErrorKind::InvalidState, "v2m-rt is shutting down"));
        }
        Some(match request.body {
            RequestBody::Ping => Ok(Reply::Pong),
            RequestBody::Start => self.start(),
            RequestBody::Stop => return self.stop(conn, request.id, received, end),
            RequestBody::Toggle => {
                if self.recording.is_some() {
                    return self.stop(conn, request.id, received, end);
                }
                self.start()
            }
            RequestBody::Cancel => self.cancel(end),
            RequestBody::Status => Ok(Reply::Status(self.status())),
            RequestBody::Subscribe => {
                if let Some(Peer {
                    kind: PeerKind::Client { subscribed },
                    ..
                }) = self.peers.get_mut(&conn)
                {
                    *subscribed = true;
                    Ok(Reply::Subscribed)
                } else {
                    err(ErrorKind::PermissionDenied, "workers cannot subscribe")
                }
            }
            RequestBody::Pause => self.pause(),
            RequestBody::Resume => self.resume(),
            RequestBody::TranscribeFile { path } => {
                return self.transcribe_file(conn, request.id, &path);
            }
            RequestBody::Shutdown => {
                self.reply(conn, request.id, Ok(Reply::ShuttingDown));
                self.begin_shutdown();
                return None;
            }
        })
    }

    fn busy_with_file(&self) -> Option<Result<Reply, ErrorReply>> {
        self.file_job.as_ref().map(|(s, _)| {
            err(
                ErrorKind::InvalidState,
                format!(
                    "transcribing a file (session {}); try again when it is done",
                    s.id
                ),
            )
        })
    }

    fn start(&mut self) -> Result<Reply, ErrorReply> {
        if self.paused {
            return err(
                ErrorKind::Paused,
                "capture is paused (microphone released): resume first",
            );
        }
        if let Some(busy) = self.busy_with_file() {
            return busy;
        }
        if let Some(s) = &self.recording {
            return err(
                ErrorKind::InvalidState,
                format!("already recording session {}", s.id),
            );
        }
        if !self.engine.is_running() {
            return err(
                ErrorKind::Device,
                format!(
                    "no audio input: {}",
                    self.device_error
                        .as_deref()
                        .unwrap_or("the device is closed")
                ),
            );
        }
        if !self.any_worker_possible() {
            return err(
                ErrorKind::NoWorker,
                "no worker connected: start one (v2m-worker run) or list one under [[workers]] in the config",
            );
        }
        let write_seq = self.control.write_seq();
        let capacity = self.control.geometry().capacity as u64;
        let first = write_seq
            .saturating_sub(self.settings.pre_roll_frames)
            .max(self.last_end_seq)
            .max(write_seq.saturating_sub(capacity / 2));
        let id = self.next_session;
        if let Err(e) = self.control.open_session(id, first) {
            return err(ErrorKind::Internal, format!("cannot open a session: {e}"));
        }
        self.next_session += 1;
        self.engine.set_session(id);
        self.recording = Some(Session {
            id,
            started: Instant::now(),
            first_provisional: None,
            finals: HashMap::new(),
        });
        log::info!("session {id} started at frame {first} (write position {write_seq})");
        self.assign_all(id);
        Ok(Reply::Started {
            session_id: id,
            first_seq: first,
        })
    }

    /// Closes the open session before frame `end` (`None`: after the last one published).
    fn close_recording(&mut self, end: Option<u64>) -> Option<Session> {
        let s = self.recording.take()?;
        let first = self.control.session(s.id).map_or(0, |r| r.first_seq);
        let end = end.unwrap_or_else(|| self.control.write_seq()).max(first);
        if let Err(e) = self.control.close_session(s.id, end) {
            log::error!("cannot close session {}: {e}", s.id);
        }
        log::debug!(
            "session {} closed before frame {end} (ring at {})",
            s.id,
            self.control.write_seq()
        );
        self.engine.set_session(0);
        self.last_end_seq = end;
        Some(s)
    }

    fn stop(
        &mut self,
        conn: ConnId,
        id: u64,
        received: Instant,
        end: Option<u64>,
    ) -> Option<Result<Reply, ErrorReply>> {
        if self.recording.is_none() {
            if let Some(busy) = self.busy_with_file() {
                return Some(busy);
            }
            return Some(err(ErrorKind::InvalidState, "not recording: start first"));
        }
        let session = self.close_recording(end)?;
        log::info!("session {} stopped", session.id);
        if !self.any_worker_possible() {
            return Some(err(
                ErrorKind::NoWorker,
                format!("session {}: no worker to transcribe it", session.id),
            ));
        }
        self.finishing.push(Pending {
            session,
            waiter: Some((conn, id)),
            waits: Waits::Stop,
            asked: received,
            deadline: received + self.settings.stop_timeout,
        });
        None
    }

    fn cancel(&mut self, end: Option<u64>) -> Result<Reply, ErrorReply> {
        let session_id = if let Some(s) = self.close_recording(end) {
            s.id
        } else if let Some(p) = self.finishing.pop() {
            if let Some((conn, id)) = p.waiter {
                self.reply(
                    conn,
                    id,
                    err(
                        ErrorKind::InvalidState,
                        format!("session {} was cancelled", p.session.id),
                    ),
                );
            }
            p.session.id
        } else {
            return err(ErrorKind::InvalidState, "nothing to cancel");
        };
        log::info!("session {session_id} cancelled");
        self.tell_all_workers(Assignment::Cancel { session_id });
        Ok(Reply::Cancelled { session_id })
    }

    fn pause(&mut self) -> Result<Reply, ErrorReply> {
        if let Some(s) = &self.recording {
            return err(
                ErrorKind::InvalidState,
                format!("recording session {}: stop or cancel it first", s.id),
            );
        }
        if let Some(busy) = self.busy_with_file() {
            return busy;
        }
        if let Err(e) = self.engine.stop() {
            return self.fail(format!("cannot stop capture: {e}"));
        }
        self.paused = true;
        self.device = None;
        self.reopen_at = None;
        log::info!("paused: input released");
        Ok(Reply::Paused)
    }

    fn resume(&mut self) -> Result<Reply, ErrorReply> {
        if !self.paused {
            return Ok(Reply::Resumed);
        }
        match self.engine.start_live(&self.settings.live) {
            Ok(name) => {
                self.paused = false;
                self.device = Some(name);
                self.device_error = None;
                Ok(Reply::Resumed)
            }
            Err(e) => {
                self.device_error = Some(e.to_string());
                err(ErrorKind::Device, e.to_string())
            }
        }
    }

    fn transcribe_file(
        &mut self,
        conn: ConnId,
        id: u64,
        path: &str,
    ) -> Option<Result<Reply, ErrorReply>> {
        if let Some(busy) = self.busy_with_file() {
            return Some(busy);
        }
        if let Some(s) = &self.recording {
            return Some(err(
                ErrorKind::InvalidState,
                format!("recording session {}: stop it first", s.id),
            ));
        }
        let path = std::path::Path::new(path);
        if !path.is_absolute() {
            return Some(err(
                ErrorKind::BadFile,
                format!("{}: give an absolute path", path.display()),
            ));
        }
        let audio = match read_wav(path) {
            Ok(a) => a,
            Err(e) => return Some(err(ErrorKind::BadFile, e.to_string())),
        };
        let ring_s = self.control.geometry().capacity as f64 * FRAME_NS as f64 / 1e9;
        if audio.samples.is_empty() {
            return Some(err(
                ErrorKind::BadFile,
                format!("{}: holds no audio", path.display()),
            ));
        }
        if audio.seconds() > ring_s * 0.9 {
            return Some(err(
                ErrorKind::BadFile,
                format!(
                    "{}: {:.0} s is longer than the ring holds ({:.0} s): raise [rt] ring_seconds",
                    path.display(),
                    audio.seconds(),
                    ring_s * 0.9
                ),
            ));
        }
        if !self.any_worker_possible() {
            return Some(err(
                ErrorKind::NoWorker,
                "no worker connected to transcribe the file",
            ));
        }
        if let Err(e) = self.engine.stop() {
            return Some(self.fail(format!("cannot stop capture: {e}")));
        }
        let first = self.control.write_seq();
        let sid = self.next_session;
        if let Err(e) = self.control.open_session(sid, first) {
            self.restart_live();
            return Some(err(
                ErrorKind::Internal,
                format!("cannot open a session: {e}"),
            ));
        }
        self.next_session += 1;
        self.engine.set_session(sid);
        if let Err(e) = self
            .engine
            .start_file(Arc::new(audio), Pace::AsFastAsPossible)
        {
            let _ = self.control.close_session(sid, first);
            self.engine.set_session(0);
            self.restart_live();
            return Some(err(ErrorKind::BadFile, e.to_string()));
        }
        log::info!("session {sid}: transcribing {}", path.display());
        self.file_job = Some((
            Session {
                id: sid,
                started: Instant::now(),
                first_provisional: None,
                finals: HashMap::new(),
            },
            (conn, id),
        ));
        self.assign_all(sid);
        None
    }

    fn status(&self) -> StatusReport {
        let owner = self.owner();
        let mut workers: Vec<WorkerStatus> = self
            .workers
            .iter()
            .map(|w| WorkerStatus {
                identity: w.identity.clone(),
                connected: w.conn.is_some(),
                owns_finals: owner.as_deref() == Some(w.identity.name.as_str()),
                health: w.health.clone(),
                restarts: self.supervisor.restarts_of(&w.identity.name).unwrap_or(0),
            })
            .collect();
        for s in &self.supervisor.workers {
            if !workers.iter().any(|w| w.identity.name == s.spec.name) {
                workers.push(WorkerStatus {
                    identity: WorkerIdentity {
                        name: s.spec.name.clone(),
                        model: "(not connected yet)".into(),
                    },
                    connected: false,
                    owns_finals: false,
                    health: None,
                    restarts: s.restarts,
                });
            }
        }
        let cb = &self.engine.callback_stats;
        let shared = &self.engine.shared;
        StatusReport {
            state: self.state(),
            session_id: self.recording.as_ref().map(|s| s.id),
            device: self.device.clone(),
            device_error: self.device_error.clone(),
            ring: RingCounters {
                frames_written: self.control.write_seq(),
                samples_dropped: cb.dropped_samples.load(Ordering::Relaxed),
                discontinuities: self.engine.discontinuities(),
                capacity: self.control.geometry().capacity,
            },
            workers,
            last_session: self.last_session,
            capture: CaptureMetrics {
                callbacks: cb.callbacks.load(Ordering::Relaxed),
                callback_max_us: cb.durations.max_us(),
                callback_p99_us: cb.durations.quantile_us(0.99),
                dsp_frame_p50_us: shared.step.quantile_us(0.5),
                dsp_frame_p99_us: shared.step.quantile_us(0.99),
                capture_to_ring_p50_us: shared.capture_to_ring.quantile_us(0.5),
                capture_to_ring_p99_us: shared.capture_to_ring.quantile_us(0.99),
                allocs_after_start: alloc_count::installed().then(alloc_count::realtime_allocs),
            },
        }
    }

    fn state(&self) -> DaemonState {
        if self.recording.is_some() {
            DaemonState::Recording
        } else if !self.finishing.is_empty() || self.file_job.is_some() {
            DaemonState::Finishing
        } else if self.paused {
            DaemonState::Paused
        } else {
            DaemonState::Idle
        }
    }

    fn announce_state(&mut self) {
        let state = self.state();
        if state != self.last_state {
            self.last_state = state;
            let session_id = self
                .recording
                .as_ref()
                .map(|s| s.id)
                .or_else(|| self.finishing.last().map(|p| p.session.id))
                .or_else(|| self.file_job.as_ref().map(|(s, _)| s.id));
            self.broadcast(&Event::StateChanged { state, session_id });
        }
    }

    // ----- time ------------------------------------------------------------------------

    fn tick(&mut self) {
        let now = Instant::now();
        self.supervisor.tick();
        // Finals that did not come.
        let mut i = 0;
        while i < self.finishing.len() {
            if self.finishing[i].deadline > now {
                i += 1;
                continue;
            }
            let p = self.finishing.remove(i);
            let owner = self.owner();
            let why = format!(
                "no final text for session {} within {:.1} s ({})",
                p.session.id,
                self.settings.stop_timeout.as_secs_f32(),
                owner.map_or("no worker connected".into(), |o| format!("worker {o}"))
            );
            log::warn!("{why}");
            if let Some((conn, id)) = p.waiter {
                self.reply(conn, id, err(ErrorKind::Timeout, why));
            }
        }
        // A file fully in the ring: close its session, go back to live input.
        if self.file_job.is_some() && self.engine.drained() {
            let (session, waiter) = self.file_job.take().expect("checked");
            if let Err(e) = self.engine.stop() {
                let _ = self.fail(format!("cannot stop the file source: {e}"));
                return;
            }
            let end = self.control.write_seq();
            if let Err(e) = self.control.close_session(session.id, end) {
                log::error!("cannot close session {}: {e}", session.id);
            }
            self.engine.set_session(0);
            self.last_end_seq = end;
            self.finishing.push(Pending {
                session,
                waiter: Some(waiter),
                waits: Waits::File,
                asked: now,
                deadline: now + self.settings.stop_timeout,
            });
            self.restart_live();
        }
        if self.shutting_down.is_some() {
            return;
        }
        if self.engine.dsp_died() {
            let _ = self.fail("the DSP thread died".into());
            return;
        }
        // A device that failed: release it and reopen with backoff; sessions go on.
        if !self.paused
            && self.file_job.is_none()
            && let Some(e) = self.engine.device_failure(now)
        {
            log::error!("capture device failed: {e}; reopening");
            self.device_error = Some(e);
            self.device = None;
            if let Err(e) = self.engine.abandon() {
                let _ = self.fail(format!("cannot stop capture: {e}"));
                return;
            }
            self.reopen_backoff = Duration::from_secs(1);
            self.reopen_at = Some(now + self.reopen_backoff);
        }
        if self.reopen_at.is_some_and(|t| t <= now) {
            self.reopen_at = None;
            self.restart_live();
        }
        let overruns = self
            .engine
            .callback_stats
            .overruns
            .load(std::sync::atomic::Ordering::Relaxed);
        if overruns > self.overruns_logged {
            log::warn!(
                "input overrun ({overruns} so far): the device lost audio before v2m-rt got it; the gap is flagged"
            );
            self.overruns_logged = overruns;
        }
    }

    /// Restarts live input unless paused; on failure, retries with backoff.
    fn restart_live(&mut self) {
        if self.paused || self.shutting_down.is_some() {
            return;
        }
        match self.engine.start_live(&self.settings.live) {
            Ok(name) => {
                if self.device_error.is_some() {
                    log::info!("capture device {name} reopened");
                }
                self.device = Some(name);
                self.device_error = None;
                self.reopen_backoff = Duration::from_secs(1);
            }
            Err(e) => {
                log::error!(
                    "cannot open the input: {e}; retrying in {:?}",
                    self.reopen_backoff
                );
                self.device = None;
                self.device_error = Some(e.to_string());
                self.reopen_at = Some(Instant::now() + self.reopen_backoff);
                self.reopen_backoff = (self.reopen_backoff * 2).min(Duration::from_secs(10));
            }
        }
    }

    fn fail(&mut self, why: String) -> Result<Reply, ErrorReply> {
        log::error!("{why}");
        self.failed = Some(why.clone());
        self.begin_shutdown();
        err(ErrorKind::Internal, why)
    }

    // ----- shutdown ----------------------------------------------------------------------

    fn begin_shutdown(&mut self) {
        if self.shutting_down.is_some() {
            return;
        }
        self.shutting_down = Some(Instant::now());
        for p in std::mem::take(&mut self.finishing) {
            if let Some((conn, id)) = p.waiter {
                self.reply(
                    conn,
                    id,
                    err(ErrorKind::Internal, "v2m-rt is shutting down"),
                );
            }
        }
        if let Some((_, (conn, id))) = self.file_job.take() {
            self.reply(
                conn,
                id,
                err(ErrorKind::Internal, "v2m-rt is shutting down"),
            );
        }
        self.close_recording(None);
        self.tell_all_workers(Assignment::Shutdown);
        self.supervisor.begin_stop();
        let _ = self.engine.stop();
    }

    fn shutdown_done(&mut self) -> bool {
        let Some(since) = self.shutting_down else {
            return false;
        };
        let waited = since.elapsed();
        if !self.supervisor.any_running() {
            return true;
        }
        if waited > Duration::from_secs(5) {
            self.supervisor.signal_all(Signal::SIGKILL);
            return true;
        }
        if waited > Duration::from_secs(3) {
            self.supervisor.signal_all(Signal::SIGTERM);
        }
        false
    }
}
