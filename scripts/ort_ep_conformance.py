#!/usr/bin/env python3
"""The ONNX node conformance cases through ONNX Runtime with xnpu as its execution provider.

Every case that passes on xnpu's `cpu:` line (tests/onnx_conformance/cpu_passing.txt) runs in
the stock `onnxruntime` with libxnpu_onnxruntime_ep.so registered and only xnpu's device
selected (ONNX Runtime's own graph optimisations off, so the EP sees the case's nodes as
written), and its outputs are compared with the case's expected outputs at the case's
tolerances (onnx's rtol 1e-3, atol 1e-7 unless the case says otherwise).

- passed: the outputs match and xnpu's EP took at least one node;
- failed: a wrong output, an error, or a case where the EP took no node;
- skipped: the case does not load or run in ONNX Runtime's own CPU EP, reads or returns
  values that are not tensors (sequences, optionals: they do not cross the EP interface), or
  leaves no node to place.

The last line is `ort-ep: N passed, N failed, N skipped`; the line before says how many of
the cases run the EP took whole (every node on xnpu's device). Every case here passes on
xnpu's CPU, so the device declares every op of each: at least 90% must be taken whole, and
any failure fails the run (exit status 1).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def tolerance(case):
    rtol, atol = 1e-3, 1e-7
    txt = os.path.join(case, "tolerance.txt")
    js = os.path.join(case, "tolerance.json")
    if os.path.exists(txt):
        parts = open(txt).read().split()
        rtol, atol = float(parts[0]), float(parts[1])
    elif os.path.exists(js):
        t = json.load(open(js))
        rtol, atol = t.get("rtol", rtol), t.get("atol", atol)
    return rtol, atol


def read_tensors(folder, prefix, values):
    """The case's tensors in order, or None when one of the graph's `values` (its inputs or
    outputs) is not a tensor."""
    if any(v.type.WhichOneof("value") != "tensor_type" for v in values):
        return None
    files = sorted(
        (f for f in os.listdir(folder) if f.startswith(prefix) and f.endswith(".pb")),
        key=lambda f: int(f[len(prefix) : -3]),
    )
    out = []
    for f in files:
        t = onnx.TensorProto()
        t.ParseFromString(open(os.path.join(folder, f), "rb").read())
        out.append((t.name, numpy_helper.to_array(t)))
    return out


def close(got, want, rtol, atol):
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    # ONNX Runtime returns float8 outputs as uint8 arrays of their bit patterns.
    if want.dtype.kind == "V" and got.dtype == np.uint8 and want.dtype.itemsize == 1:
        got = got.view(want.dtype)
    # ml_dtypes' float types (bfloat16, float8, float4) are NumPy kind 'V': compare as floats
    # (NaN equals NaN), not bit for bit.
    if want.dtype.kind in "fc" or (want.dtype.kind == "V" and "float" in want.dtype.name):
        g, w = got.astype(np.float64), want.astype(np.float64)
        nan_ok = np.isnan(g) == np.isnan(w)
        ok = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True) & nan_ok
        if not ok.all():
            i = int(np.argmax(~ok.reshape(-1)))
            return f"element {i}: {g.reshape(-1)[i]} vs {w.reshape(-1)[i]}"
        return None
    if want.dtype.kind in "OSU":
        return None if got.tolist() == want.tolist() else "strings differ"
    if not np.array_equal(got, want):
        return "values differ"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ep-lib", required=True)
    ap.add_argument("--cases", required=True, help="target/onnx-cases/node")
    ap.add_argument("--passing", required=True, help="tests/onnx_conformance/cpu_passing.txt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--filter", default="")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()

    ort.set_default_logger_severity(3)
    ort.register_execution_provider_library("xnpu", a.ep_lib)
    devs = [
        d
        for d in ort.get_ep_devices()
        if d.ep_name == "XnpuExecutionProvider" and d.ep_metadata.get("xnpu.device") == a.device
    ]
    if not devs:
        print(f"xnpu's EP offers no device {a.device}", file=sys.stderr)
        return 2
    with open(a.passing) as f:
        cases = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    cases = [c for c in cases if a.filter in c]
    passed = failed = skipped = whole = ran = 0
    failures = []
    start = time.time()
    for name in cases:
        case = os.path.join(a.cases, name)
        model = os.path.join(case, "model.onnx")
        data = os.path.join(case, "test_data_set_0")
        if not os.path.exists(model):
            skipped += 1
            continue
        graph = onnx.load(model, load_external_data=False).graph
        given = {i.name for i in graph.initializer}
        inputs = read_tensors(data, "input_", [i for i in graph.input if i.name not in given])
        outputs = read_tensors(data, "output_", graph.output)
        if inputs is None or outputs is None:
            skipped += 1
            continue
        plain = ort.SessionOptions()
        plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            ref = ort.InferenceSession(model, plain, providers=["CPUExecutionProvider"])
        except Exception:
            skipped += 1
            continue
        feed = {i.name: v for i, (_, v) in zip(ref.get_inputs(), inputs)}
        try:
            ref.run(None, feed)
        except Exception:
            # ONNX Runtime itself cannot take these inputs (bfloat16 from NumPy, say).
            skipped += 1
            continue
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
        so.add_provider_for_devices(devs, {})
        try:
            s = ort.InferenceSession(model, so)
            got = s.run(None, feed)
            info = s.get_provider_graph_assignment_info()
        except Exception as e:
            failed += 1
            failures.append((name, f"error: {str(e).splitlines()[0][:300]}"))
            continue
        ours = sum(len(i.get_nodes()) for i in info if i.ep_name == "XnpuExecutionProvider")
        total = sum(len(i.get_nodes()) for i in info)
        if total == 0:
            # ONNX Runtime left no node to place (a graph of constants): nothing to take.
            skipped += 1
            continue
        ran += 1
        if ours == total:
            whole += 1
        rtol, atol = tolerance(case)
        why = None
        if ours == 0:
            why = "xnpu's EP took no node"
        else:
            for k, ((_, want), g) in enumerate(zip(outputs, got)):
                why = close(np.asarray(g), want, rtol, atol)
                if why:
                    why = f"output {k}: {why}"
                    break
        if why:
            failed += 1
            failures.append((name, why))
        else:
            passed += 1
    for name, why in failures[: None if a.v else 40]:
        print(f"  FAIL {name}: {why}")
    if len(failures) > 40 and not a.v:
        print(f"  ... and {len(failures) - 40} more (-v shows all)")
    share = 100.0 * whole / max(ran, 1)
    print(
        f"ort-ep ({a.device}): took {whole} of the {ran} cases run whole ({share:.1f}%); "
        f"{time.time() - start:.0f} s"
    )
    print(f"ort-ep: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and share >= 90.0 else 1


if __name__ == "__main__":
    sys.exit(main())
