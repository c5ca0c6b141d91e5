#!/usr/bin/env python3
"""Models for `xnpu bench` that the onnx wheel does not ship (random weights, fixed seed).

    .venv/bin/python scripts/make_bench_models.py [OUT_DIR]     # default target/bench-models

matmul1024.onnx: Y = A @ B, A a 1024x1024 float32 input, B a constant 1024x1024 weight
(the GEMM target of issue 19: 2.1 GFLOP per inference).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def matmul1024(out: Path) -> None:
    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.standard_normal((1024, 1024)).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["Y"])],
        "matmul1024",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1024, 1024])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1024, 1024])],
        [b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out / "matmul1024.onnx")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench-models")
    out.mkdir(parents=True, exist_ok=True)
    matmul1024(out)
    print(f"wrote {out / 'matmul1024.onnx'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
