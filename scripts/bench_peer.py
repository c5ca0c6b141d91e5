#!/usr/bin/env python3
"""One round of `xnpu bench` for a peer runtime: load and compile MODEL, run it on the
inputs `xnpu bench` wrote, and print one JSON line.

    python scripts/bench_peer.py --runtime onnxruntime|openvino --model M.onnx \
        --inputs DIR --iterations N --threads T [--device CPU]

DIR holds the inputs `xnpu bench` wrote: `inputs.json`, a list of `{name, file}`, and one
`.npy` file per model input (the same files every contender reads).
Timed like xnpu's worker: `first_ms` is the load, compile and first inference; `times_ms`
the inferences after it, each from the call to its return with the outputs as host arrays
(ONNX Runtime: `InferenceSession.run`; OpenVINO: `CompiledModel` infer request with shared
input buffers). `peak_rss_bytes` is the process's high-water mark (VmHWM), which includes the
Python interpreter (about 30-60 MiB more than a C++ host would use).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def peak_rss() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def energy_uj() -> int | None:
    """The package energy counter (RAPL through powercap), where the machine exposes one."""
    p = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    try:
        return int(p.read_text())
    except (OSError, ValueError):
        return None


def onnxruntime_runner(model: str, feeds: dict, threads: int, device: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, feeds), f"onnxruntime {ort.__version__} CPU EP"


def openvino_runner(model: str, feeds: dict, threads: int, device: str):
    import openvino as ov

    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = core.compile_model(model, device, config)
    request = compiled.create_infer_request()
    by_name = {p.any_name: i for i, p in enumerate(compiled.inputs)}
    inputs = {by_name.get(k, k): v for k, v in feeds.items()}

    def run():
        request.infer(inputs, share_inputs=True)
        return [request.get_output_tensor(i).data for i in range(len(compiled.outputs))]

    return run, f"openvino {ov.get_version()} {device}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", choices=["onnxruntime", "openvino"], required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="CPU")
    a = ap.parse_args()
    # The runtime's module is imported before the clock starts: first_ms covers load, compile
    # and the first inference, as xnpu's worker times them (not the interpreter's imports).
    __import__("onnxruntime" if a.runtime == "onnxruntime" else "openvino")
    folder = Path(a.inputs)
    manifest = json.loads((folder / "inputs.json").read_text())
    feeds = {e["name"]: np.load(folder / e["file"]) for e in manifest}
    t0 = time.perf_counter()
    make = onnxruntime_runner if a.runtime == "onnxruntime" else openvino_runner
    run, what = make(a.model, feeds, a.threads, a.device)
    run()
    first_ms = (time.perf_counter() - t0) * 1e3
    e0 = energy_uj()
    times = []
    for _ in range(max(1, a.iterations)):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    e1 = energy_uj()
    energy = (e1 - e0) / 1e6 / len(times) if e0 is not None and e1 is not None and e1 >= e0 else None
    print(json.dumps({
        "runtime": what,
        "first_ms": first_ms,
        "times_ms": times,
        "peak_rss_bytes": peak_rss(),
        "energy_j": energy,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
