#!/usr/bin/env bash
# Sets up what the tests need, then runs every test of the workspace, rustfmt and clippy.
# This is the command README.md gives and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# The worker's tests run the real models (tiny.en, base) on ONNX Runtime against the reference.
scripts/setup-model.sh tiny.en base
# The refine tests run a real local LLM: llama.cpp's server and SmolLM2-135M-Instruct.
scripts/setup-llm.sh >/dev/null

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo clippy -p v2m-worker --features cuda (the CUDA path must build without a GPU)"
cargo clippy -p v2m-worker --features cuda --all-targets --locked --target-dir target/cuda -- -D warnings

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    # With the cuda feature on a machine without CUDA: the fallback must be said, not hidden.
    cargo nextest run -p v2m-worker --features cuda --locked --target-dir target/cuda \
        --test reference -E 'test(execution_provider)'
    # nextest does not run doc tests.
    cargo test --workspace --locked --doc
    # Everything, last, so the closing summary counts every test.
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
