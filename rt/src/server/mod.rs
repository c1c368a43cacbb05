//! The control server: the Unix socket and its acceptor ([`bind`], [`spawn_acceptor`]), one
//! reader and one writer thread per peer ([`connection`]), and the core thread that owns all
//! state ([`core::Core`]): the peers ([`peers`]), the workers ([`workers`]), the sessions
//! ([`sessions`]), the audio source ([`source`]), the status report ([`status`]).

pub mod backoff;
pub mod connection;
pub mod core;
pub mod effect;
mod file_reader;
pub mod history;
pub mod input;
pub mod peers;
pub mod sessions;
pub mod source;
pub mod status;
pub mod supervisor;
pub mod workers;

use crate::engine::EngineError;
use crossbeam::channel::Sender;
use input::{ConnId, Input};
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Why the daemon stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The DSP thread ended (it only does by panicking): capture is gone.
    #[error("the DSP thread died")]
    DspDied,
    /// Capture could not be stopped or started as needed.
    #[error("audio engine: {0}")]
    Engine(#[from] EngineError),
}

/// Connections kept open at most (each holds a descriptor and two threads): beyond it new
/// ones are refused with a "busy" error, so a flood of idle connections cannot take the
/// descriptors `status` and `stop` need.
pub const MAX_CONNECTIONS: usize = 256;

/// Descriptors kept free for the daemon's own use (devices, workers, files).
const FD_RESERVE: usize = 64;

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another v2m-rt answers on the socket.
    #[error("another v2m-rt is already running on {0} (v2m-cli shutdown stops it)")]
    AlreadyRunning(PathBuf),
    /// Something that is not a socket sits at the path: it is not ours to delete.
    #[error("{path} exists and is {what}, not a socket: remove it or choose another --socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What it is ("a symlink", "a regular file"…).
        what: &'static str,
    },
    /// The socket's folder is not this user's alone.
    #[error(transparent)]
    Folder(#[from] v2m_shm_proto::paths::PathError),
    /// Binding failed.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Binds the control socket at `path` (0600) in a folder that is this user's alone,
/// replacing a stale socket but never a live daemon's, and nothing that is not a socket.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    use std::os::unix::fs::FileTypeExt;
    let bind_err = |source| ServerError::Bind {
        path: path.to_owned(),
        source,
    };
    v2m_shm_proto::paths::check_socket_dir(path, v2m_shm_proto::platform::peer::current_uid())?;
    // lstat: a symlink (dangling or not) is reported, never followed or replaced.
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            let what = if t.is_symlink() {
                Some("a symlink")
            } else if t.is_file() {
                Some("a regular file")
            } else if t.is_dir() {
                Some("a directory")
            } else if !t.is_socket() {
                Some("a special file")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(ServerError::NotASocket {
                    path: path.to_owned(),
                    what,
                });
            }
            match UnixStream::connect(path) {
                Ok(_) => return Err(ServerError::AlreadyRunning(path.to_owned())),
                // A socket nobody listens on: left by a daemon that died.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(bind_err)?;
                }
                Err(e) => return Err(bind_err(e)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// The connection cap: [`MAX_CONNECTIONS`], or fewer when the descriptor limit
/// (`ulimit -n`) leaves less room after [`FD_RESERVE`].
pub fn connection_cap() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft as usize)
        .unwrap_or(1024);
    MAX_CONNECTIONS.min(soft.saturating_sub(FD_RESERVE)).max(8)
}

/// Logs at most once per interval, counting what it swallowed.
struct Throttled {
    last: Option<Instant>,
    quiet: u64,
}

impl Throttled {
    fn log(&mut self, message: impl FnOnce() -> String) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.quiet += 1;
            return;
        }
        let more = std::mem::take(&mut self.quiet);
        if more > 0 {
            log::warn!("{} ({more} more like it)", message());
        } else {
            log::warn!("{}", message());
        }
        self.last = Some(now);
    }
}

/// Accepts connections forever on a thread of its own, at most `cap` open at once.
pub fn spawn_acceptor(listener: UnixListener, core: Sender<Input>, cap: usize) {
    let spawned = std::thread::Builder::new()
        .name("v2m-accept".into())
        .spawn(move || {
            let live = Arc::new(AtomicUsize::new(0));
            let mut next = 1;
            let mut refusals = Throttled {
                last: None,
                quiet: 0,
            };
            let mut failures = Throttled {
                last: None,
                quiet: 0,
            };
            for stream in listener.incoming() {
                match stream {
                    Ok(s) if live.load(Ordering::Acquire) >= cap => {
                        refusals.log(|| format!("{cap} connections open: refusing more"));
                        connection::refuse(
                            s,
                            &format!("v2m-rt has {cap} connections open; try again later"),
                        );
                    }
                    Ok(s) => {
                        connection::spawn(s, ConnId(next), core.clone(), Arc::clone(&live));
                        next += 1;
                    }
                    Err(e) => {
                        failures.log(|| format!("accept failed: {e}"));
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the accept thread: {e}");
    }
}

/// SIGINT and SIGTERM, blocked for every thread (call before starting any) so that one
/// thread can take them synchronously and ask the core for a clean shutdown.
pub fn block_termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if let Err(e) = set.thread_block() {
        log::warn!("cannot block SIGINT/SIGTERM: {e}");
    }
    set
}

/// Where the signal thread sends signals: the core once it runs; before that (start-up may
/// block: a config or input file that never ends) a signal ends the process at once.
pub type SignalTarget = Arc<std::sync::OnceLock<Sender<Input>>>;

/// Turns the blocked signals into [`Input::Signal`] for `target`'s core, or, before there is
/// one, exits (nothing to clean up yet: the socket is bound only once the core exists).
pub fn spawn_signal_thread(set: SigSet, target: SignalTarget) {
    let spawned = std::thread::Builder::new()
        .name("v2m-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                match target.get() {
                    Some(core) => {
                        if core.send(Input::Signal(sig.to_string())).is_err() {
                            return;
                        }
                    }
                    None => {
                        eprintln!("v2m-rt: {sig} during start-up: exiting");
                        std::process::exit(128 + sig as i32);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the signal thread ({e}): SIGINT/SIGTERM will be ignored");
    }
}
