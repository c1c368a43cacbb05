//! The DSP chain on real recorded speech and over a long synthetic stream.

use std::path::{Path, PathBuf};
use std::process::Command;
use v2m_rt::dsp::{Dsp, FrameLatency};
use v2m_shm_proto::platform::clock::monotonic_ns;
use v2m_shm_proto::ring::{self, FRAME_NS, FRAME_SAMPLES, Frame, FrameFlags, RingReader};
use v2m_tests::alloc_counter::{CountingAlloc, allocs_on_this_thread};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocs() -> u64 {
    allocs_on_this_thread()
}

use v2m_tests::fixtures::SPEECH;

fn read_wav(path: &Path) -> (Vec<f32>, u32, u16) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/setup.sh installs the test data)",
            path.display()
        )
    });
    let spec = r.spec();
    let samples = r
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect();
    (samples, spec.sample_rate, spec.channels)
}

fn scratch() -> PathBuf {
    v2m_tests::fixtures::process_scratch("rt-dsp")
}

/// The 16 kHz speech with `pad_s` of silence on each side, as a WAV, and its samples.
fn padded_speech(pad_s: f32) -> (PathBuf, Vec<f32>) {
    let (speech, rate, _) = read_wav(Path::new(SPEECH));
    assert_eq!(rate, 16_000);
    let pad = vec![0f32; (pad_s * 16_000.0) as usize];
    let samples: Vec<f32> = pad.iter().chain(&speech).chain(&pad).copied().collect();
    let path = scratch().join(format!("padded-{pad_s}.wav"));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for s in &samples {
        w.write_sample((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    (path, samples)
}

/// `src` converted by sox (an independent resampler) to `rate` Hz, `channels` channels.
fn sox(src: &Path, rate: u32, channels: u16) -> PathBuf {
    let out = scratch().join(format!("{rate}-{channels}.wav"));
    let status = Command::new("sox")
        .arg("-D")
        .arg(src)
        .args([
            "-r",
            &rate.to_string(),
            "-c",
            &channels.to_string(),
            "-b",
            "16",
        ])
        .arg(&out)
        .status()
        .expect("sox missing: run scripts/setup.sh");
    assert!(status.success());
    out
}

/// Runs `input` through the chain in 10 ms blocks; returns the published frames.
fn run(input: &[f32], rate: u32, channels: u16) -> (Vec<Frame>, Dsp) {
    let (writer, control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let mut reader = RingReader::open(control.reader_fds().unwrap()).unwrap();
    reader.seek(0);
    let mut dsp = Dsp::new(rate, channels, 3, writer).unwrap();
    let block = (rate / 100) as usize * channels as usize;
    let start_ns = 5_000_000_000u64;
    for (i, chunk) in input.chunks(block).enumerate() {
        dsp.process(chunk, start_ns + i as u64 * 10_000_000);
    }
    let mut frames = Vec::new();
    let mut f = Frame::default();
    while let Some(info) = reader.try_read(&mut f) {
        assert_eq!(info.lost, 0);
        frames.push(f.clone());
    }
    (frames, dsp)
}

fn correlation_at(a: &[f32], b: &[f32], lag: usize) -> f64 {
    let n = a.len().min(b.len().saturating_sub(lag));
    let (x, y) = (&a[..n], &b[lag..lag + n]);
    let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
    let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum();
    let ny: f64 = y.iter().map(|q| (*q as f64).powi(2)).sum();
    dot / (nx.sqrt() * ny.sqrt())
}

#[test]
fn speech_resampled_from_48k_and_44k1_stereo_matches_the_original() {
    let (src, original) = padded_speech(1.0);
    for rate in [48_000, 44_100] {
        let (input, r, ch) = read_wav(&sox(&src, rate, 2));
        assert_eq!((r, ch), (rate, 2));
        let (frames, dsp) = run(&input, rate, 2);
        let out: Vec<f32> = frames.iter().flat_map(|f| f.samples).collect();
        // Frames add up to the input's duration within one frame (plus the resampler's delay).
        let expected = input.len() / 2 * 16_000 / rate as usize;
        let produced = dsp.stats().output_samples as usize;
        assert!(
            produced.abs_diff(expected) <= FRAME_SAMPLES + dsp.resampler_delay(),
            "{rate}: {produced} samples for {expected}"
        );
        assert_eq!(frames.len(), produced / FRAME_SAMPLES);
        // The same audio as the original, delayed by the resampler: correlation > 0.99.
        let (lag, best) = (0..=dsp.resampler_delay() + 64)
            .map(|lag| (lag, correlation_at(&original, &out, lag)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        eprintln!(
            "{rate} Hz: correlation {best:.4} at lag {lag} (delay {})",
            dsp.resampler_delay()
        );
        assert!(best > 0.99, "{rate}: correlation {best} at lag {lag}");
        // Capture times step by exactly one frame.
        assert!(
            frames
                .windows(2)
                .all(|w| w[1].meta.capture_ns - w[0].meta.capture_ns == FRAME_NS)
        );
    }
}

#[test]
fn vad_marks_the_speech_and_not_the_silence_around_it() {
    let (src, _) = padded_speech(1.5);
    let (input, rate, ch) = read_wav(&sox(&src, 48_000, 2));
    let (frames, _) = run(&input, rate, ch);
    let speech = |fs: &[Frame]| {
        fs.iter()
            .filter(|f| f.meta.flags.contains(FrameFlags::SPEECH))
            .count() as f64
            / fs.len() as f64
    };
    let n = frames.len();
    let lead = speech(&frames[5..70]); // inside the first 1.5 s
    let tail = speech(&frames[n - 70..n - 5]); // inside the last 1.5 s
    let middle = speech(&frames[85..n - 85]);
    eprintln!("speech fraction: lead {lead:.2} middle {middle:.2} tail {tail:.2}");
    assert!(lead <= 0.05 && tail <= 0.05, "silence flagged as speech");
    assert!(middle >= 0.6, "speech not flagged: {middle}");
}

#[test]
fn the_chain_allocates_nothing_after_warm_up() {
    // The counter itself must see allocations, or the zero below proves nothing.
    let before = allocs();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(
        std::hint::black_box(8),
    )));
    assert_eq!(allocs() - before, 1);
    // 48k and 44.1k stereo (FFT resampler), 16k mono (pass-through), 37.8 kHz (sinc).
    for (rate, channels) in [(48_000u32, 2u16), (44_100, 2), (16_000, 1), (37_800, 1)] {
        let (writer, _control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
        let mut dsp = Dsp::new(rate, channels, 3, writer).unwrap();
        let block_frames = (rate / 100) as usize;
        let block: Vec<f32> = (0..block_frames * channels as usize)
            .map(|i| (i as f32 * 0.05).sin() * 0.3)
            .collect();
        for i in 0..100 {
            dsp.process(&block, i * 10_000_000);
        }
        let before = allocs();
        for i in 100..6_100 {
            dsp.process(&block, i * 10_000_000);
        }
        let during = allocs() - before;
        assert_eq!(
            during, 0,
            "{rate} Hz x{channels}: {during} allocations in a minute"
        );
        assert!(dsp.stats().frames > 2_900, "{:?}", dsp.stats());
    }
}

#[test]
fn bad_configurations_are_refused() {
    let (w, _c) = ring::create(8).unwrap();
    assert!(Dsp::new(0, 2, 3, w).is_err());
    let (w, _c) = ring::create(8).unwrap();
    assert!(Dsp::new(48_000, 0, 3, w).is_err());
    let (w, _c) = ring::create(8).unwrap();
    let e = Dsp::new(48_000, 2, 9, w).err().unwrap();
    assert!(e.to_string().contains("VAD mode 9"), "{e}");
}

#[test]
fn the_capture_callback_and_the_dsp_step_allocate_nothing_after_warm_up() {
    use std::sync::Arc;
    use v2m_rt::capture::{CallbackStats, CallbackWriter};
    let (samples_tx, mut samples) = rtrb::RingBuffer::<f32>::new(48_000 * 2);
    let (stamps_tx, mut stamps) = rtrb::RingBuffer::new(4096);
    let stats = Arc::new(CallbackStats::default());
    let mut callback = CallbackWriter::new(samples_tx, stamps_tx, 48_000, 2, Arc::clone(&stats));
    let (writer, _control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let mut dsp = Dsp::new(48_000, 2, 3, writer).unwrap();
    // What a 48 kHz stereo i16 device hands the callback every 10 ms.
    let block: Vec<i16> = (0..960)
        .map(|i| ((i as f32 * 0.03).sin() * 9000.0) as i16)
        .collect();
    let mut step = |callback: &mut CallbackWriter, dsp: &mut Dsp| {
        callback.write(&block);
        while stamps.pop().is_ok() {}
        let n = samples.slots();
        let chunk = samples.read_chunk(n).unwrap();
        let (a, b) = chunk.as_slices();
        dsp.process(a, 0);
        dsp.process(b, 0);
        chunk.commit_all();
    };
    for _ in 0..100 {
        step(&mut callback, &mut dsp);
    }
    let before = allocs();
    for _ in 0..6_000 {
        step(&mut callback, &mut dsp);
    }
    assert_eq!(
        allocs() - before,
        0,
        "allocations in a minute of callbacks and DSP"
    );
    assert_eq!(
        stats
            .dropped_samples
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert!(dsp.stats().frames > 2_900);
}

/// Every frame's capture → hand-over time for `input` (48 kHz stereo) fed in 10 ms blocks, each
/// handed over `wait_ms` after its last sample was captured: (min, p50) in µs, and the number
/// of frames recorded.
fn hand_over_figures(input: &[f32], wait_ms: u64) -> (f32, f32, u64) {
    let (writer, _control) = ring::create(ring::DEFAULT_CAPACITY).unwrap();
    let mut dsp = Dsp::new(48_000, 2, 3, writer).unwrap();
    let latency = FrameLatency::default();
    dsp.record_latency(latency.clone());
    // In the past, so that every hand-over came before its publish.
    let start_ns = monotonic_ns() - 10_000_000_000;
    for (i, block) in input.chunks(960).enumerate() {
        let capture_ns = start_ns + i as u64 * 10_000_000;
        dsp.process_delivered(block, capture_ns, capture_ns + (10 + wait_ms) * 1_000_000);
    }
    let floor = &latency.capture_to_handover;
    assert_eq!(floor.count(), latency.handover_to_ring.count());
    assert_eq!(floor.count(), latency.capture_to_ring.count());
    // Everything after the hand-over is at least the 10 s the blocks are in the past, less the
    // 1 s fed.
    assert!(latency.handover_to_ring.quantile_us(0.0) >= 8_000_000.0);
    (
        floor.quantile_us(0.0),
        floor.quantile_us(0.5),
        floor.count(),
    )
}

#[test]
fn the_device_hand_over_is_measured_apart_from_v2m_rts_own_time() {
    let input: Vec<f32> = (0..96_000)
        .map(|i| ((i as f32) * 0.01).sin() * 0.1)
        .collect();
    let (min_3, p50_3, frames) = hand_over_figures(&input, 3);
    let (min_8, p50_8, _) = hand_over_figures(&input, 8);
    assert!(frames >= 45, "{frames} frames from 1 s");
    // A frame's floor is its 20 ms, the resampler's 5 ms and the device's wait at least.
    assert!(min_3 >= 27_500.0, "floor {min_3} us with a 3 ms hand-over");
    assert!(min_8 >= 32_500.0, "floor {min_8} us with an 8 ms hand-over");
    // 5 ms more waiting for the device is 5 ms more floor (to the histogram's 512 µs buckets).
    let grew = p50_8 - p50_3;
    assert!((4_400.0..=5_600.0).contains(&grew), "floor grew {grew} us");
}
