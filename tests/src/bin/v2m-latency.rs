//! Measures v2m's latency end to end (see scripts/latency.sh, which sets up, builds, runs this
//! and plots the results).
//!
//!   v2m-latency measure [--set DIR]... [--delays 0,500] [--out runs.jsonl]
//!   v2m-latency summary runs.jsonl

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use v2m_tests::latency::corpus::{self, DEFAULT_SETS};
use v2m_tests::latency::measure::{Measurement, measure};
use v2m_tests::latency::report;
use v2m_tests::latency::rig::{Rig, RigOptions};

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
    Measure {
        /// A folder of WAV files with transcripts (`NAME.txt`, or a pocketsphinx
        /// `transcription` file). Repeatable. Default: pocketsphinx-testdata's librivox and
        /// cards recordings.
        #[arg(long = "set")]
        sets: Vec<PathBuf>,
        /// Delays in ms from the end of speech to pressing stop, one run each.
        #[arg(long, value_delimiter = ',', default_value = "0,500")]
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
        /// Write each run as a JSON line here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds to wait for the worker to load its model.
        #[arg(long, default_value_t = 180)]
        ready_timeout: u64,
    },
    /// Print the per-delay figures and the summary line of a measure run's JSON lines.
    Summary {
        /// The file `measure --out` wrote.
        runs: PathBuf,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Cmd::Measure {
            sets,
            delays,
            limit,
            config,
            rt,
            out,
            ready_timeout,
        } => run_measure(sets, delays, limit, config, rt, out, ready_timeout),
        Cmd::Summary { runs } => run_summary(runs),
    }
    .unwrap_or_else(|e| {
        eprintln!("v2m-latency: {e}");
        ExitCode::FAILURE
    })
}

fn run_measure(
    sets: Vec<PathBuf>,
    delays: Vec<u32>,
    limit: Option<usize>,
    config: Option<PathBuf>,
    rt: Option<PathBuf>,
    out: Option<PathBuf>,
    ready_timeout: u64,
) -> Result<ExitCode, String> {
    let sets = if sets.is_empty() {
        DEFAULT_SETS.iter().map(PathBuf::from).collect()
    } else {
        sets
    };
    let mut utterances = Vec::new();
    for s in &sets {
        utterances.extend(corpus::load_set(s)?);
    }
    if let Some(n) = limit {
        utterances.truncate(n);
    }
    let spans = utterances
        .iter()
        .map(|u| corpus::speech_span(&u.wav))
        .collect::<Result<Vec<_>, _>>()?;
    let rt = rt.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("v2m-rt")))
            .unwrap_or_else(|| PathBuf::from("v2m-rt"))
    });
    let mut out = match &out {
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let dir = std::env::temp_dir().join(format!("v2m-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "latency: {} recordings x {} stop delays; starting v2m-rt and its worker…",
        utterances.len(),
        delays.len()
    );
    let mut rig = Rig::start(&RigOptions {
        rt,
        config,
        dir: dir.clone(),
        ready_timeout: Duration::from_secs(ready_timeout),
    })?;
    println!("{}", report::header());
    let mut runs: Vec<Measurement> = Vec::new();
    for &delay in &delays {
        for (u, span) in utterances.iter().zip(&spans) {
            let m = measure(&mut rig, u, *span, Duration::from_millis(delay.into()))
                .map_err(|e| format!("{}: {e}", u.name))?;
            println!("{}", report::row(&m));
            if let Some(f) = out.as_mut() {
                let line = serde_json::to_string(&m).map_err(|e| e.to_string())?;
                writeln!(f, "{line}").map_err(|e| e.to_string())?;
            }
            runs.push(m);
        }
    }
    drop(rig);
    let _ = std::fs::remove_dir_all(&dir);
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

/// Per-delay lines, then the overall line last.
fn print_summary(runs: &[Measurement]) {
    let mut delays: Vec<u32> = runs.iter().map(|m| m.stop_delay_ms).collect();
    delays.sort_unstable();
    delays.dedup();
    for d in delays {
        let these: Vec<Measurement> = runs
            .iter()
            .filter(|m| m.stop_delay_ms == d)
            .cloned()
            .collect();
        if let Some(s) = report::summarize(&these) {
            println!(
                "stop {d:>4} ms after speech: {} (speech end→final p50 {:.0} ms)",
                s.line().trim_start_matches("latency: "),
                s.speech_end_to_final_p50_ms
            );
        }
    }
    if let Some(s) = report::summarize(runs) {
        println!("{}", s.line());
    }
}
