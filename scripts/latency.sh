#!/usr/bin/env bash
# Measures v2m's dictation latency end to end: each recording of a set is played in real time
# through a FIFO microphone (no sound card needed) into a fresh v2m-rt with its worker; start is
# pressed before it and stop at a chosen delay after its speech ends. The same recordings are
# also transcribed offline (v2m-worker transcribe, same model) to compare with, and again begun
# 5, 10 and 15 ms later (the frame phases a microphone's audio lands on: the spread of those
# offline WERs is how far the comparison moves by chance). Prints a row per
# run, writes the runs (JSON lines) and a PNG of the distributions, and ends with a line per
# delay, a line per set, the overall line and the streaming line:
#   latency: delay_ms=… n=… stop_to_final_p50_ms=… stop_to_final_p95_ms=… first_provisional_p50_ms=… wer=…%
#   set: name=… n=… wer=…% offline_wer=…% speculative=… 
#            offline_wer_phase_min=…% offline_wer_phase_max=…%
#   latency: n=… stop_to_final_p50_ms=… stop_to_final_p95_ms=… first_provisional_p50_ms=…
#            provisional_interval_p50_ms=… capture_to_worker_p99_ms=… wer=…%
#   streaming: n=… wer=…% offline_wer=…% final_pass_p50_ms=… 
#            offline_wer_phase_min=…% offline_wer_phase_max=…%
#
#   scripts/latency.sh [--set DIR]... [--long] [--delays 0,300,500,1000] [--limit N] [--config FILE] [--out DIR]
#
#   --set DIR      WAV files with transcripts (NAME.txt or a pocketsphinx `transcription`
#                  file); repeatable. Default: pocketsphinx-testdata's librivox and cards, and
#                  two recordings of 40-45 s joined from them (hard commits: Whisper's window is
#                  30 s).
#   --long         with --set: also the joined long recordings of those sets
#   --delays LIST  ms from the end of speech to stop, one run per recording each
#                  (default 0,300,500,1000)
#   --limit N      only the first N recordings
#   --config FILE  v2m-rt config (workers, pre-roll…); default: one tiny.en worker on the CPU
#   --out DIR      where runs.jsonl and latency.png go (default target/latency)
#   --debug        use a debug build (faster to build, slower to run)
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
out=target/latency
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
        --set|--delays|--limit) args+=("$1" "$2"); shift 2 ;;
        --long) args+=(--long); shift ;;
        --config) args+=(--config "$(realpath "$2")"); shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --debug) profile=debug; shift ;;
        -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "latency.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

scripts/setup.sh
scripts/setup-model.sh tiny.en

# The plot: matplotlib in v2m's Python tools (created by setup-model.sh), installed once.
venv=${XDG_DATA_HOME:-$HOME/.local/share}/v2m/venv
if ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
    echo "latency: installing matplotlib into $venv (for the plot)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check matplotlib==3.11.2
fi

if [ "$profile" = release ]; then
    cargo build --release --locked -p v2m-rt -p v2m-worker -p v2m-tests --bins
else
    cargo build --locked -p v2m-rt -p v2m-worker -p v2m-tests --bins
fi
bin=target/$profile

mkdir -p "$out"
runs="$out/runs.jsonl"
"$bin/v2m-latency" measure --out "$runs" "${args[@]}"
"$venv/bin/python" scripts/latency_plot.py "$runs" "$out/latency.png"
echo "latency: runs in $runs, plot in $out/latency.png" >&2
# The summary again, last, for scripts that read the final line.
"$bin/v2m-latency" summary "$runs" | tail -n 1
