#!/usr/bin/env bash
# Which int8 keeps fp32's accuracy: every quantised variant of a model (quant_variants.py) and
# fp32, on two sets, in one run, with the same worker and greedy decoding (one 30 s pass per file).
#
#   scripts/bench-quant.sh [--model tiny.en] [--threads 2] [--variants "dynamic mixed-b32 …"]
#
# Rows: fp32, int8 (the variant setup-model.sh installs), then each of quant_variants.py's
# (all by default; --variants picks some, --variants none only fp32 and int8).
# Sets (built once, cached under ${XDG_CACHE_HOME:-~/.cache}/v2m/hard-set):
#   dev    pocketsphinx-testdata's 11 recordings
#   hard   20 Harvard sentences in 4 espeak-ng voices and rates (80 clips), and the 11 dev
#          recordings with pink noise (about 10 dB SNR) and with reverb (22 clips)
# Prints a line per variant:
#   quant: model=… variant=… dev_wer=… hard_wer=… encoder_p50_ms=… token_p50_ms=… utterance_p50_ms=… rss_mb=…
set -euo pipefail
cd "$(dirname "$0")/.."
model=tiny.en threads=2 only=
while [ $# -gt 0 ]; do
    case $1 in
    --model) model=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --variants) only=$2; shift 2 ;;
    -h | --help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "bench-quant: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

scripts/setup.sh
scripts/setup-model.sh "$model"
cargo build --release --locked -p v2m-worker >&2
data=${XDG_DATA_HOME:-$HOME/.local/share}/v2m
py=$data/venv/bin/python
sets=${XDG_CACHE_HOME:-$HOME/.cache}/v2m/hard-set
variants=${XDG_CACHE_HOME:-$HOME/.cache}/v2m/quant-variants/$model
d=/usr/share/pocketsphinx/test/data

# The sets: WAV files and a TSV of file<TAB>truth per set.
if [ ! -f "$sets/.done" ]; then
    rm -rf "$sets" && mkdir -p "$sets/clips"
    sox -D -t raw -r 16000 -e signed -b 16 -c 1 "$d/goforward.raw" "$sets/clips/goforward.wav"
    : >"$sets/dev.tsv"
    parse() { sed -E 's/<\/?s>//g; s/^ *//; s/ *\(([^)]*)\)$/\t\1/' "$1"; }
    while IFS=$'\t' read -r text id; do
        printf '%s\t%s\n' "$d/librivox/$id.wav" "$text" >>"$sets/dev.tsv"
    done < <(parse "$d/librivox/transcription")
    while IFS=$'\t' read -r text id; do
        printf '%s\t%s\n' "$d/cards/$id.wav" "$text" >>"$sets/dev.tsv"
    done < <(parse "$d/cards/cards.transcription")
    printf '%s\t%s\n' "$sets/clips/goforward.wav" "go forward ten meters" >>"$sets/dev.tsv"
    : >"$sets/hard.tsv"
    i=0
    while IFS= read -r sentence; do
        for vr in en-us:140 en-gb:150 en-us+f3:150 en-gb-x-rp:160; do
            i=$((i + 1))
            espeak-ng -v "${vr%%:*}" -s "${vr##*:}" -w "$sets/clips/tts-raw.wav" "$sentence"
            sox -D "$sets/clips/tts-raw.wav" -r 16000 -c 1 -b 16 "$sets/clips/tts-$i.wav"
            printf '%s\t%s\n' "$sets/clips/tts-$i.wav" "$sentence" >>"$sets/hard.tsv"
        done
    done <<'EOF'
The birch canoe slid on the smooth planks.
Glue the sheet to the dark blue background.
It's easy to tell the depth of a well.
These days a chicken leg is a rare dish.
Rice is often served in round bowls.
The juice of lemons makes fine punch.
The box was thrown beside the parked truck.
The hogs were fed chopped corn and garbage.
Four hours of steady work faced us.
A large size in stockings is hard to sell.
The boy was there when the sun rose.
A rod is used to catch pink salmon.
The source of the huge river is the clear spring.
Kick the ball straight and follow through.
Help the woman get back to her feet.
A pot of tea helps to pass the evening.
Smoky fires lack flame and heat.
The soft cushion broke the man's fall.
The salt breeze came across from the sea.
The girl at the booth sold fifty bonds.
EOF
    rm -f "$sets/clips/tts-raw.wav"
    i=0
    while IFS=$'\t' read -r wav text; do
        i=$((i + 1))
        dur=$(soxi -D "$wav")
        sox -D -R -n -r 16000 -c 1 -b 16 "$sets/clips/noise.wav" synth "$dur" pinknoise vol 0.06
        sox -D -m "$wav" "$sets/clips/noise.wav" "$sets/clips/noisy-$i.wav"
        sox -D "$wav" "$sets/clips/reverb-$i.wav" reverb 60 50 100
        printf '%s\t%s\n' "$sets/clips/noisy-$i.wav" "$text" "$sets/clips/reverb-$i.wav" "$text" >>"$sets/hard.tsv"
    done <"$sets/dev.tsv"
    rm -f "$sets/clips/noise.wav"
    touch "$sets/.done"
fi

# Variants are cached per model and rebuilt when the model is converted again.
if [ "$(cat "$variants/.stamp" 2>/dev/null)" != "$(cat "$data/models/$model/.v2m-converted")" ]; then
    rm -rf "$variants" && mkdir -p "$variants"
    cp "$data/models/$model/.v2m-converted" "$variants/.stamp"
fi
# shellcheck disable=SC2086
[ "$only" = none ] || "$py" scripts/quant_variants.py "$data/models/$model" "$variants" $only >&2
run() { # LABEL MODEL-DIR VARIANT
    local label=$1 dir=$2 variant=$3 set
    for set in dev hard; do
        cut -f1 "$sets/$set.tsv" | tr '\n' '\0' | xargs -0 target/release/v2m-worker transcribe --report --whole \
            --model "$dir" --variant "$variant" --threads "$threads" --ep cpu 2>/dev/null >"$sets/$model.$label.$set.jsonl"
    done
    "$py" scripts/wer.py "$sets" "$model.$label" "$model"
}
echo "bench-quant: $model, $(wc -l <"$sets/dev.tsv") dev clips, $(wc -l <"$sets/hard.tsv") hard clips, $threads threads" >&2
run fp32 "$data/models/$model" fp32
run int8 "$data/models/$model" int8
for v in "$variants"/*/; do
    v=${v%/}
    if [ -z "$only" ] || [[ " $only " == *" ${v##*/} "* ]]; then
        run "${v##*/}" "$v" int8
    fi
done
