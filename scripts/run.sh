#!/usr/bin/env bash
# The main job: set up, build, bring up v2m-rt with a worker, and dictate through the whole
# pipeline (capture -> ring -> Whisper worker -> control socket -> client), printing the
# provisional text as it comes and the final text at the end.
#
#   With a microphone (a sound card in /proc/asound): speak, then press Enter.
#   Without one: a real recording (pocketsphinx-testdata, LibriVox) is played into v2m-rt as
#   its microphone, in real time, and stop is pressed after it.
#
# Options: --input FILE.wav to dictate that recording instead; --keep to leave the daemon up.
set -euo pipefail
cd "$(dirname "$0")/.."

input=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --input) input="$(realpath "$2")"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

scripts/setup.sh
scripts/setup-model.sh tiny.en
cargo build --workspace --release --locked
bin=target/release
export PATH="$PWD/$bin:$PATH"

# A private runtime dir, so this never collides with a daemon the user already runs.
run_dir="$(mktemp -d /tmp/v2m-run.XXXXXX)"
export V2M_SOCKET="$run_dir/control.sock"
export XDG_STATE_HOME="$run_dir/state"
cleanup() {
    [ "$keep" = 1 ] && { echo "run: v2m-rt stays up on $V2M_SOCKET" >&2; return; }
    v2m-cli shutdown >/dev/null 2>&1 || true
    [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null || true
}
trap cleanup EXIT

librivox=/usr/share/pocketsphinx/test/data/librivox
mic=0
if [ -z "$input" ] && grep -qs . /proc/asound/cards && ! grep -qs "no soundcards" /proc/asound/cards; then
    mic=1
fi
if [ "$mic" = 1 ]; then
    echo "run: bringing up v2m-rt on the default microphone with a tiny.en worker..." >&2
    v2m-cli up
else
    if [ -z "$input" ]; then
        # Two LibriVox sentences with a pause between, and silence around them.
        input="$run_dir/dictation.wav"
        sox "$librivox/sense_and_sensibility_01_austen_64kb-0870.wav" \
            "$librivox/sense_and_sensibility_01_austen_64kb-0880.wav" \
            "$input" pad 0.5 1.5
        echo "run: no microphone here: playing a real recording into v2m-rt as its microphone." >&2
        echo "     expected (LibriVox transcript):" >&2
        for u in 0870 0880; do
            grep "(sense_and_sensibility_01_austen_64kb-$u)" "$librivox/transcription" \
                | sed 's/<\/*s>//g; s/ *(.*//; s/^ */       /' >&2
        done
    fi
    v2m-cli up --input "$input"
fi

# Provisional text on this terminal while dictating.
v2m-cli listen &
listener=$!
v2m-cli start >/dev/null
if [ "$mic" = 1 ]; then
    echo "run: speak now; press Enter to stop." >&2
    read -r _
else
    # Real time: stop right after the recording (it began with the start above).
    seconds="$(soxi -D "$input")"
    sleep "$seconds"
fi
echo >&2
echo "run: final text:" >&2
v2m-cli stop
sleep 0.2
v2m-cli status | sed 's/^/  /' >&2
