//! A converted Whisper model on disk: `encoder[.int8].onnx`, `decoder[.int8].onnx`,
//! `tokenizer.json`, `config.json`, `model_info.json` (written by scripts/setup-model.sh).

use crate::error::WorkerError;
use std::path::{Path, PathBuf};

/// Weight precision of the ONNX pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `encoder.onnx` / `decoder.onnx`.
    Fp32,
    /// `encoder.int8.onnx` / `decoder.int8.onnx` (dynamic int8 quantisation).
    Int8,
    /// `encoder.fp16.onnx` / `decoder.fp16.onnx` (fp16 inside, fp32 interface; for CUDA).
    Fp16,
}

impl Variant {
    /// Every variant, in the order they are listed.
    pub const ALL: [Variant; 3] = [Variant::Fp32, Variant::Int8, Variant::Fp16];

    /// Parses `fp32`, `int8` or `fp16`.
    pub fn parse(s: &str) -> Result<Variant, WorkerError> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                WorkerError::Usage(format!(
                    "unknown model variant '{s}': choose int8, fp32 or fp16"
                ))
            })
    }

    /// `fp32`, `int8` or `fp16`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Fp32 => "fp32",
            Variant::Int8 => "int8",
            Variant::Fp16 => "fp16",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Variant::Fp32 => "",
            Variant::Int8 => ".int8",
            Variant::Fp16 => ".fp16",
        }
    }

    /// The encoder's and decoder's file names.
    pub fn file_names(self) -> [String; 2] {
        [
            format!("encoder{}.onnx", self.suffix()),
            format!("decoder{}.onnx", self.suffix()),
        ]
    }
}

/// `model_info.json`: the architecture.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelInfo {
    /// Model width.
    pub d_model: usize,
    /// Decoder layers.
    pub n_text_layer: usize,
    /// Decoder attention heads.
    pub n_text_head: usize,
    /// Vocabulary size (logits width).
    pub n_vocab: usize,
    /// Decoder context length.
    pub n_text_ctx: usize,
    /// Mel bins.
    pub n_mels: usize,
    /// Whether the model takes a language token.
    pub multilingual: bool,
}

/// The parts of CTranslate2's `config.json` decoding uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DecodeConfig {
    /// Tokens never emitted.
    pub suppress_ids: Vec<i64>,
    /// Tokens not emitted as the first token.
    #[serde(default)]
    pub suppress_ids_begin: Option<Vec<i64>>,
    /// Language tokens (multilingual models).
    #[serde(default)]
    pub lang_ids: Option<Vec<i64>>,
}

/// A model directory, checked.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// Short name (`tiny.en`), for messages.
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// Precision.
    pub variant: Variant,
    /// Architecture.
    pub info: ModelInfo,
    /// Suppression lists.
    pub config: DecodeConfig,
}

/// `$XDG_DATA_HOME/v2m/models`.
pub fn models_dir() -> PathBuf {
    v2m_shm_proto::paths::data_dir().join("models")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, name: &str) -> Result<T, WorkerError> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WorkerError::ModelMissing {
            path: path.to_owned(),
            name: name.to_owned(),
        },
        _ => WorkerError::io(path, e),
    })?;
    serde_json::from_str(&text).map_err(|e| WorkerError::BadModel {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

impl ModelFiles {
    /// Finds a model by name (`tiny.en`, under [`models_dir`]) or by directory path.
    pub fn locate(model: &str, variant: Variant) -> Result<ModelFiles, WorkerError> {
        let as_path = Path::new(model);
        let (dir, name) = if model.contains('/') {
            let name = as_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| model.to_owned());
            (as_path.to_owned(), name)
        } else {
            (models_dir().join(model), model.to_owned())
        };
        if !dir.is_dir() {
            return Err(WorkerError::ModelMissing { path: dir, name });
        }
        let info: ModelInfo = read_json(&dir.join("model_info.json"), &name)?;
        let config: DecodeConfig = read_json(&dir.join("config.json"), &name)?;
        let files = ModelFiles {
            name,
            dir,
            variant,
            info,
            config,
        };
        if !files.tokenizer().is_file() {
            return Err(WorkerError::ModelMissing {
                path: files.tokenizer(),
                name: files.name.clone(),
            });
        }
        for p in [files.encoder(), files.decoder()] {
            if !p.is_file() {
                return Err(WorkerError::VariantMissing {
                    path: p,
                    name: files.name.clone(),
                    variant: variant.name(),
                });
            }
        }
        Ok(files)
    }

    /// The encoder's ONNX file.
    pub fn encoder(&self) -> PathBuf {
        let [encoder, _] = self.variant.file_names();
        self.dir.join(encoder)
    }

    /// The decoder's ONNX file.
    pub fn decoder(&self) -> PathBuf {
        let [_, decoder] = self.variant.file_names();
        self.dir.join(decoder)
    }

    /// `tokenizer.json`.
    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    /// `tiny.en/int8`: how the model is named in hello and status.
    pub fn label(&self) -> String {
        format!("{}/{}", self.name, self.variant.name())
    }
}
