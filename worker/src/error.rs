//! Everything the worker can fail at, each with what to do about it.

use std::path::{Path, PathBuf};

/// A worker error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The ONNX Runtime library is missing.
    #[error(
        "ONNX Runtime library not found at {0}: run scripts/setup-model.sh, or point --ort-lib \
         (or ORT_DYLIB_PATH) at a libonnxruntime.so"
    )]
    RuntimeMissing(PathBuf),
    /// The ONNX Runtime library could not be loaded or initialised.
    #[error("ONNX Runtime ({path}): {reason}")]
    Runtime {
        /// The library.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A model directory or file is missing.
    #[error("model not found: {path} is missing: {}", setup_hint(.name))]
    ModelMissing {
        /// The missing file or directory.
        path: PathBuf,
        /// The model's name, for the set-up command.
        name: String,
    },
    /// The model is installed without the variant asked for.
    #[error(
        "model {name} has no {variant} variant ({path} is missing): use another --variant \
         (`v2m-worker models` lists what each model has){}",
        if *.variant == "fp16" { ", or install it again with scripts/setup-model.sh SOURCE --name NAME --fp16" } else { "" }
    )]
    VariantMissing {
        /// The missing file.
        path: PathBuf,
        /// The model's name.
        name: String,
        /// The variant asked for.
        variant: &'static str,
    },
    /// A model file is there but wrong.
    #[error("bad model file {path}: {reason}")]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Inference failed.
    #[error("inference: {0}")]
    Inference(String),
    /// The pass was cancelled on purpose (its session ended while it ran).
    #[error("pass cancelled")]
    Cancelled,
    /// An execution provider was asked for and cannot be had.
    #[error("execution provider: {0}")]
    ExecutionProvider(String),
    /// An audio file that cannot be transcribed.
    #[error("{path}: {reason}")]
    BadAudio {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// Bad configuration file.
    #[error("config {path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
    /// The control socket or the ring failed.
    #[error("v2m-rt connection ({kind}): {message}")]
    Connection {
        /// Which part failed.
        kind: ConnectionKind,
        /// What happened.
        message: String,
    },
}

/// What part of talking to v2m-rt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    /// The control socket could not be reached.
    Connect,
    /// v2m-rt refused the hello.
    Refused,
    /// A message could not be sent or read, or was not what the protocol says.
    Protocol,
    /// The ring that came with the welcome could not be opened.
    Ring,
    /// v2m-rt closed the connection.
    Closed,
}

impl std::fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectionKind::Connect => "cannot connect",
            ConnectionKind::Refused => "refused",
            ConnectionKind::Protocol => "protocol",
            ConnectionKind::Ring => "ring",
            ConnectionKind::Closed => "closed",
        })
    }
}

impl WorkerError {
    /// A connection error of `kind`.
    pub fn connection(kind: ConnectionKind, message: impl std::fmt::Display) -> WorkerError {
        WorkerError::Connection {
            kind,
            message: message.to_string(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> WorkerError {
        WorkerError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl From<v2m_audio::DecodeError> for WorkerError {
    fn from(e: v2m_audio::DecodeError) -> WorkerError {
        WorkerError::BadAudio {
            path: e.path,
            reason: e.message,
        }
    }
}

impl From<ort::Error> for WorkerError {
    fn from(e: ort::Error) -> WorkerError {
        WorkerError::Inference(e.to_string())
    }
}

/// How to install model `name`: the names set-up knows install by name; any other comes from
/// the user's own weights.
fn setup_hint(name: &str) -> String {
    match name {
        "tiny.en" | "base" => format!("run scripts/setup-model.sh {name}"),
        _ => format!(
            "install it with scripts/setup-model.sh SOURCE --name {name} (SOURCE: a faster-whisper \
             or transformers model folder, or a Hugging Face repository such as \
             Systran/faster-whisper-small.en); `v2m-worker models` lists what is installed"
        ),
    }
}
