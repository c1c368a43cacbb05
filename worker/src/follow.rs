//! `v2m-worker run`: connect to v2m-rt, receive the ring, follow the sessions it assigns, send
//! provisional and final text back.

use crate::error::WorkerError;
use crate::memory;
use crate::model::session::Canceller;
use crate::stream::session::{SessionStream, StreamPolicy, Update};
use crate::transcriber::Transcriber;
use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::protocol::{
    self, Assignment, DaemonMessage, FinalText, Hello, PeerMessage, ProvisionalText, ReadLag, Role,
    WorkerHealth, WorkerIdentity, WorkerMessage,
};
use v2m_shm_proto::ring::{Frame, RingReader};

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
}

/// How following ended, when it ended cleanly.
#[derive(Debug, PartialEq, Eq)]
pub enum FollowEnd {
    /// v2m-rt said to shut down.
    Shutdown,
}

enum Inbox {
    Daemon(DaemonMessage),
    Closed(String),
}

struct Active {
    id: u64,
    stream: SessionStream,
    /// When the worker took the session up (CLOCK_MONOTONIC ns): frames captured before it
    /// (pre-roll, a backlog after a restart) say nothing about live latency.
    taken_up_ns: u64,
    capture_to_read: ReadLag,
}

/// The session whose provisional pass is running, and how to cancel it.
type Watch = Arc<Mutex<Option<(u64, Canceller)>>>;

/// Aborts a provisional pass whose session ends while it runs, so the final pass starts at
/// once instead of after a pass whose result nobody wants. Holds its own view of the ring and
/// sleeps on it (woken by frames and by session closes).
fn spawn_watcher(mut ring: RingReader, watch: Watch) {
    std::thread::spawn(move || {
        loop {
            {
                let mut w = watch.lock().unwrap_or_else(|p| p.into_inner());
                // Cancel under the lock: once the follower has cleared `watch`, no late
                // cancel can reach the next pass.
                if let Some((id, canceller)) = w.as_ref()
                    && ring.session(*id).is_none_or(|r| !r.is_open())
                {
                    canceller.cancel();
                    *w = None;
                }
            }
            ring.seek(ring.write_seq());
            ring.wait(Duration::from_millis(100));
        }
    });
}

/// The worker's side of the connection.
struct Follower<L> {
    /// Session whose provisional pass is running, for the watcher.
    watch: Watch,
    opts: FollowOptions,
    sock: UnixStream,
    reader: RingReader,
    inbox: Receiver<Inbox>,
    load: L,
    model: Option<Transcriber>,
    ep: String,
    queue: VecDeque<u64>,
    active: Option<Active>,
    last_memory_check: Instant,
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
    let model_label = model.files().label();
    let ep = model.execution_provider().name.to_string();

    let conn =
        |e: std::io::Error| WorkerError::Connection(format!("{}: {e}", opts.socket.display()));
    let mut sock = UnixStream::connect(&opts.socket).map_err(conn)?;
    let hello = PeerMessage::Hello(Hello::new(Role::Worker(WorkerIdentity {
        name: opts.name.clone(),
        model: model_label.clone(),
    })));
    protocol::write_frame(&mut sock, &hello).map_err(|e| WorkerError::Connection(e.to_string()))?;
    let (welcome, fd) = protocol::read_frame_with_fd::<DaemonMessage>(&sock)
        .map_err(|e| WorkerError::Connection(e.to_string()))?
        .ok_or_else(|| WorkerError::Connection("v2m-rt closed the connection".into()))?;
    match welcome {
        DaemonMessage::Welcome(_) => {}
        DaemonMessage::Response(r) => {
            return Err(WorkerError::Connection(match r.result {
                Err(e) => format!("refused: {e}"),
                Ok(_) => "unexpected reply to hello".into(),
            }));
        }
        other => {
            return Err(WorkerError::Connection(format!(
                "expected a welcome, got {other:?}"
            )));
        }
    }
    let fd = fd.ok_or_else(|| WorkerError::Connection("no ring attached to the welcome".into()))?;
    let ring_err = |e: v2m_shm_proto::ring::RingError| WorkerError::Connection(e.to_string());
    let watch_reader = RingReader::open(fd.try_clone().map_err(conn)?).map_err(ring_err)?;
    let reader = RingReader::open(fd).map_err(ring_err)?;
    log::info!(
        "connected to {} as {}; ring of {} frames",
        opts.socket.display(),
        opts.name,
        reader.geometry().capacity
    );

    let (tx, inbox) = mpsc::channel();
    let mut read_half = sock.try_clone().map_err(conn)?;
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        loop {
            let msg = match protocol::read_frame::<_, DaemonMessage>(&mut read_half, &mut buf) {
                Ok(Some(m)) => Inbox::Daemon(m),
                Ok(None) => Inbox::Closed("v2m-rt closed the connection".into()),
                Err(e) => Inbox::Closed(e.to_string()),
            };
            let closed = matches!(msg, Inbox::Closed(_));
            if tx.send(msg).is_err() || closed {
                return;
            }
        }
    });

    let watch: Watch = Arc::new(Mutex::new(None));
    spawn_watcher(watch_reader, Arc::clone(&watch));
    let mut f = Follower {
        watch,
        opts,
        sock,
        reader,
        inbox,
        load,
        model: Some(model),
        ep,
        queue: VecDeque::new(),
        active: None,
        last_memory_check: Instant::now(),
    };
    f.send_health("")?;
    f.run()
}

impl<L> Follower<L>
where
    L: FnMut() -> Result<Transcriber, WorkerError>,
{
    fn send(&mut self, msg: WorkerMessage) -> Result<(), WorkerError> {
        protocol::write_frame(&mut self.sock, &PeerMessage::Worker(msg))
            .map_err(|e| WorkerError::Connection(e.to_string()))
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
            Inbox::Closed(why) => Err(WorkerError::Connection(why)),
            Inbox::Daemon(DaemonMessage::Assignment(a)) => match a {
                Assignment::Session { session_id, .. } => {
                    if self.active.as_ref().map(|a| a.id) != Some(session_id)
                        && !self.queue.contains(&session_id)
                    {
                        self.queue.push_back(session_id);
                    }
                    Ok(None)
                }
                Assignment::Cancel { session_id } => {
                    self.queue.retain(|&id| id != session_id);
                    if self.active.as_ref().map(|a| a.id) == Some(session_id) {
                        log::info!("session {session_id} cancelled");
                        self.active = None;
                    }
                    Ok(None)
                }
                Assignment::Shutdown => Ok(Some(FollowEnd::Shutdown)),
            },
            // Responses and events are not addressed to workers; nothing to do.
            Inbox::Daemon(_) => Ok(None),
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
                        return Err(WorkerError::Connection("control reader stopped".into()));
                    }
                }
                continue;
            }
            self.step(&mut frame)?;
        }
    }

    /// Starts the next queued session, reloading the model if it was unloaded.
    fn start_next(&mut self) -> Result<bool, WorkerError> {
        while let Some(id) = self.queue.pop_front() {
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
            self.active = Some(Active {
                id,
                stream: SessionStream::new(self.opts.policy, rec.first_seq),
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
        if self.model.is_none() || self.last_memory_check.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        self.last_memory_check = Instant::now();
        if let Some((true, fraction)) = memory::under_pressure(self.opts.unload_below) {
            self.model = None;
            let note = format!(
                "model unloaded: MemAvailable is {:.1}% of MemTotal, below {:.1}%",
                fraction * 100.0,
                self.opts.unload_below * 100.0
            );
            log::warn!("{note}");
            self.send_health(&note)?;
        }
        Ok(())
    }

    /// Reads what the ring has for the active session, passes, and finishes it at its end.
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
            .expect("a model is loaded for an active session");
        let mut updates = Vec::new();
        let mut read = 0;
        while end.is_none_or(|e| active.stream.next_seq() < e) && read < 50 {
            if self.reader.try_read(frame).is_none() {
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
            read += 1;
        }
        if let Some(e) = end
            && active.stream.next_seq() >= e
        {
            model.canceller().reset();
            let (text, timings) = active.stream.finish(model)?;
            let lost = active.stream.lost();
            let capture_to_read = std::mem::take(&mut active.capture_to_read);
            self.active = None;
            for u in updates {
                self.send_provisional(id, u)?;
            }
            log::info!("session {id} final ({} frames lost): {text:?}", lost);
            return self.send(WorkerMessage::Final(FinalText {
                session_id: id,
                text,
                worker: self.opts.name.clone(),
                stop_to_final_ms: 0.0,
                timings,
                capture_to_read,
            }));
        }
        // Provisional passes only when caught up: while replaying a backlog they would be stale.
        if self.reader.position() >= self.reader.write_seq() {
            let canceller = model.canceller();
            canceller.reset();
            *self.watch.lock().unwrap_or_else(|p| p.into_inner()) = Some((id, canceller.clone()));
            let pass = active.stream.provisional(model, Instant::now());
            *self.watch.lock().unwrap_or_else(|p| p.into_inner()) = None;
            canceller.reset();
            match pass {
                Ok(u) => updates.extend(u),
                Err(WorkerError::Cancelled) => {
                    log::debug!("provisional pass cancelled: session {id} ended")
                }
                Err(e) => return Err(e),
            }
        }
        for u in updates {
            self.send_provisional(id, u)?;
        }
        if read == 0 {
            self.reader.wait(Duration::from_millis(20));
        }
        Ok(())
    }

    fn send_provisional(&mut self, session_id: u64, u: Update) -> Result<(), WorkerError> {
        self.send(WorkerMessage::Provisional(ProvisionalText {
            session_id,
            stable: u.stable,
            tentative: u.tentative,
            worker: self.opts.name.clone(),
            timings: u.timings,
        }))
    }
}
