#!/usr/bin/env python3
"""Checks ONNX files written by xnpu's exporter.

For every .onnx file in the given folder (default target/export-check, where tests/onnx_export.rs
writes the exported light models; --recursive also walks its subfolders): runs
onnx.checker.check_model(full_check=True) (which also runs strict shape inference), and, when
every op of the model is an op ONNX Runtime implements, creates an onnxruntime
InferenceSession from it. Prints one line per failure and a summary:

    checker: N passed, N failed; onnxruntime: N loaded, N failed, N skipped (non-ORT ops)

Run with the project's venv:
    /work/main/.venv/bin/python scripts/check_export.py [folder] [-v] [--orig=CASES]
With --orig=CASES (the conformance cases folder), an exported node case `X.onnx` that ORT
cannot load is compared with the original `CASES/node/X/model.onnx`: when the original fails
too (an op or dtype ORT lacks), it is counted as "fails like the original", not as a failure.
With --run (and --orig), each exported node case that loads in ORT is also run on the case's
test data (tensor inputs and outputs only) and compared with the expected outputs
(rtol 1e-3, atol 1e-7, or the case's tolerance.txt); a mismatch where the original model
matches is a failure.
Exit status 1 when any file fails the checker or fails to load in ORT where the original loads,
or (with --run) computes differently from the original.
"""

import os
import sys

import onnx
import onnx.numpy_helper

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None


def ort_ops():
    """(domain, op_type) pairs that onnxruntime's CPU provider implements."""
    if ort is None:
        return None
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as C

        schemas = C.get_all_operator_schema()
        return {(s.domain or "ai.onnx", s.name) for s in schemas}
    except Exception:
        return None


def model_ops(model):
    ops = set()

    def visit(graph):
        for node in graph.node:
            ops.add((node.domain or "ai.onnx", node.op_type))
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
                for g in a.graphs:
                    visit(g)

    visit(model.graph)
    return ops


def read_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return onnx.numpy_helper.to_array(t)


def case_matches(model_path, case_dir):
    """True/False when the model reproduces the case's outputs in ORT, None if not testable."""
    import glob

    import numpy as np

    rtol, atol = 1e-3, 1e-7
    tol = os.path.join(case_dir, "tolerance.txt")
    if os.path.exists(tol):
        with open(tol) as f:
            parts = f.read().split()
            if len(parts) >= 2:
                rtol, atol = float(parts[0]), float(parts[1])
    try:
        so = ort.SessionOptions()
        so.log_severity_level = 4
        sess = ort.InferenceSession(model_path, sess_options=so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        for ds in sorted(glob.glob(os.path.join(case_dir, "test_data_set_*"))):
            ins = sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
            outs = sorted(glob.glob(os.path.join(ds, "output_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
            feed = {n: read_tensor(p) for n, p in zip(names, ins)}
            got = sess.run(None, feed)
            for g, p in zip(got, outs):
                w = read_tensor(p)
                g = np.asarray(g)
                if g.shape != w.shape:
                    return False
                if w.dtype.kind in "fc":
                    if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True):
                        return False
                elif not np.array_equal(g, w):
                    return False
        return True
    except Exception:  # noqa: BLE001
        return None


def loads_in_ort(path):
    try:
        so = ort.SessionOptions()
        so.log_severity_level = 4
        ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
        return True
    except Exception:  # noqa: BLE001
        return False


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv[1:]
    orig = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--orig=")), None)
    run = "--run" in sys.argv[1:] and orig is not None
    run_ok = run_bad = run_same = run_skip = 0
    root = args[0] if args else os.path.join("target", "export-check")
    files = []
    for dirpath, _, names in os.walk(root):
        files += [os.path.join(dirpath, n) for n in names if n.endswith(".onnx")]
        if "--recursive" not in sys.argv[1:]:
            break
    files.sort()
    if not files:
        print(f"check_export: no .onnx files under {root}")
        return 1
    known = ort_ops()
    checked_ok = checked_bad = ort_ok = ort_bad = ort_skip = ort_same = 0
    if ort is not None:
        ort.set_default_logger_severity(4)
    for path in files:
        name = os.path.relpath(path, root)
        try:
            model = onnx.load(path)
            onnx.checker.check_model(model, full_check=True)
            checked_ok += 1
        except Exception as e:  # noqa: BLE001
            checked_bad += 1
            msg = str(e).replace("\n", " ")
            print(f"CHECKER FAIL {name}: {msg if verbose else msg[:300]}")
            try:
                model = onnx.load(path)
            except Exception:  # noqa: BLE001
                continue
        if ort is None:
            ort_skip += 1
            continue
        ops = model_ops(model)
        missing = sorted(f"{d}.{o}" for d, o in ops if known is not None and (d, o) not in known)
        if missing:
            ort_skip += 1
            if verbose:
                print(f"ORT SKIP {name}: ops {', '.join(missing)}")
            continue
        try:
            so = ort.SessionOptions()
            so.log_severity_level = 4
            ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
            ort_ok += 1
            if run:
                stem = os.path.splitext(os.path.basename(path))[0]
                case_dir = os.path.join(orig, "node", stem)
                got = case_matches(path, case_dir) if os.path.isdir(case_dir) else None
                if got is None:
                    run_skip += 1
                elif got:
                    run_ok += 1
                elif case_matches(os.path.join(case_dir, "model.onnx"), case_dir):
                    run_bad += 1
                    print(f"ORT RUN MISMATCH {name}: the original matches, the export does not")
                else:
                    run_same += 1
        except Exception as e:  # noqa: BLE001
            msg = str(e).replace("\n", " ")
            original = None
            if orig is not None:
                stem = os.path.splitext(os.path.basename(path))[0]
                candidate = os.path.join(orig, "node", stem, "model.onnx")
                if os.path.exists(candidate):
                    original = candidate
            if original is not None and not loads_in_ort(original):
                ort_same += 1
                if verbose:
                    print(f"ORT FAIL (original fails too) {name}: {msg}")
                continue
            ort_bad += 1
            print(f"ORT FAIL {name}: {msg if verbose else msg[:300]}")
    print(
        f"checker: {checked_ok} passed, {checked_bad} failed; "
        f"onnxruntime: {ort_ok} loaded, {ort_bad} failed, "
        f"{ort_same} fail like the original, {ort_skip} skipped (non-ORT ops)"
    )
    if run:
        print(
            f"onnxruntime run: {run_ok} match, {run_bad} differ, "
            f"{run_same} differ like the original, {run_skip} not runnable"
        )
    return 1 if checked_bad or ort_bad or run_bad else 0


if __name__ == "__main__":
    sys.exit(main())
