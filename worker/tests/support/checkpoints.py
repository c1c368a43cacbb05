#!/usr/bin/env python3
"""Whisper checkpoints in the real on-disk layouts, for v2m's model tests (numpy only).

  checkpoints.py random OUT --layout ct2|transformers --tokenizer-from MODEL_DIR
                 [--mels 80|128] [--large-v3-vocab] [--enc-layers N] [--dec-layers N]
                 [--d-model D] [--heads H] [--dtype float32|float16] [--shards N] [--seed S]
                 [--drop TENSOR]...
      Random weights (deterministic per seed) in CTranslate2's model.bin (as faster-whisper
      has it) or transformers' safetensors layout (as openai/whisper-* and distil-whisper/*
      have it). The tokenizer and suppression lists are MODEL_DIR's (an installed v2m model:
      tiny.en gives an English-only vocabulary of 51864, base a multilingual one of 51865);
      --large-v3-vocab adds <|yue|> after the language tokens, as large-v3 does, which moves
      every later special id up by one (51866 tokens).
  checkpoints.py export-transformers CT2_DIR OUT
      A CTranslate2 Whisper model re-written in the transformers layout (safetensors, config.json,
      generation_config.json, tokenizer.json): the inverse of the converter's mapping.
"""
import argparse
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts"))
import whisper_to_onnx as conv  # noqa: E402

YUE_AT = 50358  # large-v3's <|yue|>: right after base's last language token <|su|> (50357)


def tokenizer_and_config(model_dir, large_v3):
    """tokenizer.json (as a dict) and CTranslate2's config (suppress_ids, lang_ids...) of an
    installed model, shifted to large-v3's vocabulary when asked."""
    tok = json.load(open(os.path.join(model_dir, "tokenizer.json")))
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    info = json.load(open(os.path.join(model_dir, "model_info.json")))
    V = info["n_vocab"]
    if large_v3:
        assert V == 51865, "--large-v3-vocab needs a multilingual tokenizer (base)"
        shift = lambda i: i + 1 if i >= YUE_AT else i  # noqa: E731
        for t in tok["added_tokens"]:
            t["id"] = shift(t["id"])
        yue = dict(tok["added_tokens"][0], id=YUE_AT, content="<|yue|>")
        tok["added_tokens"].append(yue)
        tok["added_tokens"].sort(key=lambda t: t["id"])
        cfg = {k: [shift(i) for i in v] if k != "alignment_heads" else v for k, v in cfg.items()}
        cfg["lang_ids"] = sorted(cfg["lang_ids"] + [YUE_AT])
        V += 1
    return tok, cfg, V, info["multilingual"]


def random_weights(rng, V, mels, L_enc, L_dec, D, H, n_text_ctx=448, n_audio_ctx=1500):
    """Whisper's tensors under CTranslate2's names, random (std 0.05; layer norms near 1)."""
    r = lambda *s: (rng.standard_normal(s) * 0.05).astype(np.float32)  # noqa: E731
    w = {"encoder/num_heads": np.array(H, np.int8), "decoder/num_heads": np.array(H, np.int8),
         "encoder/conv1/weight": r(D, mels, 3), "encoder/conv1/bias": r(D),
         "encoder/conv2/weight": r(D, D, 3), "encoder/conv2/bias": r(D),
         "encoder/position_encodings/encodings": r(n_audio_ctx, D),
         "decoder/embeddings/weight": r(V, D), "decoder/position_encodings/encodings": r(n_text_ctx, D)}

    def ln(p):
        w[p + "/gamma"], w[p + "/beta"] = 1 + r(D), r(D)

    def layer(p, cross):
        w[p + "/self_attention/linear_0/weight"] = r(3 * D, D)
        w[p + "/self_attention/linear_0/bias"] = np.concatenate([r(D), np.zeros(D, np.float32), r(D)])
        w[p + "/self_attention/linear_1/weight"], w[p + "/self_attention/linear_1/bias"] = r(D, D), r(D)
        ln(p + "/self_attention/layer_norm")
        if cross:
            w[p + "/attention/linear_0/weight"], w[p + "/attention/linear_0/bias"] = r(D, D), r(D)
            w[p + "/attention/linear_1/weight"] = r(2 * D, D)
            w[p + "/attention/linear_1/bias"] = np.concatenate([np.zeros(D, np.float32), r(D)])
            w[p + "/attention/linear_2/weight"], w[p + "/attention/linear_2/bias"] = r(D, D), r(D)
            ln(p + "/attention/layer_norm")
        w[p + "/ffn/linear_0/weight"], w[p + "/ffn/linear_0/bias"] = r(4 * D, D), r(4 * D)
        w[p + "/ffn/linear_1/weight"], w[p + "/ffn/linear_1/bias"] = r(D, 4 * D), r(D)
        ln(p + "/ffn/layer_norm")

    for i in range(L_enc):
        layer(f"encoder/layer_{i}", False)
    ln("encoder/layer_norm")
    for i in range(L_dec):
        layer(f"decoder/layer_{i}", True)
    ln("decoder/layer_norm")
    return w


def write_ct2(path, w, dtype):
    """CTranslate2's model.bin, binary version 6 (what ct2-transformers-converter writes)."""
    def s(x):
        b = x.encode() + b"\0"
        return struct.pack("<H", len(b)) + b

    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.float16): 4}
    names = sorted(w)
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6) + s("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(names)))
        for n in names:
            a = w[n]
            if a.dtype == np.float32 and a.ndim > 0:
                a = a.astype(dtype)
            a = np.require(a, requirements="C")  # (ascontiguousarray would make a scalar 1-d)
            f.write(s(n) + struct.pack("<B", a.ndim) + b"".join(struct.pack("<I", d) for d in a.shape))
            f.write(struct.pack("<B", codes[a.dtype]) + struct.pack("<I", a.nbytes) + a.tobytes())
        f.write(struct.pack("<I", 1) + s("decoder/projection/weight") + s("decoder/embeddings/weight"))


def count_layers(w, side):
    return len({m.group(1) for k in w for m in [re.match(side + r"/layer_(\d+)/", k)] if m})


def ct2_to_hf(w):
    """CTranslate2's names -> transformers' WhisperForConditionalGeneration names (the converter's
    hf_to_ct2 run backwards)."""
    out = {}
    D = w["encoder/conv1/weight"].shape[0]

    def ln(dst, src):
        out[dst + ".weight"], out[dst + ".bias"] = w[src + "/gamma"], w[src + "/beta"]

    def lin(dst, src, bias=True):
        out[dst + ".weight"] = w[src + "/weight"]
        if bias:
            out[dst + ".bias"] = w[src + "/bias"]

    def layer(dst, src, cross):
        qkv, b = w[src + "/self_attention/linear_0/weight"], w[src + "/self_attention/linear_0/bias"]
        a = dst + ".self_attn"
        out[a + ".q_proj.weight"], out[a + ".k_proj.weight"], out[a + ".v_proj.weight"] = qkv[:D], qkv[D:2 * D], qkv[2 * D:]
        out[a + ".q_proj.bias"], out[a + ".v_proj.bias"] = b[:D], b[2 * D:]
        lin(a + ".out_proj", src + "/self_attention/linear_1")
        ln(dst + ".self_attn_layer_norm", src + "/self_attention/layer_norm")
        if cross:
            a = dst + ".encoder_attn"
            lin(a + ".q_proj", src + "/attention/linear_0")
            kv, kvb = w[src + "/attention/linear_1/weight"], w[src + "/attention/linear_1/bias"]
            out[a + ".k_proj.weight"], out[a + ".v_proj.weight"], out[a + ".v_proj.bias"] = kv[:D], kv[D:], kvb[D:]
            lin(a + ".out_proj", src + "/attention/linear_2")
            ln(dst + ".encoder_attn_layer_norm", src + "/attention/layer_norm")
        lin(dst + ".fc1", src + "/ffn/linear_0")
        lin(dst + ".fc2", src + "/ffn/linear_1")
        ln(dst + ".final_layer_norm", src + "/ffn/layer_norm")

    for c in ("conv1", "conv2"):
        lin(f"model.encoder.{c}", f"encoder/{c}")
    out["model.encoder.embed_positions.weight"] = w["encoder/position_encodings/encodings"]
    for i in range(count_layers(w, "encoder")):
        layer(f"model.encoder.layers.{i}", f"encoder/layer_{i}", False)
    ln("model.encoder.layer_norm", "encoder/layer_norm")
    out["model.decoder.embed_tokens.weight"] = w["decoder/embeddings/weight"]
    out["model.decoder.embed_positions.weight"] = w["decoder/position_encodings/encodings"]
    for i in range(count_layers(w, "decoder")):
        layer(f"model.decoder.layers.{i}", f"decoder/layer_{i}", True)
    ln("model.decoder.layer_norm", "decoder/layer_norm")
    return out


def write_safetensors(path, tensors, dtype):
    names = sorted(tensors)
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for n in names:
        a = np.ascontiguousarray(tensors[n].astype(dtype))
        header[n] = {"dtype": {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[a.dtype],
                     "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def write_transformers(out, w, tok, cfg, V, multilingual, dtype, shards=1, drop=()):
    """A transformers Whisper checkpoint of CTranslate2-named weights `w`, without the tensors
    named in `drop` (for tests of incomplete checkpoints)."""
    os.makedirs(out, exist_ok=True)
    hf = ct2_to_hf(w)
    for name in drop:
        del hf[name]
    names = sorted(hf)
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), hf, dtype)
    else:
        weight_map = {}
        for k in range(shards):
            part = names[k::shards]
            fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(os.path.join(out, fname), {n: hf[n] for n in part}, dtype)
            weight_map.update({n: fname for n in part})
        json.dump({"metadata": {}, "weight_map": weight_map},
                  open(os.path.join(out, "model.safetensors.index.json"), "w"))
    D = w["encoder/conv1/weight"].shape[0]
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    json.dump({"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"], "d_model": D,
               "encoder_layers": count_layers(w, "encoder"), "decoder_layers": count_layers(w, "decoder"),
               "encoder_attention_heads": int(w["encoder/num_heads"]),
               "decoder_attention_heads": int(w["decoder/num_heads"]),
               "num_mel_bins": int(w["encoder/conv1/weight"].shape[1]), "vocab_size": V,
               "max_source_positions": 1500, "max_target_positions": 448, "tie_word_embeddings": True},
              open(os.path.join(out, "config.json"), "w"), indent=1)
    gen = {"suppress_tokens": cfg["suppress_ids"], "begin_suppress_tokens": cfg.get("suppress_ids_begin"),
           "is_multilingual": multilingual, "no_timestamps_token_id": ids["<|notimestamps|>"],
           "decoder_start_token_id": ids["<|startoftranscript|>"], "eos_token_id": ids["<|endoftext|>"]}
    if multilingual:
        gen["lang_to_id"] = {t["content"]: t["id"] for t in tok["added_tokens"] if t["id"] in set(cfg["lang_ids"])}
    json.dump(gen, open(os.path.join(out, "generation_config.json"), "w"), indent=1)
    json.dump(tok, open(os.path.join(out, "tokenizer.json"), "w"))


def cmd_random(a):
    tok, cfg, V, multilingual = tokenizer_and_config(a.tokenizer_from, a.large_v3_vocab)
    rng = np.random.default_rng(a.seed)
    w = random_weights(rng, V, a.mels, a.enc_layers, a.dec_layers, a.d_model, a.heads)
    dtype = np.dtype(a.dtype)
    os.makedirs(a.out, exist_ok=True)
    if a.layout == "ct2":
        write_ct2(os.path.join(a.out, "model.bin"), w, dtype)
        json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"))
        json.dump(tok, open(os.path.join(a.out, "tokenizer.json"), "w"))
    else:
        write_transformers(a.out, w, tok, cfg, V, multilingual, dtype, a.shards, a.drop)


def cmd_export(a):
    _, w = conv.read_ct2(os.path.join(a.ct2_dir, "model.bin"))
    tok = json.load(open(os.path.join(a.ct2_dir, "tokenizer.json")))
    cfg = json.load(open(os.path.join(a.ct2_dir, "config.json")))
    V = w["decoder/embeddings/weight"].shape[0]
    w = {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in w.items()}
    write_transformers(a.out, w, tok, cfg, V, V >= 51865, np.float32)
    shutil.copy(os.path.join(a.ct2_dir, "tokenizer.json"), a.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("random")
    r.add_argument("out")
    r.add_argument("--layout", choices=["ct2", "transformers"], required=True)
    r.add_argument("--tokenizer-from", required=True)
    r.add_argument("--mels", type=int, default=80)
    r.add_argument("--large-v3-vocab", action="store_true")
    r.add_argument("--enc-layers", type=int, default=2)
    r.add_argument("--dec-layers", type=int, default=2)
    r.add_argument("--d-model", type=int, default=64)
    r.add_argument("--heads", type=int, default=2)
    r.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    r.add_argument("--shards", type=int, default=1)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--drop", action="append", default=[], help="leave out this tensor (transformers layout)")
    e = sub.add_parser("export-transformers")
    e.add_argument("ct2_dir")
    e.add_argument("out")
    a = ap.parse_args()
    {"random": cmd_random, "export-transformers": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    main()
