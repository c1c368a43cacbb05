#!/usr/bin/env python3
"""Dumps what the reference transcriber (reference_transcribe.py) computes, for v2m's tests
and benchmark to compare against.

  reference_dump.py tokens MODEL_DIR VARIANT THREADS [--mel-dir DIR] FILE.wav...
      one JSON line per file: {"file", "tokens", "text", "total_ms", "encoder_ms", ...};
      with --mel-dir, also the log-mel each file was decoded from, as DIR/<index>.f32
  reference_dump.py mel FILE.wav OUT.f32 [N_MELS]
      the reference log-mel [N_MELS (80), 3000] as little-endian f32
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import reference_transcribe as ref  # noqa: E402


class _RecordingTokenizer:
    """Wraps the tokenizer to keep the ids the reference decodes."""

    def __init__(self, tok):
        self._tok = tok
        self.last_ids = None

    def token_to_id(self, s):
        return self._tok.token_to_id(s)

    def decode(self, ids):
        self.last_ids = list(ids)
        return self._tok.decode(ids)


def read(path):
    audio, sr = sf.read(path, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(1)
    assert sr == ref.SR, f"{path}: need 16 kHz, got {sr}"
    return audio


def tokens(model_dir, variant, threads, files):
    mel_dir = None
    if files[:1] == ["--mel-dir"]:
        mel_dir, files = files[1], files[2:]
    m = ref.OnnxWhisper(model_dir, int(threads), "" if variant == "fp32" else f".{variant}")
    m.tok = _RecordingTokenizer(m.tok)
    for i, f in enumerate(files):
        audio = read(f)
        if mel_dir is not None:
            mel = ref.log_mel(audio, m.filters)
            mel.astype("<f4").tofile(os.path.join(mel_dir, f"{i}.f32"))
        t0 = time.perf_counter()
        text, T = m.transcribe(audio)
        T["total_ms"] = (time.perf_counter() - t0) * 1e3
        print(json.dumps({"file": f, "tokens": m.tok.last_ids, "text": text, **T}), flush=True)


def mel(path, out, n_mels=80):
    m = ref.log_mel(read(path), ref.mel_filters(n_mels=int(n_mels)))
    m.astype("<f4").tofile(out)


if __name__ == "__main__":
    if sys.argv[1] == "tokens":
        tokens(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    elif sys.argv[1] == "mel":
        mel(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
