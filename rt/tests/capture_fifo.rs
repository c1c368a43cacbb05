//! The real cpal capture path (callback → rtrb → DSP thread → ring), fed real recorded speech
//! at 48 kHz stereo through an ALSA `file` PCM whose infile is a FIFO written at real-time
//! pace (docs/fifo-microphone.md). The only test in this binary: it points ALSA at its own
//! configuration before ALSA is first used.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use v2m_rt::capture::{self, spawn_dsp_thread};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::ring::{self, FRAME_NS, FRAME_SAMPLES, Frame, FrameFlags, RingReader};
use v2m_tests::watchdog::Watchdog;

const SPEECH: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// `src` as raw S16_LE at `rate` Hz, `channels` channels, by sox.
fn raw_by_sox(args_in: &[&str], src: &Path, args_out: &[&str]) -> Vec<u8> {
    let out = Command::new("sox")
        .args(args_in)
        .arg(src)
        .args(args_out)
        .output()
        .expect("sox missing: run scripts/setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s16(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect()
}

fn rms_frames(x: &[f32]) -> Vec<f32> {
    x.chunks(FRAME_SAMPLES)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let dot: f64 = (0..n).map(|i| a[i] as f64 * b[i] as f64).sum();
    let na: f64 = a[..n].iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b[..n].iter().map(|x| (*x as f64).powi(2)).sum();
    dot / (na.sqrt() * nb.sqrt())
}

#[test]
fn real_speech_through_the_fifo_microphone_reaches_the_ring_intact() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "FIFO microphone capture");
    let dir = std::env::temp_dir().join(format!("v2m-rt-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("xdg/alsa")).unwrap();
    let fifo: PathBuf = dir.join("mic.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::write(
        dir.join("xdg/alsa/asoundrc"),
        format!(
            "pcm.v2mfile {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n \
             infile \"{}\"\n format \"raw\"\n}}\n\
             pcm.v2mmic {{\n type plug\n slave {{ pcm \"v2mfile\"; format S16_LE; rate 48000; channels 2 }}\n}}\n",
            fifo.display()
        ),
    )
    .unwrap();
    // SAFETY: this is the first thing the only test of this binary does, before any thread
    // that could read the environment exists (the watchdog thread never reads it).
    unsafe { std::env::set_var("XDG_CONFIG_HOME", dir.join("xdg")) };

    // The source: 1 s of silence, the recording, 1 s of silence; at 16 kHz for comparison and
    // as 48 kHz stereo S16 for the microphone (sox: an independent resampler).
    let speech16 = s16(&raw_by_sox(
        &[],
        Path::new(SPEECH),
        &["-t", "raw", "-e", "signed", "-b", "16", "-"],
    ));
    let pad = vec![0f32; 16_000];
    let original: Vec<f32> = pad.iter().chain(&speech16).chain(&pad).copied().collect();
    let mic = raw_by_sox(
        &[],
        Path::new(SPEECH),
        &[
            "-t", "raw", "-e", "signed", "-b", "16", "-r", "48000", "-c", "2", "-", "pad", "1", "1",
        ],
    );
    let mic_seconds = mic.len() as f64 / (48_000.0 * 4.0);

    // The feeder: real-time pace, 10 ms at a time, silence after the end until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let fifo2 = fifo.clone();
    let feeder = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo2)
            .unwrap();
        let block = 1_920; // 10 ms of 48 kHz stereo S16
        let silence = vec![0u8; block];
        let start = Instant::now();
        let mut i = 0u32;
        while !stop2.load(Ordering::Relaxed) {
            let at = i as usize * block;
            let data = mic.get(at..at + block).unwrap_or(&silence);
            f.write_all(data).unwrap();
            i += 1;
            let due = start + Duration::from_millis(10) * i;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });

    let (writer, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let (capture, queue) =
        capture::open(Some("alsa:v2mmic"), 2.0).expect("open the FIFO microphone");
    assert_eq!(
        (capture.format.rate, capture.format.channels),
        (48_000, 2),
        "{:?}",
        capture.format
    );
    let callback = Arc::clone(&capture.stats);
    let dsp = spawn_dsp_thread(queue, 48_000, 2, 3, writer, Arc::clone(&capture.stats));
    std::thread::sleep(Duration::from_secs_f64(mic_seconds + 1.0));
    let now = monotonic_ns();
    drop(capture);
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    let stats = dsp.stats();
    dsp.stop().unwrap();

    let mut reader = RingReader::open(control.fd().try_clone_to_owned().unwrap()).unwrap();
    reader.seek(0);
    let mut frames = Vec::new();
    let mut f = Frame::default();
    while let Some(info) = reader.try_read(&mut f) {
        assert_eq!(info.lost, 0);
        frames.push(f.clone());
    }
    let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
    eprintln!(
        "{} frames ({:.2} s) for {mic_seconds:.2} s fed; dsp {stats:?}",
        frames.len(),
        frames.len() as f64 * 0.02
    );

    let dropped = callback.dropped_samples.load(Ordering::Relaxed);
    eprintln!(
        "callbacks {} dropped {dropped} longest {} us",
        callback.callbacks.load(Ordering::Relaxed),
        callback.max_callback_ns.load(Ordering::Relaxed) / 1000
    );
    assert_eq!(dropped, 0, "the queue overflowed");
    assert!(callback.callbacks.load(Ordering::Relaxed) > 0);

    // Frames add up to the audio the device delivered, within one frame (+ resampler delay).
    let expected = stats.input_frames as usize / 3;
    assert!(
        (stats.output_samples as usize).abs_diff(expected) <= FRAME_SAMPLES + 80,
        "{stats:?}"
    );
    assert_eq!(stats.frames as usize, frames.len());
    assert!(
        frames.len() as f64 * 0.02 >= mic_seconds,
        "the whole recording was captured"
    );
    // Capture times: one frame apart, and recent.
    assert!(
        frames
            .windows(2)
            .all(|w| w[1].meta.capture_ns - w[0].meta.capture_ns == FRAME_NS)
    );
    let last = frames.last().unwrap().meta.capture_ns;
    assert!(
        last < now && now - last < 3_000_000_000,
        "last frame captured {} ms before the end",
        (now - last) / 1_000_000
    );

    // Find the recording: onset by energy, then the exact lag by correlation. The lag may be
    // negative: ALSA's probing opens the PCM, and the file plugin can consume some of the
    // leading silence before the stream runs.
    let onset = |x: &[f32]| rms_frames(x).iter().position(|&r| r > 0.02).unwrap() * FRAME_SAMPLES;
    let (o_orig, o_out) = (onset(&original), onset(&out));
    let span = speech16.len();
    let shift = o_out as i64 - o_orig as i64;
    let speech = &original[16_000..16_000 + span];
    let (lag, best) = (shift - 640..=shift + 640)
        .filter(|d| 16_000 + d >= 0)
        .map(|d| {
            (
                d,
                correlation(speech, &out[((16_000 + d) as usize).min(out.len())..]),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    eprintln!("onsets: source {o_orig}, captured {o_out}; correlation {best:.4} at lag {lag}");
    assert!(
        best > 0.99,
        "resampled capture differs from the source: {best}"
    );
    let speech_start = (16_000 + lag) as usize;

    // VAD: speech where the recording speaks, not in the silence around it.
    // The silence is the second of padding before the recording (its own first 240 ms already
    // hold breath and a soft onset).
    let lead: Vec<&Frame> = frames
        .iter()
        .take(speech_start / FRAME_SAMPLES)
        .skip(5)
        .collect();
    let lead_speech = lead
        .iter()
        .filter(|f| f.meta.flags.contains(FrameFlags::SPEECH))
        .count();
    let body =
        &frames[speech_start / FRAME_SAMPLES + 10..(speech_start + span) / FRAME_SAMPLES - 10];
    let body_speech = body
        .iter()
        .filter(|f| f.meta.flags.contains(FrameFlags::SPEECH))
        .count();
    eprintln!(
        "VAD: lead {lead_speech}/{} body {body_speech}/{}",
        lead.len(),
        body.len()
    );
    assert!(
        lead_speech * 20 <= lead.len().max(1),
        "silence flagged as speech"
    );
    assert!(body_speech * 10 >= body.len() * 6, "speech not flagged");
}
