//! Sessions: one collection, each session in a phase, every operation a function of the state
//! and its arguments that returns what must happen (replies, broadcasts, ring and worker
//! changes) as [`Effect`]s. Nothing here touches a socket, the ring, a device or a process,
//! so every rule has a unit test.
//!
//! A session is `Recording` (live audio goes into it), `Feeding` (a file goes into it),
//! `Finishing` (closed in the ring, its final awaited until a deadline) or `Overdue` (its
//! `stop` timed out; the final is still wanted: broadcast and kept in the history when it
//! comes). Finals are kept in a short history whether or not anyone waits for them.

mod phase;
mod query;

pub use super::effect::{Effect, RingView, Waiter};
use super::history::History;
use super::input::ConnId;
pub use phase::{Phase, Session};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{ErrorKind, ErrorReply, Event, FinalText, Reply};

/// How long a session whose `stop` timed out waits for its final before it is forgotten.
pub const OVERDUE_KEEP: Duration = Duration::from_secs(3600);

/// Every session the daemon knows.
#[derive(Debug)]
pub struct Sessions {
    list: Vec<Session>,
    next_id: u64,
    /// The end of the last closed session: a new one never reaches back before it.
    last_end_seq: u64,
    history: History,
    stop_timeout: Duration,
    pre_roll_frames: u64,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> Result<Reply, ErrorReply> {
    Err(ErrorReply::new(kind, message))
}

impl Sessions {
    /// No session yet; `stop` waits `stop_timeout` for a final; sessions reach back
    /// `pre_roll_frames`.
    pub fn new(stop_timeout: Duration, pre_roll_frames: u64) -> Sessions {
        Sessions {
            list: Vec::new(),
            next_id: 1,
            last_end_seq: 0,
            history: History::default(),
            stop_timeout,
            pre_roll_frames,
        }
    }

    fn busy(&self) -> Option<ErrorReply> {
        if let Some(id) = self.recording() {
            return Some(ErrorReply::new(
                ErrorKind::InvalidState,
                format!("already recording session {id}"),
            ));
        }
        self.feeding().map(|id| {
            ErrorReply::new(
                ErrorKind::InvalidState,
                format!("transcribing a file (session {id}); try again when it is done"),
            )
        })
    }

    fn new_session(&mut self, phase: Phase, now: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.list.push(Session {
            id,
            phase,
            started: now,
            first_provisional: None,
            finals: HashMap::new(),
        });
        id
    }

    /// Opens a live session reaching back by the pre-roll (never before the last session's
    /// end, nor more than half the ring back).
    pub fn start(
        &mut self,
        fx: &mut Vec<Effect>,
        now: Instant,
        ring: RingView,
    ) -> Result<Reply, ErrorReply> {
        if let Some(e) = self.busy() {
            return Err(e);
        }
        let first = ring
            .write_seq
            .saturating_sub(self.pre_roll_frames)
            .max(self.last_end_seq)
            .max(ring.write_seq.saturating_sub(ring.capacity / 2))
            .min(ring.write_seq);
        let id = self.new_session(Phase::Recording, now);
        fx.push(Effect::Open {
            session: id,
            first_seq: first,
        });
        fx.push(Effect::AssignAll { session: id });
        Ok(Reply::Started {
            session_id: id,
            first_seq: first,
        })
    }

    /// Closes the recording before `end_seq` and waits for its final for `waiter`. `None`:
    /// the answer comes later. Without any worker that could transcribe it, it is refused.
    pub fn stop(
        &mut self,
        fx: &mut Vec<Effect>,
        now: Instant,
        waiter: Waiter,
        end_seq: u64,
        workers_possible: bool,
    ) -> Option<Result<Reply, ErrorReply>> {
        let Some(id) = self.recording() else {
            if let Some(e) = self.busy() {
                return Some(Err(e));
            }
            return Some(err(ErrorKind::InvalidState, "not recording: start first"));
        };
        self.close(fx, id, end_seq);
        if !workers_possible {
            self.list.retain(|s| s.id != id);
            return Some(err(
                ErrorKind::NoWorker,
                format!("session {id}: no worker to transcribe it"),
            ));
        }
        self.set_phase(
            id,
            Phase::Finishing {
                waiter: Some(waiter),
                file: false,
                asked: now,
                deadline: now + self.stop_timeout,
            },
        );
        None
    }

    fn close(&mut self, fx: &mut Vec<Effect>, id: u64, end_seq: u64) {
        fx.push(Effect::Close {
            session: id,
            end_seq,
        });
        self.last_end_seq = self.last_end_seq.max(end_seq);
    }

    fn set_phase(&mut self, id: u64, phase: Phase) {
        if let Some(s) = self.list.iter_mut().find(|s| s.id == id) {
            s.phase = phase;
        }
    }

    /// Drops the recording (closed before `end_seq`), else the file being fed (closed at
    /// `write_seq`), else the newest session still awaiting its final.
    pub fn cancel(
        &mut self,
        fx: &mut Vec<Effect>,
        end_seq: u64,
        write_seq: u64,
    ) -> Result<Reply, ErrorReply> {
        let cancelled = |id| {
            ErrorReply::new(
                ErrorKind::InvalidState,
                format!("session {id} was cancelled"),
            )
        };
        let target = self
            .recording()
            .or_else(|| self.feeding())
            .or_else(|| self.awaiting().last().copied());
        let Some(i) = target.and_then(|id| self.list.iter().position(|s| s.id == id)) else {
            return err(ErrorKind::InvalidState, "nothing to cancel");
        };
        let s = self.list.remove(i);
        match s.phase {
            Phase::Recording => self.close(fx, s.id, end_seq),
            Phase::Feeding { waiter } => {
                self.close(fx, s.id, write_seq);
                fx.push(Effect::StopFile);
                fx.push(reply(waiter, Err(cancelled(s.id))));
            }
            Phase::Finishing {
                waiter: Some(w), ..
            } => fx.push(reply(w, Err(cancelled(s.id)))),
            Phase::Finishing { waiter: None, .. } | Phase::Overdue { .. } => {}
        }
        fx.push(Effect::CancelAll { session: s.id });
        Ok(Reply::Cancelled { session_id: s.id })
    }

    /// Opens a session for a file that `waiter` wants transcribed, at `write_seq`.
    pub fn start_file(
        &mut self,
        fx: &mut Vec<Effect>,
        now: Instant,
        waiter: Waiter,
        write_seq: u64,
    ) -> Result<u64, ErrorReply> {
        if let Some(e) = self.busy() {
            return Err(e);
        }
        let id = self.new_session(Phase::Feeding { waiter }, now);
        fx.push(Effect::Open {
            session: id,
            first_seq: write_seq,
        });
        fx.push(Effect::AssignAll { session: id });
        Ok(id)
    }

    /// The file is all in the ring (up to `end_seq`): close its session, await its final.
    pub fn file_fed(&mut self, fx: &mut Vec<Effect>, now: Instant, end_seq: u64) {
        let Some(s) = self
            .list
            .iter_mut()
            .find(|s| matches!(s.phase, Phase::Feeding { .. }))
        else {
            return;
        };
        let Phase::Feeding { waiter } = s.phase else {
            return;
        };
        let id = s.id;
        s.phase = Phase::Finishing {
            waiter: Some(waiter),
            file: true,
            asked: now,
            deadline: now + self.stop_timeout,
        };
        self.close(fx, id, end_seq);
    }

    /// A connection went away: nobody waits on it any more.
    pub fn waiter_gone(&mut self, conn: ConnId) {
        for s in &mut self.list {
            if let Phase::Finishing { waiter, .. } = &mut s.phase
                && waiter.is_some_and(|w| w.conn == conn)
            {
                *waiter = None;
            }
        }
    }

    /// A provisional text came for `session`; `true` if it is one v2m-rt knows.
    pub fn on_provisional(&mut self, session: u64, now: Instant) -> bool {
        match self.list.iter_mut().find(|s| s.id == session) {
            Some(s) => {
                s.first_provisional.get_or_insert(now);
                true
            }
            None => false,
        }
    }

    /// Worker `worker` sent a final. The owner's completes its session (answers the waiter,
    /// tells subscribers, joins the history); another's is kept in case ownership moves.
    pub fn on_final(
        &mut self,
        fx: &mut Vec<Effect>,
        now: Instant,
        worker: &str,
        is_owner: bool,
        f: FinalText,
    ) {
        let Some(i) = self.list.iter().position(|s| s.id == f.session_id) else {
            log::debug!("final for session {} not awaited; ignored", f.session_id);
            return;
        };
        match &self.list[i].phase {
            Phase::Finishing { .. } | Phase::Overdue { .. } if is_owner => {
                self.complete(fx, now, i, f)
            }
            Phase::Finishing { .. } | Phase::Overdue { .. } => {
                self.list[i].finals.insert(worker.to_string(), f);
            }
            // Only a closed session has a final.
            Phase::Recording | Phase::Feeding { .. } => {}
        }
    }

    fn complete(&mut self, fx: &mut Vec<Effect>, now: Instant, i: usize, mut f: FinalText) {
        let s = self.list.remove(i);
        let (waiter, file, asked) = match s.phase {
            Phase::Finishing {
                waiter,
                file,
                asked,
                ..
            } => (waiter, file, asked),
            Phase::Overdue { asked, .. } => (None, false, asked),
            _ => (None, false, now),
        };
        f.stop_to_final_ms = now.saturating_duration_since(asked).as_secs_f32() * 1e3;
        log::info!(
            "session {}: final from {} after {:.0} ms ({} characters{})",
            s.id,
            f.worker,
            f.stop_to_final_ms,
            f.text.chars().count(),
            if f.lost_frames > 0 {
                format!(", {:.1} s of audio lost", f.lost_seconds())
            } else {
                String::new()
            }
        );
        log::debug!("session {} text: {:?}", s.id, f.text);
        let first_provisional_ms = s
            .first_provisional
            .map(|t| t.saturating_duration_since(s.started).as_secs_f32() * 1e3);
        if let Some(w) = waiter {
            let result = if f.text.trim().is_empty() {
                err(
                    ErrorKind::NoSpeech,
                    format!("no speech detected in session {}", s.id),
                )
            } else if file {
                Ok(Reply::Transcribed(f.clone()))
            } else {
                Ok(Reply::Stopped(f.clone()))
            };
            fx.push(reply(w, result));
        }
        self.history.keep(&f, first_provisional_ms);
        fx.push(Effect::Broadcast(Event::Final(f)));
    }

    /// The worker that owns finals changed to `owner`: sessions awaiting a final take the one
    /// it already sent, or are assigned to it.
    pub fn owner_changed(&mut self, fx: &mut Vec<Effect>, now: Instant, owner: Option<&str>) {
        let Some(owner) = owner else {
            return;
        };
        for id in self.awaiting() {
            let Some(i) = self.list.iter().position(|s| s.id == id) else {
                continue;
            };
            match self.list[i].finals.remove(owner) {
                Some(f) => self.complete(fx, now, i, f),
                None => fx.push(Effect::AssignOwner { session: id }),
            }
        }
    }

    /// Waiters whose final did not come by their deadline get a timeout (saying why, from
    /// `why`, and where the text will be); their sessions stay overdue, so the final, when it
    /// comes, is broadcast and kept. Overdue sessions older than [`OVERDUE_KEEP`] are dropped.
    pub fn expire(&mut self, fx: &mut Vec<Effect>, now: Instant, why: &str) {
        for s in &mut self.list {
            let Phase::Finishing {
                waiter,
                asked,
                deadline,
                ..
            } = &s.phase
            else {
                continue;
            };
            if *deadline > now {
                continue;
            }
            let message = format!(
                "no final text for session {} within {:.1} s ({why}); it is kept when it comes: `v2m-cli last` prints it",
                s.id,
                deadline.saturating_duration_since(*asked).as_secs_f32()
            );
            log::warn!("{message}");
            if let Some(w) = waiter {
                fx.push(reply(*w, err(ErrorKind::Timeout, message)));
            }
            s.phase = Phase::Overdue {
                since: now,
                asked: *asked,
            };
        }
        self.list.retain(|s| match s.phase {
            Phase::Overdue { since, .. } => now.saturating_duration_since(since) < OVERDUE_KEEP,
            _ => true,
        });
    }

    /// The nearest instant [`Self::expire`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter_map(|s| match s.phase {
                Phase::Finishing { deadline, .. } => Some(deadline),
                Phase::Overdue { since, .. } => Some(since + OVERDUE_KEEP),
                _ => None,
            })
            .min()
    }

    /// Shutting down: every waiter is told, the recording closed at `write_seq`, all dropped.
    pub fn shutdown(&mut self, fx: &mut Vec<Effect>, write_seq: u64) {
        for s in std::mem::take(&mut self.list) {
            let waiter = match s.phase {
                Phase::Recording => {
                    self.close(fx, s.id, write_seq);
                    None
                }
                Phase::Feeding { waiter } => Some(waiter),
                Phase::Finishing { waiter, .. } => waiter,
                Phase::Overdue { .. } => None,
            };
            if let Some(w) = waiter {
                fx.push(reply(
                    w,
                    err(ErrorKind::Internal, "v2m-rt is shutting down"),
                ));
            }
        }
    }
}

fn reply(w: Waiter, result: Result<Reply, ErrorReply>) -> Effect {
    Effect::Reply {
        conn: w.conn,
        id: w.request,
        result,
    }
}

#[cfg(test)]
mod tests;
