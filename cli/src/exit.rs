//! Exit codes, documented in `v2m-cli --help` and README.

use v2m_shm_proto::client::ClientError;
use v2m_shm_proto::protocol::ErrorKind;

/// Success.
pub const OK: u8 = 0;
/// Anything not listed below (connection lost, internal error).
pub const ERROR: u8 = 1;
/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// v2m-rt is not running.
pub const NOT_RUNNING: u8 = 3;
/// The session held no speech.
pub const NO_SPEECH: u8 = 4;
/// The final text did not arrive in time.
pub const TIMEOUT: u8 = 5;
/// The daemon refused (wrong state, paused, no worker, device, bad file).
pub const REFUSED: u8 = 6;
/// The text was produced but could not be delivered (clipboard or typing tool missing).
pub const DELIVERY: u8 = 7;
/// Refining was asked for but failed: the raw text was delivered, and one line says why.
pub const UNREFINED: u8 = 8;
/// The text was delivered, but part of the dictation's audio was lost before a worker read
/// it (a worker restarted late in a dictation longer than the ring): words are missing.
pub const INCOMPLETE: u8 = 9;

/// Help text listing the codes.
pub const HELP: &str = "Exit codes: 0 ok, 1 error, 2 usage, 3 v2m-rt not running, 4 no speech detected, \
5 timed out waiting for the text (`v2m-cli last` prints it once it comes), 6 refused by v2m-rt \
(state, paused, no worker, device, bad file), 7 text printed but not delivered \
(clipboard/typing tool missing), 8 refining failed: the raw text was delivered, 9 text printed but part of the audio was lost (words missing)";

/// The exit code for a failed call.
pub fn code_for(e: &ClientError) -> u8 {
    match e {
        ClientError::NotRunning { .. } => NOT_RUNNING,
        ClientError::Refused(r) => match r.kind {
            ErrorKind::NoSpeech => NO_SPEECH,
            ErrorKind::Timeout => TIMEOUT,
            ErrorKind::InvalidState
            | ErrorKind::Paused
            | ErrorKind::NoWorker
            | ErrorKind::Device
            | ErrorKind::BadFile
            | ErrorKind::Busy
            | ErrorKind::PermissionDenied => REFUSED,
            _ => ERROR,
        },
        ClientError::TimedOut(_) => TIMEOUT,
        _ => ERROR,
    }
}
