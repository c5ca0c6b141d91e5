#!/usr/bin/env python3
"""Do the models `xnpu optimize` writes load in ONNX Runtime and compute what the originals do?

    check_optimized.py MANIFEST.json [-v]

The manifest (written by tests/optimize_ort.rs) lists entries
`{"exported": PATH, "original": PATH, "kind": "case"|"model", "case": DIR?}`:

- kind "case" (an ONNX conformance or contrib-op case): the exported model runs in ONNX
  Runtime's CPU provider on the case's test data and is compared with the expected outputs
  (rtol 1e-3, atol 1e-7, or the case's tolerance.txt / tolerance.json);
- kind "model" (a language model at one level): the exported and the original model run in
  ONNX Runtime on the same inputs (token ids drawn from a fixed seed, a mask of ones, empty
  past key/values; symbolic dims: batch 1, sequence 5, past 0, total 5) and their outputs are
  compared (rtol 1e-3, atol 1e-3).

An export that does not load, or computes differently, fails, unless the original fails in
the same way (an op or dtype ONNX Runtime lacks, a case ONNX Runtime itself gets wrong):
those are counted apart. Prints each failure and the summary

    optimize → onnxruntime: N loaded, N failed, N fail like the original; N match, N differ, N differ like the original

Exit status 1 when any export fails where its original does not.
"""

import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

# The case's tolerance (tolerance.txt or .json), read as the ort-ep conformance run reads it.
from ort_ep_conformance import tolerance  # noqa: E402  (scripts/ is on the path)


def session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def read_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def numbered(folder, prefix):
    files = glob.glob(os.path.join(folder, f"{prefix}_*.pb"))
    return sorted(files, key=lambda p: int(p.rsplit("_", 1)[1][:-3]))


def differs(got, want, rtol, atol):
    """None when equal within tolerance, else what differs."""
    got, want = np.asarray(got), np.asarray(want)
    # ONNX Runtime returns float8 as uint8 bit patterns; ml_dtypes' floats are kind 'V'.
    if want.dtype.kind == "V" and got.dtype == np.uint8 and want.dtype.itemsize == 1:
        got = got.view(want.dtype)
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if want.dtype.kind in "fc" or (want.dtype.kind == "V" and "float" in want.dtype.name):
        g, w = got.astype(np.float64), want.astype(np.float64)
        ok = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        if not ok.all():
            i = int(np.argmax(~ok.reshape(-1)))
            return f"{int((~ok).sum())}/{ok.size} values differ; first at {i}: {g.reshape(-1)[i]} vs {w.reshape(-1)[i]}"
        return None
    if want.dtype.kind in "OSU":
        return None if got.tolist() == want.tolist() else "strings differ"
    return None if np.array_equal(got, want) else "values differ"


def run_case(path, case):
    """None when the model reproduces the case's expected outputs, else why not."""
    sess = session(path)
    if any(i.type.startswith(("seq", "map", "optional")) for i in sess.get_inputs()):
        return None
    rtol, atol = tolerance(case)
    names = [i.name for i in sess.get_inputs()]
    for ds in sorted(glob.glob(os.path.join(case, "test_data_set_*"))):
        ins, outs = numbered(ds, "input"), numbered(ds, "output")
        if len(ins) != len(names):
            return None
        got = sess.run(None, {n: read_tensor(p) for n, p in zip(names, ins)})
        for k, (g, p) in enumerate(zip(got, outs)):
            why = differs(g, read_tensor(p), rtol, atol)
            if why:
                return f"output {k}: {why}"
    return None


NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
      "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(double)": np.float64}
DIMS = {"batch_size": 1, "batch": 1, "sequence_length": 5, "past_sequence_length": 0,
        "total_sequence_length": 5}


def model_inputs(sess, folder):
    """Inputs for a language model: the KV cache's head size from genai_config.json."""
    rng = np.random.default_rng(1234)
    named = dict(DIMS)
    config = os.path.join(folder, "genai_config.json")
    if os.path.exists(config):
        named["kv_cache_dim"] = json.load(open(config))["model"]["decoder"]["head_size"]
    feed = {}
    for i in sess.get_inputs():
        dims = [d if isinstance(d, int) else named.get(d, 1) for d in i.shape]
        dtype = NP[i.type]
        if i.name == "input_ids":
            feed[i.name] = rng.integers(3, 200, size=dims).astype(dtype)
        elif "mask" in i.name:
            feed[i.name] = np.ones(dims, dtype)
        elif i.name == "position_ids":
            feed[i.name] = np.broadcast_to(np.arange(dims[-1]), dims).astype(dtype)
        else:
            feed[i.name] = (rng.standard_normal(dims) * 0.1).astype(dtype)
    return feed


def run_model(path, original):
    exp, orig = session(path), session(original)
    feed = model_inputs(orig, os.path.dirname(original))
    want = orig.run(None, feed)
    got = exp.run(None, feed)
    for o, g, w in zip(orig.get_outputs(), got, want):
        why = differs(g, w, 1e-3, 1e-3)
        if why:
            return f"output {o.name}: {why}"
    return None


def check(e):
    """(status, message) of one entry: match, load-fail, load-fail-same, differ, differ-same."""
    try:
        session(e["exported"])
    except Exception as err:  # noqa: BLE001
        try:
            session(e["original"])
        except Exception:  # noqa: BLE001
            return "load-fail-same", ""
        return "load-fail", str(err).replace("\n", " ")
    try:
        if e["kind"] == "case":
            why = run_case(e["exported"], e["case"])
        else:
            why = run_model(e["exported"], e["original"])
    except Exception as err:  # noqa: BLE001
        why = "run failed: " + str(err).replace("\n", " ")
    if why is None:
        return "match", ""
    if e["kind"] == "case":
        try:
            original_why = run_case(e["original"], e["case"])
        except Exception as err:  # noqa: BLE001
            original_why = str(err)
        if original_why is not None:
            return "differ-same", why
    return "differ", why


def worker():
    """Checks the entries read from stdin (one JSON per line), one JSON result per line."""
    ort.set_default_logger_severity(4)
    for line in sys.stdin:
        status, msg = check(json.loads(line))
        sys.stdout.write(json.dumps([status, msg]) + "\n")
        sys.stdout.flush()


def main():
    """Runs the entries in a worker process, restarted when ONNX Runtime crashes on one (a
    crash is that entry's failure)."""
    import subprocess

    if "--worker" in sys.argv[1:]:
        worker()
        return 0
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv[1:]
    entries = json.load(open(args[0]))
    counts = dict.fromkeys(["match", "load-fail", "load-fail-same", "differ", "differ-same"], 0)
    proc = None
    for e in entries:
        name = os.path.relpath(e["exported"], os.path.dirname(args[0]))
        if proc is None:
            proc = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        proc.stdin.write(json.dumps(e) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            proc = None
            status, msg = "load-fail", f"ONNX Runtime crashed on it (exit status {code})"
        else:
            status, msg = json.loads(line)
        counts[status] += 1
        if status == "load-fail":
            print(f"LOAD FAIL {name}: {msg if verbose else msg[:300]}")
        elif status == "differ":
            print(f"DIFFERS {name}: {msg if verbose else msg[:300]}")
        elif verbose and status != "match":
            print(f"{status.upper()} {name}: {msg}")
    if proc is not None:
        proc.stdin.close()
        proc.wait()
    loaded = counts["match"] + counts["differ"] + counts["differ-same"]
    print(
        f"optimize → onnxruntime: {loaded} loaded, {counts['load-fail']} failed, "
        f"{counts['load-fail-same']} fail like the original; {counts['match']} match, "
        f"{counts['differ']} differ, {counts['differ-same']} differ like the original"
    )
    return 1 if counts["load-fail"] or counts["differ"] else 0


if __name__ == "__main__":
    sys.exit(main())
