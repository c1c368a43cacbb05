#!/usr/bin/env python3
"""A Whisper checkpoint -> ONNX encoder + decoder, for v2m-worker. Needs numpy + onnx
(onnxruntime too for --int8 / --fp16). No torch, no network.

usage: whisper_to_onnx.py SRC_DIR OUT_DIR [--int8] [--fp16] [--source LABEL]
  SRC_DIR is either
  - a CTranslate2 model as faster-whisper uses it: model.bin, config.json, tokenizer.json
    (e.g. the Hugging Face cache's models--Systran--faster-whisper-small.en/snapshots/<rev>/), or
  - a Hugging Face transformers Whisper checkpoint: model.safetensors (or sharded
    model-0000x-of-0000y.safetensors + model.safetensors.index.json), config.json,
    generation_config.json, tokenizer.json (openai/whisper-*, distil-whisper/*).
  Any size: 80 or 128 mel bins, vocabularies of 51864/51865/51866 tokens (special ids read from
  tokenizer.json, suppression lists from the checkpoint's own configuration), any number of
  layers. A problem with the input is one line on stderr naming the file, and exit status 2.

OUT_DIR/encoder.onnx
   in : mel          f32 [B, n_mels, 3000]        (log-mel of a 30 s window)
   out: cross_k      f32 [L, B, H, 1500, dh]      cross-attention keys for each decoder layer
        cross_v      f32 [L, B, H, 1500, dh]
        encoder_out  f32 [B, 1500, D]             final encoder states (fetch only if needed)
OUT_DIR/decoder.onnx
   in : tokens       i64 [B, n]                   new tokens only
        self_k       f32 [L, B, P, D]             self-attn key cache (P = 0 on the first call)
        self_v       f32 [L, B, P, D]
        cross_k      f32 [L, B, H, S, dh]         from encoder
        cross_v      f32 [L, B, H, S, dh]
   out: logits       f32 [B, n, V]
        new_self_k   f32 [L, B, P+n, D]           feed back as self_k
        new_self_v   f32 [L, B, P+n, D]
   The new tokens' positions start at P (read from self_k's shape).
--int8 also writes encoder.int8.onnx / decoder.int8.onnx (see quantize_int8), --fp16 encoder.fp16.onnx /
decoder.fp16.onnx (fp16 weights and arithmetic inside; the same fp32 interface).
A graph over 1.8 GB keeps its weights beside it (encoder.onnx.data), as ONNX requires.
Also writes tokenizer.json, config.json (CTranslate2's keys: suppress_ids, suppress_ids_begin,
lang_ids) and model_info.json (architecture, variants, where the weights came from).
NB: the encoder accepts other even frame counts, but Whisper needs the full
3000 frames: shorter windows make it repeat itself without ending.
"""
import argparse
import glob
import json
import mmap
import os
import re
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
# Whisper has one timestamp token per 20 ms from 0.00 to 30.00 s after <|notimestamps|>.
N_TIMESTAMPS = 1501
# ONNX's protobuf limit is 2 GB: bigger graphs keep their weights in a side file.
EXTERNAL_DATA_OVER = int(os.environ.get("V2M_ONNX_EXTERNAL_OVER", 1_800_000_000))


class InputError(Exception):
    """A problem with the checkpoint: the file and what is wrong with it."""

    def __init__(self, path, what):
        super().__init__(f"{path}: {what}")


def _bf16(raw):
    return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)


def read_ct2(path):
    """CTranslate2 model.bin (binary version 3..6) -> (meta, {name: ndarray}).
    Layout (ctranslate2/specs/model_spec.py): u32 version, str spec, u32 revision,
    u32 n, n x [str name, u8 rank, u32 dims.., u8 dtype, u32 nbytes, data],
    u32 n_alias, n x [str alias, str target]; str = u16 len(+NUL), bytes, NUL."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(path, e.strerror)
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise InputError(path, "empty file")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    off = 0

    def u(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, buf, off)[0]
        off += struct.calcsize(fmt)
        return v

    def s():
        nonlocal off
        n = u("H")
        if off + n > len(buf):
            raise struct.error("string past the end")
        v = bytes(buf[off:off + n - 1]).decode("utf-8")
        off += n
        return v

    out, name = {}, None
    try:
        version = u("I")
        if not 3 <= version <= 6:
            raise InputError(path, f"not a CTranslate2 model (binary version {version}; 3 to 6 are known)")
        spec, revision = s(), u("I")
        for _ in range(u("I")):
            name = s()
            shape = tuple(u("I") for _ in range(u("B")))
            if version >= 4:
                code = u("B")
                if code not in _CT2_DTYPES:
                    raise InputError(path, f"tensor {name} has unknown type code {code}")
                dt = _CT2_DTYPES[code]
            else:
                dt = {"float": np.float32, "int8": np.int8, "int16": np.int16, "int32": np.int32,
                      "float16": np.float16}[s()]
            nbytes = u("I")
            if off + nbytes > len(buf):
                raise InputError(path, f"truncated: tensor {name} needs {nbytes} bytes at offset {off}, "
                                       f"the file has {len(buf)} bytes")
            if dt == "bfloat16":
                arr = _bf16(buf[off:off + nbytes])
            else:
                arr = np.frombuffer(buf, dt, nbytes // np.dtype(dt).itemsize, off)
            if arr.size != int(np.prod(shape)):
                raise InputError(path, f"tensor {name}: {nbytes} bytes do not hold shape {list(shape)}")
            off += nbytes
            out[name] = arr.reshape(shape)
        for _ in range(u("I")):
            alias, target = s(), s()
            out[alias] = out[target]  # e.g. decoder/projection/weight -> decoder/embeddings/weight
    except (struct.error, UnicodeDecodeError, KeyError):
        after = f" after tensor {name}" if name else ""
        raise InputError(path, f"truncated or corrupt{after} (offset {off} of {len(buf)} bytes)")
    return {"version": version, "spec": spec, "revision": revision}, out


_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
              "I8": np.int8, "U8": np.uint8}


class Safetensors:
    """The tensors of one or more .safetensors files (read with numpy, memory-mapped)."""

    def __init__(self, files, index=None):
        self.where, self.files, self.index = {}, files, index
        for path in files:
            try:
                with open(path, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
                n = struct.unpack_from("<Q", buf, 0)[0]
                if 8 + n > len(buf):
                    raise ValueError("header past the end")
                header = json.loads(bytes(buf[8:8 + n]))
            except OSError as e:
                raise InputError(path, e.strerror)
            except (struct.error, ValueError):
                raise InputError(path, "not a safetensors file (no readable header)")
            for name, meta in header.items():
                if name == "__metadata__":
                    continue
                b, e = meta["data_offsets"]
                if 8 + n + e > len(buf):
                    raise InputError(path, f"truncated: tensor {name} ends at byte {8 + n + e}, the file has {len(buf)}")
                self.where[name] = (path, buf, 8 + n + b, 8 + n + e, meta["dtype"], tuple(meta["shape"]))

    def keys(self):
        return self.where.keys()

    def get(self, name):
        if name not in self.where:
            if self.index and name in self.index:
                raise InputError(self.index[name], f"lacks tensor {name} (listed in model.safetensors.index.json)")
            raise InputError(self.files[0] if len(self.files) == 1 else os.path.dirname(self.files[0]),
                             f"lacks tensor {name}")
        path, buf, b, e, dtype, shape = self.where[name]
        if dtype == "BF16":
            arr = _bf16(buf[b:e])
        elif dtype in _ST_DTYPES:
            arr = np.frombuffer(buf, _ST_DTYPES[dtype], (e - b) // np.dtype(_ST_DTYPES[dtype]).itemsize, b)
        else:
            raise InputError(path, f"tensor {name} has unsupported type {dtype}")
        if arr.size != int(np.prod(shape)):
            raise InputError(path, f"tensor {name}: {e - b} bytes do not hold shape {list(shape)}")
        return arr.reshape(shape)


def open_safetensors(src):
    index_path = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(index_path):
        try:
            weight_map = json.load(open(index_path))["weight_map"]
        except (ValueError, KeyError):
            raise InputError(index_path, "not a safetensors index (no weight_map)")
        files = sorted({os.path.join(src, f) for f in weight_map.values()})
        return Safetensors(files, {k: os.path.join(src, v) for k, v in weight_map.items()})
    single = os.path.join(src, "model.safetensors")
    if os.path.exists(single):
        return Safetensors([single])
    shards = sorted(glob.glob(os.path.join(src, "model-*-of-*.safetensors")))
    return Safetensors(shards)


def read_json(path, what=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise InputError(path, f"missing{what and ' (' + what + ')' or ''}")
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(path, f"not valid JSON ({e})")


def hf_to_ct2(st, cfg, cfg_path):
    """A transformers WhisperForConditionalGeneration's tensors under CTranslate2's names (what
    the graph builders read), as CTranslate2's own transformers converter maps them."""
    pre = "model." if any(k.startswith("model.encoder.") for k in st.keys()) else ""
    get = lambda n: st.get(pre + n)  # noqa: E731
    try:
        L_enc, L_dec = int(cfg["encoder_layers"]), int(cfg["decoder_layers"])
        H_enc, H_dec = int(cfg["encoder_attention_heads"]), int(cfg["decoder_attention_heads"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(cfg_path, f"not a Whisper config.json (no {e})")
    w = {"encoder/num_heads": np.array(H_enc), "decoder/num_heads": np.array(H_dec)}

    def lin(dst, src, bias=True):
        w[dst + "/weight"] = get(src + ".weight")
        if bias:
            w[dst + "/bias"] = get(src + ".bias")

    def ln(dst, src):
        w[dst + "/gamma"], w[dst + "/beta"] = get(src + ".weight"), get(src + ".bias")

    def self_attn(dst, src):
        q, k, v = (get(f"{src}.{p}_proj.weight") for p in "qkv")
        w[dst + "/linear_0/weight"] = np.concatenate([q, k, v])
        qb, vb = get(src + ".q_proj.bias"), get(src + ".v_proj.bias")
        w[dst + "/linear_0/bias"] = np.concatenate([qb, np.zeros_like(qb), vb])
        lin(dst + "/linear_1", src + ".out_proj")

    def block(dst, src, cross):
        self_attn(dst + "/self_attention", src + ".self_attn")
        ln(dst + "/self_attention/layer_norm", src + ".self_attn_layer_norm")
        if cross:
            a = src + ".encoder_attn"
            lin(dst + "/attention/linear_0", a + ".q_proj")
            k, v, vb = get(a + ".k_proj.weight"), get(a + ".v_proj.weight"), get(a + ".v_proj.bias")
            w[dst + "/attention/linear_1/weight"] = np.concatenate([k, v])
            w[dst + "/attention/linear_1/bias"] = np.concatenate([np.zeros_like(vb), vb])
            lin(dst + "/attention/linear_2", a + ".out_proj")
            ln(dst + "/attention/layer_norm", src + ".encoder_attn_layer_norm")
        lin(dst + "/ffn/linear_0", src + ".fc1")
        lin(dst + "/ffn/linear_1", src + ".fc2")
        ln(dst + "/ffn/layer_norm", src + ".final_layer_norm")

    for c in ("conv1", "conv2"):
        lin(f"encoder/{c}", f"encoder.{c}")
    w["encoder/position_encodings/encodings"] = get("encoder.embed_positions.weight")
    for i in range(L_enc):
        block(f"encoder/layer_{i}", f"encoder.layers.{i}", cross=False)
    ln("encoder/layer_norm", "encoder.layer_norm")
    w["decoder/embeddings/weight"] = get("decoder.embed_tokens.weight")
    w["decoder/position_encodings/encodings"] = get("decoder.embed_positions.weight")
    for i in range(L_dec):
        block(f"decoder/layer_{i}", f"decoder.layers.{i}", cross=True)
    ln("decoder/layer_norm", "decoder.layer_norm")
    if "proj_out.weight" in st.keys() and not cfg.get("tie_word_embeddings", True):
        w["decoder/projection/weight"] = st.get("proj_out.weight")
    return w


class G:
    """Tiny ONNX graph builder."""

    def __init__(self):
        self.nodes, self.inits, self.n, self.consts = [], [], 0, {}

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.name(op_type) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def w(self, name, arr, dtype=np.float32):
        arr = np.array(arr, dtype=dtype, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def c(self, arr, dtype):
        arr = np.asarray(arr)
        key = (np.dtype(dtype).str, tuple(arr.ravel().tolist()), arr.shape)
        if key not in self.consts:
            self.consts[key] = self.w(self.name("const"), arr, dtype)
        return self.consts[key]

    def i64(self, *v):
        return self.c(np.array(v, np.int64), np.int64)

    def scalar_i64(self, v):
        return self.c(np.array(v, np.int64), np.int64)

    def f32(self, v):
        return self.c(np.array(v, np.float32), np.float32)

    def linear(self, x, W, name, bias=None):  # CT2 weight is [out, in]; store [in, out]
        y = self.op("MatMul", [x, self.w(name + ".wT", W.T)])
        if bias is not None and np.any(bias != 0):
            y = self.op("Add", [y, self.w(name + ".b", bias)])
        return y

    def layer_norm(self, x, w, p):  # p = CT2 prefix, e.g. "encoder/layer_0/ffn/layer_norm"
        return self.op("LayerNormalization", [x, self.w(p + ".g", w[p + "/gamma"]), self.w(p + ".b", w[p + "/beta"])],
                       axis=-1, epsilon=1e-5)

    def gelu(self, x):  # exact erf GELU (ORT fuses it)
        e = self.op("Erf", [self.op("Mul", [x, self.f32(1 / np.sqrt(2))])])
        return self.op("Mul", [self.op("Mul", [x, self.f32(0.5)]), self.op("Add", [e, self.f32(1.0)])])


def split_heads(g, x, H, dh):  # [B, T, D] -> [B, H, T, dh]
    return g.op("Transpose", [g.op("Reshape", [x, g.i64(0, -1, H, dh)])], perm=[0, 2, 1, 3])


def merge_heads(g, x, D):  # [B, H, T, dh] -> [B, T, D]
    return g.op("Reshape", [g.op("Transpose", [x], perm=[0, 2, 1, 3]), g.i64(0, -1, D)])


def attention(g, q, k, v, H, dh, D, mask=None, kv_split=False):
    qh = split_heads(g, q, H, dh)
    kh = k if kv_split else split_heads(g, k, H, dh)
    vh = v if kv_split else split_heads(g, v, H, dh)
    s = g.op("MatMul", [g.op("Mul", [qh, g.f32(dh ** -0.5)]), g.op("Transpose", [kh], perm=[0, 1, 3, 2])])
    if mask is not None:
        s = g.op("Add", [s, mask])
    return merge_heads(g, g.op("MatMul", [g.op("Softmax", [s], axis=-1), vh]), D)


def ffn(g, x, w, p):
    h = g.gelu(g.linear(x, w[p + "/linear_0/weight"], p + ".l0", w[p + "/linear_0/bias"]))
    return g.linear(h, w[p + "/linear_1/weight"], p + ".l1", w[p + "/linear_1/bias"])


def self_attn_block(g, x, w, p, H, D):
    h = g.layer_norm(x, w, p + "/self_attention/layer_norm")
    qkv = g.linear(h, w[p + "/self_attention/linear_0/weight"], p + ".qkv", w[p + "/self_attention/linear_0/bias"])
    return h, g.op("Split", [qkv, g.i64(D, D, D)], n_out=3, axis=-1)


def build_encoder(w, L, H, D, L_dec, H_dec):
    g, dh = G(), D // H
    x = g.op("Conv", ["mel", g.w("enc.conv1.w", w["encoder/conv1/weight"]), g.w("enc.conv1.b", w["encoder/conv1/bias"])],
             kernel_shape=[3], pads=[1, 1], strides=[1])
    x = g.op("Conv", [g.gelu(x), g.w("enc.conv2.w", w["encoder/conv2/weight"]), g.w("enc.conv2.b", w["encoder/conv2/bias"])],
             kernel_shape=[3], pads=[1, 1], strides=[2])
    x = g.op("Transpose", [g.gelu(x)], perm=[0, 2, 1])  # [B, S, D]
    S = g.op("Slice", [g.op("Shape", [x]), g.i64(1), g.i64(2)])
    pos = g.op("Slice", [g.w("enc.pos", w["encoder/position_encodings/encodings"]), g.i64(0), S, g.i64(0)])
    x = g.op("Add", [x, pos])
    for i in range(L):
        p = f"encoder/layer_{i}"
        _, (q, k, v) = self_attn_block(g, x, w, p, H, D)
        a = attention(g, q, k, v, H, dh, D)
        x = g.op("Add", [x, g.linear(a, w[p + "/self_attention/linear_1/weight"], p + ".o", w[p + "/self_attention/linear_1/bias"])])
        x = g.op("Add", [x, ffn(g, g.layer_norm(x, w, p + "/ffn/layer_norm"), w, p + "/ffn")])
    x = g.layer_norm(x, w, "encoder/layer_norm")
    ks, vs, dhd = [], [], D // H_dec
    for i in range(L_dec):  # cross-attention K/V of every decoder layer, computed once per utterance
        p = f"decoder/layer_{i}/attention"
        kv = g.linear(x, w[p + "/linear_1/weight"], p + ".kv", w[p + "/linear_1/bias"])
        k, v = g.op("Split", [kv, g.i64(D, D)], n_out=2, axis=-1)
        ks.append(g.op("Unsqueeze", [split_heads(g, k, H_dec, dhd), g.i64(0)]))
        vs.append(g.op("Unsqueeze", [split_heads(g, v, H_dec, dhd), g.i64(0)]))
    g.nodes += [helper.make_node("Concat", ks, ["cross_k"], axis=0), helper.make_node("Concat", vs, ["cross_v"], axis=0),
                helper.make_node("Identity", [x], ["encoder_out"])]
    F = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("mel", F, ["batch", int(w["encoder/conv1/weight"].shape[1]), "frames"])]
    outputs = [helper.make_tensor_value_info("cross_k", F, [L_dec, "batch", H_dec, "enc_len", dhd]),
               helper.make_tensor_value_info("cross_v", F, [L_dec, "batch", H_dec, "enc_len", dhd]),
               helper.make_tensor_value_info("encoder_out", F, ["batch", "enc_len", D])]
    return g, inputs, outputs


def build_decoder(w, L, H, D, V, untied_proj=False):
    g, dh = G(), D // H
    emb = g.w("dec.emb", w["decoder/embeddings/weight"])
    x = g.op("Gather", [emb, "tokens"], axis=0)  # [B, n, D]
    n = g.op("Slice", [g.op("Shape", ["tokens"]), g.i64(1), g.i64(2)])  # [1]
    P = g.op("Slice", [g.op("Shape", ["self_k"]), g.i64(2), g.i64(3)])  # [1] past length
    Pn = g.op("Add", [P, n])
    x = g.op("Add", [x, g.op("Slice", [g.w("dec.pos", w["decoder/position_encodings/encodings"]), P, Pn, g.i64(0)])])
    # causal mask [n, P+n]: query i (absolute P+i) may see keys j <= P+i
    qpos = g.op("Add", [g.op("Range", [g.scalar_i64(0), g.op("Squeeze", [n, g.i64(0)]), g.scalar_i64(1)]),
                        g.op("Squeeze", [P, g.i64(0)])])
    kpos = g.op("Range", [g.scalar_i64(0), g.op("Squeeze", [Pn, g.i64(0)]), g.scalar_i64(1)])
    masked = g.op("Greater", [g.op("Unsqueeze", [kpos, g.i64(0)]), g.op("Unsqueeze", [qpos, g.i64(1)])])
    mask = g.op("Where", [masked, g.f32(-1e9), g.f32(0.0)])
    new_k, new_v = [], []
    for i in range(L):
        p = f"decoder/layer_{i}"
        _, (q, k, v) = self_attn_block(g, x, w, p, H, D)
        k = g.op("Concat", [g.op("Gather", ["self_k", g.scalar_i64(i)], axis=0), k], axis=1)  # [B, P+n, D]
        v = g.op("Concat", [g.op("Gather", ["self_v", g.scalar_i64(i)], axis=0), v], axis=1)
        new_k.append(g.op("Unsqueeze", [k, g.i64(0)]))
        new_v.append(g.op("Unsqueeze", [v, g.i64(0)]))
        a = attention(g, q, k, v, H, dh, D, mask)
        x = g.op("Add", [x, g.linear(a, w[p + "/self_attention/linear_1/weight"], p + ".so", w[p + "/self_attention/linear_1/bias"])])
        h = g.layer_norm(x, w, p + "/attention/layer_norm")
        q = g.linear(h, w[p + "/attention/linear_0/weight"], p + ".cq", w[p + "/attention/linear_0/bias"])
        ck = g.op("Gather", ["cross_k", g.scalar_i64(i)], axis=0)  # [B, H, S, dh]
        cv = g.op("Gather", ["cross_v", g.scalar_i64(i)], axis=0)
        a = attention(g, q, ck, cv, H, dh, D, kv_split=True)
        x = g.op("Add", [x, g.linear(a, w[p + "/attention/linear_2/weight"], p + ".co", w[p + "/attention/linear_2/bias"])])
        x = g.op("Add", [x, ffn(g, g.layer_norm(x, w, p + "/ffn/layer_norm"), w, p + "/ffn")])
    x2 = g.op("Reshape", [g.layer_norm(x, w, "decoder/layer_norm"), g.i64(-1, D)])
    proj = w.get("decoder/projection/weight")
    if untied_proj or (proj is not None and proj is not w["decoder/embeddings/weight"]):
        # own [D, V] copy (int8-quantizable MatMul), or a checkpoint whose projection is its own
        lg = g.op("MatMul", [x2, g.w("dec.proj.wT", (w["decoder/embeddings/weight"] if proj is None else proj).T)])
    else:  # tied: logits = x @ emb^T, one copy of the embedding
        lg = g.op("Gemm", [x2, emb], transB=1)
    B = g.op("Slice", [g.op("Shape", ["tokens"]), g.i64(0), g.i64(1)])
    g.nodes += [helper.make_node("Reshape", [lg, g.op("Concat", [B, n, g.i64(V)], axis=0)], ["logits"]),
                helper.make_node("Concat", new_k, ["new_self_k"], axis=0),
                helper.make_node("Concat", new_v, ["new_self_v"], axis=0)]
    F = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "n"]),
              helper.make_tensor_value_info("self_k", F, [L, "batch", "past", D]),
              helper.make_tensor_value_info("self_v", F, [L, "batch", "past", D]),
              helper.make_tensor_value_info("cross_k", F, [L, "batch", H, "enc_len", dh]),
              helper.make_tensor_value_info("cross_v", F, [L, "batch", H, "enc_len", dh])]
    outputs = [helper.make_tensor_value_info("logits", F, ["batch", "n", V]),
               helper.make_tensor_value_info("new_self_k", F, [L, "batch", "total", D]),
               helper.make_tensor_value_info("new_self_v", F, [L, "batch", "total", D])]
    return g, inputs, outputs


def toposort(graph):
    """Orders `graph`'s nodes so each comes after what it reads (ORT's fp16 converter appends
    its input casts at the end)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    nodes, done = list(graph.node), []
    while nodes:
        rest = [n for n in nodes if not all(i in ready for i in n.input)]
        now = [n for n in nodes if all(i in ready for i in n.input)]
        if not now:
            raise RuntimeError("graph has a cycle or an undefined input")
        for n in now:
            ready.update(n.output)
        done += now
        nodes = rest
    del graph.node[:]
    graph.node.extend(done)


def save_model(model, path):
    """Writes `model`, its weights beside it (PATH.data) when over ONNX's protobuf limit."""
    big = sum(t.ByteSize() for t in model.graph.initializer) > EXTERNAL_DATA_OVER
    if os.path.exists(path + ".data"):
        os.remove(path + ".data")
    if big:
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + ".data", size_threshold=1024)
        onnx.checker.check_model(path)
    else:
        onnx.checker.check_model(model)
        onnx.save(model, path)
    return big


def save(built, path, name):
    g, inputs, outputs = built
    model = helper.make_model(helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="v2m whisper_to_onnx")
    model.ir_version = 8
    return save_model(model, path)


def quantize_int8(encoder, untied_decoder, encoder_out, decoder_out, big):
    """v2m's int8, chosen by measurement (scripts/bench-quant.sh, README "Models"): the encoder
    with ONNX Runtime's dynamic quantisation (every MatMul, per tensor), the decoder with 8-bit
    weight blocks of 128 (MatMulNBits, symmetric, int8 compute). Dynamic quantisation of the
    decoder is what cost fp32's accuracy; block-wise weights keep it at the same speed."""
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, on every call
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer, logger

    # Quiet: importing the block quantiser turns the root logger's INFO on (a line per node).
    logging.getLogger().setLevel(logging.ERROR)
    logger.setLevel(logging.ERROR)
    quantize_dynamic(encoder, encoder_out, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                     use_external_data_format=big)
    q = MatMulNBitsQuantizer(onnx.load(untied_decoder), bits=8, block_size=128, is_symmetric=True,
                             accuracy_level=4, op_types_to_quantize=("MatMul",))
    q.process()
    save_model(q.model.model, decoder_out)


def check_tokenizer(path, V):
    """The special ids the worker reads from tokenizer.json must fit the weights' vocabulary:
    Whisper's 1501 timestamp tokens follow <|notimestamps|> and end the vocabulary."""
    tok = read_json(path, "the model's tokenizer: copy it from the checkpoint's repository")
    try:
        ids = dict(tok["model"]["vocab"])
        added = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    except (KeyError, TypeError):
        raise InputError(path, "not a Hugging Face tokenizer.json (no model.vocab)")
    ids.update(added)
    for need in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|transcribe|>"):
        if need not in ids:
            raise InputError(path, f"not a Whisper tokenizer: it has no {need}")
    nt = ids["<|notimestamps|>"]
    if V - (nt + 1) != N_TIMESTAMPS or max(ids.values()) >= V:
        raise InputError(path, f"does not match the weights: <|notimestamps|> is id {nt}, so the weights' "
                               f"{V}-token vocabulary would have {V - nt - 1} timestamp tokens where Whisper "
                               f"has {N_TIMESTAMPS} (a tokenizer of another Whisper model?)")
    return ids


def load_ct2(src):
    meta, w = read_ct2(os.path.join(src, "model.bin"))
    if meta["spec"] != "WhisperSpec":
        raise InputError(os.path.join(src, "model.bin"), f"a CTranslate2 {meta['spec']}, not a Whisper model")
    cfg = read_json(os.path.join(src, "config.json"), "CTranslate2's suppression lists")
    if not isinstance(cfg, dict) or "suppress_ids" not in cfg:
        raise InputError(os.path.join(src, "config.json"), "no suppress_ids: not a faster-whisper config.json")
    conf = {k: cfg[k] for k in ("suppress_ids", "suppress_ids_begin", "lang_ids", "alignment_heads") if k in cfg}
    V = w["decoder/embeddings/weight"].shape[0] if "decoder/embeddings/weight" in w else 0
    return "ctranslate2", w, conf, V >= 51865


def load_transformers(src):
    cfg_path = os.path.join(src, "config.json")
    cfg = read_json(cfg_path, "the model's architecture")
    if cfg.get("model_type") not in (None, "whisper"):
        raise InputError(cfg_path, f"a {cfg.get('model_type')} model, not Whisper")
    st = open_safetensors(src)
    w = hf_to_ct2(st, cfg, cfg_path)
    gen_path = os.path.join(src, "generation_config.json")
    gen = read_json(gen_path) if os.path.exists(gen_path) else {}
    suppress = gen.get("suppress_tokens", cfg.get("suppress_tokens"))
    if suppress is None:
        raise InputError(gen_path, "missing, and config.json states no suppress_tokens: "
                                   "copy generation_config.json from the checkpoint's repository")
    V = w["decoder/embeddings/weight"].shape[0]
    conf = {"suppress_ids": list(suppress)}
    begin = gen.get("begin_suppress_tokens", cfg.get("begin_suppress_tokens"))
    if begin is not None:
        conf["suppress_ids_begin"] = list(begin)
    if gen.get("lang_to_id"):
        conf["lang_ids"] = sorted(gen["lang_to_id"].values())
    if gen.get("alignment_heads"):
        conf["alignment_heads"] = gen["alignment_heads"]
    return "transformers", w, conf, bool(gen.get("is_multilingual", V >= 51865))


def detect(src):
    if not os.path.isdir(src):
        raise InputError(src, "not a directory")
    if os.path.exists(os.path.join(src, "model.bin")):
        return load_ct2
    if (glob.glob(os.path.join(src, "*.safetensors")) or
            os.path.exists(os.path.join(src, "model.safetensors.index.json"))):
        return load_transformers
    if glob.glob(os.path.join(src, "pytorch_model*.bin")):
        raise InputError(src, "a PyTorch checkpoint (pytorch_model.bin) only: v2m reads model.safetensors "
                              "(the same repository has it) or a faster-whisper model.bin")
    raise InputError(src, "not a Whisper checkpoint: no model.bin (CTranslate2/faster-whisper) "
                          "and no model.safetensors (transformers)")


def shape_of(w, name, path):
    if name not in w:
        raise InputError(path, f"lacks tensor {name}")
    return w[name].shape


def convert(src, out_dir, int8=False, fp16=False, source=None):
    fmt, w, conf, multilingual = detect(src)(src)
    weights = os.path.join(src, "model.bin" if fmt == "ctranslate2" else "model.safetensors")
    D = shape_of(w, "encoder/conv1/weight", weights)[0]
    V = shape_of(w, "decoder/embeddings/weight", weights)[0]
    tok_path = os.path.join(src, "tokenizer.json")
    check_tokenizer(tok_path, V)
    as_f32 = {}  # by identity: an alias (the tied projection) stays the same array
    for k, v in w.items():
        if v.dtype in (np.float16, np.float64):
            w[k] = as_f32.setdefault(id(v), v.astype(np.float32))
    H_enc, H_dec = (int(np.asarray(w[f"{side}/num_heads"]).reshape(-1)[0]) for side in ("encoder", "decoder"))
    L_enc = len({m.group(1) for k in w for m in [re.match(r"encoder/layer_(\d+)/", k)] if m})
    L_dec = len({m.group(1) for k in w for m in [re.match(r"decoder/layer_(\d+)/", k)] if m})
    os.makedirs(out_dir, exist_ok=True)
    out = lambda f: os.path.join(out_dir, f)  # noqa: E731
    try:
        big = save(build_encoder(w, L_enc, H_enc, D, L_dec, H_dec), out("encoder.onnx"), "whisper_encoder")
        big |= save(build_decoder(w, L_dec, H_dec, D, V), out("decoder.onnx"), "whisper_decoder")
        if int8:
            save(build_decoder(w, L_dec, H_dec, D, V, untied_proj=True), out("decoder.untied.tmp.onnx"),
                 "whisper_decoder")
    except KeyError as e:
        raise InputError(weights, f"lacks tensor {e.args[0]}")
    shutil.copy(tok_path, out_dir)
    with open(out("config.json"), "w") as f:
        json.dump(conf, f, indent=1)
    variants = ["fp32"]
    if int8:
        quantize_int8(out("encoder.onnx"), out("decoder.untied.tmp.onnx"), out("encoder.int8.onnx"),
                      out("decoder.int8.onnx"), big)
        os.remove(out("decoder.untied.tmp.onnx"))
        if os.path.exists(out("decoder.untied.tmp.onnx.data")):
            os.remove(out("decoder.untied.tmp.onnx.data"))
        variants.append("int8")
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16
        for part in ("encoder", "decoder"):
            m = convert_float_to_float16(onnx.load(out(f"{part}.onnx")), keep_io_types=True, disable_shape_infer=True)
            toposort(m.graph)
            save_model(m, out(f"{part}.fp16.onnx"))
        variants.append("fp16")
    languages = len(conf.get("lang_ids", [])) if multilingual else 1
    info = dict(d_model=D, n_audio_layer=L_enc, n_audio_head=H_enc, n_text_layer=L_dec, n_text_head=H_dec, n_vocab=V,
                n_text_ctx=int(w["decoder/position_encodings/encodings"].shape[0]),
                n_audio_ctx=int(w["encoder/position_encodings/encodings"].shape[0]),
                n_mels=int(w["encoder/conv1/weight"].shape[1]), multilingual=multilingual,
                languages=languages, variants=variants, format=fmt, source=source or os.path.abspath(src))
    with open(out("model_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    return info


def main():
    ap = argparse.ArgumentParser(description="A Whisper checkpoint (CTranslate2 or transformers) -> ONNX for v2m")
    ap.add_argument("src_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--int8", action="store_true", help="also write *.int8.onnx (onnxruntime dynamic quantization)")
    ap.add_argument("--fp16", action="store_true", help="also write *.fp16.onnx (for the CUDA execution provider)")
    ap.add_argument("--source", help="where the weights came from, for model_info.json (default: SRC_DIR)")
    a = ap.parse_args()
    try:
        info = convert(a.src_dir, a.out_dir, a.int8, a.fp16, a.source)
    except InputError as e:
        print(f"whisper_to_onnx: {e}", file=sys.stderr)
        sys.exit(2)
    print(info)


if __name__ == "__main__":
    main()
