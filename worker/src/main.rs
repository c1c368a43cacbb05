//! v2m-worker: follows v2m-rt's sessions (`run`) or transcribes files (`transcribe`).
//! Settings: flag, else the `[worker]` table of the config file, else the default.

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use v2m_text::config::TextTable;
use v2m_text::progress::FileProgress;
use v2m_text::rules::TextRules;
use v2m_text::transcript::{self, Format};
use v2m_worker::WorkerError;
use v2m_worker::config::{self, WorkerConfig};
use v2m_worker::error::ConnectionKind;
use v2m_worker::follow::{FollowEnd, FollowOptions, follow};
use v2m_worker::model::files::{ModelFiles, Variant};
use v2m_worker::offline::transcribe_file;
use v2m_worker::runtime::{self, EpChoice};
use v2m_worker::stream::session::Final;
use v2m_worker::stream::session::StreamPolicy;
use v2m_worker::transcriber::{PassTimings, Transcriber};

#[derive(Parser)]
#[command(
    name = "v2m-worker",
    version,
    about = "v2m's Whisper transcription worker"
)]
struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/v2m/config.toml; its [worker] and [text] tables;
    /// v2m-rt hands its own --config to the workers it starts as V2M_CONFIG).
    #[arg(long, global = true, env = "V2M_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ModelArgs {
    /// An installed model's name (`v2m-worker models` lists them), or a model directory
    /// [default: tiny.en].
    #[arg(long)]
    model: Option<String>,
    /// Weight precision: int8, fp32 or fp16 (installed with setup-model.sh --fp16; for CUDA)
    /// [default: int8].
    #[arg(long)]
    variant: Option<String>,
    /// Inference threads, 0 for ONNX Runtime's choice [default: 2].
    #[arg(long)]
    threads: Option<usize>,
    /// Execution provider: auto (CUDA when built with it and usable, else CPU), cpu, cuda
    /// [default: auto].
    #[arg(long)]
    ep: Option<String>,
    /// libonnxruntime.so to load [default: ORT_DYLIB_PATH, else the one setup-model.sh installs].
    #[arg(long)]
    ort_lib: Option<PathBuf>,
    /// Language of multilingual models, or auto to detect it [default: en].
    #[arg(long)]
    language: Option<String>,
    /// Translate speech in any language into English (multilingual models; Whisper's own
    /// translate task) [default: [worker] task = "transcribe"].
    #[arg(long)]
    translate: bool,
    /// Names and terms Whisper should spell this way, comma-separated: its initial prompt
    /// [default: [text] vocabulary; "" for none].
    #[arg(long, value_name = "WORDS")]
    vocabulary: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// List the installed models: size on disk, variants, layers, mel bins, languages, and
    /// where each came from (install more with scripts/setup-model.sh).
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The models folder [default: $XDG_DATA_HOME/v2m/models].
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
    /// Connect to v2m-rt, follow the sessions it assigns, send provisional and final text.
    Run {
        #[command(flatten)]
        model: ModelArgs,
        /// v2m-rt's control socket [default: $XDG_RUNTIME_DIR/v2m/control.sock].
        #[arg(long, env = "V2M_SOCKET")]
        socket: Option<PathBuf>,
        /// This worker's name, unique among v2m-rt's workers (v2m-rt's supervisor sets
        /// V2M_WORKER_NAME to the configured name) [default: worker].
        #[arg(long, env = "V2M_WORKER_NAME")]
        name: Option<String>,
        /// Shortest time between provisional passes, in ms [default: 500].
        #[arg(long)]
        provisional_ms: Option<u64>,
        /// Non-speech after speech that starts the speculative final pass, in ms
        /// [default: 160].
        #[arg(long)]
        pause_ms: Option<u64>,
        /// Unload the model while idle when MemAvailable falls below this % of MemTotal
        /// [default: 10].
        #[arg(long)]
        unload_below_percent: Option<f64>,
    },
    /// Transcribe audio or video files of any length and format (WAV, FLAC, MP3, Ogg, AAC/M4A…,
    /// others through ffmpeg): 30 s windows, each prompted with the text before it, decoded
    /// with timestamps; printed as text, SRT, WebVTT or JSON.
    Transcribe {
        #[command(flatten)]
        model: ModelArgs,
        /// Output format: txt, srt, vtt or json [default: txt].
        #[arg(long, short = 'f', default_value = "txt", value_parser = Format::parse)]
        format: Format,
        /// Write the transcript here instead of standard output; with several files, a
        /// folder that gets NAME.<format> for each.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Decode as live dictation does (no timestamps): the text a dictation of the same
        /// recording gives.
        #[arg(long)]
        dictation: bool,
        /// Print a JSON line per file with windows and timings (for measurements) instead.
        #[arg(long)]
        report: bool,
        /// One pass over each file's first 30 s, no VAD or segmenting: the reference
        /// transcriber's computation, for comparing with it.
        #[arg(long)]
        whole: bool,
        /// VAD aggressiveness, 0 (keeps most) to 3 (drops most non-speech) [default: 3].
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=3))]
        vad: Option<u8>,
        /// Audio or video files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn load(
    args: &ModelArgs,
    cfg: &WorkerConfig,
    text: &TextTable,
) -> Result<Transcriber, WorkerError> {
    let pick = |flag: &Option<String>, file: &Option<String>, default: &str| {
        flag.clone()
            .or_else(|| file.clone())
            .unwrap_or_else(|| default.to_string())
    };
    let variant = Variant::parse(&pick(&args.variant, &cfg.variant, "int8"))?;
    let ep = EpChoice::parse(&pick(&args.ep, &cfg.ep, "auto"))?;
    let files = ModelFiles::locate(&pick(&args.model, &cfg.model, "tiny.en"), variant)?;
    let library = runtime::resolve_library(args.ort_lib.as_deref().or(cfg.ort_library.as_deref()));
    let rt = runtime::init(&library)?;
    let threads = args.threads.or(cfg.threads).unwrap_or(2);
    let language = args.language.clone().or_else(|| cfg.language.clone());
    let mut t = Transcriber::load(rt, files, threads, ep, language.as_deref())?;
    let translate = match (args.translate, cfg.task.as_deref()) {
        (true, _) | (false, Some("translate")) => true,
        (false, None | Some("transcribe")) => false,
        (false, Some(other)) => {
            return Err(WorkerError::Usage(format!(
                "[worker] task = {other:?}: must be \"transcribe\" or \"translate\""
            )));
        }
    };
    if translate {
        t.translate()?;
    }
    let vocabulary: Vec<String> = match &args.vocabulary {
        Some(words) => words.split(',').map(str::to_string).collect(),
        None => text.vocabulary.clone().unwrap_or_default(),
    };
    t.set_vocabulary(&vocabulary)?;
    if !t.vocabulary().is_empty() {
        log::info!(
            "vocabulary prompt: {} words, {} tokens",
            vocabulary.len(),
            t.vocabulary().len()
        );
    }
    let d = t.execution_provider();
    log::info!(
        "model {} on {} ({}), {} threads, ONNX Runtime from {}",
        t.files().label(),
        d.name,
        d.reason,
        threads,
        library.display()
    );
    Ok(t)
}

fn run(cli: Cli) -> Result<(), WorkerError> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(v2m_shm_proto::paths::config_file);
    let file = config::load(&path, cli.config.is_some())?;
    let rules = TextRules::new(&file.text.text).map_err(|e| WorkerError::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let (cfg, text) = (file.worker, file.text.text);
    match cli.command {
        Command::Models { json, models_dir } => {
            let dir = models_dir.unwrap_or_else(v2m_worker::model::files::models_dir);
            let installed = v2m_worker::model::installed::list(&dir);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&installed).expect("serialisable")
                );
            } else {
                print!("{}", installed.table(&dir));
            }
            Ok(())
        }
        Command::Run {
            model,
            socket,
            name,
            provisional_ms,
            pause_ms,
            unload_below_percent,
        } => {
            let socket = match socket.or_else(|| cfg.socket.clone()) {
                Some(s) => s,
                None => v2m_shm_proto::paths::control_socket()
                    .map_err(|e| WorkerError::connection(ConnectionKind::Connect, e))?,
            };
            let unload = unload_below_percent
                .or(cfg.unload_below_percent)
                .unwrap_or(10.0);
            if !(0.0..=100.0).contains(&unload) {
                return Err(WorkerError::Usage(format!(
                    "unload_below_percent {unload}: must be between 0 and 100"
                )));
            }
            let pause_ms = pause_ms.or(cfg.pause_ms).unwrap_or(160);
            if !(20..=10_000).contains(&pause_ms) {
                return Err(WorkerError::Usage(format!(
                    "pause_ms {pause_ms}: must be between 20 and 10000"
                )));
            }
            let policy = StreamPolicy {
                provisional_interval: Duration::from_millis(
                    provisional_ms.or(cfg.provisional_ms).unwrap_or(500),
                ),
                pause_frames: (pause_ms / 20) as usize,
                ..StreamPolicy::default()
            };
            let opts = FollowOptions {
                rules,
                socket,
                name: name
                    .or_else(|| cfg.name.clone())
                    .unwrap_or_else(|| "worker".into()),
                policy,
                unload_below: unload / 100.0,
            };
            let FollowEnd::Shutdown = follow(opts, || load(&model, &cfg, &text))?;
            log::info!("shut down by v2m-rt");
            Ok(())
        }
        Command::Transcribe {
            model,
            format,
            output,
            dictation,
            report,
            whole,
            vad,
            files,
        } => {
            let vad = vad.or(cfg.vad).unwrap_or(3);
            let many = files.len() > 1;
            if many && let Some(dir) = &output {
                std::fs::create_dir_all(dir).map_err(|e| WorkerError::Io {
                    path: dir.clone(),
                    source: e,
                })?;
            }
            let mut t = load(&model, &cfg, &text)?;
            if whole {
                // The reference's computation: no prompt at all.
                t.set_vocabulary(&[])?;
            }
            let policy = StreamPolicy {
                timestamps: !dictation,
                live_passes: false,
                ..StreamPolicy::default()
            };
            let terminal = std::io::stderr().is_terminal();
            let outputs = transcript::output_paths(output.as_deref(), &files, format);
            for (path, out) in files.into_iter().zip(outputs) {
                if whole {
                    let audio = v2m_worker::audio::read_audio(&path)?;
                    print_whole(&mut t, &path, &audio, report)?;
                    continue;
                }
                let wall = std::time::Instant::now();
                let bar = FileProgress::new(&path.display().to_string(), terminal);
                let mut show = |done: f64, total: Option<f64>| bar.update(done, total);
                let r = transcribe_file(&mut t, &path, vad, policy, &mut show);
                bar.finish();
                let r = r?;
                if report {
                    print_report(&t, &path, &r, wall.elapsed().as_secs_f64());
                    continue;
                }
                let name = path.display().to_string();
                let rendered =
                    transcript::render(format, &r.text, &r.text_segments(0), Some(&name));
                match out {
                    Some(out) => std::fs::write(&out, rendered).map_err(|e| WorkerError::Io {
                        path: out.clone(),
                        source: e,
                    })?,
                    None => print!("{rendered}"),
                }
            }
            if report {
                use v2m_worker::memory::{peak_rss_mb, rss_mb};
                println!(
                    "{}",
                    serde_json::json!({ "rss_mb": rss_mb(), "peak_rss_mb": peak_rss_mb() })
                );
            }
            Ok(())
        }
    }
}

/// `--whole`: one pass over the first 30 s, the reference's computation.
fn print_whole(
    t: &mut Transcriber,
    path: &Path,
    audio: &[f32],
    json: bool,
) -> Result<(), WorkerError> {
    let wall = std::time::Instant::now();
    let r = t.transcribe(audio)?;
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    let steps = r.decoded.steps.max(1);
    let line = serde_json::json!({
        "file": path,
        "text": r.text,
        "language": r.language,
        "tokens": r.decoded.tokens,
        "mel_ms": r.timings.mel_ms,
        "encoder_ms": r.timings.encoder_ms,
        "decoder_ms": r.timings.decoder_ms,
        "token_ms": if steps > 1 {
            (r.timings.decoder_ms - r.timings.decoder_first_ms) / (steps - 1) as f32
        } else { 0.0 },
        "total_ms": wall_ms,
    });
    println!("{}", if json { line.to_string() } else { r.text });
    Ok(())
}

/// `--report`: the transcript with its windows and what it cost.
fn print_report(t: &Transcriber, path: &Path, r: &Final, wall_s: f64) {
    let s = |seq: u64| seq as f64 * 0.02;
    let mut timings = PassTimings::default();
    for w in &r.windows {
        timings.mel_ms += w.timings.mel_ms;
        timings.encoder_ms += w.timings.encoder_ms;
        timings.decoder_ms += w.timings.decoder_ms;
    }
    let audio_s = r.windows.last().map_or(0.0, |w| s(w.end_seq));
    let line = serde_json::json!({
        "file": path,
        "text": r.text,
        "tokens": r.windows.iter().map(|w| w.tokens).sum::<usize>(),
        "windows": r.windows.iter().map(|w| serde_json::json!({
            "start_s": s(w.start_seq),
            "end_s": s(w.end_seq),
            "text": w.text,
            "no_speech_prob": w.no_speech_prob,
            "avg_logprob": w.avg_logprob,
            "segments": w.segments.iter().map(|g| serde_json::json!({
                "start_s": s(g.start_seq),
                "end_s": s(g.end_seq),
                "text": g.text,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "audio_s": audio_s,
        "wall_s": wall_s,
        "mel_ms": timings.mel_ms,
        "encoder_ms": timings.encoder_ms,
        "decoder_ms": timings.decoder_ms,
        "final_pass_ms": r.timings.mel_ms + r.timings.encoder_ms + r.timings.decoder_ms,
        "execution_provider": t.execution_provider().name,
    });
    println!("{line}");
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,symphonia=off"),
    )
    .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("v2m-worker: {e}");
            ExitCode::from(1)
        }
    }
}
