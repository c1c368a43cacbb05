//! Where the ring's audio comes from: the live input, nothing (paused), a file being
//! transcribed, or nothing while a failed device waits to be reopened with backoff.

use super::backoff::Backoff;
use crate::capture::{Decoder, FeedProgress, Pace};
use crate::engine::{DeviceFailure, Engine, EngineError, LiveSource};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a live device is checked for failure or silence.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// What the source is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Capturing from the live input.
    Live,
    /// The input is released (`pause`).
    Paused,
    /// A file is going into the ring.
    File,
    /// The live input failed; reopened at `at`.
    Reopening {
        /// When the next try is due.
        at: Instant,
    },
}

/// The source and what status shows of it.
pub struct Source {
    live: LiveSource,
    state: State,
    device: Option<String>,
    error: Option<String>,
    backoff: Backoff,
    overruns_logged: u64,
    next_check: Instant,
}

impl Source {
    /// A source capturing from `live`, opened as `device`.
    pub fn new(live: LiveSource, device: String) -> Source {
        Source {
            live,
            state: State::Live,
            device: Some(device),
            error: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(10)),
            overruns_logged: 0,
            next_check: Instant::now(),
        }
    }

    /// Its state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether the input is released.
    pub fn paused(&self) -> bool {
        self.state == State::Paused
    }

    /// The open live device's name.
    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// The last capture error, while it lasts.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Releases the input.
    pub fn pause(&mut self, engine: &mut Engine) -> Result<(), EngineError> {
        engine.stop()?;
        self.state = State::Paused;
        self.device = None;
        log::info!("paused: input released");
        Ok(())
    }

    /// Opens the input again (nothing to do unless paused).
    pub fn resume(&mut self, engine: &mut Engine) -> Result<(), EngineError> {
        if !self.paused() {
            return Ok(());
        }
        match engine.start_live(&self.live) {
            Ok(name) => {
                self.state = State::Live;
                self.device = Some(name);
                self.error = None;
                Ok(())
            }
            Err(e) => {
                self.error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Feeds what `decoder` decodes into the ring instead of the live input, never beyond
    /// ring frame `limit`.
    pub fn start_file(
        &mut self,
        engine: &mut Engine,
        decoder: Decoder,
        limit: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Arc<FeedProgress>, EngineError> {
        engine.stop()?;
        let pace = Pace::Worker {
            limit,
            published: engine.published(),
        };
        match engine.start_file(decoder, pace) {
            Ok(feed) => {
                self.state = State::File;
                Ok(feed)
            }
            Err(e) => {
                self.back_to_live(engine, Instant::now());
                Err(e)
            }
        }
    }

    /// After a file (or a failure): the live input again, unless paused; a failure to open it
    /// is retried with backoff.
    pub fn back_to_live(&mut self, engine: &mut Engine, now: Instant) {
        if self.paused() {
            return;
        }
        match engine.start_live(&self.live) {
            Ok(name) => {
                if self.error.is_some() {
                    log::info!("capture device {name} reopened");
                }
                self.state = State::Live;
                self.device = Some(name);
                self.error = None;
                self.backoff.reset();
            }
            Err(e) => {
                let delay = self.backoff.next_delay();
                log::error!("cannot open the input: {e}; retrying in {delay:?}");
                self.device = None;
                self.error = Some(e.to_string());
                self.state = State::Reopening { at: now + delay };
            }
        }
    }

    /// Looks at the live device when due: a lost or stalled one is released (its frames go
    /// on in the ring as a gap) and reopened with backoff; overruns are logged. Reopens when
    /// the backoff is over. `Err` when capture cannot even be stopped.
    pub fn check(&mut self, engine: &mut Engine, now: Instant) -> Result<(), EngineError> {
        match self.state {
            State::Reopening { at } if at <= now => {
                self.back_to_live(engine, now);
                return Ok(());
            }
            State::Live if now >= self.next_check => {}
            _ => return Ok(()),
        }
        self.next_check = now + CHECK_EVERY;
        if let Some(failure) = engine.device_failure(now) {
            let message = failure.to_string();
            log::error!("capture device failed: {message}; reopening");
            if let DeviceFailure::Lost { kind, .. } = &failure {
                log::debug!("cpal error kind: {kind:?}");
            }
            self.error = Some(message);
            self.device = None;
            engine.abandon()?;
            self.backoff.reset();
            self.state = State::Reopening {
                at: now + self.backoff.next_delay(),
            };
        }
        let overruns = engine.metrics().overruns;
        if overruns > self.overruns_logged {
            log::warn!(
                "input overrun ({overruns} so far): the device lost audio before v2m-rt got it; the gap is flagged"
            );
            self.overruns_logged = overruns;
        }
        Ok(())
    }

    /// When [`Self::check`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Reopening { at } => Some(at),
            State::Live => Some(self.next_check),
            State::Paused | State::File => None,
        }
    }
}
