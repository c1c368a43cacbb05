//! Requests: held while audio they end is still on its way, then answered in order.

use super::{Core, DRAIN_LIMIT, refuse};
use crate::server::CoreError;
use crate::server::input::Arrived;
use crate::server::sessions::{Effect, RingView, Waiter};
use std::time::Instant;
use v2m_shm_proto::protocol::{ErrorKind, ErrorReply, Reply, RequestBody};

impl Core {
    /// Whether `body` ends the open session's audio (or releases the microphone): it waits
    /// until every frame captured before it has been published.
    pub(super) fn ends_audio(&self, body: &RequestBody) -> bool {
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
    pub(super) fn release_held(&mut self) {
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
    pub(super) fn request(&mut self, a: Arrived, end: Option<u64>) -> Vec<Effect> {
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

    pub(super) fn start(
        &mut self,
        fx: &mut Vec<Effect>,
        now: Instant,
    ) -> Result<Reply, ErrorReply> {
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

    pub(super) fn pause(&mut self) -> Result<Reply, ErrorReply> {
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
}
