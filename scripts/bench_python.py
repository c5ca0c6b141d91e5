#!/usr/bin/env python3
"""Per-call overhead of the Python wheel: `xnpu.InferenceSession.run` next to
`onnxruntime.InferenceSession.run` on the same model, inputs and threads (issue 9).

    .venv/bin/python scripts/bench_python.py [--rounds 9] [--calls 3000] [--out target/bench]

Models: `identity` (y = Identity(x), x of 1×4 float32: nothing but the call itself) and
`tinycnn` (models/tinycnn.onnx: the call plus a small model's compute). Each is timed with
one thread and with each runtime's default. The two runtimes alternate round by round (the
machine is shared and noisy) and the median per-call time of the rounds is kept. Prints a
table and writes python-overhead.json and python-overhead.svg in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

import xnpu

REPO = Path(__file__).resolve().parents[1]


def identity() -> tuple[bytes, dict]:
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString(), {"x": np.ones((1, 4), np.float32)}


def tinycnn() -> tuple[bytes, dict]:
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    return (REPO / "models" / "tinycnn.onnx").read_bytes(), {"image": x}


def per_call_us(run, calls: int) -> float:
    for _ in range(max(calls // 20, 10)):
        run()
    t = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - t) / calls * 1e6


def measure(model: bytes, feed: dict, threads: int | None, rounds: int, calls: int) -> dict:
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    ref = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    ours = xnpu.InferenceSession(model, devices="cpu-only", threads=threads)
    np.testing.assert_allclose(ours.run(None, feed)[0], ref.run(None, feed)[0], rtol=1e-5, atol=1e-6)
    times: dict[str, list[float]] = {"xnpu": [], "onnxruntime": []}
    for r in range(rounds):
        order = [("xnpu", ours), ("onnxruntime", ref)]
        if r % 2:
            order.reverse()
        for name, s in order:
            times[name].append(per_call_us(lambda: s.run(None, feed), calls))
    x, o = float(np.median(times["xnpu"])), float(np.median(times["onnxruntime"]))
    return {"xnpu_us": x, "onnxruntime_us": o, "ratio": x / o, "rounds": times}


def svg(rows: list[dict]) -> str:
    """Grouped horizontal bars: per-call µs of each runtime, one group per case, each group
    on its own scale (the cases differ by three orders of magnitude)."""
    bar, gap, left, width = 14, 12, 190, 420
    height = 40 + len(rows) * (2 * bar + gap) + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="20" font-size="14">Session.run per call (µs, lower is better; '
        "each case on its own scale)</text>",
    ]
    y = 40
    for r in rows:
        top = max(r["xnpu_us"], r["onnxruntime_us"])
        out.append(f'<text x="10" y="{y + bar + 4}">{r["case"]}</text>')
        for name, color in (("xnpu", "#2b6cb0"), ("onnxruntime", "#a0aec0")):
            v = r[f"{name}_us"]
            w = max(1.0, v / top * width)
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}"/>')
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 3}">{name} {v:.1f}</text>')
            y += bar
        y += gap
    out.append("</svg>")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=REPO / "target" / "bench")
    args = ap.parse_args()
    rows = []
    print(f"{'case':<22} {'xnpu µs':>9} {'ORT µs':>9} {'xnpu/ORT':>9}")
    for name, make in (("identity", identity), ("tinycnn", tinycnn)):
        model, feed = make()
        calls = args.calls if name == "identity" else max(args.calls // 10, 50)
        for threads in (1, None):
            r = measure(model, feed, threads, args.rounds, calls)
            case = f"{name}, threads={threads or 'default'}"
            r["case"] = case
            rows.append(r)
            print(f"{case:<22} {r['xnpu_us']:>9.1f} {r['onnxruntime_us']:>9.1f} {r['ratio']:>8.2f}×")
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"onnxruntime": ort.__version__, "numpy": np.__version__, "rows": rows}
    (args.out / "python-overhead.json").write_text(json.dumps(meta, indent=1))
    (args.out / "python-overhead.svg").write_text(svg(rows))
    print(f"wrote {args.out / 'python-overhead.json'} and {args.out / 'python-overhead.svg'}")


if __name__ == "__main__":
    main()
