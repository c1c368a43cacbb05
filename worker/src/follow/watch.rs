//! The pass watcher: a thread with its own view of the ring that aborts the pass in flight
//! when its result is no longer wanted, so the pass that is wanted starts at once:
//!
//! - a provisional pass, when the session ends or a pause long enough for the speculative
//!   final follows speech;
//! - a speculative final, when speech follows it (its audio no longer ends the dictation);
//! - any pass, when v2m-rt cancels the session ([`Watch::cancel_session`]).

use crate::model::session::Canceller;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use v2m_shm_proto::ring::{Frame, FrameFlags, RingReader};

/// When a watched pass is cancelled, by what the ring shows after it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Cancel when the session ends, or when `pause_frames` non-speech frames in a row have
    /// followed speech (`trailing` of them were there when the pass started).
    Provisional {
        /// Frames that start the speculative final.
        pause_frames: usize,
        /// Non-speech frames at the end so far.
        trailing: usize,
    },
    /// Cancel when a speech frame of the session arrives.
    Speculative,
    /// Only an explicit cancel of the session stops it (commit and final passes).
    Explicit,
}

impl Rule {
    /// Takes the session's next frame; `true`: cancel.
    pub fn on_frame(&mut self, speech: bool) -> bool {
        match self {
            Rule::Provisional {
                pause_frames,
                trailing,
            } => {
                *trailing = if speech { 0 } else { *trailing + 1 };
                *trailing >= *pause_frames
            }
            Rule::Speculative => speech,
            Rule::Explicit => false,
        }
    }

    /// The session ended; `true`: cancel.
    pub fn on_end(&self) -> bool {
        matches!(self, Rule::Provisional { .. })
    }
}

struct Watched {
    started: std::time::Instant,
    session: u64,
    /// The first frame the rule has not seen.
    next_seq: u64,
    rule: Rule,
    canceller: Canceller,
}

/// The pass in flight, shared between the follower (which sets and clears it), the watcher
/// thread and the inbox thread (explicit cancels).
#[derive(Clone, Default)]
pub struct Watch(Arc<Mutex<Option<Watched>>>);

impl Watch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Watched>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches a pass of `session` whose audio ends before `next_seq`.
    pub fn set(&self, session: u64, next_seq: u64, rule: Rule, canceller: Canceller) {
        *self.lock() = Some(Watched {
            started: std::time::Instant::now(),
            session,
            next_seq,
            rule,
            canceller,
        });
    }

    /// Runs the pass `f` of `session` (audio before `next_seq`) watched: `canceller` reset,
    /// the watch set, then cleared when `f` returns.
    pub fn during<T>(
        &self,
        session: u64,
        next_seq: u64,
        rule: Rule,
        canceller: &Canceller,
        f: impl FnOnce() -> T,
    ) -> T {
        canceller.reset();
        self.set(session, next_seq, rule, canceller.clone());
        let out = f();
        self.clear();
        out
    }

    /// How long the pass in flight has been running, if one is.
    pub fn pass_age(&self) -> Option<Duration> {
        self.lock().as_ref().map(|w| w.started.elapsed())
    }

    /// The pass ended. Under the lock, so no late cancel reaches the next pass.
    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// Cancels the pass in flight if it belongs to `session`.
    pub fn cancel_session(&self, session: u64) {
        let mut w = self.lock();
        if let Some(watched) = w.as_ref()
            && watched.session == session
        {
            watched.canceller.cancel();
            *w = None;
        }
    }
}

/// Starts the watcher thread on its own ring reader.
pub fn spawn_watcher(mut ring: RingReader, watch: Watch) {
    std::thread::spawn(move || {
        let mut frame = Frame::default();
        loop {
            {
                let mut w = watch.lock();
                if let Some(watched) = w.as_mut()
                    && check(&mut ring, &mut frame, watched)
                {
                    watched.canceller.cancel();
                    *w = None;
                }
            }
            // Wait for frames after the newest: the cursor only moves while a pass is watched,
            // and waiting from a cursor left behind would return at once, again and again.
            ring.seek(ring.write_seq());
            ring.wait(Duration::from_millis(100));
        }
    });
}

/// Runs the rule over the session's frames the ring holds beyond what it has seen.
fn check(ring: &mut RingReader, frame: &mut Frame, w: &mut Watched) -> bool {
    let Some(rec) = ring.session(w.session) else {
        return false;
    };
    let end = rec.end_seq.unwrap_or(u64::MAX);
    ring.seek(w.next_seq);
    while w.next_seq < end.min(ring.write_seq()) {
        if ring.try_read(frame).is_none() {
            break;
        }
        w.next_seq = frame.seq + 1;
        if frame.seq < end
            && w.rule
                .on_frame(frame.meta.flags.contains(FrameFlags::SPEECH))
        {
            return true;
        }
    }
    rec.end_seq.is_some() && w.rule.on_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provisional_pass_gives_way_to_the_speculative_final_and_to_the_end() {
        let mut r = Rule::Provisional {
            pause_frames: 3,
            trailing: 1,
        };
        assert!(!r.on_frame(false));
        assert!(!r.on_frame(true), "speech resets the count");
        assert!(!r.on_frame(false) && !r.on_frame(false));
        assert!(r.on_frame(false));
        assert!(r.on_end());
    }

    #[test]
    fn a_speculative_final_gives_way_to_speech_only() {
        let mut r = Rule::Speculative;
        assert!(!r.on_frame(false));
        assert!(!r.on_end(), "the session ending is what it waits for");
        assert!(r.on_frame(true));
        let mut r = Rule::Explicit;
        assert!(!r.on_frame(true) && !r.on_end());
    }
}
