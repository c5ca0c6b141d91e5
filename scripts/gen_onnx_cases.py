#!/usr/bin/env python3
"""Materialize the ONNX backend node test cases of the installed onnx package.

Usage: gen_onnx_cases.py OUT_DIR

Writes
  OUT_DIR/node/<case>/model.onnx
  OUT_DIR/node/<case>/test_data_set_<k>/input_<i>.pb, output_<i>.pb
  OUT_DIR/light/light_<name>.onnx, light_<name>_output_0.pb
  OUT_DIR/stamp            (the onnx version, written last)

The node layout and serialization are exactly onnx's own
(`onnx.backend.test.cmd_tools.generate_data`, which is reused here): tensors
as TensorProto, sequence inputs/outputs as SequenceProto, optionals as
OptionalProto, maps as MapProto, each named after the graph input/output.
The onnx wheel does not ship data/node, hence this generator. Output is
deterministic: onnx seeds numpy (np.random.seed(0)) before every export
function, and some exports re-seed themselves.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import types
import warnings


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out_dir = os.path.abspath(argv[1])
    t0 = time.monotonic()

    import numpy as np
    import onnx
    import onnx.backend.test.case.node as node_test
    from onnx.backend.test import cmd_tools

    os.makedirs(out_dir, exist_ok=True)
    stamp = os.path.join(out_dir, "stamp")
    if os.path.exists(stamp):
        os.remove(stamp)  # invalid until generation completes
    for sub in ("node", "light"):
        shutil.rmtree(os.path.join(out_dir, sub), ignore_errors=True)

    # Collecting runs every export_* function (numpy reference computations);
    # silence their numpy/deprecation chatter.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        np.random.seed(0)
        cases = node_test.collect_testcases(None)
    names = [c.name for c in cases]
    dups = {n for n in names if names.count(n) > 1}
    if dups:
        raise SystemExit(f"duplicate node case names: {sorted(dups)}")

    # generate_data(args) writes every case of model_test.collect_testcases()
    # to args.output/<case.kind>/<case.name>/ (kind == "node" here); point it
    # at the node cases instead of the model cases.
    saved = cmd_tools.model_test
    cmd_tools.model_test = types.SimpleNamespace(collect_testcases=lambda: cases)
    try:
        cmd_tools.generate_data(types.SimpleNamespace(output=out_dir))
    finally:
        cmd_tools.model_test = saved

    n_sets = sum(len(c.data_sets or ()) for c in cases)

    light_src = os.path.join(cmd_tools.DATA_DIR, "light")
    light_dst = os.path.join(out_dir, "light")
    os.makedirs(light_dst)
    light = sorted(
        f for f in os.listdir(light_src)
        if f.startswith("light_") and (f.endswith(".onnx") or f.endswith("_output_0.pb"))
    )
    for f in light:
        shutil.copyfile(os.path.join(light_src, f), os.path.join(light_dst, f))
    n_light = sum(f.endswith(".onnx") for f in light)

    with open(stamp, "w") as f:
        f.write(onnx.__version__ + "\n")

    dt = time.monotonic() - t0
    print(
        f"onnx {onnx.__version__}: {len(cases)} node cases ({n_sets} data sets), "
        f"{n_light} light models -> {out_dir} in {dt:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
