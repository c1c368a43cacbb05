//! Loading ONNX Runtime and choosing the execution provider.

use crate::error::WorkerError;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Which execution provider the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpChoice {
    /// CUDA if built with it and it registers, else CPU.
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA or fail.
    Cuda,
}

impl EpChoice {
    /// Parses `auto`, `cpu` or `cuda`.
    pub fn parse(s: &str) -> Result<EpChoice, WorkerError> {
        match s {
            "auto" => Ok(EpChoice::Auto),
            "cpu" => Ok(EpChoice::Cpu),
            "cuda" => Ok(EpChoice::Cuda),
            _ => Err(WorkerError::Usage(format!(
                "unknown execution provider '{s}': choose auto, cpu or cuda"
            ))),
        }
    }
}

/// The library v2m installs: `$XDG_DATA_HOME/v2m/onnxruntime/libonnxruntime.so`.
pub fn default_library() -> PathBuf {
    v2m_shm_proto::paths::data_dir()
        .join("onnxruntime")
        .join("libonnxruntime.so")
}

/// The library to load: the flag, else `ORT_DYLIB_PATH`, else the installed default.
pub fn resolve_library(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_owned)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
        .unwrap_or_else(default_library)
}

/// ONNX Runtime, loaded: the library's path and its environment.
pub struct Runtime {
    library: PathBuf,
    env: Environment,
}

impl Runtime {
    /// The environment sessions are built in.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// The library it was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

static INIT: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Loads ONNX Runtime from `library` once per process. Later calls must name the same file.
pub fn init(library: &Path) -> Result<&'static Runtime, WorkerError> {
    if !library.exists() {
        return Err(WorkerError::RuntimeMissing(library.to_owned()));
    }
    let loaded = INIT.get_or_init(|| {
        let env = ort::init_from(library)
            .map_err(|e| e.to_string())?
            .with_name("v2m-worker")
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Runtime {
            library: library.to_owned(),
            env,
        })
    });
    match loaded {
        Ok(rt) if rt.library == library => Ok(rt),
        Ok(rt) => Err(WorkerError::Runtime {
            path: library.to_owned(),
            reason: format!(
                "ONNX Runtime is already loaded from {}",
                rt.library.display()
            ),
        }),
        Err(reason) => Err(WorkerError::Runtime {
            path: library.to_owned(),
            reason: reason.clone(),
        }),
    }
}

/// The provider a session ended up on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpDecision {
    /// `cpu` or `cuda`.
    pub name: &'static str,
    /// Why, for the one log line.
    pub reason: String,
}

/// A session builder with threads, optimisation level and the execution provider applied.
pub fn session_builder(
    rt: &Runtime,
    threads: usize,
    ep: EpChoice,
) -> Result<(SessionBuilder, EpDecision), WorkerError> {
    // Memory patterns off: ORT keeps an allocation plan per input shape, and the decoder's
    // self-attention cache grows by one position every step, so each step added a plan:
    // tiny.en int8 settled at 353 MB with them, 265 MB without, at the same speed.
    // The CPU arena stays on: without it the encoder ran 33% slower for 27 MB less.
    let option = |r: Result<SessionBuilder, ort::Error<SessionBuilder>>| {
        r.map_err(|e| WorkerError::Inference(e.to_string()))
    };
    // Every graph optimisation, as the reference's Python session has by default
    // (ORT_ENABLE_ALL). ort's `Level3` is ORT_ENABLE_LAYOUT since ONNX Runtime 1.2x: its fused
    // graph rounds differently and flipped base's tokens on a near-tie (cards/004).
    let mut builder =
        option(Session::builder(&rt.env)?.with_optimization_level(GraphOptimizationLevel::All))?;
    builder = option(builder.with_memory_pattern(false))?;
    // No busy-waiting in ORT's pool threads: on 2 cores they competed with the thread doing
    // the work (tiny.en int8, 2 threads, 3 interleaved runs: 212–241 ms per utterance
    // without spinning, 262–287 ms with), and on a laptop spinning burns battery.
    builder = option(builder.with_intra_op_spinning(false))?;
    if threads > 0 {
        builder = option(builder.with_intra_threads(threads))?;
    }
    apply_ep(builder, ep)
}

#[cfg(not(feature = "cuda"))]
fn apply_ep(b: SessionBuilder, ep: EpChoice) -> Result<(SessionBuilder, EpDecision), WorkerError> {
    match ep {
        EpChoice::Cuda => Err(WorkerError::ExecutionProvider(
            "CUDA was asked for, but this v2m-worker was built without the `cuda` feature \
             (cargo build --release -p v2m-worker --features cuda)"
                .into(),
        )),
        EpChoice::Auto | EpChoice::Cpu => Ok((
            b,
            EpDecision {
                name: "cpu",
                reason: match ep {
                    EpChoice::Cpu => "asked for".into(),
                    _ => "built without the cuda feature".into(),
                },
            },
        )),
    }
}

#[cfg(feature = "cuda")]
fn apply_ep(b: SessionBuilder, ep: EpChoice) -> Result<(SessionBuilder, EpDecision), WorkerError> {
    use ort::ep::{CUDA, ExecutionProvider};
    if ep == EpChoice::Cpu {
        return Ok((
            b,
            EpDecision {
                name: "cpu",
                reason: "asked for".into(),
            },
        ));
    }
    let unavailable = match CUDA::is_available() {
        Ok(true) => None,
        Ok(false) => Some("the loaded ONNX Runtime has no CUDA provider".to_string()),
        Err(e) => Some(format!("cannot query the CUDA provider: {e}")),
    };
    let failure = match unavailable {
        Some(reason) => (b, reason),
        None => match b.with_execution_providers([CUDA::default().build().error_on_failure()]) {
            Ok(b) => {
                return Ok((
                    b,
                    EpDecision {
                        name: "cuda",
                        reason: "CUDA provider registered".into(),
                    },
                ));
            }
            Err(e) => {
                let reason = format!("CUDA registration failed: {e}");
                (e.recover(), reason)
            }
        },
    };
    match ep {
        EpChoice::Cuda => Err(WorkerError::ExecutionProvider(failure.1)),
        _ => Ok((
            failure.0,
            EpDecision {
                name: "cpu",
                reason: failure.1,
            },
        )),
    }
}
