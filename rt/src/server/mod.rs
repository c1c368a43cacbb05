//! The control server: the Unix socket, one reader and one writer thread per peer, and the
//! core thread that owns all state ([`core::Core`]).

pub mod connection;
pub mod core;
pub mod supervisor;

use crossbeam::channel::Sender;
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another v2m-rt answers on the socket.
    #[error("another v2m-rt is already running on {0} (v2m-cli shutdown stops it)")]
    AlreadyRunning(PathBuf),
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

/// Binds the control socket at `path` (0600), replacing a stale socket file but never a live
/// daemon's.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let bind_err = |source| ServerError::Bind {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ServerError::AlreadyRunning(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok(listener)
}

/// Accepts connections forever on a thread of its own.
pub fn spawn_acceptor(listener: UnixListener, core: Sender<core::Input>) {
    let spawned = std::thread::Builder::new()
        .name("v2m-accept".into())
        .spawn(move || {
            let mut next = 1;
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        connection::spawn(s, next, core.clone());
                        next += 1;
                    }
                    Err(e) => {
                        log::warn!("accept failed: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(50));
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

/// Turns the blocked signals into [`core::Input::Signal`].
pub fn spawn_signal_thread(set: SigSet, core: Sender<core::Input>) {
    let _ = std::thread::Builder::new()
        .name("v2m-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if core.send(core::Input::Signal(sig.to_string())).is_err() {
                    return;
                }
            }
        });
}
