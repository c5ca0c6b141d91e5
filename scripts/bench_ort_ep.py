#!/usr/bin/env python3
"""What xnpu's ONNX Runtime execution provider costs: ONNX Runtime with the EP selected for
one xnpu device, next to xnpu run directly (the wheel's InferenceSession) on the same device,
model and inputs (issue 20: at most 1.05x).

    .venv/bin/python scripts/bench_ort_ep.py [--rounds 7] [--devices cpu,openvino:cpu]
                                             [--models tinycnn,resnet18,...] [--out target/bench]

Models: models/tinycnn.onnx and target/bench-models/*.onnx (scripts/make_bench_models.py).
The ONNX Runtime session turns its thread pool's spinning off (`session.intra_op.allow_spinning`
0), as docs/onnxruntime-ep.md recommends when the EP takes the whole model.
The two alternate round by round (the machine is shared and noisy); each round times a fixed
number of runs after a warm-up, and the median of the rounds is kept. Both check their
outputs against each other first. Prints a table and writes ort-ep-overhead.json and
ort-ep-overhead.svg in --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import xnpu

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "target" / "bench-models"


def model_path(name: str) -> Path:
    return REPO / "models" / "tinycnn.onnx" if name == "tinycnn" else BENCH / f"{name}.onnx"


def feed_for(session: ort.InferenceSession, name: str) -> dict:
    if name == "tinycnn":
        return {"image": np.load(REPO / "models" / "tinycnn.image.npy")}
    rng = np.random.default_rng(0)
    feed = {}
    for i in session.get_inputs():
        dims = [d if isinstance(d, int) else (128 if "seq" in str(d) else 1) for d in i.shape]
        if i.type == "tensor(int64)":
            feed[i.name] = rng.integers(0, 1000, dims, dtype=np.int64)
            if "mask" in i.name:
                feed[i.name] = np.ones(dims, np.int64)
        else:
            feed[i.name] = rng.standard_normal(dims).astype(np.float32)
    return feed


def per_run_ms(run, runs: int) -> float:
    run()
    t = time.perf_counter()
    for _ in range(runs):
        run()
    return (time.perf_counter() - t) / runs * 1e3


def fixed_cost(eps: dict, rounds: int, shape: tuple = (1, 4)) -> dict:
    """µs per run of y = Relu(x), x float32 of `shape` (1×4: nothing but each path's fixed
    cost; 1 MiB: what copying an output costs too): ONNX Runtime's own CPU EP, ONNX Runtime
    with xnpu's EP, and xnpu directly, alternating."""
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_provider_for_devices([eps["cpu"]], {})
    plain = ort.SessionOptions()
    plain.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = {
        "onnxruntime": ort.InferenceSession(m, plain, providers=["CPUExecutionProvider"]),
        "onnxruntime+xnpu EP": ort.InferenceSession(m, so),
        "xnpu": xnpu.InferenceSession(m, devices="cpu"),
    }
    feed = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for r in range(rounds):
        order = list(sessions.items())
        if r % 2:
            order.reverse()
        for k, s in order:
            times[k].append(per_run_ms(lambda: s.run(None, feed), 5000 if len(shape) < 3 else 1000) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def cache_footprint(eps: dict, rounds: int) -> dict:
    """µs per run of tinycnn on xnpu's CPU, one thread: directly, directly with 512 KiB of
    other memory written between runs (the time of the writes taken off), and through ONNX
    Runtime + the EP. Between direct runs a light model's working set stays in cache; a host
    that does its own work between runs leaves it colder, and for a model this light that
    costs more than the host's fixed per-run cost (docs/onnxruntime-ep.md)."""
    path = str(model_path("tinycnn"))
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = 1
    so.add_provider_for_devices([eps["cpu"]], {"threads": "1"})
    via_ep = ort.InferenceSession(path, so)
    direct = xnpu.InferenceSession(path, devices="cpu", threads=1)
    feed = {"image": np.load(REPO / "models" / "tinycnn.image.npy")}
    other = np.ones(512 * 256, np.float32)

    def touched() -> None:
        other.__iadd__(1.0)
        direct.run(None, feed)

    def touch_only() -> None:
        other.__iadd__(1.0)

    paths = {"xnpu": lambda: direct.run(None, feed), "xnpu, 512 KiB touched between runs": touched,
             "onnxruntime+xnpu EP": lambda: via_ep.run(None, feed)}
    times: dict[str, list[float]] = {k: [] for k in paths}
    touch = []
    for r in range(rounds):
        order = list(paths.items())
        if r % 2:
            order.reverse()
        for k, run in order:
            times[k].append(per_run_ms(run, 1000) * 1e3)
        touch.append(per_run_ms(touch_only, 1000) * 1e3)
    out = {k: float(np.median(v)) for k, v in times.items()}
    # The touch itself is not the model's time.
    out["xnpu, 512 KiB touched between runs"] -= float(np.median(touch))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--devices", default="cpu,openvino:cpu")
    ap.add_argument("--models", default="tinycnn,resnet18,mobilenet_v3,bert_encoder")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "bench")
    a = ap.parse_args()
    ort.set_default_logger_severity(3)
    ort.register_execution_provider_library("xnpu", xnpu.get_ep_library_path())
    eps = {d.ep_metadata["xnpu.device"]: d for d in ort.get_ep_devices() if d.ep_name == xnpu.EP_NAME}
    rows = []
    print(f"{'device':<14} {'model':<14} {'xnpu ms':>9} {'ORT+EP ms':>10} {'ORT+EP/xnpu':>12}  EP took")
    for device in a.devices.split(","):
        for name in a.models.split(","):
            path = model_path(name)
            so = ort.SessionOptions()
            so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
            # docs/onnxruntime-ep.md: when xnpu takes every node, ONNX Runtime's own thread
            # pool has nothing to run, and its spinning workers only take cores from xnpu's.
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_provider_for_devices([eps[device]], {})
            via_ep = ort.InferenceSession(str(path), so)
            direct = xnpu.InferenceSession(str(path), devices=device)
            feed = feed_for(via_ep, name)
            got, want = via_ep.run(None, feed), direct.run(None, feed)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(w).max())))
            info = via_ep.get_provider_graph_assignment_info()
            mine = sum(len(i.get_nodes()) for i in info if i.ep_name == xnpu.EP_NAME)
            total = sum(len(i.get_nodes()) for i in info)
            t0 = time.perf_counter()
            direct.run(None, feed)
            once = time.perf_counter() - t0
            runs = max(3, min(1000, int(1.5 / max(once, 1e-5))))
            times: dict[str, list[float]] = {"xnpu": [], "ort_ep": []}
            for r in range(a.rounds):
                order = [("xnpu", direct), ("ort_ep", via_ep)]
                if r % 2:
                    order.reverse()
                for key, s in order:
                    times[key].append(per_run_ms(lambda: s.run(None, feed), runs))
            x, e = float(np.median(times["xnpu"])), float(np.median(times["ort_ep"]))
            row = {"device": device, "model": name, "xnpu_ms": x, "ort_ep_ms": e, "ratio": e / x,
                   "ep_nodes": mine, "nodes": total, "runs_per_round": runs, "rounds": times}
            rows.append(row)
            print(f"{device:<14} {name:<14} {x:>9.3f} {e:>10.3f} {e / x:>11.3f}x  {mine}/{total}")
    per_call = fixed_cost(eps, a.rounds)
    print("per-call cost of a one-Relu model (µs): " + ", ".join(f"{k} {v:.1f}" for k, v in per_call.items()))
    per_mib = fixed_cost(eps, a.rounds, (4, 64, 32, 32))
    print("the same on 1 MiB (µs): " + ", ".join(f"{k} {v:.1f}" for k, v in per_mib.items()))
    cache = cache_footprint(eps, a.rounds)
    print("tinycnn on cpu, 1 thread (µs): " + ", ".join(f"{k} {v:.1f}" for k, v in cache.items()))
    a.out.mkdir(parents=True, exist_ok=True)
    meta = {"onnxruntime": ort.__version__, "rows": rows, "one_relu_us": per_call, "one_relu_1mib_us": per_mib,
            "tinycnn_cpu_1_thread_us": cache}
    (a.out / "ort-ep-overhead.json").write_text(json.dumps(meta, indent=1))
    w, bar = 420, 12
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="760" height="{40 + 34 * len(rows)}" '
           'font-family="sans-serif" font-size="12">',
           '<text x="10" y="20" font-size="14">ONNX Runtime + xnpu EP vs xnpu directly '
           "(ms per run, lower is better; each row on its own scale)</text>"]
    y = 36
    for r in rows:
        top = max(r["xnpu_ms"], r["ort_ep_ms"])
        svg.append(f'<text x="10" y="{y + bar + 4}">{r["device"]} {r["model"]}</text>')
        for key, label, color in (("xnpu_ms", "xnpu", "#2b6cb0"), ("ort_ep_ms", "ORT+EP", "#a0aec0")):
            bw = max(1.0, r[key] / top * w)
            svg.append(f'<rect x="200" y="{y}" width="{bw:.1f}" height="{bar}" fill="{color}"/>')
            svg.append(f'<text x="{204 + bw:.1f}" y="{y + bar - 2}">{label} {r[key]:.2f}</text>')
            y += bar
        y += 10
    svg.append("</svg>")
    (a.out / "ort-ep-overhead.svg").write_text("\n".join(svg))
    print(f"wrote {a.out / 'ort-ep-overhead.json'} and {a.out / 'ort-ep-overhead.svg'}")


if __name__ == "__main__":
    main()
