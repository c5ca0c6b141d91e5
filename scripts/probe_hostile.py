#!/usr/bin/env python3
"""Hostile input against the `xnpu` binary: crafted files of every class issue 21 lists and
mutations of real models, each run through `xnpu info` and `xnpu run` under a time limit and
an address-space limit. Every execution must end in a result or a clear error: no panic, no
abort, no crash (signal), no hang (the outer limit), no raw control character on the terminal.

    .venv/bin/python scripts/probe_hostile.py [--xnpu target/release/xnpu] [--executions 500]
        [--seed 0] [--jobs 2] [--timeout 10] [--address-space 8G] [--out target/probe]

Seeds: models/*.onnx and the node conformance cases (XNPU_ONNX_CASES or target/onnx-cases)
when present. Prints one line per outcome class and per crafted class, writes probe.json (and
the file of every failing execution under failures/) in --out, and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
BIG = 1 << 62


@dataclass
class Case:
    name: str
    cls: str  # what the case probes (crafted class, or "mutation")
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    fifos: list[str] = field(default_factory=list)
    stdin: bytes | None = None


def model_bytes(nodes, inputs, outputs, inits=(), opset=17, functions=(), sparse=(), domains=()):
    g = helper.make_graph(nodes, "probe", inputs, outputs, initializer=list(inits))
    g.sparse_initializer.extend(sparse)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(g, opset_imports=imports, functions=list(functions))
    m.ir_version = 8
    return m.SerializeToString()


def vi(name, dtype, dims):
    return helper.make_tensor_value_info(name, dtype, dims)


F = TensorProto.FLOAT
I64 = TensorProto.INT64


def crafted() -> list[Case]:
    """One or more cases per class the issue lists."""
    cases: list[Case] = []

    def add(name, cls, data: bytes, verbs=("info", "run"), extra=(), **kw):
        for verb in verbs:
            argv = [verb, "model.onnx"] + (["--random", "--devices", "cpu"] if verb == "run" else [])
            cases.append(Case(f"{name}/{verb}", cls, argv + list(extra), {"model.onnx": data}, **kw))

    # Panics from size arithmetic.
    add("random-input-2^62", "size", model_bytes(
        [helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [BIG])], [vi("y", F, None)]), ("run",))
    add("constantofshape-2^62", "size", model_bytes(
        [helper.make_node("ConstantOfShape", ["s"], ["y"])], [vi("s", I64, [BIG])], [vi("y", F, None)]))
    for pad in (2**63 - 1, 2**62, 2**31):
        add(f"conv-pads-{pad}", "size", model_bytes(
            [helper.make_node("Conv", ["x", "w"], ["y"], pads=[pad, pad, pad, pad])],
            [vi("x", F, [1, 1, 4, 4])], [vi("y", F, None)],
            [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")]))
        add(f"maxpool-pads-{pad}", "size", model_bytes(
            [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[pad, pad, pad, pad])],
            [vi("x", F, [1, 1, 4, 4])], [vi("y", F, None)]))
    add("resize-sizes-2^62", "size", model_bytes(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"])],
        [vi("x", F, [1, 1, 2, 2])], [vi("y", F, None)],
        [numpy_helper.from_array(np.array([1, 1, BIG, BIG], np.int64), "sizes")]))
    # Allocations past memory: large but representable outputs.
    huge = 1 << 36
    add("resize-64G", "alloc", model_bytes(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"])],
        [vi("x", F, [1, 1, 2, 2])], [vi("y", F, None)],
        [numpy_helper.from_array(np.array([1, 1, 1 << 18, 1 << 18], np.int64), "sizes")]))
    add("conv-64G", "alloc", model_bytes(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1 << 17] * 4)],
        [vi("x", F, [1, 1, 2, 2])], [vi("y", F, None)],
        [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")]))
    add("convtranspose-64G", "alloc", model_bytes(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[1 << 17, 1 << 17])],
        [vi("x", F, [1, 1, 2, 2])], [vi("y", F, None)],
        [numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")]))
    add("maxpool-64G", "alloc", model_bytes(
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[1, 1], pads=[1 << 17] * 4)],
        [vi("x", F, [1, 1, 2, 2])], [vi("y", F, None)]))
    add("dft-64G", "alloc", model_bytes(
        [helper.make_node("DFT", ["x", "n"], ["y"])],
        [vi("x", F, [1, 4, 1])], [vi("y", F, None)],
        [numpy_helper.from_array(np.array(huge, np.int64), "n")], opset=20))
    add("reduce-64G", "alloc", model_bytes(
        [helper.make_node("Expand", ["x", "s"], ["e"]), helper.make_node("ReduceSum", ["e"], ["y"], keepdims=1)],
        [vi("x", F, [1])], [vi("y", F, None)],
        [numpy_helper.from_array(np.array([huge], np.int64), "s")]))
    add("sum-64G", "alloc", model_bytes(
        [helper.make_node("Sum", ["a", "b"], ["y"])],
        [vi("a", F, [1 << 18, 1]), vi("b", F, [1, 1 << 18])], [vi("y", F, None)]), ("run",))
    add("scatterelements-huge", "alloc", model_bytes(
        [helper.make_node("ScatterElements", ["d", "i", "u"], ["y"])],
        [vi("d", F, [huge]), vi("i", I64, [1]), vi("u", F, [1])], [vi("y", F, None)]), ("run",))
    add("output-4.8G", "alloc", model_bytes(
        [helper.make_node("Expand", ["x", "s"], ["y"])], [vi("x", F, [1])], [vi("y", F, None)],
        [numpy_helper.from_array(np.array([1_200_000_000], np.int64), "s")]), ("run",))
    add("scan-2^31", "alloc", model_bytes(
        [helper.make_node("Scan", ["x"], ["y"], num_scan_inputs=2**31 - 1,
                          body=helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "b",
                                                 [vi("a", F, [1])], [vi("b", F, [1])]))],
        [vi("x", F, [1, 1])], [vi("y", F, None)], opset=16))
    sparse = []
    for k in range(3):
        values = numpy_helper.from_array(np.ones(1, np.float32), f"s{k}")
        idx = numpy_helper.from_array(np.zeros(1, np.int64), f"s{k}_i")
        sparse.append(helper.make_sparse_tensor(values, idx, [1 << 30]))
    add("sparse-3x4GiB", "alloc", model_bytes(
        [helper.make_node("Identity", ["s0"], ["y"])], [], [vi("y", F, None)], sparse=sparse))
    # Recursion and blow-up in functions.
    rec = helper.make_function("local", "f", ["a"], ["b"], [helper.make_node("f", ["a"], ["b"], domain="local")],
                               [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    add("function-self-call", "crash", model_bytes(
        [helper.make_node("f", ["x"], ["y"], domain="local")], [vi("x", F, [1])], [vi("y", F, None)],
        functions=[rec], domains=["local"]))
    fns = []
    for k in range(40):
        body = ([helper.make_node("Relu", ["a"], ["b"])] if k == 39 else
                [helper.make_node(f"f{k + 1}", ["a"], ["t"], domain="local"),
                 helper.make_node(f"f{k + 1}", ["t"], ["b"], domain="local")])
        fns.append(helper.make_function("local", f"f{k}", ["a"], ["b"], body,
                                        [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]))
    add("function-2^39-nodes", "hang", model_bytes(
        [helper.make_node("f0", ["x"], ["y"], domain="local")], [vi("x", F, [1])], [vi("y", F, None)],
        functions=fns, domains=["local"]))
    chain = [helper.make_node("Identity", [f"v{k}"], [f"v{k + 1}"]) for k in range(100_000)]
    chain[0].input[0] = "x"
    chain[-1].output[0] = "y"
    cases.append(Case("identity-chain-100k/partition", "hang",
                      ["partition", "model.onnx", "--level", "basic", "--devices", "cpu"],
                      {"model.onnx": model_bytes(chain, [vi("x", F, [1])], [vi("y", F, None)])}))
    # 100,000 inputs and outputs, one Neg each: session creation and the run must be linear
    # in them (searches of the input and output lists per value took 64 s at 160,000).
    n = 100_000
    cases.append(Case("inputs-outputs-100k/run", "hang", ["run", "model.onnx", "--random"],
                      {"model.onnx": model_bytes(
                          [helper.make_node("Neg", [f"x{k}"], [f"y{k}"]) for k in range(n)],
                          [vi(f"x{k}", F, [1]) for k in range(n)],
                          [vi(f"y{k}", F, [1]) for k in range(n)])}))
    # Control flow that never ends, stopped by --timeout.
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c_out"])], "body",
                             [vi("i", I64, []), vi("c", TensorProto.BOOL, [])],
                             [vi("c_out", TensorProto.BOOL, [])])
    forever = model_bytes([helper.make_node("Loop", ["", "cond"], ["last"], body=body)],
                          [vi("cond", TensorProto.BOOL, [])], [vi("last", TensorProto.BOOL, None)])
    cases.append(Case("loop-forever/run", "hang", ["run", "model.onnx", "--input", "cond=true.npy"],
                      {"model.onnx": forever, "true.npy": npy(np.array(True))}))
    # Files that are not regular files.
    small = model_bytes([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [1])], [vi("y", F, None)])
    cases.append(Case("fifo-model/info", "hang", ["info", "pipe.onnx"], fifos=["pipe.onnx"]))
    cases.append(Case("fifo-input/run", "hang", ["run", "model.onnx", "--input", "x=pipe.npy"],
                      {"model.onnx": small}, fifos=["pipe.npy"]))
    cases.append(Case("dev-zero-input/run", "hang", ["run", "model.onnx", "--input", "x=/dev/zero"],
                      {"model.onnx": small}))
    cases.append(Case("folder-model/info", "message", ["info", "."]))
    ext = onnx.load_from_string(small)
    t = numpy_helper.from_array(np.ones(4, np.float32), "w")
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    t.external_data.add(key="location", value="pipe.bin")
    ext.graph.initializer.append(t)
    cases.append(Case("fifo-external-data/info", "hang", ["info", "model.onnx"],
                      {"model.onnx": ext.SerializeToString()}, fifos=["pipe.bin"]))
    cases.append(Case("fifo-table/partition", "hang",
                      ["partition", "model.onnx", "--devices", "table:pipe.json"],
                      {"model.onnx": small}, fifos=["pipe.json"]))
    cases.append(Case("stdin-model/info", "message", ["info", "-"], stdin=small))
    # Broken libraries.
    libs = [p for p in (REPO / "target" / "release").glob("libxnpu_plugin_cpu.so")]
    if libs:
        whole = libs[0].read_bytes()
        for cut in (100, 4096, len(whole) // 2):
            cases.append(Case(f"truncated-plugin-{cut}/devices", "crash", ["devices"],
                              {"plugins/libxnpu_plugin_broken.so": whole[:cut]},
                              env={"XNPU_PLUGIN_PATH": "plugins"}))
            cases.append(Case(f"truncated-openvino-{cut}/devices", "crash", ["devices"],
                              {"libopenvino_c.so": whole[:cut]},
                              env={"XNPU_OPENVINO_LIB": "libopenvino_c.so"}))
    cases.append(Case("fifo-plugin/devices", "hang", ["devices"], fifos=["plugins/libxnpu_plugin_fifo.so"],
                      env={"XNPU_PLUGIN_PATH": "plugins"}))
    cases.append(Case("fifo-openvino/devices", "hang", ["devices"], fifos=["libopenvino_c.so"],
                      env={"XNPU_OPENVINO_LIB": "libopenvino_c.so"}))
    # Messages.
    bad_dtype = onnx.load_from_string(small)
    bad_dtype.graph.input[0].type.tensor_type.elem_type = 1000
    add("unknown-dtype-code", "message", bad_dtype.SerializeToString(), ("info",))
    ctrl = model_bytes([helper.make_node("Relu", ["x\x1b[31m"], ["y\n\x07"], name="n\x1b]0;t\x07")],
                       [vi("x\x1b[31m", F, [1])], [vi("y\n\x07", F, None)])
    add("control-characters", "message", ctrl)
    add("deep-nesting", "message", deep_graph(2000), ("info",))
    for argv in (["run", "model.onnx", "--random", "--iterations", "0"],
                 ["run", "model.onnx", "--random", "--hop-cost", "NaN"],
                 ["run", "model.onnx", "--random", "--max-memory", "garbage"],
                 ["run", "model.onnx", "--random", "--timeout", "-1"]):
        cases.append(Case("bad-option/" + argv[-2], "message", argv, {"model.onnx": small}))
    for env in ({"HOME": ""}, {"XDG_CACHE_HOME": "relative/cache"}, {"XNPU_OPENVINO_CONFIG": "garbage"}):
        cases.append(Case("env/" + ",".join(env), "message",
                          ["run", "model.onnx", "--random", "--devices", "cpu"], {"model.onnx": small}, env=env))
    return cases


def deep_graph(depth: int) -> bytes:
    """A model whose If nodes nest `depth` deep (past the decoder's limit), written as raw
    protobuf: Python's protobuf refuses to build what nests this deep."""

    def field(num: int, payload: bytes) -> bytes:  # a length-delimited field
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    def node(op: str, inputs: list[str], output: str, attrs: bytes = b"") -> bytes:
        return b"".join(field(1, i.encode()) for i in inputs) + field(2, output.encode()) \
            + field(4, op.encode()) + attrs

    graph = field(1, node("Identity", ["x"], "y0")) + field(2, b"g0")
    for k in range(1, depth):
        attr = field(1, b"then_branch") + varint(20 << 3) + varint(5) + field(6, graph)
        graph = field(1, node("If", ["c"], f"y{k}", field(5, attr))) + field(2, f"g{k}".encode())
    opset = field(1, b"") + varint(2 << 3) + varint(17)
    return varint(1 << 3) + varint(8) + field(7, graph) + field(8, opset)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def npy(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


EXTREMES = [0, 1, -1, 2**31 - 1, 2**31, -(2**31), 2**32, 2**62, 2**63 - 1, -(2**63), 1 << 40]


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """A structured or a byte-level mutation of a model."""
    if rng.random() < 0.6:
        try:
            m = onnx.load_from_string(seed)
            structured(m, rng)
            return m.SerializeToString()
        except Exception:
            pass
    b = bytearray(seed)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        if not b:
            break
        i = rng.randrange(len(b))
        if op < 0.4:
            b[i] = rng.randrange(256)
        elif op < 0.55:
            del b[i:]
        elif op < 0.7:
            b[i:i] = varint(rng.choice([2**31, 2**62, 2**63 - 1, 1 << 40]))
        elif op < 0.85:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 64)]
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(b)


def structured(m: onnx.ModelProto, rng: random.Random) -> None:
    g = m.graph
    choices = []
    for v in list(g.input) + list(g.output) + list(g.value_info):
        for d in v.type.tensor_type.shape.dim:
            choices.append(("dim", d))
        choices.append(("vtype", v.type.tensor_type))
    for n in g.node:
        for a in n.attribute:
            choices.append(("attr", a))
        choices.append(("node", n))
    for t in g.initializer:
        choices.append(("tensor", t))
    for _ in range(rng.randint(1, 3)):
        if not choices:
            return
        kind, x = rng.choice(choices)
        if kind == "dim":
            x.dim_value = max(0, rng.choice(EXTREMES)) if rng.random() < 0.8 else 0
        elif kind == "vtype":
            x.elem_type = rng.choice([0, 1, 7, 9, 16, 17, 21, 22, 23, 24, 25, 26, 30, 99, 1000])
        elif kind == "attr":
            if x.type == onnx.AttributeProto.INT:
                x.i = rng.choice(EXTREMES)
            elif x.type == onnx.AttributeProto.INTS and len(x.ints):
                x.ints[rng.randrange(len(x.ints))] = rng.choice(EXTREMES)
            elif x.type == onnx.AttributeProto.FLOAT:
                x.f = rng.choice([float("nan"), float("inf"), -1e38, 0.0, 1e-45])
        elif kind == "node":
            r = rng.random()
            if r < 0.3 and len(x.input):
                x.input[rng.randrange(len(x.input))] = rng.choice(["", "nope", x.output[0] if x.output else ""])
            elif r < 0.5:
                x.op_type = rng.choice(["Loop", "If", "Scan", "Resize", "Conv", "Nope", "ConstantOfShape"])
            elif r < 0.7:
                x.domain = rng.choice(["com.microsoft", "local", "ai.onnx.ml", "x"])
            else:
                x.output.append(x.output[0] if x.output else "o")
        elif kind == "tensor":
            r = rng.random()
            if r < 0.3 and len(x.dims):
                x.dims[rng.randrange(len(x.dims))] = rng.choice(EXTREMES)
            elif r < 0.5:
                x.data_type = rng.choice([0, 1, 7, 8, 16, 22, 23, 26, 99])
            elif r < 0.7 and x.raw_data:
                x.raw_data = x.raw_data[: rng.randrange(len(x.raw_data) + 1)]
            else:
                x.data_location = TensorProto.EXTERNAL
                x.external_data.add(key="location", value=rng.choice(
                    ["../../etc/passwd", "/dev/zero", "missing.bin", "model.onnx", "."]))
                x.external_data.add(key="length", value=str(rng.choice([2**62, 2**31, 0, -5])))


def seeds() -> list[bytes]:
    out = [p.read_bytes() for p in sorted((REPO / "models").glob("*.onnx"))]
    cases = Path(os.environ.get("XNPU_ONNX_CASES", REPO / "target" / "onnx-cases")) / "node"
    if cases.is_dir():
        for d in sorted(cases.iterdir()):
            f = d / "model.onnx"
            if f.is_file() and f.stat().st_size < 64 << 10:
                out.append(f.read_bytes())
    return out


def run_case(xnpu: Path, case: Case, work: Path, timeout: float, address_space: int):
    d = Path(tempfile.mkdtemp(dir=work))
    try:
        for name, data in case.files.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(data)
        for name in case.fifos:
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(d / name)
        env = dict(os.environ)
        env.update(case.env)
        env.setdefault("XNPU_CACHE_DIR", str(d / "cache"))

        def limit():
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        argv = [str(xnpu)] + case.argv + ["--timeout", str(max(1.0, timeout - 4))]
        if "--timeout" in case.argv:
            argv = [str(xnpu)] + case.argv
        t0 = time.monotonic()
        try:
            p = subprocess.run(argv, cwd=d, env=env, input=case.stdin, capture_output=True,
                               timeout=timeout, preexec_fn=limit)
        except subprocess.TimeoutExpired as e:
            return "hang", None, (e.stderr or b"")[-2000:], time.monotonic() - t0
        return classify(p), p.returncode, p.stderr[-4000:] + p.stdout[-2000:], time.monotonic() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def classify(p: subprocess.CompletedProcess) -> str:
    err = p.stderr.decode("utf-8", "replace")
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode < 0:
        return "abort" if -p.returncode == signal.SIGABRT else "crash"
    if p.returncode == 101 or "panicked at" in err:
        return "panic"
    if "memory allocation of" in err:
        return "abort"
    raw = [c for c in err + out if ord(c) < 32 and c not in "\n\t"]
    if raw:
        return "raw-control-character"
    if p.returncode == 0:
        return "ok"
    # 1: xnpu's error; 2: clap's usage error. Either says "error:" first.
    if p.returncode in (1, 2) and err.lstrip().startswith("error:"):
        return "bounded-by-timeout" if "time limit" in err else "clear-error"
    return "unclear-failure"


FAILING = {"panic", "abort", "crash", "hang", "raw-control-character", "unclear-failure"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xnpu", type=Path, default=REPO / "target" / "release" / "xnpu")
    ap.add_argument("--executions", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--address-space", default="8G")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "probe")
    a = ap.parse_args()
    a.xnpu = a.xnpu.resolve()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    space = int(float(a.address_space[:-1]) * units[a.address_space[-1]]) if a.address_space[-1] in units \
        else int(a.address_space)
    rng = random.Random(a.seed)
    cases = crafted()
    pool = seeds()
    k = 0
    while len(cases) < a.executions:
        s = pool[rng.randrange(len(pool))]
        data = mutate(s, rng)
        verb = rng.choice(["info", "run", "run"])
        argv = [verb, "model.onnx"] + (["--random", "--devices", "cpu"] if verb == "run" else [])
        cases.append(Case(f"mutation-{k}/{verb}", "mutation", argv, {"model.onnx": data}))
        k += 1
    a.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="xnpu-probe-"))
    started = time.monotonic()
    results = []
    with ThreadPoolExecutor(a.jobs) as ex:
        futs = [(c, ex.submit(run_case, a.xnpu, c, work, a.timeout, space)) for c in cases]
        for i, (c, f) in enumerate(futs):
            outcome, rc, tail, secs = f.result()
            results.append({"name": c.name, "class": c.cls, "outcome": outcome, "rc": rc, "seconds": round(secs, 3),
                            "tail": tail.decode("utf-8", "replace")[-600:]})
            if outcome in FAILING:
                fail_dir = a.out / "failures" / c.name.replace("/", "_")
                fail_dir.mkdir(parents=True, exist_ok=True)
                for name, data in c.files.items():
                    (fail_dir / name.replace("/", "_")).write_bytes(data)
                (fail_dir / "argv.json").write_text(json.dumps({"argv": c.argv, "env": c.env}))
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{len(cases)} executions", file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - started
    by_outcome: dict[str, int] = {}
    for r in results:
        by_outcome[r["outcome"]] = by_outcome.get(r["outcome"], 0) + 1
    failing = [r for r in results if r["outcome"] in FAILING]
    print(f"probe: {len(results)} executions ({len(results) - sum(1 for r in results if r['class'] == 'mutation')}"
          f" crafted) in {total:.0f} s, {a.jobs} at a time, {a.timeout:.0f} s and {a.address_space} each")
    for k2 in sorted(by_outcome):
        print(f"  {k2:<24} {by_outcome[k2]}")
    by_class: dict[str, dict[str, int]] = {}
    for r in results:
        c = by_class.setdefault(r["class"], {})
        c[r["outcome"]] = c.get(r["outcome"], 0) + 1
    for cls in sorted(by_class):
        print(f"  class {cls:<18} " + ", ".join(f"{k2} {v}" for k2, v in sorted(by_class[cls].items())))
    for r in failing[:40]:
        print(f"FAIL {r['outcome']:<12} {r['name']}: {r['tail'][-300:]!r}")
    (a.out / "probe.json").write_text(json.dumps({"executions": len(results), "seconds": total,
                                                  "outcomes": by_outcome, "results": results}, indent=1))
    counts = {k2: by_outcome.get(k2, 0) for k2 in ("panic", "abort", "crash", "hang")}
    plural = {"panic": "panics", "abort": "aborts", "crash": "crashes", "hang": "hangs"}
    print("probe: " + ", ".join(f"{v} {plural[k2] if v != 1 else k2}" for k2, v in counts.items()))
    sys.exit(1 if failing else 0)


if __name__ == "__main__":
    main()
