//! Mono resampling to 16 kHz with rubato: the FFT resampler (fixed ratio) when the rates reduce
//! to small FFTs, the sinc resampler otherwise; a pass-through at 16 kHz. [`MonoResampler`]
//! allocates nothing once built (the DSP thread runs it); [`To16k`] wraps it for files:
//! channels averaged, the resampler's delay removed, the end flushed, so the output lines up
//! sample for sample with the input.

/// Why a resampler cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    /// A sample rate of 0.
    #[error("unsupported input sample rate {0} Hz")]
    BadRate(u32),
    /// rubato refused the ratio.
    #[error("resampler: {0}")]
    Rubato(String),
}

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};
use std::collections::VecDeque;
use v2m_shm_proto::ring::SAMPLE_RATE;

/// Input frames per resampler call: 10 ms at the input rate (rounded), low delay.
fn chunk_for(rate: usize) -> usize {
    (rate / 100).max(32)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Resamples one channel to 16 kHz. All buffers are allocated at construction.
pub struct MonoResampler {
    inner: Option<Box<dyn Resampler<f32> + Send>>,
    input: Vec<f32>,
    output: Vec<f32>,
    rate: u32,
}

impl MonoResampler {
    /// A resampler from `rate` Hz to 16 kHz.
    pub fn new(rate: u32) -> Result<MonoResampler, ResampleError> {
        let rate = rate as usize;
        let out = SAMPLE_RATE as usize;
        if rate == 0 {
            return Err(ResampleError::BadRate(0));
        }
        if rate == out {
            return Ok(MonoResampler {
                inner: None,
                input: Vec::new(),
                output: Vec::new(),
                rate: rate as u32,
            });
        }
        let chunk = chunk_for(rate);
        // 48k, 44.1k, 32k, 22.05k, 8k… reduce to small FFT sizes; odd rates get the sinc one.
        let fft_in = rate / gcd(rate, out);
        let inner: Box<dyn Resampler<f32> + Send> = if fft_in <= 2048 {
            Box::new(
                Fft::<f32>::new(rate, out, chunk, 1, FixedSync::Input)
                    .map_err(|e| ResampleError::Rubato(e.to_string()))?,
            )
        } else {
            let params = SincInterpolationParameters {
                sinc_len: 128,
                f_cutoff: None,
                interpolation: SincInterpolationType::Linear,
                oversampling_factor: 128,
                window: WindowFunction::BlackmanHarris2,
            };
            Box::new(
                Async::<f32>::new_sinc(
                    out as f64 / rate as f64,
                    1.0,
                    &params,
                    chunk,
                    1,
                    FixedAsync::Input,
                )
                .map_err(|e| ResampleError::Rubato(e.to_string()))?,
            )
        };
        let input = Vec::with_capacity(inner.input_frames_max());
        let output = vec![0.0; inner.output_frames_max()];
        Ok(MonoResampler {
            inner: Some(inner),
            input,
            output,
            rate: rate as u32,
        })
    }

    /// The input rate, Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Output samples of delay the resampler adds (0 for the pass-through).
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Feeds mono samples; calls `sink` with each run of 16 kHz output. No allocation.
    /// Returns `false` if the resampler refused a chunk (it never should: the sizes are its
    /// own); that chunk is dropped and the caller flags the gap, rather than the DSP thread
    /// panicking.
    pub fn push(&mut self, mut samples: &[f32], sink: &mut impl FnMut(&[f32])) -> bool {
        let Some(inner) = self.inner.as_mut() else {
            sink(samples);
            return true;
        };
        let mut intact = true;
        while !samples.is_empty() {
            let need = inner.input_frames_next() - self.input.len();
            let take = need.min(samples.len());
            self.input.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.input.len() < inner.input_frames_next() {
                break;
            }
            let frames_in = self.input.len();
            let frames_out = self.output.len();
            let written = match (
                InterleavedSlice::new(&self.input[..], 1, frames_in),
                InterleavedSlice::new_mut(&mut self.output[..], 1, frames_out),
            ) {
                (Ok(input), Ok(mut output)) => inner
                    .process_into_buffer(&input, &mut output, None)
                    .map(|(_, written)| written)
                    .ok(),
                _ => None,
            };
            self.input.clear();
            match written {
                Some(n) => sink(&self.output[..n]),
                None => intact = false,
            }
        }
        intact
    }
}

/// Averages interleaved `channels`-channel samples into `mono` (replacing its contents).
pub fn downmix(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    let channels = channels.max(1);
    let inv = 1.0 / channels as f32;
    mono.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() * inv),
    );
}

/// Any rate and channel count to 16 kHz mono, aligned with the input: the resampler's delay is
/// dropped from the front and the tail flushed at [`To16k::finish`], so `n` input frames
/// give `round(n · 16000 / rate)` samples.
pub struct To16k {
    resampler: MonoResampler,
    channels: usize,
    mono: Vec<f32>,
    /// Output samples still to drop (the resampler's delay).
    skip: usize,
    input_frames: u64,
    output: u64,
    held: VecDeque<f32>,
    /// Samples of a frame split across two pushes.
    carry: Vec<f32>,
}

impl To16k {
    /// A converter for `channels`-channel audio at `rate` Hz.
    pub fn new(rate: u32, channels: u16) -> Result<To16k, ResampleError> {
        let resampler = MonoResampler::new(rate)?;
        Ok(To16k {
            skip: resampler.delay(),
            resampler,
            channels: channels.max(1) as usize,
            mono: Vec::new(),
            input_frames: 0,
            output: 0,
            held: VecDeque::new(),
            carry: Vec::new(),
        })
    }

    fn expected(&self) -> u64 {
        (self.input_frames as f64 * SAMPLE_RATE as f64 / self.resampler.rate() as f64).round()
            as u64
    }

    /// Converts interleaved samples (a frame may be split across calls); `sink` gets 16 kHz
    /// mono as it comes.
    pub fn push(&mut self, interleaved: &[f32], sink: &mut impl FnMut(&[f32])) {
        let input = if self.carry.is_empty() {
            interleaved
        } else {
            self.carry.extend_from_slice(interleaved);
            &self.carry[..]
        };
        let whole = input.len() - input.len() % self.channels;
        downmix(&input[..whole], self.channels, &mut self.mono);
        let rest = input[whole..].to_vec();
        self.carry = rest;
        self.input_frames += self.mono.len() as u64;
        let (skip, output, held) = (&mut self.skip, &mut self.output, &mut self.held);
        let _ = self.resampler.push(&self.mono, &mut |out| {
            let drop = (*skip).min(out.len());
            *skip -= drop;
            held.extend(&out[drop..]);
        });
        let n = self.held.len();
        if n > 0 {
            let (a, b) = self.held.as_slices();
            sink(a);
            sink(b);
            *output += n as u64;
            self.held.clear();
        }
    }

    /// The end of the input: flushes what the resampler holds, up to the aligned length.
    pub fn finish(&mut self, sink: &mut impl FnMut(&[f32])) {
        let want = self.expected();
        let silence = [0f32; 256];
        let mut guard = 0;
        while self.output < want && guard < 1_000 {
            let (skip, held) = (&mut self.skip, &mut self.held);
            let _ = self.resampler.push(&silence, &mut |out| {
                let drop = (*skip).min(out.len());
                *skip -= drop;
                held.extend(&out[drop..]);
            });
            let take = (want - self.output).min(self.held.len() as u64) as usize;
            let chunk: Vec<f32> = self.held.drain(..take).collect();
            self.held.clear();
            if !chunk.is_empty() {
                sink(&chunk);
                self.output += chunk.len() as u64;
            }
            guard += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(rate: u32, channels: u16, input: &[f32]) -> Vec<f32> {
        let mut c = To16k::new(rate, channels).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(777) {
            c.push(chunk, &mut |s| out.extend_from_slice(s));
        }
        c.finish(&mut |s| out.extend_from_slice(s));
        out
    }

    #[test]
    fn files_come_out_aligned_with_their_input() {
        // 1 s of a 440 Hz tone at 48 kHz stereo, starting after 0.25 s of silence.
        let rate = 48_000;
        let input: Vec<f32> = (0..rate)
            .flat_map(|i| {
                let v = if i < rate / 4 {
                    0.0
                } else {
                    (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5
                };
                [v, v]
            })
            .collect();
        let out = convert(rate as u32, 2, &input);
        assert_eq!(out.len(), 16_000);
        // The tone starts where it started in the input: 4000 samples in, not later.
        let first = out.iter().position(|s| s.abs() > 0.05).unwrap();
        assert!((3_995..=4_010).contains(&first), "onset at {first}");
        // 16 kHz mono passes through unchanged.
        let mono: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        assert_eq!(convert(16_000, 1, &mono), mono);
        assert!(matches!(
            MonoResampler::new(0),
            Err(ResampleError::BadRate(0))
        ));
    }
}
