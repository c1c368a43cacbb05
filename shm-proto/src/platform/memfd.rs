//! Anonymous shared memory that cannot change size under a reader.

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// The size seals every memfd of a ring carries: it can neither shrink (a reader would get
/// SIGBUS on pages that vanished) nor grow.
pub const SIZE_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK.union(SealFlag::F_SEAL_GROW);

/// The seals of the wake memfd: fixed size, seals final.
pub const WAKE_SEALS: SealFlag = SIZE_SEALS.union(SealFlag::F_SEAL_SEAL);

/// The seals of the ring memfd once its writer has mapped it: fixed size, no new write access
/// for anyone (no `write`, no new writable shared mapping), seals final.
pub const RING_SEALS: SealFlag = WAKE_SEALS.union(SealFlag::F_SEAL_FUTURE_WRITE);

/// Creates a memfd of exactly `len` zeroed bytes, close-on-exec, sealed with [`SIZE_SEALS`]
/// (add the rest with [`add_seals`]).
///
/// There is no file name: only processes the fd is handed to (SCM_RIGHTS) can map it.
pub fn create(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "memfd length too large"))?;
    nix::unistd::ftruncate(&fd, len)?;
    add_seals(&fd, SIZE_SEALS)?;
    Ok(fd)
}

/// Adds `seals` to `fd`.
pub fn add_seals(fd: impl AsFd, seals: SealFlag) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(())
}

/// A new read-only descriptor of the memfd behind `fd` (reopened through `/proc/self/fd`):
/// whoever gets it cannot write through it, whatever seals there are.
pub fn reopen_read_only(fd: impl AsFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    let file = std::fs::OpenOptions::new().read(true).open(path)?;
    Ok(OwnedFd::from(file))
}

/// The seals on `fd` (empty for a file that does not support sealing).
pub fn seals(fd: impl AsFd) -> io::Result<SealFlag> {
    match fcntl(fd, FcntlArg::F_GET_SEALS) {
        Ok(bits) => Ok(SealFlag::from_bits_truncate(bits)),
        Err(nix::errno::Errno::EINVAL) => Ok(SealFlag::empty()),
        Err(e) => Err(e.into()),
    }
}

/// The size in bytes of the file behind `fd`.
pub fn len(fd: impl AsFd) -> io::Result<u64> {
    Ok(nix::sys::stat::fstat(fd)?.st_size as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_memfd_has_size_and_seals() {
        let fd = create("v2m-test", 65536).unwrap();
        assert_eq!(len(&fd).unwrap(), 65536);
        assert!(seals(&fd).unwrap().contains(SIZE_SEALS));
        // Growing is refused by the seal.
        assert!(nix::unistd::ftruncate(&fd, 131072).is_err());
        add_seals(&fd, RING_SEALS).unwrap();
        assert!(seals(&fd).unwrap().contains(RING_SEALS));
        // No new write access, whatever the descriptor's mode.
        let file = std::fs::File::from(fd);
        use std::os::unix::fs::FileExt;
        assert!(file.write_at(b"x", 0).is_err());
        let ro = reopen_read_only(&file).unwrap();
        assert_eq!(len(&ro).unwrap(), 65536);
    }
}
