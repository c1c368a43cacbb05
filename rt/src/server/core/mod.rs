//! The control core: one thread that owns the daemon's state and sleeps until the next input
//! or the nearest deadline. It dispatches to the parts that decide ([`Sessions`], [`Workers`],
//! [`Peers`], [`Source`]) and applies the [`Effect`]s they return. Connections never block it:
//! it only queues messages to them.

mod files;
mod peers_in;
mod requests;
mod shutdown;

use super::CoreError;
use super::input::{Arrived, Input};
use super::peers::Peers;
use super::sessions::{Effect, Sessions};
use super::source::Source;
use super::status::{self, RingFigures};
use super::supervisor::Supervisor;
use super::workers::Workers;
use crate::engine::{Engine, LiveSource};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{
    Assignment, DaemonMessage, DaemonState, ErrorKind, ErrorReply, Event, Reply, Response,
};
use v2m_shm_proto::ring::RingControl;

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
    opening_file: bool,
    file_job: Option<files::FileJob>,
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
            opening_file: false,
            file_job: None,
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
            self.file_job.as_ref().map(|_| now + FILE_POLL),
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
            Input::FileOpened { request, decoder } => self.file_opened(request, decoder, now),
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
        self.apply(fx);
        self.check_file(now);
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

    /// Carries out effects; dropping a peer that cannot take a message may add more.
    pub(super) fn apply(&mut self, fx: Vec<Effect>) {
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
                                file: self.sessions.is_file(session),
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
                Effect::StopFile => {
                    self.file_job = None;
                    self.source.back_to_live(&mut self.engine, Instant::now());
                }
            }
        }
    }

    pub(super) fn tell_workers(&mut self, a: Assignment) {
        let msg = DaemonMessage::Assignment(a);
        for (_, conn, _) in self.workers.connected() {
            let fx = self.deliver(conn, &msg);
            self.apply(fx);
        }
    }

    pub(super) fn status(&self) -> v2m_shm_proto::protocol::StatusReport {
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

    pub(super) fn fail(&mut self, why: CoreError) {
        log::error!("{why}");
        self.failed.get_or_insert(why);
        self.begin_shutdown();
    }
}
