#!/usr/bin/env python3
"""Per-inference overhead of xnpu's OpenVINO backend against OpenVINO's own Python API.

Side by side in one run, rounds interleaved (xnpu, OpenVINO, xnpu, OpenVINO, ...) so machine
noise hits both. Both sides compile the same ONNX file for OpenVINO's CPU device with the
same properties (INFERENCE_PRECISION_HINT=f32, PERFORMANCE_HINT=LATENCY,
INFERENCE_NUM_THREADS=T, no compile cache) and time single inferences on one input of the
model's shape (symbolic dimensions 1).

What each timing covers:
  xnpu      `xnpu run MODEL --random --devices openvino:cpu --threads T --no-cache
            --iterations N --level L`: the median of N `Session::run` calls, each timed from
            the call to its return: input checks, the plan (one OpenVINO partition), wrapping
            the input in an OpenVINO tensor, `ov_infer_request_infer`, reading the outputs
            back as xnpu tensors. Loading, the graph passes and the compile are not timed.
            A fresh process (and compile) per round.
  ov_bare   OpenVINO's Python API: `Core().compile_model(path, "CPU", config)`, one infer
            request, the input tensor set once (sharing the numpy buffer), then the median of
            N `request.infer(share_outputs=True)` calls: the inference plus the Python call
            (a few microseconds; the outputs come back as views, nothing is copied in or out).
            A fresh Core and compile per round.
  ov_copy   The same request, the median of N `request.infer({0: x})` calls: OpenVINO's
            Python API copies the input into the request's tensor and the outputs into new
            numpy arrays (share_inputs/share_outputs False, the defaults). Timed in the same
            OpenVINO round, after ov_bare.

The ratio reported is median(xnpu) / median(ov_bare) over the rounds' medians (the strict
one: OpenVINO doing the least it can per inference), with the median of the per-round
ratios (xnpu and OpenVINO of the same round: less sensitive to slow drifts in machine load),
the ratio of the best rounds (min/min: machine noise only ever adds time) and ov_copy's
ratio beside it. Rounds alternate which side goes first.

Usage: .venv/bin/python scripts/bench_openvino.py [MODEL ...] [--threads 2] [--rounds 5]
       [--iterations N] [--levels none,all] [--json target/bench/openvino.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import openvino as ov

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = [
    "target/onnx-cases/light/light_resnet50.onnx",
    "target/onnx-cases/light/light_squeezenet.onnx",
    "target/onnx-cases/light/light_inception_v1.onnx",
    "models/tinycnn.onnx",
]
TIME_RE = re.compile(r"^time\s+([0-9.]+) ms \(median of (\d+) on (.+)\)$", re.M)


def ov_config(threads: int) -> dict[str, str]:
    return {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": str(threads),
        "CACHE_DIR": "",
    }


def ov_inputs(model: ov.Model) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for port in model.inputs:
        ps = port.get_partial_shape()
        shape = [d.get_length() if d.is_static else 1 for d in ps]
        dtype = port.get_element_type().to_dtype()
        if np.issubdtype(dtype, np.floating):
            a = rng.standard_normal(shape).astype(dtype)
        else:
            a = rng.integers(0, 2, shape).astype(dtype)
        out.append(a)
    return out


def ov_round(path: Path, threads: int, iterations: int) -> dict:
    core = ov.Core()
    model = core.read_model(str(path))
    xs = ov_inputs(model)
    compiled = core.compile_model(model, "CPU", ov_config(threads))
    req = compiled.create_infer_request()
    for i, x in enumerate(xs):
        req.set_input_tensor(i, ov.Tensor(x, shared_memory=True))
    bare = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        req.infer(share_outputs=True)
        bare.append((time.perf_counter() - t0) * 1e3)
    feed = dict(enumerate(xs))
    copy = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        req.infer(feed)
        copy.append((time.perf_counter() - t0) * 1e3)
    got = {
        k: compiled.get_property(k)
        for k in ("INFERENCE_PRECISION_HINT", "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS")
    }
    return {
        "bare": statistics.median(bare),
        "copy": statistics.median(copy),
        "properties": {k: str(v) for k, v in got.items()},
    }


def xnpu_round(xnpu: Path, path: Path, threads: int, iterations: int, level: str) -> float:
    cmd = [
        str(xnpu), "run", str(path), "--random", "--devices", "openvino:cpu",
        "--threads", str(threads), "--no-cache", "--iterations", str(iterations),
        "--level", level,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    m = TIME_RE.search(p.stdout)
    if not m or m.group(3) != "openvino:cpu":
        sys.exit(f"no 'time ... on openvino:cpu' line in:\n{p.stdout}")
    return float(m.group(1))


def auto_iterations(path: Path, threads: int) -> int:
    """About 2 s of inference per round, between 10 and 500 iterations."""
    core = ov.Core()
    model = core.read_model(str(path))
    xs = ov_inputs(model)
    req = core.compile_model(model, "CPU", ov_config(threads)).create_infer_request()
    req.infer(dict(enumerate(xs)))
    t0 = time.perf_counter()
    req.infer(dict(enumerate(xs)))
    one = time.perf_counter() - t0
    return max(10, min(500, int(2.0 / max(one, 1e-6))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iterations", type=int, default=0, help="per round (0: about 2 s)")
    ap.add_argument("--levels", default="none,all")
    ap.add_argument("--xnpu", default=str(REPO / "target/release/xnpu"))
    ap.add_argument("--json", default=str(REPO / "target/bench/openvino.json"))
    a = ap.parse_args()
    xnpu = Path(a.xnpu)
    if not xnpu.exists():
        sys.exit(f"{xnpu} is missing: cargo build --release")
    levels = [x for x in a.levels.split(",") if x]
    results = []
    for m in a.models:
        path = (REPO / m) if not Path(m).is_absolute() else Path(m)
        n = a.iterations or auto_iterations(path, a.threads)
        xs = {lv: [] for lv in levels}
        bare, copy, props = [], [], {}
        for r in range(a.rounds):
            if r % 2:
                o = ov_round(path, a.threads, n)
            for lv in levels:
                xs[lv].append(xnpu_round(xnpu, path, a.threads, n, lv))
            if not r % 2:
                o = ov_round(path, a.threads, n)
            bare.append(o["bare"])
            copy.append(o["copy"])
            props = o["properties"]
            print(f"  {path.name} round {r + 1}/{a.rounds}: "
                  + " ".join(f"xnpu[{lv}] {xs[lv][-1]:.3f}" for lv in levels)
                  + f" ov_bare {bare[-1]:.3f} ov_copy {copy[-1]:.3f} ms", file=sys.stderr)
        med_bare, med_copy = statistics.median(bare), statistics.median(copy)
        row = {
            "model": m,
            "threads": a.threads,
            "iterations_per_round": n,
            "rounds": a.rounds,
            "ov_bare_ms": med_bare,
            "ov_copy_ms": med_copy,
            "ov_bare_rounds_ms": bare,
            "ov_copy_rounds_ms": copy,
            "ov_properties": props,
            "xnpu": {},
        }
        for lv in levels:
            mx = statistics.median(xs[lv])
            row["xnpu"][lv] = {
                "ms": mx,
                "rounds_ms": xs[lv],
                "ratio_vs_ov_bare": mx / med_bare,
                "paired_ratio_vs_ov_bare": statistics.median(
                    x / b for x, b in zip(xs[lv], bare)),
                "best_ratio_vs_ov_bare": min(xs[lv]) / min(bare),
                "ratio_vs_ov_copy": mx / med_copy,
            }
        results.append(row)

    print(f"\nxnpu vs OpenVINO {ov.get_version()} on CPU, threads {a.threads}, "
          f"{a.rounds} interleaved rounds, medians (ms)")
    head = f"{'model':<24} {'iters':>5} {'ov_bare':>9} {'ov_copy':>9}"
    for lv in levels:
        head += f" {'xnpu/' + lv:>11} {'ratio':>6} {'paired':>6} {'best':>6} {'vs copy':>7}"
    print(head)
    for row in results:
        line = (f"{Path(row['model']).stem:<24} {row['iterations_per_round']:>5} "
                f"{row['ov_bare_ms']:>9.3f} {row['ov_copy_ms']:>9.3f}")
        for lv in levels:
            x = row["xnpu"][lv]
            line += (f" {x['ms']:>11.3f} {x['ratio_vs_ov_bare']:>6.3f}"
                     f" {x['paired_ratio_vs_ov_bare']:>6.3f} {x['best_ratio_vs_ov_bare']:>6.3f}"
                     f" {x['ratio_vs_ov_copy']:>7.3f}")
        print(line)
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "openvino": ov.get_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor()},
        "threads": a.threads,
        "properties": ov_config(a.threads),
        "covers": {
            "xnpu": "median of N Session::run calls in one xnpu run process: input checks, "
                    "plan, OpenVINO tensor wrap, infer, outputs read back; no load/compile",
            "ov_bare": "median of N request.infer(share_outputs=True) with the input tensor "
                       "set once (shared numpy memory): inference plus the Python call",
            "ov_copy": "median of N request.infer({0: x}): input copied in, outputs "
                       "copied to new numpy arrays",
        },
        "results": results,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
