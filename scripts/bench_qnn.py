#!/usr/bin/env python3
"""xnpu's QNN path against ONNX Runtime's QNN execution provider, side by side in one run, on
the same model, the same QNN library (the onnxruntime-qnn wheel's libQnnHtp.so: on x86_64 the
HTP simulator, whose timings are CPU timings, not an NPU's) and the same SoC model.

  xnpu  `xnpu run MODEL --random --devices qnn:htp-sim,cpu --iterations N --level L`
        (XNPU_QNN_SOC=S, no compile cache): the median of N Session::run calls.
  ort   onnxruntime with the QNN plugin EP registered (register_execution_provider_library,
        get_ep_devices, add_provider_for_devices; the legacy providers=[...] form silently
        runs on the CPU with onnxruntime 1.32), backend_path = the same libQnnHtp.so,
        soc_model=S, CPU fallback disabled so that every node runs on QNN, the median of N
        session.run calls.

Rounds alternate xnpu/ort. Usage:
  .venv/bin/python scripts/bench_qnn.py [MODEL ...] [--rounds 3] [--iterations 50] [--soc 69]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxruntime_qnn

REPO = Path(__file__).resolve().parent.parent
TIME_RE = re.compile(r"^time\s+([0-9.]+) ms \(median of (\d+) on (.+)\)$", re.M)


def xnpu_round(xnpu, model, iterations, soc, level):
    env = dict(os.environ, XNPU_QNN_SOC=str(soc), XNPU_CACHE_DIR="")
    out = subprocess.run(
        [xnpu, "run", model, "--random", "--devices", "qnn:htp-sim,cpu",
         "--iterations", str(iterations), "--level", level],
        capture_output=True, text=True, env=env, check=True).stdout
    m = TIME_RE.search(out)
    if not m:
        sys.exit(f"no time line in xnpu's output:\n{out}")
    return float(m.group(1))


FALLBACK = set()


def ort_session(model, soc):
    try:
        return ort_session_with(model, soc, strict=True)
    except Exception:  # noqa: BLE001 - ORT's QNN EP does not take every node: allow the CPU EP
        FALLBACK.add(model)
        return ort_session_with(model, soc, strict=False)


def ort_session_with(model, soc, strict):
    so = ort.SessionOptions()
    if strict:
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    devs = [d for d in ort.get_ep_devices() if d.ep_name == "QNNExecutionProvider"]
    so.add_provider_for_devices(devs[:1], {
        "backend_path": onnxruntime_qnn.get_qnn_htp_path(),
        "soc_model": str(soc),
    })
    return ort.InferenceSession(model, sess_options=so)


def ort_round(model, iterations, soc):
    s = ort_session(model, soc)
    m = onnx.load(model)
    inits = {i.name for i in m.graph.initializer}
    feeds = {}
    for i in m.graph.input:
        if i.name in inits:
            continue
        shape = [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    s.run(None, feeds)
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        s.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["tests/fixtures/qnn/mlp.onnx"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--soc", type=int, default=69)
    ap.add_argument("--level", default="none")
    ap.add_argument("--xnpu", default=str(REPO / "target/release/xnpu"))
    a = ap.parse_args()
    ort.set_default_logger_severity(3)
    ort.register_execution_provider_library("QNNExecutionProvider", onnxruntime_qnn.get_library_path())
    print(f"xnpu vs ONNX Runtime {ort.__version__} QNN EP, {onnxruntime_qnn.get_qnn_htp_path()}, "
          f"SoC {a.soc}, level {a.level}, {a.rounds} rounds x {a.iterations} runs (medians, ms)")
    print(f"{'model':<28} {'xnpu':>9} {'ort':>9} {'ratio':>7}")
    for model in a.models:
        xs, os_ = [], []
        for r in range(a.rounds):
            pair = [lambda: xs.append(xnpu_round(a.xnpu, model, a.iterations, a.soc, a.level)),
                    lambda: os_.append(ort_round(model, a.iterations, a.soc))]
            for f in (pair if r % 2 == 0 else pair[::-1]):
                f()
        x, o = statistics.median(xs), statistics.median(os_)
        note = "  (ORT: some nodes on its CPU EP)" if model in FALLBACK else ""
        print(f"{Path(model).name:<28} {x:9.3f} {o:9.3f} {x / o:7.3f}{note}")


if __name__ == "__main__":
    main()
