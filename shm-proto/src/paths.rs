//! Where the processes find each other and the user's files.
//!
//! The control socket lives in a private runtime directory: `$XDG_RUNTIME_DIR/v2m/`, or
//! `/tmp/v2m-<uid>/` when that variable is unset. The directory is created 0700; an existing
//! one that is not a directory, not ours, or open to others is refused: in `/tmp` anyone could
//! have created it first to intercept dictation.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// File name of the control socket inside the runtime directory.
pub const SOCKET_NAME: &str = "control.sock";

/// Why a runtime directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// Creating or inspecting it failed.
    #[error("runtime directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Something that is not a directory (a symlink, a file) sits at the path.
    #[error("runtime directory {0} exists but is not a directory (symlinks are refused)")]
    NotADirectory(PathBuf),
    /// Another user owns it.
    #[error(
        "runtime directory {path} is owned by uid {owner}, not by us (uid {uid}): refusing to use it"
    )]
    NotOurs {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// Group or others have access.
    #[error("directory {path} has mode {mode:o}, open to other users: fix with `chmod 700 {path}`")]
    BadMode {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The runtime directory for `uid`, given the value of `$XDG_RUNTIME_DIR` (if set and not
/// empty). Does not touch the file system.
pub fn runtime_dir_for(xdg_runtime_dir: Option<&Path>, uid: u32) -> PathBuf {
    match xdg_runtime_dir {
        Some(base) if !base.as_os_str().is_empty() => base.join("v2m"),
        _ => PathBuf::from(format!("/tmp/v2m-{uid}")),
    }
}

/// Creates `path` with mode 0700 if missing, then checks it is a real directory owned by `uid`
/// with mode exactly 0700.
pub fn ensure_private_dir(path: &Path, uid: u32) -> Result<(), PathError> {
    let io_err = |source| PathError::Io {
        path: path.to_owned(),
        source,
    };
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    // lstat: a symlink planted at the path must not redirect us.
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    if !meta.file_type().is_dir() {
        return Err(PathError::NotADirectory(path.to_owned()));
    }
    if meta.uid() != uid {
        return Err(PathError::NotOurs {
            path: path.to_owned(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode != 0o700 {
        return Err(PathError::BadMode {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Checks the folder a control socket lives in, whatever path was given (`--socket`,
/// `V2M_SOCKET`): it must be a real directory of this user that nobody else can write to, or
/// another user could put their own socket in its place.
pub fn check_socket_dir(socket: &Path, uid: u32) -> Result<(), PathError> {
    let dir = match socket.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::env::current_dir().map_err(|source| PathError::Io {
            path: socket.to_owned(),
            source,
        })?,
    };
    let meta = fs::symlink_metadata(&dir).map_err(|source| PathError::Io {
        path: dir.clone(),
        source,
    })?;
    if !meta.file_type().is_dir() {
        return Err(PathError::NotADirectory(dir));
    }
    if meta.uid() != uid {
        return Err(PathError::NotOurs {
            path: dir,
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(PathError::BadMode { path: dir, mode });
    }
    Ok(())
}

/// This user's runtime directory, created and checked.
pub fn runtime_dir() -> Result<PathBuf, PathError> {
    let uid = crate::platform::peer::current_uid();
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let dir = runtime_dir_for(xdg.as_deref(), uid);
    ensure_private_dir(&dir, uid)?;
    Ok(dir)
}

/// The control socket's path, its directory created and checked.
pub fn control_socket() -> Result<PathBuf, PathError> {
    Ok(runtime_dir()?.join(SOCKET_NAME))
}

/// `$XDG_CONFIG_HOME/v2m/config.toml`, or `~/.config/v2m/config.toml`.
pub fn config_file() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config")
        .join("v2m")
        .join("config.toml")
}

/// `$XDG_DATA_HOME/v2m`, or `~/.local/share/v2m`: models and the ONNX Runtime library.
pub fn data_dir() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", ".local/share").join("v2m")
}

fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(fallback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("v2m-paths-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn runtime_dir_prefers_xdg_and_falls_back_to_tmp() {
        assert_eq!(
            runtime_dir_for(Some(Path::new("/run/user/1000")), 1000),
            PathBuf::from("/run/user/1000/v2m")
        );
        assert_eq!(runtime_dir_for(None, 1000), PathBuf::from("/tmp/v2m-1000"));
        assert_eq!(
            runtime_dir_for(Some(Path::new("")), 7),
            PathBuf::from("/tmp/v2m-7")
        );
    }

    #[test]
    fn creates_a_private_dir() {
        let base = scratch("create");
        let dir = base.join("v2m");
        let uid = crate::platform::peer::current_uid();
        ensure_private_dir(&dir, uid).unwrap();
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        // A second call accepts what the first made.
        ensure_private_dir(&dir, uid).unwrap();
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_open_mode() {
        let base = scratch("mode");
        let dir = base.join("v2m");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&dir, crate::platform::peer::current_uid()).unwrap_err();
        assert!(
            matches!(err, PathError::BadMode { mode: 0o755, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 700"), "{err}");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_another_owner() {
        let base = scratch("owner");
        let dir = base.join("v2m");
        let uid = crate::platform::peer::current_uid();
        ensure_private_dir(&dir, uid).unwrap();
        // The same directory, judged on behalf of another uid, is someone else's.
        let err = ensure_private_dir(&dir, uid + 1).unwrap_err();
        assert!(
            matches!(err, PathError::NotOurs { owner, .. } if owner == uid),
            "{err}"
        );
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_socket_folder_must_be_ours_and_closed_to_others() {
        let base = scratch("sockdir");
        let uid = crate::platform::peer::current_uid();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        check_socket_dir(&base.join("s.sock"), uid).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_socket_dir(&base.join("s.sock"), uid).unwrap_err();
        assert!(
            matches!(err, PathError::BadMode { mode: 0o777, .. }),
            "{err}"
        );
        fs::set_permissions(&base, fs::Permissions::from_mode(0o700)).unwrap();
        let err = check_socket_dir(&base.join("s.sock"), uid + 1).unwrap_err();
        assert!(matches!(err, PathError::NotOurs { .. }), "{err}");
        // Sticky /tmp, writable by all, is no place for a socket.
        assert!(check_socket_dir(Path::new("/tmp/x.sock"), uid).is_err());
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_a_symlink() {
        let base = scratch("link");
        let target = base.join("elsewhere");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        let dir = base.join("v2m");
        std::os::unix::fs::symlink(&target, &dir).unwrap();
        let err = ensure_private_dir(&dir, crate::platform::peer::current_uid()).unwrap_err();
        assert!(matches!(err, PathError::NotADirectory(_)), "{err}");
        fs::remove_dir_all(base).unwrap();
    }
}
