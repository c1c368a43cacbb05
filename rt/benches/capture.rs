//! The realtime path of a running v2m-rt, measured by the daemon itself: real speech at
//! 48 kHz stereo through the FIFO microphone for 30 s (plus a `transcribe-file`-free idle
//! minute's worth of callbacks), then the daemon's own counters from `status`.
//!
//! Last line: `rt: callback_max_us=… dsp_frame_p99_us=… allocs_after_start=… frees_after_start=…
//! capture_to_ring_p99_us=… floor_us=…`. capture_to_ring is from a frame's first captured
//! sample to its publish. Its floor, what no code of v2m-rt's can go under, is measured frame by
//! frame: from the same first sample to the start of the callback that handed over the input
//! completing the frame, i.e. the 20 ms frame itself, the resampler's delay (the anti-aliasing
//! filter's group delay, `resampler_delay_us` on the line before) and the wait for the device to
//! hand that input over (up to one hand-over period: the FIFO microphone hands 10 ms at a time,
//! two 5 ms periods back to back). `floor_us` is its p99; the rest, after the hand-over, is
//! v2m-rt's own callback → DSP → publish (`handover_to_ring_p99_us`). Target: p99 ≤ floor + 2 ms.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Duration;
use support::{Daemon, SPEECH};
use v2m_tests::fifo_mic::mic_pcm;

fn main() {
    let seconds: f64 = std::env::var("V2M_RT_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30.0);
    let d = Daemon::start("bench", &[], None);
    let speech = mic_pcm(Path::new(SPEECH));
    let clip_s = speech.len() as f64 / 192_000.0;
    let mut played = 0.0;
    while played < seconds {
        d.mic.play(&speech);
        played += clip_s;
    }
    d.mic.wait_idle();
    std::thread::sleep(Duration::from_millis(500));
    let s = d.status();
    let c = s.capture;
    let resampler = v2m_rt::dsp::MonoResampler::new(v2m_tests::fifo_mic::RATE).unwrap();
    println!(
        "rt: audio_s={played:.1} frames={} callbacks={} samples_dropped={} callback_p99_us={:.0} dsp_frame_p50_us={:.0} capture_to_ring_p50_us={:.0} resampler_delay_us={}",
        s.ring.frames_written,
        c.callbacks,
        s.ring.samples_dropped,
        c.callback_p99_us,
        c.dsp_frame_p50_us,
        c.capture_to_ring_p50_us,
        resampler.delay() as u64 * 1_000_000 / 16_000
    );
    let period_us = s.ring.frames_written as f64 * 20_000.0 / c.callbacks.max(1) as f64;
    let floor_us = c.capture_to_handover_p99_us;
    let count = |n: Option<u64>| n.map_or("unknown".to_string(), |a| a.to_string());
    println!(
        "rt: callback_max_us={:.0} dsp_frame_p99_us={:.0} allocs_after_start={} frees_after_start={} capture_to_ring_p99_us={:.0} floor_us={floor_us:.0} (handover_to_ring_p99_us={:.0} period_us={period_us:.0})",
        c.callback_max_us,
        c.dsp_frame_p99_us,
        count(c.allocs_after_start),
        count(c.frees_after_start),
        c.capture_to_ring_p99_us,
        c.handover_to_ring_p99_us
    );
}
