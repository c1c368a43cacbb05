//! A file as a source: decoded a piece at a time (any format [`v2m_audio::Decoder`] reads) and
//! fed into the capture queue by a thread standing in for the cpal callback, either at real-time
//! pace (a recording as a microphone) or as fast as the workers read the ring (a file to
//! transcribe: the ring is a window, not a limit, so a file of any length fits).

use super::callback::CallbackWriter;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
pub use v2m_audio::{DecodeError, Decoder};

/// How a file is fed.
#[derive(Debug, Clone)]
pub enum Pace {
    /// 10 ms every 10 ms, like a microphone; silence after the end, until stopped.
    RealTimeThenSilence,
    /// As fast as the ring may take it: never beyond frame `limit` (how far the workers have
    /// read, plus most of the ring), judged by `published` (frames the DSP has published).
    Worker {
        /// The ring sequence number feeding must not pass; moved on as workers read.
        limit: Arc<AtomicU64>,
        /// Frames published so far (the DSP thread's count).
        published: Arc<AtomicU64>,
    },
}

/// How a feeder is doing, shared with the control thread.
#[derive(Debug, Default)]
pub struct FeedProgress {
    /// Input frames (one sample per channel) fed so far.
    pub frames: AtomicU64,
    /// Every sample is in the queue (or feeding failed).
    pub finished: Arc<AtomicBool>,
    /// Why decoding stopped early, if it did.
    pub error: Mutex<Option<DecodeError>>,
}

/// A running file feeder.
pub struct FileFeeder {
    stop: Arc<AtomicBool>,
    progress: Arc<FeedProgress>,
    handle: Option<JoinHandle<()>>,
}

/// How long the feeder sleeps while the queue or the ring is full.
const WAIT: Duration = Duration::from_millis(2);

impl FileFeeder {
    /// Starts feeding what `decoder` decodes into `writer` at `pace`.
    pub fn spawn(
        mut decoder: Decoder,
        pace: Pace,
        mut writer: CallbackWriter,
    ) -> std::io::Result<FileFeeder> {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(FeedProgress::default());
        let (stop2, progress2) = (Arc::clone(&stop), Arc::clone(&progress));
        let handle = std::thread::Builder::new()
            .name("v2m-file".into())
            .spawn(move || {
                let info = decoder.info();
                let ch = info.channels as usize;
                let mut chunk = Vec::new();
                let mut at = 0;
                let started = Instant::now();
                let mut fed_frames = 0u64;
                loop {
                    if stop2.load(Ordering::Relaxed) {
                        return;
                    }
                    if at >= chunk.len() {
                        chunk.clear();
                        at = 0;
                        match decoder.read(&mut chunk) {
                            Ok(true) => continue,
                            Ok(false) => break,
                            Err(e) => {
                                *progress2.error.lock().unwrap_or_else(|p| p.into_inner()) =
                                    Some(e);
                                break;
                            }
                        }
                    }
                    // 10 ms at a time, whole frames.
                    let block = (info.rate as usize / 100).max(1) * ch;
                    let mut n = block.min(chunk.len() - at);
                    match &pace {
                        Pace::RealTimeThenSilence => {
                            let due = started
                                + Duration::from_secs_f64(fed_frames as f64 / info.rate as f64);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        Pace::Worker { limit, published } => {
                            if published.load(Ordering::Acquire) >= limit.load(Ordering::Acquire) {
                                std::thread::sleep(WAIT);
                                continue;
                            }
                        }
                    }
                    let room = writer.room();
                    if room < n {
                        n = room - room % ch;
                        if n == 0 {
                            std::thread::sleep(WAIT);
                            continue;
                        }
                    }
                    writer.write(&chunk[at..at + n]);
                    at += n;
                    fed_frames += (n / ch) as u64;
                    progress2.frames.store(fed_frames, Ordering::Release);
                }
                progress2.finished.store(true, Ordering::Release);
                if let Pace::RealTimeThenSilence = pace {
                    // A microphone does not end: silence until stopped.
                    let silence = vec![0f32; (info.rate as usize / 100).max(1) * ch];
                    let start = Instant::now();
                    let mut i = 0u32;
                    while !stop2.load(Ordering::Relaxed) {
                        writer.write(&silence);
                        i += 1;
                        if let Some(wait) = (start + Duration::from_millis(10) * i)
                            .checked_duration_since(Instant::now())
                        {
                            std::thread::sleep(wait);
                        }
                    }
                }
            })?;
        Ok(FileFeeder {
            stop,
            progress,
            handle: Some(handle),
        })
    }

    /// How feeding is going.
    pub fn progress(&self) -> Arc<FeedProgress> {
        Arc::clone(&self.progress)
    }
}

impl Drop for FileFeeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
