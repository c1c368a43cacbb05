//! A file to transcribe: opened off this thread, fed into the ring no faster than the workers
//! read it (the ring is a window, not a limit), its progress sent to whoever asked, cancelled
//! when asked or when they leave.

use super::{Core, refuse};
use crate::capture::{DecodeError, Decoder, FeedProgress};
use crate::server::CoreError;
use crate::server::file_reader;
use crate::server::input::{Arrived, ConnId};
use crate::server::sessions::{Effect, Waiter};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use v2m_shm_proto::protocol::{ErrorKind, ErrorReply, Event};

/// Frames of the ring kept free between the feeder and the slowest reader of a file.
const MARGIN_FRAMES: u64 = 500;
/// How often progress is sent.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The file being transcribed.
pub(super) struct FileJob {
    session: u64,
    waiter: ConnId,
    first_seq: u64,
    feed: Arc<FeedProgress>,
    /// How far feeding may go (ring sequence number).
    limit: Arc<AtomicU64>,
    total_s: Option<f64>,
    /// Where the final-owning worker has read to.
    read_seq: u64,
    last_event: Option<Instant>,
}

impl FileJob {
    /// Who asked for it.
    pub(super) fn waiter(&self) -> ConnId {
        self.waiter
    }
}

impl Core {
    /// `transcribe-file`: opens the file on a thread of its own; the job starts when it is open.
    pub(super) fn transcribe_file(&mut self, a: Arrived, path: &str) -> Result<(), ErrorReply> {
        let busy = |what: String| Err(ErrorReply::new(ErrorKind::InvalidState, what));
        if let Some(id) = self.sessions.recording() {
            return busy(format!("recording session {id}: stop it first"));
        }
        if self.opening_file || self.sessions.feeding().is_some() {
            return busy("transcribing a file; try again when it is done".into());
        }
        file_reader::spawn(a, path, self.tx.clone())?;
        self.opening_file = true;
        Ok(())
    }

    /// The file is open (or could not be): start its job.
    pub(super) fn file_opened(
        &mut self,
        a: Arrived,
        decoder: Result<Decoder, DecodeError>,
        now: Instant,
    ) {
        self.opening_file = false;
        let refused = |kind, message: String| {
            vec![Effect::Reply {
                conn: a.conn,
                id: a.request.id,
                result: refuse(kind, message),
            }]
        };
        let decoder = match decoder {
            Ok(d) if self.peers.contains(a.conn) => d,
            Ok(_) => return,
            Err(e) => return self.apply(refused(ErrorKind::BadFile, e.to_string())),
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
        let total_s = decoder.info().seconds;
        let first = self.control.write_seq();
        let waiter = Waiter {
            conn: a.conn,
            request: a.request.id,
        };
        let mut fx = Vec::new();
        let session = match self.sessions.start_file(&mut fx, now, waiter, first) {
            Ok(id) => id,
            Err(e) => {
                self.source.back_to_live(&mut self.engine, now);
                return self.apply(vec![Effect::Reply {
                    conn: a.conn,
                    id: a.request.id,
                    result: Err(e),
                }]);
            }
        };
        let capacity = self.control.geometry().capacity as u64;
        let limit = Arc::new(AtomicU64::new(
            first + capacity.saturating_sub(MARGIN_FRAMES),
        ));
        self.apply(fx);
        match self
            .source
            .start_file(&mut self.engine, decoder, Arc::clone(&limit))
        {
            Ok(feed) => {
                log::info!(
                    "session {session}: transcribing a file ({:.0} s)",
                    total_s.unwrap_or(0.0)
                );
                self.file_job = Some(FileJob {
                    session,
                    waiter: a.conn,
                    first_seq: first,
                    feed,
                    limit,
                    total_s,
                    read_seq: first,
                    last_event: None,
                });
            }
            Err(e) => self.abort_file(Some(ErrorReply::new(ErrorKind::BadFile, e.to_string()))),
        }
    }

    /// The final-owning worker read the file's session up to `next_seq`: feed further.
    pub(super) fn file_progress(&mut self, session: u64, next_seq: u64) {
        let capacity = self.control.geometry().capacity as u64;
        if let Some(job) = self.file_job.as_mut().filter(|j| j.session == session) {
            job.read_seq = job.read_seq.max(next_seq);
            job.limit.store(
                job.read_seq + capacity.saturating_sub(MARGIN_FRAMES),
                Ordering::Release,
            );
        }
    }

    /// Looks at the file being fed: all in the ring (close its session), failed (answer with
    /// why), or progress to send.
    pub(super) fn check_file(&mut self, now: Instant) {
        let Some(job) = self.file_job.as_mut() else {
            return;
        };
        let failed = job
            .feed
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(e) = failed {
            return self.abort_file(Some(ErrorReply::new(ErrorKind::BadFile, e.to_string())));
        }
        if job
            .last_event
            .is_none_or(|t| now.duration_since(t) >= PROGRESS_EVERY)
        {
            job.last_event = Some(now);
            let done_s = job.read_seq.saturating_sub(job.first_seq) as f64 * 0.02;
            let progress = Event::Progress {
                session_id: job.session,
                done_s,
                total_s: job.total_s,
            };
            let conn = job.waiter;
            let subscribed = self.peers.is_subscribed(conn);
            let mut fx = vec![Effect::Broadcast(progress.clone())];
            if !subscribed {
                fx.extend(self.deliver(
                    conn,
                    &v2m_shm_proto::protocol::DaemonMessage::Event(progress),
                ));
            }
            self.apply(fx);
        }
        if self.engine.drained() && self.file_job.is_some() {
            self.file_job = None;
            let mut fx = Vec::new();
            self.sessions
                .file_fed(&mut fx, now, self.control.write_seq());
            self.source.back_to_live(&mut self.engine, now);
            self.apply(fx);
        }
    }

    /// Ends the file job early: cancelled (`None`) or failed (the error its requester gets).
    pub(super) fn abort_file(&mut self, why: Option<ErrorReply>) {
        let Some(job) = self.file_job.take() else {
            return;
        };
        let mut fx = Vec::new();
        let _ = self
            .sessions
            .cancel(&mut fx, self.control.write_seq(), self.control.write_seq());
        if let Some(e) = why {
            log::warn!("session {}: {e}", job.session);
            for f in &mut fx {
                if let Effect::Reply { result, .. } = f {
                    *result = Err(e.clone());
                }
            }
        }
        self.apply(fx);
    }
}
