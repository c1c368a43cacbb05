//! The real cpal capture path (callback → rtrb → DSP thread → ring), fed real recorded speech
//! at 48 kHz stereo through an ALSA `file` PCM whose infile is a FIFO written at real-time
//! pace (docs/fifo-microphone.md). The only test in this binary: it points ALSA at its own
//! configuration before ALSA is first used.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use v2m_rt::capture;
use v2m_rt::dsp::{DspParams, DspShared, spawn_dsp_thread};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::ring::{self, FRAME_NS, FRAME_SAMPLES, Frame, FrameFlags, RingReader};
use v2m_tests::fifo_mic::{self, FifoMic, mono16k, sox_raw};
use v2m_tests::signal::correlation;
use v2m_tests::watchdog::Watchdog;

use v2m_tests::fixtures::SPEECH;

fn rms_frames(x: &[f32]) -> Vec<f32> {
    x.chunks(FRAME_SAMPLES)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

#[test]
fn real_speech_through_the_fifo_microphone_reaches_the_ring_intact() {
    let _wd = Watchdog::arm(Duration::from_secs(120), "FIFO microphone capture");
    let dir = std::env::temp_dir().join(format!("v2m-rt-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mic_device = FifoMic::new(&dir);
    // SAFETY: this is the first thing the only test of this binary does, before any thread
    // that could read the environment exists (the watchdog and feeder threads never read it).
    unsafe { std::env::set_var("XDG_CONFIG_HOME", mic_device.xdg_config_home()) };

    // The source: 1 s of silence, the recording, 1 s of silence; at 16 kHz for comparison and
    // as 48 kHz stereo S16 for the microphone (sox: an independent resampler).
    let speech16 = mono16k(Path::new(SPEECH));
    let pad = vec![0f32; 16_000];
    let original: Vec<f32> = pad.iter().chain(&speech16).chain(&pad).copied().collect();
    let mic = sox_raw(
        Path::new(SPEECH),
        &["-r", "48000", "-c", "2"],
        &["pad", "1", "1"],
    );
    let mic_seconds = mic.len() as f64 / (48_000.0 * 4.0);
    mic_device.play(&mic);

    let (writer, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let (capture, queue) = capture::open(
        Some(fifo_mic::DEVICE),
        2.0,
        Arc::new(capture::CallbackStats::default()),
    )
    .expect("open the FIFO microphone");
    assert_eq!(
        (capture.format.rate, capture.format.channels),
        (48_000, 2),
        "{:?}",
        capture.format
    );
    let callback = Arc::clone(&capture.stats);
    let shared = Arc::new(DspShared::default());
    let params = DspParams {
        queue,
        rate: 48_000,
        channels: 2,
        vad_mode: 3,
        callback_stats: Arc::clone(&capture.stats),
        shared: Arc::clone(&shared),
        input_finished: None,
        discontinuity_first: false,
    };
    let dsp = spawn_dsp_thread(params, writer).unwrap();
    std::thread::sleep(Duration::from_secs_f64(mic_seconds + 1.0));
    // A stream error (an ALSA overrun cpal recovered from, say) explains a failure below.
    let stream_error = (capture.errors.lost(), capture.errors.notices());
    drop(capture);
    drop(mic_device);
    // The stream is closed; let the DSP thread finish what the queue still holds.
    let mut stats = dsp.stats();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = dsp.stats();
        if now.frames == stats.frames && now.input_frames == stats.input_frames {
            break;
        }
        stats = now;
    }
    dsp.stop().unwrap();
    // Taken once nothing can publish any more: every frame was captured before it.
    let now = monotonic_ns();

    let mut reader = RingReader::open(control.reader_fds().unwrap()).unwrap();
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
        callback.durations.max_us()
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
    // Every frame was timed, and its hand-over came before its publish and after its capture:
    // the frame, the resampler's 5 ms, and no more than a second of waiting for the device.
    let latency = &shared.latency;
    let timed = latency.capture_to_ring.count();
    assert!(
        timed + 2 >= frames.len() as u64,
        "{timed} of {} timed",
        frames.len()
    );
    assert_eq!(latency.capture_to_handover.count(), timed);
    assert_eq!(latency.handover_to_ring.count(), timed);
    let floor = latency.capture_to_handover.quantile_us(0.5);
    assert!(
        (24_000.0..1_000_000.0).contains(&floor),
        "floor p50 {floor} us"
    );
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
        "last frame captured at {last} ns, the capture ended at {now} ns"
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
        "resampled capture differs from the source: {best} (stream error: {stream_error:?})"
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
