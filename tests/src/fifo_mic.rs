//! A microphone for machines without a sound card: an ALSA `file` PCM whose `infile` is a
//! FIFO, written at real-time pace by a feeder thread (recipe: docs/fifo-microphone.md).
//!
//! The feeder plays queued audio (48 kHz stereo S16_LE) and silence in between and after,
//! 10 ms every 10 ms on a fixed schedule, so the stream time of any byte is known: ALSA's
//! `null` PCM under the file PCM has no clock, the reader waits on the FIFO, and the feeder's
//! schedule is the microphone's clock. The FIFO carries what cpal opens the file PCM as,
//! 48 kHz stereo f32, and holds one write. The feeder opens it read-write, so ALSA's probing
//! never makes it see SIGPIPE.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The cpal device id of the FIFO microphone.
pub const DEVICE: &str = "alsa:v2mmic";
/// Its rate: 48 kHz, 2 channels.
pub const RATE: u32 = 48_000;
/// Bytes per second of what [`FifoMic::play`] takes (S16_LE stereo).
pub const BYTES_PER_SECOND: u64 = 48_000 * 4;
/// Played bytes per write: 10 ms (3840 bytes in the FIFO as f32: two of cpal's 5 ms reads).
const BLOCK: usize = 1_920;
const BLOCK_TIME: Duration = Duration::from_millis(10);
/// The FIFO's capacity: one page, one write. ALSA reads what it holds at once when the stream
/// starts, so a bigger pipe would hand the reader that much audio in a burst.
const PIPE_SIZE: i32 = 4_096;
/// A write blocked this long means nobody reads (v2m-rt not started yet, or reopening the
/// device): the schedule restarts then instead of catching up with a burst.
const NO_READER: Duration = Duration::from_millis(100);

struct Feed {
    queue: VecDeque<u8>,
    /// Bytes written into the FIFO so far; the queue plays from here on.
    written: u64,
    /// Clips not yet started: (stream offset of the first byte, when it was written).
    clips: Vec<(u64, Arc<Mutex<Option<Instant>>>)>,
}

/// One queued recording; knows when its first byte went into the FIFO.
#[derive(Clone)]
pub struct Clip {
    started: Arc<Mutex<Option<Instant>>>,
    /// Its length, seconds.
    pub seconds: f64,
}

impl Clip {
    /// When its first sample was written into the FIFO (the pipe holds at most 4 KiB, about
    /// 21 ms, so ALSA reads it at most that much later).
    pub fn started(&self) -> Option<Instant> {
        *self.started.lock().unwrap()
    }

    /// Waits until it has started.
    pub fn wait_started(&self) -> Instant {
        loop {
            if let Some(t) = self.started() {
                return t;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A running FIFO microphone.
pub struct FifoMic {
    xdg: PathBuf,
    fifo: PathBuf,
    feed: Arc<Mutex<Feed>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FifoMic {
    /// Creates the FIFO and the ALSA configuration under `dir` and starts feeding silence.
    pub fn new(dir: &Path) -> FifoMic {
        let xdg = dir.join("xdg");
        std::fs::create_dir_all(xdg.join("alsa")).expect("create the ALSA config dir");
        let fifo = dir.join("mic.fifo");
        let _ = std::fs::remove_file(&fifo);
        let made = Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success(), "mkfifo {}", fifo.display());
        std::fs::write(
            xdg.join("alsa/asoundrc"),
            format!(
                "pcm.v2mmic {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n \
                 infile \"{}\"\n format \"raw\"\n}}\n",
                fifo.display()
            ),
        )
        .expect("write asoundrc");
        let feed = Arc::new(Mutex::new(Feed {
            queue: VecDeque::new(),
            written: 0,
            clips: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (feed2, stop2) = (Arc::clone(&feed), Arc::clone(&stop));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open the FIFO");
        let _ = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        let handle = std::thread::spawn(move || {
            let mut block = [0u8; BLOCK];
            let mut pipe_block = [0u8; BLOCK * 2];
            let mut due = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let starting = {
                    let mut feed = feed2.lock().unwrap();
                    let n = feed.queue.len().min(BLOCK);
                    for (d, s) in block.iter_mut().zip(feed.queue.drain(..n)) {
                        *d = s;
                    }
                    block[n..].fill(0);
                    let from = feed.written;
                    feed.written += BLOCK as u64;
                    let end = feed.written;
                    let (now, later): (Vec<_>, Vec<_>) =
                        feed.clips.drain(..).partition(|(at, _)| *at < end);
                    feed.clips = later;
                    now.into_iter()
                        .map(|(at, t)| (at - from, t))
                        .collect::<Vec<_>>()
                };
                for (s16, f32) in block.chunks_exact(2).zip(pipe_block.chunks_exact_mut(4)) {
                    let v = i16::from_le_bytes([s16[0], s16[1]]) as f32 / 32_768.0;
                    f32.copy_from_slice(&v.to_le_bytes());
                }
                let writing = Instant::now();
                if f.write_all(&pipe_block).is_err() {
                    return;
                }
                let written = Instant::now();
                for (offset, t) in starting {
                    let ns = offset * 1_000_000_000 / BYTES_PER_SECOND;
                    *t.lock().unwrap() = Some(written + Duration::from_nanos(ns));
                }
                // Late because this thread was held up: catch up (the reader waited meanwhile,
                // as it does on a device's buffer). Late because nobody read: start afresh,
                // after the block the pipe held and this one, which the new reader gets at once.
                due = if written - writing >= NO_READER {
                    written + 2 * BLOCK_TIME
                } else {
                    due + BLOCK_TIME
                };
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        FifoMic {
            xdg,
            fifo,
            feed,
            stop,
            handle: Some(handle),
        }
    }

    /// The directory to give as `XDG_CONFIG_HOME` to the process that opens [`DEVICE`].
    pub fn xdg_config_home(&self) -> &Path {
        &self.xdg
    }

    /// Queues `pcm` (48 kHz stereo S16_LE) after whatever is queued.
    pub fn play(&self, pcm: &[u8]) -> Clip {
        let mut feed = self.feed.lock().unwrap();
        let at = feed.written + feed.queue.len() as u64;
        // Whole 4-byte frames only.
        let len = pcm.len() - pcm.len() % 4;
        feed.queue.extend(&pcm[..len]);
        let started = Arc::new(Mutex::new(None));
        feed.clips.push((at, Arc::clone(&started)));
        Clip {
            started,
            seconds: len as f64 / BYTES_PER_SECOND as f64,
        }
    }

    /// Whether everything queued has been written.
    pub fn idle(&self) -> bool {
        self.feed.lock().unwrap().queue.is_empty()
    }

    /// Waits until everything queued has been written.
    pub fn wait_idle(&self) {
        while !self.idle() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FifoMic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // With nobody reading, the feeder is blocked on a full pipe: drain it until it ends.
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let drain = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&self.fifo);
        if let Some(h) = self.handle.take() {
            let mut buf = [0u8; 8192];
            while !h.is_finished() {
                if let Ok(mut f) = drain.as_ref() {
                    let _ = f.read(&mut buf);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = h.join();
        }
    }
}

/// Runs sox on `src` and returns its output as raw S16_LE: `args_out` describe the output
/// (rate, channels), `effects` follow it (e.g. `pad 1 1`). Without dither (`-D`), as every sox
/// call in the tests: sox's dither is random noise, so a fixture would differ from run to run.
pub fn sox_raw(src: &Path, args_out: &[&str], effects: &[&str]) -> Vec<u8> {
    let out = Command::new("sox")
        .arg("-D")
        .arg(src)
        .args(["-t", "raw", "-e", "signed", "-b", "16"])
        .args(args_out)
        .arg("-")
        .args(effects)
        .output()
        .expect("sox missing: run scripts/setup.sh");
    assert!(
        out.status.success(),
        "sox {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The FIFO microphone's rate and channels as sox output options (its samples: S16_LE).
pub const MIC_FORMAT: [&str; 4] = ["-r", "48000", "-c", "2"];

/// `src` as the FIFO microphone's format (48 kHz stereo S16_LE), by sox.
pub fn mic_pcm(src: &Path) -> Vec<u8> {
    sox_raw(src, &MIC_FORMAT, &[])
}

/// `src` as 16 kHz mono f32, by sox.
pub fn mono16k(src: &Path) -> Vec<f32> {
    sox_raw(src, &["-r", "16000", "-c", "1"], &[])
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect()
}
