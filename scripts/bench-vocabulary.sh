#!/usr/bin/env bash
# What a vocabulary buys: the dev set (pocketsphinx-testdata's 11 recordings) decoded as live
# dictation decodes it, without and with `[text] vocabulary` set to the set's rare words, in
# one run with the same worker; word error rates side by side, and the prompt's cost per file.
#
#   scripts/bench-vocabulary.sh [--model tiny.en] [--words "Dashwood, ill-disposed, …"]
#
# Prints:
#   vocabulary: model=… words=N dev_wer_without=…% dev_wer_with=…% decoder_p50_ms_without=… decoder_p50_ms_with=…
# and, before it, each file whose text changed (without -> with).
set -euo pipefail
cd "$(dirname "$0")/.."
model=tiny.en
words="Dashwood, prudently, ill-disposed, cold-hearted, amiable, respectable, clubs, spades, hearts"
while [ $# -gt 0 ]; do
    case $1 in
    --model) model=$2; shift 2 ;;
    --words) words=$2; shift 2 ;;
    -h | --help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "bench-vocabulary: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
# The dev set as bench-quant.sh builds it.
sets=${XDG_CACHE_HOME:-$HOME/.cache}/v2m/hard-set
[ -f "$sets/.done" ] || scripts/bench-quant.sh --model "$model" --variants none >/dev/null
scripts/setup-model.sh "$model"
cargo build --release --locked -p v2m-worker >&2
py=${XDG_DATA_HOME:-$HOME/.local/share}/v2m/venv/bin/python
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for label in without with; do
    v=""
    [ $label = with ] && v=$words
    cut -f1 "$sets/dev.tsv" | tr '\n' '\0' | xargs -0 target/release/v2m-worker transcribe --report --dictation \
        --model "$model" --ep cpu --vocabulary "$v" 2>/dev/null >"$out/$label.jsonl"
done
"$py" - "$sets/dev.tsv" "$out" "$model" "$words" <<'PY'
import json, statistics, sys
sys.path.insert(0, "scripts")
from wer import edits, words
tsv, out, model, vocab = sys.argv[1:5]
truth = dict(line.rstrip("\n").split("\t", 1) for line in open(tsv))
runs = {}
for label in ("without", "with"):
    rows = [json.loads(l) for l in open(f"{out}/{label}.jsonl")]
    rows = [r for r in rows if "file" in r]
    e = sum(edits(words(truth[r["file"]]), words(r["text"])) for r in rows)
    n = sum(len(words(truth[r["file"]])) for r in rows)
    runs[label] = (100 * e / max(n, 1), {r["file"]: r for r in rows})
for f, r in runs["without"][1].items():
    w = runs["with"][1][f]["text"]
    if w != r["text"]:
        print(f"  {f.rsplit('/', 1)[-1]}: {r['text']!r} -> {w!r}")
p50 = lambda label: statistics.median(r["decoder_ms"] for r in runs[label][1].values())
print(f"vocabulary: model={model} words={len(vocab.split(','))} "
      f"dev_wer_without={runs['without'][0]:.1f}% dev_wer_with={runs['with'][0]:.1f}% "
      f"decoder_p50_ms_without={p50('without'):.0f} decoder_p50_ms_with={p50('with'):.0f}")
PY
