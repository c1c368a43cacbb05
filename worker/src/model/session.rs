//! The encoder and decoder sessions: tensors in, tensors out, no decoding policy.

use super::files::{ModelFiles, ModelInfo};
use crate::error::WorkerError;
use crate::features::mel::N_FRAMES;
use crate::runtime::{self, EpChoice, EpDecision, Runtime};
use ort::session::{RunOptions, Session};
use ort::value::{DynValue, Tensor};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Cross-attention keys and values from one encoder pass, kept as ONNX Runtime values so each
/// decoder step passes them without copying.
pub struct CrossKv {
    k: DynValue,
    v: DynValue,
}

/// Self-attention cache between decoder steps.
pub struct SelfKv {
    k: DynValue,
    v: DynValue,
}

/// Aborts the pass in flight from another thread (ONNX Runtime's terminate flag).
#[derive(Clone)]
pub struct Canceller {
    options: Arc<RunOptions>,
    cancelled: Arc<AtomicBool>,
}

impl Canceller {
    /// Makes the current and every later run fail with [`WorkerError::Cancelled`] until
    /// [`reset`](Self::reset).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        if let Err(e) = self.options.terminate() {
            log::warn!("cannot cancel the running pass: {e}");
        }
    }

    /// Lets runs go through again.
    pub fn reset(&self) {
        self.cancelled.store(false, Ordering::SeqCst);
        if let Err(e) = self.options.unterminate() {
            log::warn!("cannot clear the cancel flag: {e}");
        }
    }

    fn check(&self, e: ort::Error) -> WorkerError {
        if self.cancelled.load(Ordering::SeqCst) {
            WorkerError::Cancelled
        } else {
            e.into()
        }
    }
}

/// The converter's interface (scripts/whisper_to_onnx.py): what each file takes and gives.
const ENCODER_INPUTS: &[&str] = &["mel"];
const ENCODER_OUTPUTS: &[&str] = &["cross_k", "cross_v"];
const DECODER_INPUTS: &[&str] = &["tokens", "self_k", "self_v", "cross_k", "cross_v"];
const DECODER_OUTPUTS: &[&str] = &["logits", "new_self_k", "new_self_v"];

/// A file loaded as `session` must have these inputs and outputs: one that does not (another
/// converter's export, the encoder copied over the decoder) is refused at load, naming the
/// file and what it lacks, rather than failing at the first pass.
fn check_interface(
    session: &Session,
    path: &std::path::Path,
    inputs: &[&str],
    outputs: &[&str],
) -> Result<(), WorkerError> {
    let names = |outlets: &[ort::value::Outlet]| -> Vec<String> {
        outlets.iter().map(|o| o.name().to_string()).collect()
    };
    let (have_in, have_out) = (names(session.inputs()), names(session.outputs()));
    for (kind, wanted, have) in [("input", inputs, &have_in), ("output", outputs, &have_out)] {
        if let Some(missing) = wanted.iter().find(|w| !have.iter().any(|h| h == *w)) {
            return Err(WorkerError::BadModel {
                path: path.to_owned(),
                reason: format!(
                    "no {kind} named {missing} (it has {}): not a v2m Whisper {} (run scripts/setup-model.sh)",
                    have.join(", "),
                    if outputs == DECODER_OUTPUTS {
                        "decoder"
                    } else {
                        "encoder"
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Loaded encoder + decoder.
pub struct WhisperSessions {
    encoder: Session,
    decoder: Session,
    info: ModelInfo,
    ep: EpDecision,
    canceller: Canceller,
}

impl WhisperSessions {
    /// Loads both ONNX files of `files` on the chosen execution provider.
    pub fn load(
        rt: &Runtime,
        files: &ModelFiles,
        threads: usize,
        ep: EpChoice,
    ) -> Result<Self, WorkerError> {
        let load = |path: std::path::PathBuf| -> Result<(Session, EpDecision), WorkerError> {
            let (mut builder, decision) = runtime::session_builder(rt, threads, ep)?;
            let session = builder
                .commit_from_file(&path)
                .map_err(|e| WorkerError::BadModel {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            Ok((session, decision))
        };
        let (encoder, ep) = load(files.encoder())?;
        check_interface(&encoder, &files.encoder(), ENCODER_INPUTS, ENCODER_OUTPUTS)?;
        let (decoder, _) = load(files.decoder())?;
        check_interface(&decoder, &files.decoder(), DECODER_INPUTS, DECODER_OUTPUTS)?;
        Ok(WhisperSessions {
            encoder,
            decoder,
            info: files.info.clone(),
            ep,
            canceller: Canceller {
                options: Arc::new(RunOptions::new()?),
                cancelled: Arc::new(AtomicBool::new(false)),
            },
        })
    }

    /// A handle that aborts runs of these sessions from another thread.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Where the sessions run, and why.
    pub fn execution_provider(&self) -> &EpDecision {
        &self.ep
    }

    /// Runs the encoder on a `[n_mels][3000]` log-mel.
    pub fn encode(&mut self, mel: Vec<f32>) -> Result<CrossKv, WorkerError> {
        let shape = [1usize, self.info.n_mels, N_FRAMES];
        let input = Tensor::from_array((shape, mel))?;
        let c = &self.canceller;
        let mut out = self
            .encoder
            .run_with_options(ort::inputs!["mel" => input], &c.options)
            .map_err(|e| c.check(e))?;
        let take = |out: &mut ort::session::SessionOutputs, name: &str| {
            out.remove(name)
                .ok_or_else(|| WorkerError::Inference(format!("encoder has no output {name}")))
        };
        Ok(CrossKv {
            k: take(&mut out, "cross_k")?,
            v: take(&mut out, "cross_v")?,
        })
    }

    /// An empty self-attention cache (`P = 0`).
    pub fn empty_cache(&self) -> Result<SelfKv, WorkerError> {
        let shape = [self.info.n_text_layer, 1, 0, self.info.d_model];
        Ok(SelfKv {
            k: Tensor::from_array((shape, Vec::<f32>::new()))?.into_dyn(),
            v: Tensor::from_array((shape, Vec::<f32>::new()))?.into_dyn(),
        })
    }

    /// Keeps the first `len` positions of `cache` (a draft's rejected tokens leave it).
    pub fn truncate_cache(&self, cache: &mut SelfKv, len: usize) -> Result<(), WorkerError> {
        let keep = |value: &DynValue| -> Result<DynValue, WorkerError> {
            let (shape, data) = value.try_extract_tensor::<f32>()?;
            let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            let [layers, batch, positions, width] = dims[..] else {
                return Err(WorkerError::Inference(format!(
                    "self-attention cache of shape {dims:?}, not [layers, batch, positions, width]"
                )));
            };
            if len > positions {
                return Err(WorkerError::Inference(format!(
                    "cannot keep {len} of the cache's {positions} positions"
                )));
            }
            let mut kept = Vec::with_capacity(layers * batch * len * width);
            for block in data.chunks_exact(positions * width) {
                kept.extend_from_slice(&block[..len * width]);
            }
            Ok(Tensor::from_array(([layers, batch, len, width], kept))?.into_dyn())
        };
        cache.k = keep(&cache.k)?;
        cache.v = keep(&cache.v)?;
        Ok(())
    }

    /// One decoder call: `tokens` are the new tokens; returns the logits of the `rows` listed
    /// (indices into `tokens`; `[rows.len()][n_vocab]`, row-major) and replaces `cache` with
    /// the grown one.
    pub fn decode(
        &mut self,
        tokens: &[i64],
        rows: &[usize],
        cache: &mut SelfKv,
        cross: &CrossKv,
    ) -> Result<Vec<f32>, WorkerError> {
        let n = tokens.len();
        let tokens = Tensor::from_array(([1usize, n], tokens.to_vec()))?;
        let c = &self.canceller;
        let mut out = self
            .decoder
            .run_with_options(
                ort::inputs![
                    "tokens" => tokens,
                    "self_k" => &cache.k,
                    "self_v" => &cache.v,
                    "cross_k" => &cross.k,
                    "cross_v" => &cross.v,
                ],
                &c.options,
            )
            .map_err(|e| c.check(e))?;
        let missing = || WorkerError::Inference("decoder output missing".into());
        let logits = out.remove("logits").ok_or_else(missing)?;
        let (_, all) = logits.try_extract_tensor::<f32>()?;
        let v = all.len() / n.max(1);
        let mut picked = Vec::with_capacity(rows.len() * v);
        for &r in rows {
            let row = all
                .get(r * v..(r + 1) * v)
                .ok_or_else(|| WorkerError::Inference(format!("decoder logits have no row {r}")))?;
            picked.extend_from_slice(row);
        }
        let logits = picked;
        cache.k = out.remove("new_self_k").ok_or_else(missing)?;
        cache.v = out.remove("new_self_v").ok_or_else(missing)?;
        Ok(logits)
    }
}
