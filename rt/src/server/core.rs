//! The control core: one thread that owns the daemon's state and sleeps until the next input
//! or the nearest deadline. It dispatches to the parts that decide ([`Sessions`], [`Workers`],
//! [`Peers`], [`Source`]) and applies the [`Effect`]s they return. Connections never block it:
//! it only queues messages to them.

use super::input::{Arrived, ConnId, Input};
use super::peers::{PeerKind, Peers};
use super::sessions::{Effect, RingView, Sessions, Waiter};
use super::source::Source;
use super::status::{self, RingFigures};
use super::supervisor::Supervisor;
use super::workers::Workers;
use super::{CoreError, file_reader};
use crate::engine::{Engine, LiveSource};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{
    Assignment, DaemonMessage, DaemonState, ErrorKind, ErrorReply, Event, PROTOCOL_VERSION, Reply,
    RequestBody, Response, Role, Welcome, WorkerMessage,
};
use v2m_shm_proto::ring::{FRAME_NS, RingControl};

/// How long a request that ends audio (stop, cancel, pause) waits for the frames captured
/// before it; a device that delivers nothing meanwhile does not hold it longer.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// How often the ring is looked at while such a request waits.
const DRAIN_POLL: Duration = Duration::from_millis(1);
/// How often a file being fed is looked at for its end.
const FILE_POLL: Duration = Duration::from_millis(10);
/// The longest sleep: the DSP thread's health is looked at at least this often.
const IDLE_WAKE: Duration = Duration::from_secs(1);

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

/// The daemon's state and its event loop.
pub struct Core {
    rx: Receiver<Input>,
    tx: Sender<Input>,
    control: RingControl,
    engine: Engine,
    supervisor: Supervisor,
    peers: Peers,
    workers: Workers,
    sessions: Sessions,
    source: Source,
    /// Requests in arrival order, held while the first ends audio not yet in the ring.
    held: VecDeque<Arrived>,
    reading_file: bool,
    last_state: DaemonState,
    shutting_down: Option<Instant>,
    failed: Option<CoreError>,
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Result<Reply, ErrorReply> {
    Err(ErrorReply::new(kind, message))
}

impl Core {
    /// A core over a running engine (`device` names its live source); `tx` is the sending
    /// end of `rx`, for helpers that report back.
    pub fn new(
        (tx, rx): (Sender<Input>, Receiver<Input>),
        control: RingControl,
        engine: Engine,
        device: String,
        settings: Settings,
        supervisor: Supervisor,
    ) -> Core {
        Core {
            rx,
            tx,
            control,
            engine,
            workers: Workers::new(settings.final_worker, supervisor.names()),
            supervisor,
            peers: Peers::default(),
            sessions: Sessions::new(settings.stop_timeout, settings.pre_roll_frames),
            source: Source::new(settings.live, device),
            held: VecDeque::new(),
            reading_file: false,
            last_state: DaemonState::Idle,
            shutting_down: None,
            failed: None,
        }
    }

    /// Runs until shutdown; `Err` with the reason if the daemon failed.
    pub fn run(mut self) -> Result<(), CoreError> {
        self.supervisor.tick();
        loop {
            match self.rx.recv_deadline(self.next_deadline(Instant::now())) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.on_time(Instant::now());
            let state = self.sessions.state(self.source.paused());
            if state != self.last_state {
                self.last_state = state;
                let session_id = self.sessions.current();
                self.apply(vec![Effect::Broadcast(Event::StateChanged {
                    state,
                    session_id,
                })]);
            }
            if self.shutdown_done() {
                break;
            }
        }
        let _ = self.engine.stop();
        // Let the writers deliver the last answers (the shutdown reply) before exiting.
        let peers = self.peers.drain();
        let until = Instant::now() + Duration::from_secs(1);
        while peers.iter().any(|c| !c.flushed()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        for c in &peers {
            c.close();
        }
        self.failed.map_or(Ok(()), Err)
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        [
            (!self.held.is_empty()).then(|| now + DRAIN_POLL),
            self.sessions.feeding().map(|_| now + FILE_POLL),
            self.shutting_down.map(|_| now + Duration::from_millis(100)),
            self.sessions.next_deadline(),
            self.source.next_deadline(),
            self.supervisor.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .fold(now + IDLE_WAKE, Instant::min)
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Hello { conn, role } => self.hello(conn, role, now),
            Input::Request(a) if self.peers.contains(a.conn) => {
                self.held.push_back(a);
                self.release_held();
            }
            // From a connection already dropped (not reading): not run.
            Input::Request(_) => {}
            Input::Worker { conn, msg } => self.worker_message(conn, msg, now),
            Input::Gone { conn, why } => {
                let fx = self.drop_peer(conn, &why, false);
                self.apply(fx);
            }
            Input::ChildExited { index, pid, status } => {
                if let Some(name) = self.supervisor.exited(index, pid, &status)
                    && !self.workers.connected().iter().any(|w| w.0 == name)
                {
                    // It never said hello (a crash at start-up): tell listeners all the same.
                    let down = Event::WorkerDown {
                        name,
                        reason: status,
                    };
                    self.apply(vec![Effect::Broadcast(down)]);
                }
            }
            Input::FileRead { request, audio } => self.file_read(request, audio, now),
            Input::Signal(name) => {
                log::info!("{name}: shutting down");
                self.begin_shutdown();
            }
        }
    }

    fn on_time(&mut self, now: Instant) {
        self.release_held();
        self.supervisor.tick();
        let mut fx = Vec::new();
        self.sessions
            .expire(&mut fx, now, &self.workers.describe_owner(now));
        if self.sessions.feeding().is_some() && self.engine.drained() {
            self.sessions
                .file_fed(&mut fx, now, self.control.write_seq());
            self.source.back_to_live(&mut self.engine, now);
        }
        self.apply(fx);
        if self.shutting_down.is_some() {
            return;
        }
        if self.engine.dsp_died() {
            return self.fail(CoreError::DspDied);
        }
        if let Err(e) = self.source.check(&mut self.engine, now) {
            self.fail(CoreError::Engine(e));
        }
    }

    // ----- peers -------------------------------------------------------------------------

    fn hello(&mut self, conn: super::connection::Conn, role: Role, now: Instant) {
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
    fn drop_peer(&mut self, conn: ConnId, why: &str, force: bool) -> Vec<Effect> {
        let Some((c, kind)) = self.peers.remove(conn) else {
            return Vec::new();
        };
        if force {
            c.close();
        }
        self.held.retain(|a| a.conn != conn);
        self.sessions.waiter_gone(conn);
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
    fn deliver(&mut self, conn: ConnId, msg: &DaemonMessage) -> Vec<Effect> {
        match self.peers.send(conn, msg) {
            Ok(()) => Vec::new(),
            Err(f) => self.drop_peer(conn, &format!("cannot take messages ({f:?})"), true),
        }
    }

    fn worker_message(&mut self, conn: ConnId, msg: WorkerMessage, now: Instant) {
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
            WorkerMessage::Final(mut f) => {
                f.worker = name.clone();
                self.sessions.on_final(&mut fx, now, &name, is_owner, f);
            }
        }
        self.apply(fx);
    }

    /// Carries out effects; dropping a peer that cannot take a message may add more.
    fn apply(&mut self, fx: Vec<Effect>) {
        let mut queue = VecDeque::from(fx);
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Reply { conn, id, result } => {
                    let msg = DaemonMessage::Response(Response { id, result });
                    queue.extend(self.deliver(conn, &msg));
                }
                Effect::Broadcast(event) => {
                    for (conn, f) in self.peers.broadcast(event) {
                        log::warn!("connection {conn} is not reading its events; disconnected");
                        queue.extend(self.drop_peer(conn, &format!("not reading ({f:?})"), true));
                    }
                }
                Effect::Open { session, first_seq } => {
                    if let Err(e) = self.control.open_session(session, first_seq) {
                        log::error!("cannot open session {session}: {e}");
                    }
                    self.engine.set_session(session);
                    log::info!("session {session} started at frame {first_seq}");
                }
                Effect::Close { session, end_seq } => {
                    if let Err(e) = self.control.close_session(session, end_seq) {
                        log::error!("cannot close session {session}: {e}");
                    }
                    self.engine.set_session(0);
                    log::info!("session {session} closed before frame {end_seq}");
                }
                Effect::AssignAll { session } | Effect::AssignOwner { session } => {
                    let all = matches!(effect, Effect::AssignAll { .. });
                    for (_, conn, owns) in self.workers.connected() {
                        if all || owns {
                            let a = Assignment::Session {
                                session_id: session,
                                owns_final: owns,
                            };
                            queue.extend(self.deliver(conn, &DaemonMessage::Assignment(a)));
                        }
                    }
                }
                Effect::CancelAll { session } => {
                    log::info!("session {session} cancelled");
                    self.tell_workers(Assignment::Cancel {
                        session_id: session,
                    });
                }
                Effect::StopFile => self.source.back_to_live(&mut self.engine, Instant::now()),
            }
        }
    }

    fn tell_workers(&mut self, a: Assignment) {
        let msg = DaemonMessage::Assignment(a);
        for (_, conn, _) in self.workers.connected() {
            let fx = self.deliver(conn, &msg);
            self.apply(fx);
        }
    }

    // ----- requests ----------------------------------------------------------------------

    /// Whether `body` ends the open session's audio (or releases the microphone): it waits
    /// until every frame captured before it has been published.
    fn ends_audio(&self, body: &RequestBody) -> bool {
        let ends = match body {
            RequestBody::Stop | RequestBody::Cancel | RequestBody::Toggle => {
                self.sessions.recording().is_some()
            }
            RequestBody::Pause => true,
            _ => false,
        };
        ends && self.engine.is_running() && self.sessions.feeding().is_none()
    }

    /// Answers the held requests in order; one that ends audio goes when the frame holding
    /// its instant is in the ring (so `stop` keeps the last word), or after [`DRAIN_LIMIT`].
    fn release_held(&mut self) {
        while let Some(a) = self.held.front() {
            let end = if self.ends_audio(&a.request.body) {
                match self.control.end_at(a.at_ns) {
                    Some(end) => Some(end),
                    None if a.at.elapsed() < DRAIN_LIMIT => return,
                    None => {
                        log::warn!(
                            "the frames captured before a {:?} request did not come within {DRAIN_LIMIT:?}",
                            a.request.body
                        );
                        None
                    }
                }
            } else {
                None
            };
            if let Some(a) = self.held.pop_front() {
                let fx = self.request(a, end);
                self.apply(fx);
            }
        }
    }

    /// Answers a request; `end` is where the audio it ends stops (`None`: after the last
    /// frame published).
    fn request(&mut self, a: Arrived, end: Option<u64>) -> Vec<Effect> {
        let mut fx = Vec::new();
        let (conn, id) = (a.conn, a.request.id);
        let write_seq = self.control.write_seq();
        let end = end.unwrap_or(write_seq);
        let waiter = Waiter { conn, request: id };
        let result = if self.shutting_down.is_some() {
            refuse(ErrorKind::InvalidState, "v2m-rt is shutting down")
        } else {
            match a.request.body {
                RequestBody::Ping => Ok(Reply::Pong),
                RequestBody::Start => self.start(&mut fx, a.at),
                RequestBody::Toggle if self.sessions.recording().is_none() => {
                    self.start(&mut fx, a.at)
                }
                RequestBody::Stop | RequestBody::Toggle => {
                    let possible = self.workers.any_possible();
                    match self.sessions.stop(&mut fx, a.at, waiter, end, possible) {
                        Some(r) => r,
                        None => return fx,
                    }
                }
                RequestBody::Cancel => self.sessions.cancel(&mut fx, end, write_seq),
                RequestBody::Status => Ok(Reply::Status(self.status())),
                RequestBody::Subscribe { metrics } => match self.peers.subscribe(conn, metrics) {
                    true => Ok(Reply::Subscribed),
                    false => refuse(ErrorKind::PermissionDenied, "workers cannot subscribe"),
                },
                RequestBody::Pause => self.pause(),
                RequestBody::Resume => match self.source.resume(&mut self.engine) {
                    Ok(()) => Ok(Reply::Resumed),
                    Err(e) => refuse(ErrorKind::Device, e.to_string()),
                },
                RequestBody::TranscribeFile { ref path } => {
                    match self.transcribe_file(a.clone(), path) {
                        Ok(()) => return fx,
                        Err(e) => Err(e),
                    }
                }
                RequestBody::Last { count } => {
                    Ok(Reply::Last(self.sessions.history(count as usize)))
                }
                RequestBody::Shutdown => {
                    fx.push(Effect::Reply {
                        conn,
                        id,
                        result: Ok(Reply::ShuttingDown),
                    });
                    self.apply(std::mem::take(&mut fx));
                    self.begin_shutdown();
                    return fx;
                }
            }
        };
        fx.push(Effect::Reply { conn, id, result });
        fx
    }

    fn start(&mut self, fx: &mut Vec<Effect>, now: Instant) -> Result<Reply, ErrorReply> {
        if self.source.paused() {
            return refuse(
                ErrorKind::Paused,
                "capture is paused (microphone released): resume first",
            );
        }
        if self.sessions.feeding().is_none() && !self.engine.is_running() {
            let why = self.source.error().unwrap_or("the device is closed");
            return refuse(ErrorKind::Device, format!("no audio input: {why}"));
        }
        if !self.workers.any_possible() {
            return refuse(
                ErrorKind::NoWorker,
                "no worker connected: start one (v2m-worker run) or list one under [[workers]] in the config",
            );
        }
        let ring = RingView {
            write_seq: self.control.write_seq(),
            capacity: self.control.geometry().capacity as u64,
        };
        self.sessions.start(fx, now, ring)
    }

    fn pause(&mut self) -> Result<Reply, ErrorReply> {
        if let Some(id) = self.sessions.recording() {
            return refuse(
                ErrorKind::InvalidState,
                format!("recording session {id}: stop or cancel it first"),
            );
        }
        if let Some(id) = self.sessions.feeding() {
            return refuse(
                ErrorKind::InvalidState,
                format!("transcribing a file (session {id})"),
            );
        }
        match self.source.pause(&mut self.engine) {
            Ok(()) => Ok(Reply::Paused),
            Err(e) => {
                let message = e.to_string();
                self.fail(CoreError::Engine(e));
                refuse(ErrorKind::Internal, message)
            }
        }
    }

    /// Starts reading the file off this thread; the job starts when it is read.
    fn transcribe_file(&mut self, a: Arrived, path: &str) -> Result<(), ErrorReply> {
        let busy = |what: String| Err(ErrorReply::new(ErrorKind::InvalidState, what));
        if let Some(id) = self.sessions.recording() {
            return busy(format!("recording session {id}: stop it first"));
        }
        if self.reading_file || self.sessions.feeding().is_some() {
            return busy("transcribing a file; try again when it is done".into());
        }
        let max = self.control.geometry().capacity as f64 * FRAME_NS as f64 / 1e9 * 0.9;
        file_reader::spawn(a, path, max, self.tx.clone())?;
        self.reading_file = true;
        Ok(())
    }

    fn file_read(
        &mut self,
        a: Arrived,
        audio: Result<Arc<crate::capture::WavAudio>, String>,
        now: Instant,
    ) {
        self.reading_file = false;
        let waiter = Waiter {
            conn: a.conn,
            request: a.request.id,
        };
        let refused = |kind, message: String| {
            vec![Effect::Reply {
                conn: a.conn,
                id: a.request.id,
                result: refuse(kind, message),
            }]
        };
        let audio = match audio {
            Ok(audio) if self.peers.contains(a.conn) => audio,
            Ok(_) => return,
            Err(why) => return self.apply(refused(ErrorKind::BadFile, why)),
        };
        if let Some(id) = self.sessions.recording() {
            return self.apply(refused(
                ErrorKind::InvalidState,
                format!("recording session {id}: stop it first"),
            ));
        }
        if !self.workers.any_possible() {
            let why = "no worker connected to transcribe the file".to_string();
            return self.apply(refused(ErrorKind::NoWorker, why));
        }
        if let Err(e) = self.engine.stop() {
            return self.fail(CoreError::Engine(e));
        }
        let mut fx = Vec::new();
        let first = self.control.write_seq();
        if let Err(e) = self.sessions.start_file(&mut fx, now, waiter, first) {
            self.source.back_to_live(&mut self.engine, now);
            return self.apply(vec![Effect::Reply {
                conn: a.conn,
                id: a.request.id,
                result: Err(e),
            }]);
        }
        self.apply(fx);
        if let Err(e) = self.source.start_file(&mut self.engine, audio) {
            let mut fx = Vec::new();
            let _ = self
                .sessions
                .cancel(&mut fx, first, self.control.write_seq());
            fx.retain(|e| !matches!(e, Effect::Reply { .. } | Effect::StopFile));
            fx.extend(refused(ErrorKind::BadFile, e.to_string()));
            self.apply(fx);
        }
    }

    fn status(&self) -> v2m_shm_proto::protocol::StatusReport {
        let ring = RingFigures {
            frames_written: self.control.write_seq(),
            capacity: self.control.geometry().capacity,
        };
        status::report(
            Instant::now(),
            &self.sessions,
            &self.workers,
            &self.supervisor,
            &self.source,
            self.engine.metrics(),
            ring,
        )
    }

    fn fail(&mut self, why: CoreError) {
        log::error!("{why}");
        self.failed.get_or_insert(why);
        self.begin_shutdown();
    }

    // ----- shutdown ----------------------------------------------------------------------

    fn begin_shutdown(&mut self) {
        if self.shutting_down.is_some() {
            return;
        }
        self.shutting_down = Some(Instant::now());
        let mut fx = Vec::new();
        self.sessions.shutdown(&mut fx, self.control.write_seq());
        for a in std::mem::take(&mut self.held) {
            let result = refuse(ErrorKind::InvalidState, "v2m-rt is shutting down");
            fx.push(Effect::Reply {
                conn: a.conn,
                id: a.request.id,
                result,
            });
        }
        self.apply(fx);
        self.tell_workers(Assignment::Shutdown);
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
