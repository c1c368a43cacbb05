//! `v2m-worker run`: connect to v2m-rt ([`handshake`]), receive the ring, follow the sessions
//! it assigns ([`inbox`]), run the passes each session's stream asks for while a watcher
//! aborts those no longer wanted ([`watch`]), send provisional and final text back.

pub mod handshake;
pub mod heartbeat;
pub mod inbox;
pub mod watch;

use crate::error::{ConnectionKind, WorkerError};
use crate::memory::{self, UnloadPolicy};
use crate::stream::session::{PassKind, SessionStream, StreamPolicy, Update};
use crate::transcriber::Transcriber;
use heartbeat::Outbox;
use inbox::{Inbox, spawn_inbox};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::protocol::{
    Assignment, FinalText, LagSummary, ProvisionalText, ReadLag, WorkerHealth, WorkerMessage,
};
use v2m_shm_proto::ring::{Frame, RingReader};
use v2m_text::rules::TextRules;
use watch::{Rule, Watch, spawn_watcher};

/// How the worker follows.
pub struct FollowOptions {
    /// v2m-rt's control socket.
    pub socket: PathBuf,
    /// This worker's name.
    pub name: String,
    /// Streaming policy.
    pub policy: StreamPolicy,
    /// Unload the model while idle when MemAvailable falls below this fraction of MemTotal.
    pub unload_below: f64,
    /// The `[text]` rules: all of them on dictations (provisional and final text alike), the
    /// replacements and fillers only on files (a recording's "period" is a word).
    pub rules: TextRules,
}

/// How following ended, when it ended cleanly.
#[derive(Debug, PartialEq, Eq)]
pub enum FollowEnd {
    /// v2m-rt said to shut down.
    Shutdown,
}

/// Longest sleep while following a session: assignments (a cancel, the next session) are
/// looked at at least this often.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// A session as assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Assigned {
    id: u64,
    owns_final: bool,
    file: bool,
}

/// How often the worker says where it has read to.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

struct Active {
    id: u64,
    file: bool,
    first_seq: u64,
    last_progress: Option<Instant>,
    stream: SessionStream,
    /// When the worker took the session up (CLOCK_MONOTONIC ns): frames captured before it
    /// (pre-roll, a backlog after a restart) say nothing about live latency.
    taken_up_ns: u64,
    capture_to_read: ReadLag,
}

/// The worker's side of the connection.
struct Follower<L> {
    opts: FollowOptions,
    out: Outbox,
    reader: RingReader,
    inbox: Receiver<Inbox>,
    watch: Watch,
    load: L,
    model: Option<Transcriber>,
    ep: String,
    queue: VecDeque<Assigned>,
    active: Option<Active>,
    memory: UnloadPolicy,
}

/// Connects to v2m-rt and follows sessions until told to shut down. `load` loads (and reloads,
/// after an unload under memory pressure) the transcriber.
pub fn follow<L>(opts: FollowOptions, mut load: L) -> Result<FollowEnd, WorkerError>
where
    L: FnMut() -> Result<Transcriber, WorkerError>,
{
    let mut model = load()?;
    // Warm-up: the first inference pays for allocations and kernel selection; pay it now.
    let t = Instant::now();
    model.transcribe(&[0.0; 16_000])?;
    log::info!("warm-up pass: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let ep = model.execution_provider().name.to_string();
    let (sock, fds) = handshake::connect(&opts.socket, &opts.name, &model.files().label())?;
    let io = |e: std::io::Error| WorkerError::connection(ConnectionKind::Protocol, e);
    let ring = |e: v2m_shm_proto::ring::RingError| WorkerError::connection(ConnectionKind::Ring, e);
    let watch_reader = RingReader::open(fds.try_clone().map_err(io)?).map_err(ring)?;
    let reader = RingReader::open(fds).map_err(ring)?;
    log::info!(
        "connected to {} as {}; ring of {} frames",
        opts.socket.display(),
        opts.name,
        reader.geometry().capacity
    );
    let watch = Watch::default();
    spawn_watcher(watch_reader, watch.clone());
    let inbox = spawn_inbox(sock.try_clone().map_err(io)?, watch.clone());
    let out = Outbox::new(sock);
    heartbeat::spawn(out.clone(), watch.clone());
    let memory = UnloadPolicy::new(opts.unload_below);
    let mut f = Follower {
        opts,
        out,
        reader,
        inbox,
        watch,
        load,
        model: Some(model),
        ep,
        queue: VecDeque::new(),
        active: None,
        memory,
    };
    f.send_health("")?;
    f.run()
}

impl<L> Follower<L>
where
    L: FnMut() -> Result<Transcriber, WorkerError>,
{
    fn send(&mut self, msg: WorkerMessage) -> Result<(), WorkerError> {
        self.out.send(msg)
    }

    fn send_health(&mut self, note: &str) -> Result<(), WorkerError> {
        let health = WorkerHealth {
            model_loaded: self.model.is_some(),
            execution_provider: self.ep.clone(),
            frames_lost: self.reader.lost_total(),
            note: note.to_string(),
        };
        self.send(WorkerMessage::Health(health))
    }

    /// Handles one message; `Some` ends following.
    fn handle(&mut self, msg: Inbox) -> Result<Option<FollowEnd>, WorkerError> {
        match msg {
            Inbox::Closed(why) => Err(WorkerError::connection(ConnectionKind::Closed, why)),
            Inbox::Assignment(a) => match a {
                Assignment::Session {
                    session_id,
                    owns_final,
                    file,
                } => {
                    if self.active.as_ref().map(|a| a.id) != Some(session_id)
                        && !self.queue.iter().any(|a| a.id == session_id)
                    {
                        self.queue.push_back(Assigned {
                            id: session_id,
                            owns_final,
                            file,
                        });
                    }
                    Ok(None)
                }
                Assignment::Cancel { session_id } => {
                    self.queue.retain(|a| a.id != session_id);
                    if self.active.as_ref().map(|a| a.id) == Some(session_id) {
                        log::info!("session {session_id} cancelled");
                        self.active = None;
                    }
                    Ok(None)
                }
                Assignment::Shutdown => Ok(Some(FollowEnd::Shutdown)),
            },
        }
    }

    fn run(&mut self) -> Result<FollowEnd, WorkerError> {
        let mut frame = Frame::default();
        loop {
            while let Ok(msg) = self.inbox.try_recv() {
                if let Some(end) = self.handle(msg)? {
                    return Ok(end);
                }
            }
            if self.active.is_none() && !self.start_next()? {
                self.idle()?;
                match self.inbox.recv_timeout(Duration::from_millis(200)) {
                    Ok(msg) => {
                        if let Some(end) = self.handle(msg)? {
                            return Ok(end);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(WorkerError::connection(
                            ConnectionKind::Closed,
                            "control reader stopped",
                        ));
                    }
                }
                continue;
            }
            match self.step(&mut frame) {
                Ok(()) => {}
                // Only an explicit cancel stops a commit or final pass; the inbox has it.
                Err(WorkerError::Cancelled) => log::debug!("pass cancelled with its session"),
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts the next queued session, reloading the model if it was unloaded.
    fn start_next(&mut self) -> Result<bool, WorkerError> {
        while let Some(Assigned {
            id,
            owns_final,
            file,
        }) = self.queue.pop_front()
        {
            let Some(rec) = self.reader.session(id) else {
                log::warn!("session {id} is not in the ring's session table; skipped");
                continue;
            };
            if self.model.is_none() {
                let t = Instant::now();
                self.model = Some((self.load)()?);
                log::info!(
                    "model reloaded in {:.0} ms",
                    t.elapsed().as_secs_f64() * 1e3
                );
                self.send_health("reloaded")?;
            }
            self.reader.seek(rec.first_seq);
            let policy = StreamPolicy {
                timestamps: file,
                live_passes: owns_final && !file,
                ..self.opts.policy
            };
            self.active = Some(Active {
                id,
                file,
                first_seq: rec.first_seq,
                last_progress: None,
                stream: SessionStream::new(policy, rec.first_seq),
                taken_up_ns: monotonic_ns(),
                capture_to_read: ReadLag::default(),
            });
            log::info!("following session {id} from frame {}", rec.first_seq);
            return Ok(true);
        }
        Ok(false)
    }

    /// Between sessions: give the model back under memory pressure.
    fn idle(&mut self) -> Result<(), WorkerError> {
        if self.model.is_none() || !self.memory.due(Instant::now()) {
            return Ok(());
        }
        let Some(note) = memory::available_fraction().and_then(|f| self.memory.decide(f)) else {
            return Ok(());
        };
        self.model = None;
        log::warn!("{note}");
        self.send_health(&note)
    }

    /// Reads what the ring has for the active session, finishes it at its end, else runs the
    /// pass its stream wants next or sleeps until there may be one.
    fn step(&mut self, frame: &mut Frame) -> Result<(), WorkerError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        let id = active.id;
        let end = match self.reader.session(id) {
            Some(rec) => rec.end_seq,
            None => {
                log::warn!("session {id} left the ring's session table; dropped");
                self.active = None;
                return Ok(());
            }
        };
        let model = self
            .model
            .as_mut()
            .ok_or_else(|| WorkerError::Inference("no model loaded for the session".into()))?;
        let canceller = model.canceller();
        // A window that fills up is committed while frames are read: a pass only an explicit
        // cancel stops.
        let mut updates = self.watch.during(
            id,
            active.stream.next_seq(),
            Rule::Explicit,
            &canceller,
            || read_frames(&mut self.reader, frame, active, end, model),
        )?;
        if active
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY)
        {
            active.last_progress = Some(Instant::now());
            let next_seq = active.stream.next_seq();
            self.out.send(WorkerMessage::Progress {
                session_id: id,
                next_seq,
            })?;
        }
        if let Some(e) = end
            && active.stream.next_seq() >= e
        {
            let next_seq = active.stream.next_seq();
            let f = self
                .watch
                .during(id, next_seq, Rule::Explicit, &canceller, || {
                    active.stream.finish(e, model)
                })?;
            let lost = active.stream.lost();
            let capture_to_read = std::mem::take(&mut active.capture_to_read);
            let first_seq = active.first_seq;
            let file = active.file;
            self.active = None;
            for u in updates {
                self.send_provisional(id, u)?;
            }
            let summary = LagSummary::of(&capture_to_read);
            let rules = &self.opts.rules;
            let apply = |t: &str| {
                if file {
                    rules.apply_verbatim(t)
                } else {
                    rules.apply(t)
                }
            };
            let mut segments = f.text_segments(first_seq);
            for s in &mut segments {
                s.text = apply(&s.text);
            }
            let text = apply(&f.text);
            self.send(WorkerMessage::ReadLag {
                session_id: id,
                histogram: capture_to_read,
            })?;
            log::info!(
                "session {id} final ({} frames lost, {}): {} characters",
                lost,
                if f.speculative {
                    "speculative pass"
                } else {
                    "pass after the end"
                },
                text.len()
            );
            log::debug!("session {id} final text: {:?} (heard {:?})", text, f.text);
            return self.send(WorkerMessage::Final(FinalText {
                session_id: id,
                text,
                worker: self.opts.name.clone(),
                stop_to_final_ms: 0.0,
                timings: f.timings,
                capture_to_read: summary,
                speculative: f.speculative,
                lost_frames: lost,
                segments,
            }));
        }
        let now = Instant::now();
        match active.stream.next_pass(now) {
            Some(kind) => {
                let rule = match kind {
                    PassKind::Provisional => Rule::Provisional {
                        pause_frames: active.stream.policy().pause_frames,
                        trailing: active
                            .stream
                            .window()
                            .speech()
                            .iter()
                            .rev()
                            .take_while(|&&s| !s)
                            .count(),
                    },
                    PassKind::Speculative { .. } => Rule::Speculative,
                };
                let window = active.stream.window();
                let (from, to) = (window.start_seq(), window.end_seq());
                let last_speech = window.last_speech_seq();
                let next_seq = active.stream.next_seq();
                let pass = self.watch.during(id, next_seq, rule, &canceller, || {
                    active.stream.run(kind, model, now)
                });
                canceller.reset();
                log::debug!(
                    "session {id}: {kind:?} pass over frames {from}..{to} (last speech {last_speech:?}, ring at {}) {} after {:.0} ms",
                    self.reader.write_seq(),
                    match &pass {
                        Ok(_) => "done",
                        Err(WorkerError::Cancelled) => "cancelled",
                        Err(_) => "failed",
                    },
                    now.elapsed().as_secs_f64() * 1e3
                );
                match pass {
                    Ok(u) => updates.extend(u),
                    Err(WorkerError::Cancelled) => {}
                    Err(e) => return Err(e),
                }
            }
            None if self.reader.position() >= self.reader.write_seq() => {
                // Sleep until a frame, a session change, or the provisional interval's end.
                let wait = active
                    .stream
                    .provisional_due_at()
                    .map_or(MAX_WAIT, |t| t.saturating_duration_since(now))
                    .clamp(Duration::from_millis(1), MAX_WAIT);
                self.reader.wait(wait);
            }
            None => {}
        }
        for u in updates {
            self.send_provisional(id, u)?;
        }
        Ok(())
    }

    fn send_provisional(&mut self, session_id: u64, u: Update) -> Result<(), WorkerError> {
        let (stable, tentative) = self.opts.rules.apply_provisional(&u.stable, &u.tentative);
        self.send(WorkerMessage::Provisional(ProvisionalText {
            session_id,
            stable,
            tentative,
            worker: self.opts.name.clone(),
            timings: u.timings,
        }))
    }
}

/// Feeds the stream every frame of the session the ring holds (up to its end, if it ended).
fn read_frames(
    reader: &mut RingReader,
    frame: &mut Frame,
    active: &mut Active,
    end: Option<u64>,
    model: &mut Transcriber,
) -> Result<Vec<Update>, WorkerError> {
    let mut updates = Vec::new();
    while end.is_none_or(|e| active.stream.next_seq() < e) {
        if reader.try_read(frame).is_none() {
            break;
        }
        let captured = frame.meta.capture_ns;
        if captured >= active.taken_up_ns {
            active
                .capture_to_read
                .record(monotonic_ns().saturating_sub(captured));
        }
        if let Some(e) = end
            && frame.seq >= e
        {
            // The ring lost frames right up to the end (and beyond): silence in their place.
            updates.extend(active.stream.fill_lost_until(e, model)?);
            break;
        }
        updates.extend(active.stream.push(frame, model)?);
    }
    Ok(updates)
}
