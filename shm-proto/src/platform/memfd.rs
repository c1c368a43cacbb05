//! Anonymous shared memory that cannot change size under a reader.

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// The seals every ring memfd carries: it can neither shrink (a reader would get SIGBUS on
/// pages that vanished) nor grow, and the seals themselves are final.
pub const RING_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_SEAL);

/// Creates a memfd of exactly `len` zeroed bytes, close-on-exec, sealed with [`RING_SEALS`].
///
/// There is no file name: only processes the fd is handed to (SCM_RIGHTS) can map it.
pub fn create_sealed(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "memfd length too large"))?;
    nix::unistd::ftruncate(&fd, len)?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(RING_SEALS))?;
    Ok(fd)
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
        let fd = create_sealed("v2m-test", 65536).unwrap();
        assert_eq!(len(&fd).unwrap(), 65536);
        assert!(seals(&fd).unwrap().contains(RING_SEALS));
        // Growing is refused by the seal.
        assert!(nix::unistd::ftruncate(&fd, 131072).is_err());
    }
}
