//! Mono resampling to 16 kHz with rubato: the FFT resampler (fixed ratio) when the rates reduce
//! to small FFTs, the sinc resampler otherwise; a pass-through at 16 kHz.

use super::error::DspError;
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, Fft, FixedAsync, FixedSync, Resampler, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};
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
    pub fn new(rate: u32) -> Result<MonoResampler, DspError> {
        let rate = rate as usize;
        let out = SAMPLE_RATE as usize;
        if rate == 0 {
            return Err(DspError::BadRate(0));
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
                    .map_err(|e| DspError::Resampler(e.to_string()))?,
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
                .map_err(|e| DspError::Resampler(e.to_string()))?,
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
