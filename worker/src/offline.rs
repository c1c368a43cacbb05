//! Transcribing a whole recording: its 20 ms frames through the same [`SessionStream`] that
//! follows live dictation (VAD flags from the same WebRTC VAD), without provisional or
//! speculative passes. Windows, hard commits, prompts and the final pass are the live
//! computation, so a recording transcribed here and dictated through the ring give the same
//! text. A file is decoded a piece at a time: memory does not grow with its length.

use crate::error::WorkerError;
use crate::stream::session::{Final, PassModel, SessionStream, StreamPolicy};
use std::path::Path;
use v2m_audio::Decoder;
use v2m_audio::frames::Frames;
use v2m_audio::resample::To16k;
use v2m_audio::vad::Detector;

/// 16 kHz samples in, flagged 20 ms frames into a stream.
struct Framer {
    stream: SessionStream,
    vad: Detector,
    frames: Frames,
}

impl Framer {
    fn new(policy: StreamPolicy, vad: u8) -> Result<Framer, WorkerError> {
        Ok(Framer {
            stream: SessionStream::new(policy, 0),
            vad: Detector::new(vad).map_err(|e| WorkerError::Usage(e.to_string()))?,
            frames: Frames::default(),
        })
    }

    fn push(&mut self, samples: &[f32], model: &mut dyn PassModel) -> Result<(), WorkerError> {
        let (stream, vad) = (&mut self.stream, &mut self.vad);
        self.frames.push(samples, |frame| {
            let speech = vad.is_speech(frame);
            stream.push_samples(frame, speech, model).map(drop)
        })
    }

    fn finish(mut self, model: &mut dyn PassModel) -> Result<Final, WorkerError> {
        if let Some(frame) = self.frames.take_padded() {
            let speech = self.vad.is_speech(&frame);
            self.stream.push_samples(&frame, speech, model)?;
        }
        let end = self.stream.next_seq();
        self.stream.finish(end, model)
    }
}

/// Transcribes `audio` (16 kHz mono, any length) with `policy`.
pub fn transcribe_recording(
    model: &mut dyn PassModel,
    audio: &[f32],
    vad_aggressiveness: u8,
    policy: StreamPolicy,
) -> Result<Final, WorkerError> {
    let mut f = Framer::new(policy, vad_aggressiveness)?;
    f.push(audio, model)?;
    f.finish(model)
}

/// Transcribes the file at `path` (any format v2m-audio decodes), decoding it a piece at a
/// time; `progress` hears seconds done (and the length, when known) as it goes.
pub fn transcribe_file(
    model: &mut dyn PassModel,
    path: &Path,
    vad_aggressiveness: u8,
    policy: StreamPolicy,
    progress: &mut dyn FnMut(f64, Option<f64>),
) -> Result<Final, WorkerError> {
    let mut decoder = Decoder::open(path)?;
    let info = decoder.info();
    let mut to16k = To16k::new(info.rate, info.channels).map_err(|e| WorkerError::BadAudio {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut f = Framer::new(policy, vad_aggressiveness)?;
    let mut chunk = Vec::new();
    let mut converted = Vec::new();
    let mut last_report = 0.0;
    while decoder.read(&mut chunk)? {
        to16k.push(&chunk, &mut |s| converted.extend_from_slice(s));
        chunk.clear();
        f.push(&converted, model)?;
        converted.clear();
        let done = f.stream.next_seq() as f64 * 0.02;
        if done - last_report >= 1.0 {
            last_report = done;
            progress(done, info.seconds);
        }
    }
    to16k.finish(&mut |s| converted.extend_from_slice(s));
    f.push(&converted, model)?;
    let r = f.finish(model)?;
    progress(
        r.windows.last().map_or(0.0, |w| w.end_seq as f64 * 0.02),
        info.seconds,
    );
    Ok(r)
}
