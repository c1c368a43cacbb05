#!/usr/bin/env python3
"""Builds the quantised variants bench-quant.sh compares, from a model's fp32 ONNX pair.

  quant_variants.py MODEL_DIR OUT_DIR
      OUT_DIR/<variant>/{encoder,decoder}.int8.onnx + the model's tokenizer/config/info, for
      each variant (v2m-worker --model OUT_DIR/<variant> --variant int8 runs it):
        dynamic     ONNX Runtime's dynamic quantisation of every MatMul (per tensor, u8 activations)
        dynamic-pc  the same, per output channel
        q8-b32      weight-only 8-bit blocks of 32 weights (MatMulNBits, as whisper.cpp's q8_0)
        q8-b128     weight-only 8-bit blocks of 128 weights
        q8-b32-a4, q8-b128-a4   the same, computed with int8 activations (ONNX Runtime's
                    accuracy_level 4: its fast int8 kernels; fp32 activations take a slow path)
        mixed-b32, mixed-b128   the dynamic encoder with the q8-bN-a4 decoder
        enc-only    the dynamic encoder with the fp32 decoder
        dec-only    the fp32 encoder with the dynamic decoder
"""
import logging
import os
import shutil
import sys

import onnx

logging.getLogger().setLevel(logging.ERROR)
from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import whisper_to_onnx as conv  # noqa: E402


def untied_decoder(model_dir, out):
    """The fp32 decoder with its projection as a MatMul of its own (so it can be quantised)."""
    m = onnx.load(os.path.join(model_dir, "decoder.onnx"))
    g = m.graph
    emb = next(t for t in g.initializer if t.name == "dec.emb")
    for n in g.node:
        if n.op_type == "Gemm" and n.input[1] == "dec.emb":
            arr = onnx.numpy_helper.to_array(emb).T.copy()
            g.initializer.append(onnx.numpy_helper.from_array(arr, "dec.proj.wT"))
            new = onnx.helper.make_node("MatMul", [n.input[0], "dec.proj.wT"], list(n.output), name=n.name + "_mm")
            idx = list(g.node).index(n)
            g.node.remove(n)
            g.node.insert(idx, new)
            break
    conv.save_model(m, out)


def dynamic(src, dst, per_channel=False):
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                     per_channel=per_channel)


def nbits(src, dst, block, accuracy_level=None):
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer, logger

    logger.setLevel(logging.ERROR)  # a line per node otherwise
    q = MatMulNBitsQuantizer(onnx.load(src), bits=8, block_size=block, is_symmetric=True,
                             accuracy_level=accuracy_level, op_types_to_quantize=("MatMul",))
    q.process()
    conv.save_model(q.model.model, dst)


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "decoder.untied.onnx")
    untied_decoder(model_dir, tmp)
    enc32, dec32 = os.path.join(model_dir, "encoder.onnx"), os.path.join(model_dir, "decoder.onnx")
    builds = {
        "dynamic": lambda e, d: (dynamic(enc32, e), dynamic(tmp, d)),
        "dynamic-pc": lambda e, d: (dynamic(enc32, e, True), dynamic(tmp, d, True)),
        "q8-b32": lambda e, d: (nbits(enc32, e, 32), nbits(tmp, d, 32)),
        "q8-b128": lambda e, d: (nbits(enc32, e, 128), nbits(tmp, d, 128)),
        "q8-b32-a4": lambda e, d: (nbits(enc32, e, 32, 4), nbits(tmp, d, 32, 4)),
        "q8-b128-a4": lambda e, d: (nbits(enc32, e, 128, 4), nbits(tmp, d, 128, 4)),
        "mixed-b32": lambda e, d: (dynamic(enc32, e), nbits(tmp, d, 32, 4)),
        "mixed-b128": lambda e, d: (dynamic(enc32, e), nbits(tmp, d, 128, 4)),
        "enc-only": lambda e, d: (dynamic(enc32, e), shutil.copy(dec32, d)),
        "dec-only": lambda e, d: (shutil.copy(enc32, e), dynamic(tmp, d)),
    }
    only = sys.argv[3:] or list(builds)
    for name in only:
        d = os.path.join(out, name)
        if os.path.exists(os.path.join(d, "decoder.int8.onnx")):
            continue
        os.makedirs(d, exist_ok=True)
        for f in ("tokenizer.json", "config.json", "model_info.json"):
            shutil.copy(os.path.join(model_dir, f), d)
        builds[name](os.path.join(d, "encoder.int8.onnx"), os.path.join(d, "decoder.int8.onnx"))
        print(f"quant_variants: {name} -> {d}", file=sys.stderr)
    os.remove(tmp)


if __name__ == "__main__":
    main()
