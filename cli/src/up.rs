//! `v2m-cli up`: start v2m-rt (with one supervised worker unless the config lists some) in
//! the background, logging to a file, and wait until it answers and a worker is connected.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use v2m_shm_proto::client::Client;
use v2m_shm_proto::protocol::{Reply, RequestBody, StatusReport};

/// Why the daemon did not come up.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    /// The log file or its folder could not be made.
    #[error("{path}: {source}")]
    Log {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The v2m-rt executable could not be run.
    #[error("cannot start v2m-rt: {0} (is it built and on PATH?)")]
    Spawn(#[source] std::io::Error),
    /// It started and exited.
    #[error("v2m-rt exited ({status}): {tail} (log: {log})")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last lines of its log.
        tail: String,
        /// The log.
        log: PathBuf,
    },
    /// It runs, but no worker connected in time.
    #[error("v2m-rt started but no worker connected within {wait:?}; see {log}")]
    NoWorker {
        /// How long it waited.
        wait: Duration,
        /// The log.
        log: PathBuf,
    },
}

/// A sibling executable of this one, else the bare name (found on PATH).
pub fn beside_me(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Where the daemon's log goes: `$XDG_STATE_HOME/v2m/v2m-rt.log`.
pub fn log_file() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    state.join("v2m/v2m-rt.log")
}

/// Opens `log` for appending, private to this user: its folder 0700, the file 0600 (it may
/// hold what v2m logs at debug level, dictated text included). Existing ones are tightened.
pub fn open_private_log(log: &Path) -> Result<std::fs::File, (PathBuf, std::io::Error)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = log.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| (dir.to_owned(), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| (dir.to_owned(), e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(|e| (log.to_owned(), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| (log.to_owned(), e))?;
    Ok(file)
}

/// Starts v2m-rt on `socket` with `extra` arguments and waits up to `wait` for it to answer
/// with a connected worker. Returns its status.
pub fn up(socket: &Path, extra: &[String], wait: Duration) -> Result<StatusReport, UpError> {
    if let Ok(mut c) = Client::connect(socket)
        && let Ok(Reply::Status(s)) = c.request(RequestBody::Status)
    {
        return Ok(s);
    }
    let log = log_file();
    let out = open_private_log(&log).map_err(|(path, source)| UpError::Log { path, source })?;
    let err = out.try_clone().map_err(|source| UpError::Log {
        path: log.clone(),
        source,
    })?;
    let mut child = Command::new(beside_me("v2m-rt"))
        .arg("--socket")
        .arg(socket)
        .arg("--default-worker")
        .args(extra)
        // Its own process group: Ctrl-C in this terminal is not meant for the daemon.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(UpError::Spawn)?;
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let last: Vec<&str> = tail.lines().rev().take(3).collect();
            return Err(UpError::Exited {
                status,
                tail: last.into_iter().rev().collect::<Vec<_>>().join(" | "),
                log,
            });
        }
        if let Ok(mut c) = Client::connect(socket)
            && let Ok(Reply::Status(s)) = c.request(RequestBody::Status)
            && s.workers.iter().any(|w| w.connected)
        {
            return Ok(s);
        }
        if start.elapsed() > wait {
            return Err(UpError::NoWorker { wait, log });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
