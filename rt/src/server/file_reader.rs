//! Opening a file to transcribe off the control thread: probing a format (or starting ffmpeg)
//! on a slow disk must not stop the daemon from answering. The result comes back as
//! [`Input::FileOpened`].

use super::input::{Arrived, Input};
use crate::capture::Decoder;
use crossbeam::channel::Sender;
use std::path::Path;
use v2m_shm_proto::protocol::{ErrorKind, ErrorReply};

/// Opens `path` on a thread of its own and sends the outcome to the core. A relative path is
/// refused at once.
pub fn spawn(request: Arrived, path: &str, core: Sender<Input>) -> Result<(), ErrorReply> {
    let path = Path::new(path).to_owned();
    if !path.is_absolute() {
        return Err(ErrorReply::new(
            ErrorKind::BadFile,
            format!("{}: give an absolute path", path.display()),
        ));
    }
    std::thread::Builder::new()
        .name("v2m-file-open".into())
        .spawn(move || {
            let decoder = Decoder::open(&path);
            let _ = core.send(Input::FileOpened { request, decoder });
        })
        .map(drop)
        .map_err(|e| ErrorReply::new(ErrorKind::Internal, format!("cannot open the file: {e}")))
}
