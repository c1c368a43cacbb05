//! Reading a file to transcribe off the control thread: a FIFO, a slow disk or a huge file
//! must not stop the daemon from answering. The result comes back as [`Input::FileRead`].

use super::input::{Arrived, Input};
use crate::capture::read_wav_within;
use crossbeam::channel::Sender;
use std::path::Path;
use std::sync::Arc;
use v2m_shm_proto::protocol::{ErrorKind, ErrorReply};

/// Reads `path` (at most `max_seconds` long, by its header) on a thread of its own and sends
/// the outcome to the core. A relative path is refused at once.
pub fn spawn(
    request: Arrived,
    path: &str,
    max_seconds: f64,
    core: Sender<Input>,
) -> Result<(), ErrorReply> {
    let path = Path::new(path).to_owned();
    if !path.is_absolute() {
        return Err(ErrorReply::new(
            ErrorKind::BadFile,
            format!("{}: give an absolute path", path.display()),
        ));
    }
    std::thread::Builder::new()
        .name("v2m-file-read".into())
        .spawn(move || {
            let audio = match read_wav_within(&path, max_seconds) {
                Ok(a) if a.samples.is_empty() => Err(format!("{}: holds no audio", path.display())),
                Ok(a) => Ok(Arc::new(a)),
                Err(e) => Err(e.to_string()),
            };
            let _ = core.send(Input::FileRead { request, audio });
        })
        .map(drop)
        .map_err(|e| ErrorReply::new(ErrorKind::Internal, format!("cannot read the file: {e}")))
}
