"""Writes the QNN backend's test models (tests/fixtures/qnn/*.onnx): small static-shape
graphs of the ops the QNN lowering covers, with fixed-seed weights.

    .venv/bin/python scripts/make_qnn_fixtures.py
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T, helper as h, numpy_helper as nh

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "qnn")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)

# x[4,64] -> MatMul W[64,32] -> Add b -> Relu -> Reshape [4,4,8] -> Sigmoid, Tanh -> Sub, Mul, Max
w = nh.from_array((rng.standard_normal((64, 32)) * 0.1).astype(np.float32), "w")
b = nh.from_array((rng.standard_normal(32) * 0.1).astype(np.float32), "b")
shape = nh.from_array(np.array([4, 4, 8], np.int64), "shape")
nodes = [
    h.make_node("MatMul", ["x", "w"], ["mm"], name="matmul"),
    h.make_node("Add", ["mm", "b"], ["lin"], name="bias"),
    h.make_node("Relu", ["lin"], ["act"], name="relu"),
    h.make_node("Reshape", ["act", "shape"], ["r"], name="reshape"),
    h.make_node("Sigmoid", ["r"], ["s"], name="sigmoid"),
    h.make_node("Tanh", ["r"], ["t"], name="tanh"),
    h.make_node("Sub", ["s", "t"], ["d"], name="sub"),
    h.make_node("Mul", ["d", "r"], ["p"], name="mul"),
    h.make_node("Max", ["p", "t"], ["y"], name="max"),
]
g = h.make_graph(
    nodes,
    "mlp",
    [h.make_tensor_value_info("x", T.FLOAT, [4, 64])],
    [h.make_tensor_value_info("y", T.FLOAT, [4, 4, 8])],
    [w, b, shape],
)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="xnpu make_qnn_fixtures.py")
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, os.path.join(out, "mlp.onnx"))
print("wrote", os.path.join(out, "mlp.onnx"))
