//! The models installed in a models folder (what `v2m-worker models` lists): each one's
//! architecture, variants, size on disk and where its weights came from, read from the
//! `model_info.json` scripts/setup-model.sh writes.

use super::files::Variant;
use std::path::{Path, PathBuf};

/// What `model_info.json` says about where a model came from and what it is; fields older
/// installs lack are `None`.
#[derive(Debug, Clone, serde::Deserialize)]
struct InfoOnDisk {
    d_model: usize,
    n_audio_layer: Option<usize>,
    n_text_layer: usize,
    n_vocab: usize,
    n_mels: usize,
    multilingual: bool,
    languages: Option<usize>,
    format: Option<String>,
    source: Option<String>,
}

/// One installed model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstalledModel {
    /// The name `--model` takes.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Bytes on disk, every file of the folder.
    pub size_bytes: u64,
    /// The variants whose encoder and decoder are both there.
    pub variants: Vec<&'static str>,
    /// Model width.
    pub d_model: usize,
    /// Encoder layers (`None` for installs older than the field).
    pub encoder_layers: Option<usize>,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Mel bins (80, or 128 for large-v3 and turbo).
    pub mel_bins: usize,
    /// Whether it takes a language token.
    pub multilingual: bool,
    /// How many languages it transcribes.
    pub languages: usize,
    /// The checkpoint format converted: `ctranslate2` or `transformers`.
    pub format: Option<String>,
    /// Where the weights came from: a set-up name, a folder, or `hf:ORG/REPO`.
    pub source: Option<String>,
}

/// A folder under the models folder that is not a usable model, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// The folder's name.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

/// Everything in a models folder.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Installed {
    /// Usable models, by name.
    pub models: Vec<InstalledModel>,
    /// Folders that are not.
    pub unreadable: Vec<Unreadable>,
}

fn size_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Reads one model folder.
pub fn read_model(name: &str, dir: &Path) -> Result<InstalledModel, String> {
    let info_path = dir.join("model_info.json");
    let text = std::fs::read_to_string(&info_path).map_err(|e| format!("model_info.json: {e}"))?;
    let info: InfoOnDisk =
        serde_json::from_str(&text).map_err(|e| format!("model_info.json: {e}"))?;
    if !dir.join("tokenizer.json").is_file() {
        return Err("tokenizer.json is missing".into());
    }
    let variants: Vec<&'static str> = Variant::ALL
        .into_iter()
        .filter(|v| v.file_names().iter().all(|f| dir.join(f).is_file()))
        .map(Variant::name)
        .collect();
    if variants.is_empty() {
        return Err("no encoder/decoder pair".into());
    }
    Ok(InstalledModel {
        name: name.to_owned(),
        dir: dir.to_owned(),
        size_bytes: size_on_disk(dir),
        variants,
        d_model: info.d_model,
        encoder_layers: info.n_audio_layer,
        decoder_layers: info.n_text_layer,
        vocab: info.n_vocab,
        mel_bins: info.n_mels,
        multilingual: info.multilingual,
        languages: info
            .languages
            .unwrap_or(if info.multilingual { 99 } else { 1 }),
        format: info.format,
        source: info.source,
    })
}

/// The models in `models_dir`, by name. Hidden folders (conversions in progress) are skipped;
/// a folder that is missing is an empty list.
pub fn list(models_dir: &Path) -> Installed {
    let mut out = Installed::default();
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return out;
    };
    let mut dirs: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| !n.starts_with('.'))
        .collect();
    dirs.sort();
    for (name, dir) in dirs {
        match read_model(&name, &dir) {
            Ok(m) => out.models.push(m),
            Err(reason) => out.unreadable.push(Unreadable { name, reason }),
        }
    }
    out
}

/// `1.2 GB`, `75 MB`.
fn human_size(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.0} MB")
    }
}

impl Installed {
    /// A table for people: one line per model, then the folders that are not models.
    pub fn table(&self, models_dir: &Path) -> String {
        let mut rows = vec![[
            "NAME".to_string(),
            "SIZE".into(),
            "VARIANTS".into(),
            "LAYERS".into(),
            "MELS".into(),
            "LANGUAGES".into(),
            "SOURCE".into(),
        ]];
        for m in &self.models {
            rows.push([
                m.name.clone(),
                human_size(m.size_bytes),
                m.variants.join(","),
                format!(
                    "{}+{}",
                    m.encoder_layers.map_or("?".into(), |n| n.to_string()),
                    m.decoder_layers
                ),
                m.mel_bins.to_string(),
                if m.multilingual {
                    format!("{} (multilingual)", m.languages)
                } else {
                    "English only".into()
                },
                m.source.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        let mut widths = [0usize; 7];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        if self.models.is_empty() {
            out.push_str(&format!(
                "no models in {}: install one with scripts/setup-model.sh tiny.en\n",
                models_dir.display()
            ));
        } else {
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
        }
        for u in &self.unreadable {
            out.push_str(&format!(
                "{}: not a usable model ({}): install it again with scripts/setup-model.sh\n",
                models_dir.join(&u.name).display(),
                u.reason
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, body) in files {
            std::fs::write(dir.join(f), body).unwrap();
        }
    }

    #[test]
    fn lists_models_with_their_variants_and_reports_broken_folders() {
        let root = std::env::temp_dir().join(format!("v2m-installed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let info = r#"{"d_model":384,"n_audio_layer":4,"n_audio_head":6,"n_text_layer":2,
            "n_text_head":6,"n_vocab":51866,"n_text_ctx":448,"n_audio_ctx":1500,"n_mels":128,
            "multilingual":true,"languages":100,"format":"transformers","source":"hf:a/b"}"#;
        write(
            &root.join("turbo"),
            &[
                ("model_info.json", info),
                ("tokenizer.json", "{}"),
                ("encoder.onnx", "x"),
                ("decoder.onnx", "y"),
                ("encoder.int8.onnx", "x"),
                // int8 without its decoder is not a variant.
            ],
        );
        write(&root.join("broken"), &[("encoder.onnx", "x")]);
        write(&root.join(".small.abc123"), &[("encoder.onnx", "x")]);
        let got = list(&root);
        assert_eq!(got.models.len(), 1);
        let m = &got.models[0];
        assert_eq!(
            (m.name.as_str(), m.variants.clone(), m.mel_bins, m.languages),
            ("turbo", vec!["fp32"], 128, 100)
        );
        assert_eq!(m.size_bytes, info.len() as u64 + 2 + 3);
        assert_eq!(got.unreadable.len(), 1);
        assert_eq!(got.unreadable[0].name, "broken");
        let table = got.table(&root);
        assert!(
            table.contains("turbo") && table.contains("hf:a/b"),
            "{table}"
        );
        assert!(table.contains("broken: not a usable model"), "{table}");
        assert!(list(&root.join("none")).models.is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
