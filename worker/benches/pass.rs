//! One transcription pass against the length of its window: the cost a streaming session pays
//! for each provisional, speculative and final pass as a dictation grows. Whisper's encoder
//! always sees 30 s (the mel is padded), so its time is the floor every pass pays; the
//! decoder's grows with the words in the window. The audio: pocketsphinx-testdata's LibriVox
//! recordings joined, cut to each length; tiny.en int8 on the CPU, 2 threads, plain passes.
//!
//! Each length is also decoded with a draft, as live passes are: the hypothesis of the same
//! window 0.5 s shorter (what the provisional pass before had), checked in one decoder call.
//!
//! `cargo bench -p v2m-worker --bench pass [-- --repeat N]`. A line per length, then
//! `pass_with_draft: 2s=… 5s=… …` and last
//! `pass_by_window: 2s=… 5s=… 10s=… 20s=… 30s=… encoder_floor_ms=…` (p50 ms of a whole pass).

#[path = "../tests/support/mod.rs"]
mod support;

use v2m_worker::audio::read_audio;
use v2m_worker::decode::greedy::{DecodeRequest, Mode};

const LENGTHS_S: [usize; 5] = [2, 5, 10, 20, 30];

fn p50(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let mut audio = Vec::new();
    for id in ["0870", "0880", "0890", "0920", "0930", "0870", "0890"] {
        let wav = v2m_tests::fixtures::librivox(id);
        audio.extend(read_audio(&wav).unwrap_or_else(|e| panic!("{e}: run scripts/setup.sh")));
    }
    assert!(
        audio.len() >= 30 * 16_000,
        "{} s of speech",
        audio.len() / 16_000
    );
    let mut t = support::transcriber();
    // Warm-up: ONNX Runtime's first run allocates.
    t.pass(&audio[..16_000 * 5], &DecodeRequest::PLAIN).unwrap();
    let mut line = Vec::new();
    let mut drafted_line = Vec::new();
    let mut encoder_all = Vec::new();
    for seconds in LENGTHS_S {
        let window = &audio[..seconds * 16_000];
        let (mut total, mut encoder, mut decoder, mut tokens) = (vec![], vec![], vec![], 0);
        for _ in 0..repeat {
            let r = t.pass(window, &DecodeRequest::PLAIN).unwrap();
            total.push(r.timings.total_ms());
            encoder.push(r.timings.encoder_ms);
            decoder.push(r.timings.decoder_ms);
            tokens = r.decoded.tokens.len();
        }
        encoder_all.extend_from_slice(&encoder);
        let total = p50(&mut total);
        let earlier = t
            .pass(&window[..window.len() - 8_000], &DecodeRequest::PLAIN)
            .unwrap()
            .decoded
            .tokens;
        let req = DecodeRequest {
            mode: Mode::Text {
                prefix: &[],
                draft: &earlier,
            },
            ..DecodeRequest::PLAIN
        };
        let (mut drafted, mut drafted_decoder, mut calls) = (vec![], vec![], 0);
        for _ in 0..repeat {
            let r = t.pass(window, &req).unwrap();
            drafted.push(r.timings.total_ms());
            drafted_decoder.push(r.timings.decoder_ms);
            calls = r.decoded.steps;
        }
        let drafted = p50(&mut drafted);
        println!(
            "pass: window_s={seconds} tokens={tokens} total_p50_ms={total:.0} encoder_p50_ms={:.0} decoder_p50_ms={:.0} draft_tokens={} with_draft_total_p50_ms={drafted:.0} with_draft_decoder_p50_ms={:.0} with_draft_calls={calls}",
            p50(&mut encoder),
            p50(&mut decoder),
            earlier.len(),
            p50(&mut drafted_decoder)
        );
        line.push(format!("{seconds}s={total:.0}"));
        drafted_line.push(format!("{seconds}s={drafted:.0}"));
    }
    println!("pass_with_draft: {}", drafted_line.join(" "));
    println!(
        "pass_by_window: {} encoder_floor_ms={:.0}",
        line.join(" "),
        p50(&mut encoder_all)
    );
}
