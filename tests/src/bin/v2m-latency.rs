//! Measures v2m's latency end to end (see scripts/latency.sh, which sets up, builds, runs this
//! and plots the results).
//!
//!   v2m-latency measure [--set DIR]... [--long] [--delays 0,300,500,1000] [--out runs.jsonl]
//!   v2m-latency summary runs.jsonl

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use v2m_tests::latency::corpus;
use v2m_tests::latency::measure::{Measurement, measure};
use v2m_tests::latency::rig::{Rig, RigOptions};
use v2m_tests::latency::{offline, report};

#[derive(Parser)]
#[command(
    name = "v2m-latency",
    about = "Measure v2m's dictation latency end to end"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Play each recording through a FIFO microphone into a fresh v2m-rt (real time), press
    /// start before it and stop after its speech, print a row per run and the summary line.
    Measure(MeasureArgs),
    /// Print the per-delay figures and the summary line of a measure run's JSON lines.
    Summary {
        /// The file `measure --out` wrote.
        runs: PathBuf,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Cmd::Measure(a) => run_measure(a),
        Cmd::Summary { runs } => run_summary(runs),
    }
    .unwrap_or_else(|e| {
        eprintln!("v2m-latency: {e}");
        ExitCode::FAILURE
    })
}

#[derive(clap::Args)]
struct MeasureArgs {
    /// A folder of WAV files with transcripts (`NAME.txt`, or a pocketsphinx
    /// `transcription` file). Repeatable. Default: pocketsphinx-testdata's librivox and
    /// cards recordings, and the long set made of them.
    #[arg(long = "set")]
    sets: Vec<PathBuf>,
    /// Also measure recordings longer than Whisper's 30 s window, made by joining the sets'
    /// recordings with pauses (always on without --set).
    #[arg(long)]
    long: bool,
    /// Delays in ms from the end of speech to pressing stop, one run each.
    #[arg(long, value_delimiter = ',', default_value = "0,300,500,1000")]
    delays: Vec<u32>,
    /// Measure only the first N recordings.
    #[arg(long)]
    limit: Option<usize>,
    /// Config file for v2m-rt (workers, pre-roll…). Default: one default worker.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The v2m-rt executable. Default: the one beside this executable.
    #[arg(long)]
    rt: Option<PathBuf>,
    /// The v2m-worker executable, for the offline transcripts. Default: the one beside
    /// this executable.
    #[arg(long)]
    worker: Option<PathBuf>,
    /// Write each run as a JSON line here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the scratch folder (v2m-rt's and the worker's log, the long recordings).
    #[arg(long)]
    keep: bool,
    /// Seconds to wait for the worker to load its model.
    #[arg(long, default_value_t = 180)]
    ready_timeout: u64,
}

/// `name` beside this executable (the workspace's binaries are built together).
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run_measure(a: MeasureArgs) -> Result<ExitCode, String> {
    let long = a.long || a.sets.is_empty();
    let sets = if a.sets.is_empty() {
        corpus::default_sets()
    } else {
        a.sets
    };
    let mut utterances = Vec::new();
    for s in &sets {
        utterances.extend(corpus::load_set(s)?);
    }
    if let Some(n) = a.limit {
        utterances.truncate(n);
    }
    let dir = std::env::temp_dir().join(format!("v2m-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if long {
        let joined = corpus::long_set(&dir.join("long"), &utterances)?;
        utterances.extend(joined);
    }
    let spans = utterances
        .iter()
        .map(|u| corpus::speech_span(&u.wav))
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "latency: {} recordings offline through v2m-worker transcribe, as the microphone is fed them…",
        utterances.len()
    );
    let worker = a.worker.unwrap_or_else(|| sibling("v2m-worker"));
    let offline = offline::transcribe(&worker, a.config.as_deref(), &utterances, &dir)?;
    eprintln!(
        "latency: and begun {:?} ms later (the frame phases a microphone lands on)…",
        offline::PHASE_SHIFTS_MS
    );
    let phases = offline::transcribe_phases(
        &worker,
        a.config.as_deref(),
        &utterances,
        &dir.join("phases"),
    )?;
    let mut out = match &a.out {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    eprintln!(
        "latency: {} recordings x {} stop delays; starting v2m-rt and its worker…",
        utterances.len(),
        a.delays.len()
    );
    let mut rig = Rig::start(&RigOptions {
        rt: a.rt.unwrap_or_else(|| sibling("v2m-rt")),
        config: a.config,
        dir: dir.clone(),
        ready_timeout: Duration::from_secs(a.ready_timeout),
    })?;
    println!("{}", report::header());
    let mut runs: Vec<Measurement> = Vec::new();
    for &delay in &a.delays {
        for (((u, span), offline), phases) in
            utterances.iter().zip(&spans).zip(&offline).zip(&phases)
        {
            let mut m = measure(&mut rig, u, *span, Duration::from_millis(delay.into()))
                .map_err(|e| format!("{}: {e}", u.name))?;
            m.offline = Some(offline.clone());
            m.offline_phases = phases.clone();
            println!("{}", report::row(&m));
            if let Some(f) = out.as_mut() {
                let line = serde_json::to_string(&m).map_err(|e| e.to_string())?;
                writeln!(f, "{line}").map_err(|e| e.to_string())?;
            }
            runs.push(m);
        }
    }
    drop(rig);
    if a.keep {
        eprintln!("latency: logs and recordings kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    print_summary(&runs);
    Ok(ExitCode::SUCCESS)
}

fn run_summary(path: PathBuf) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let runs = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<Measurement>(l)
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if runs.is_empty() {
        return Err(format!("{}: no runs", path.display()));
    }
    print_summary(&runs);
    Ok(ExitCode::SUCCESS)
}

/// Per-delay lines, per-set lines, the overall line, and the streaming line last.
fn print_summary(runs: &[Measurement]) {
    let mut delays: Vec<u32> = runs.iter().map(|m| m.stop_delay_ms).collect();
    delays.sort_unstable();
    delays.dedup();
    for d in delays {
        if let Some(line) = report::delay_line(d, runs) {
            println!("{line}");
        }
    }
    let mut sets: Vec<&str> = runs.iter().map(|m| m.set.as_str()).collect();
    sets.dedup();
    let mut seen = std::collections::HashSet::new();
    sets.retain(|s| seen.insert(*s));
    for set in sets {
        let these: Vec<Measurement> = runs.iter().filter(|m| m.set == set).cloned().collect();
        if let Some(s) = report::streaming(&these) {
            println!("{}", s.set_line(set));
        }
    }
    if let Some(s) = report::summarize(runs) {
        println!("{}", s.line());
    }
    if let Some(s) = report::streaming(runs) {
        println!("{}", s.line());
    }
}
