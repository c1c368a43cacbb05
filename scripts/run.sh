#!/usr/bin/env bash
# The main job: set up, build, and dictate (a real recording through the whole pipeline when
# there is no microphone, the microphone when there is one).
#
# Today the capture daemon (v2m-rt) is not built yet, so this transcribes real recorded speech
# with the worker alone, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/setup-model.sh tiny.en
cargo build --workspace --release --locked

d=/usr/share/pocketsphinx/test/data/librivox
echo "run: transcribing real recorded speech with v2m-worker (tiny.en int8, CPU):" >&2
for f in "$d"/sense_and_sensibility_01_austen_64kb-0870.wav "$d"/sense_and_sensibility_01_austen_64kb-0880.wav; do
    printf '  %s\n    reference: %s\n    v2m:       ' "$(basename "$f")" \
        "$(grep "($(basename "$f" .wav))" "$d/transcription" | sed 's/<\/*s>//g; s/ *(.*//; s/^ *//')" >&2
    target/release/v2m-worker transcribe "$f" 2>/dev/null
done
cat >&2 <<'MSG'
run: live dictation is not possible yet: the capture daemon (v2m-rt) and the client
(v2m-cli) are still to be built. Built and tested: the shared-memory ring and protocol
(shm-proto) and the Whisper worker (v2m-worker: offline files, and streaming sessions from the
ring once v2m-rt hands them out).
  scripts/test.sh                    runs all tests
  scripts/bench-worker.sh            worker vs the reference transcriber, streaming latencies
  cargo bench -p v2m-shm-proto --bench ring    the ring across two processes
MSG
