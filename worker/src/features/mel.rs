//! Whisper's log-mel spectrogram, computed exactly as the reference transcriber does:
//! 80 Slaney-normalised mel bins over a 400-point periodic-Hann STFT with hop 160, reflect
//! padding, `log10` clamped to 8 below the maximum, then `(x + 4) / 4`, on a 30 s window.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

/// Sample rate the model expects.
pub const SAMPLE_RATE: usize = 16_000;
/// FFT size.
pub const N_FFT: usize = 400;
/// Hop between frames.
pub const HOP: usize = 160;
/// Samples in one 30 s window.
pub const N_SAMPLES: usize = 480_000;
/// Mel frames in one window.
pub const N_FRAMES: usize = 3_000;
const N_BINS: usize = N_FFT / 2 + 1;

/// One mel filter: weights for a contiguous run of FFT bins (the rest are zero).
struct Filter {
    first_bin: usize,
    weights: Vec<f32>,
}

/// Computes log-mel spectrograms; holds the FFT plan, window and filters.
pub struct MelSpectrogram {
    n_mels: usize,
    filters: Vec<Filter>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f64>>,
}

/// `librosa.filters.mel(sr, n_fft, n_mels, htk=False, norm="slaney")`, as f32 like Whisper's
/// `mel_filters.npz`: `[n_mels][N_BINS]`.
pub fn mel_filters(n_mels: usize) -> Vec<Vec<f32>> {
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|i| i as f64 * SAMPLE_RATE as f64 / N_FFT as f64)
        .collect();
    let (min_mel, max_mel) = (0.0f64, 45.245_640_471_924_965f64);
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0f64);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    let freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| {
            let mel = min_mel + (max_mel - min_mel) * i as f64 / (n_mels + 1) as f64;
            if mel >= min_log_mel {
                min_log_hz * (logstep * (mel - min_log_mel)).exp()
            } else {
                f_sp * mel
            }
        })
        .collect();
    (0..n_mels)
        .map(|m| {
            let enorm = 2.0 / (freqs[m + 2] - freqs[m]);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = -(freqs[m] - f) / (freqs[m + 1] - freqs[m]);
                    let upper = (freqs[m + 2] - f) / (freqs[m + 2] - freqs[m + 1]);
                    ((lower.min(upper)).max(0.0) * enorm) as f32
                })
                .collect()
        })
        .collect()
}

impl MelSpectrogram {
    /// A spectrogram with `n_mels` bins (80 for the models v2m ships).
    pub fn new(n_mels: usize) -> MelSpectrogram {
        let filters = mel_filters(n_mels)
            .into_iter()
            .map(|row| {
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).unwrap_or(0);
                Filter {
                    first_bin: first,
                    weights: row[first..=last.max(first)].to_vec(),
                }
            })
            .collect();
        // Periodic Hann, computed in f64 and stored as f32, as the reference does.
        let window = (0..N_FFT)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        MelSpectrogram {
            n_mels,
            filters,
            window,
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Number of mel bins.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Log-mel of `audio` (16 kHz mono) padded or cut to 30 s: row-major `[n_mels][N_FRAMES]`.
    pub fn compute(&self, audio: &[f32]) -> Vec<f32> {
        let audio = &audio[..audio.len().min(N_SAMPLES)];
        // Reflect-padded signal: N_FFT/2 on each side of the zero-padded 30 s window.
        let pad = N_FFT / 2;
        let sample = |i: isize| -> f64 {
            // Index into the zero-padded window of N_SAMPLES, reflected at both ends.
            let n = N_SAMPLES as isize;
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            audio.get(j as usize).copied().unwrap_or(0.0) as f64
        };
        // Frames whose window lies wholly in the zero padding have zero power: skip their FFT.
        let live_frames = if audio.is_empty() {
            0
        } else {
            ((audio.len() + pad).div_ceil(HOP) + 1).min(N_FRAMES)
        };
        let mut power = vec![0f32; N_FRAMES * N_BINS];
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        for t in 0..live_frames {
            let start = (t * HOP) as isize - pad as isize;
            for (k, x) in input.iter_mut().enumerate() {
                // The reference multiplies f32 samples by an f32 window before its f64 FFT.
                *x = (sample(start + k as isize) as f32 * self.window[k]) as f64;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffer sizes come from the plan");
            for (p, c) in power[t * N_BINS..(t + 1) * N_BINS]
                .iter_mut()
                .zip(&spectrum)
            {
                *p = (c.re * c.re + c.im * c.im) as f32;
            }
        }
        let mut mel = vec![0f32; self.n_mels * N_FRAMES];
        let mut max = f32::NEG_INFINITY;
        for (m, filter) in self.filters.iter().enumerate() {
            for t in 0..N_FRAMES {
                let bins = &power[t * N_BINS + filter.first_bin..];
                let s: f32 = filter.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
                let v = s.max(1e-10).log10();
                max = max.max(v);
                mel[m * N_FRAMES + t] = v;
            }
        }
        for v in &mut mel {
            *v = (v.max(max - 8.0) + 4.0) / 4.0;
        }
        mel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_have_slaney_shape() {
        let f = mel_filters(80);
        assert_eq!((f.len(), f[0].len()), (80, N_BINS));
        // Every filter is a non-empty triangle; bin 0 (DC) belongs to none but the first.
        assert!(f.iter().all(|row| row.iter().any(|&w| w > 0.0)));
        assert!(f[1..].iter().all(|row| row[0] == 0.0));
    }

    #[test]
    fn silence_is_flat_and_a_tone_peaks_at_its_frequency() {
        let mel = MelSpectrogram::new(80);
        let flat = mel.compute(&[]);
        assert!(flat.iter().all(|&v| v == flat[0]));
        let tone: Vec<f32> = (0..SAMPLE_RATE)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / SAMPLE_RATE as f32).sin())
            .collect();
        let m = mel.compute(&tone);
        let t = 50; // a frame inside the tone
        let peak = (0..80)
            .max_by(|&a, &b| m[a * N_FRAMES + t].total_cmp(&m[b * N_FRAMES + t]))
            .unwrap();
        let filters = mel_filters(80);
        let bin_1k = 1000 * N_FFT / SAMPLE_RATE; // bin 25
        assert!(
            filters[peak][bin_1k] > 0.0,
            "peak mel {peak} does not cover 1 kHz"
        );
    }
}
