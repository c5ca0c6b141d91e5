#!/usr/bin/env python3
"""Import time of a model with 100 MB of external-data weights: `xnpu info` (memory-mapped,
zero-copy) next to ONNX Runtime's InferenceSession creation on the same file, alternating
runs in one process tree so that both see the same machine state.

Usage: bench_import.py [--xnpu target/release/xnpu] [--runs 7] [--mb 100]
"""
import argparse
import os
import re
import statistics
import subprocess
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(folder: str, mb: int) -> str:
    path = os.path.join(folder, "model.onnx")
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(7)
    n_layers = max(1, mb // 4)  # 1024x1024 f32 = 4 MiB per layer
    inits, nodes, x = [], [], "x"
    for i in range(n_layers):
        w = numpy_helper.from_array(rng.standard_normal((1024, 1024), dtype=np.float32) * 0.03, f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"mm{i}"))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    graph = helper.make_graph(
        nodes, "bench_import",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1024])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 1024])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    return path


def xnpu_import_ms(xnpu: str, path: str) -> float:
    out = subprocess.run([xnpu, "info", path], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"imported\s+in ([0-9.]+) ms", out).group(1))


def ort_session_ms(path: str) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    t0 = time.perf_counter()
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return (time.perf_counter() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xnpu", default="target/release/xnpu")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--dir", default="target/bench-import")
    a = ap.parse_args()
    path = make_model(a.dir, a.mb)
    size = os.path.getsize(os.path.join(a.dir, "weights.bin")) / 2**20
    xs, os_ = [], []
    xnpu_import_ms(a.xnpu, path)  # warm the page cache for both
    ort_session_ms(path)
    for _ in range(a.runs):
        xs.append(xnpu_import_ms(a.xnpu, path))
        os_.append(ort_session_ms(path))
    x, o = statistics.median(xs), statistics.median(os_)
    print(f"model: {path} ({size:.0f} MiB external data, warm page cache, {a.runs} alternating runs)")
    print(f"xnpu import (mmap):               median {x:8.2f} ms")
    print(f"onnxruntime session creation:     median {o:8.2f} ms")
    print(f"ratio xnpu/onnxruntime: {x / o:.3f}")


if __name__ == "__main__":
    main()
