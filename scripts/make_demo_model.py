#!/usr/bin/env python3
"""Writes models/tinycnn.onnx: the small image classifier the README's quick start runs.

A 3x32x32 → 10-class CNN (Conv-BatchNorm-Relu-MaxPool twice, GlobalAveragePool, Gemm,
Softmax) with a symbolic batch dimension and random weights from a fixed seed, so the file
is the same on every run. Usage: make_demo_model.py [OUT.onnx]
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(out: str) -> None:
    rng = np.random.default_rng(20261125)

    def init(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("conv1.w", (16, 3, 3, 3), 0.2), init("conv1.b", (16,), 0.1),
        init("bn1.scale", (16,), 0.1), init("bn1.bias", (16,), 0.1),
        init("bn1.mean", (16,), 0.1), numpy_helper.from_array(np.abs(rng.standard_normal(16)).astype(np.float32) + 0.5, "bn1.var"),
        init("conv2.w", (32, 16, 3, 3), 0.1), init("conv2.b", (32,), 0.1),
        init("bn2.scale", (32,), 0.1), init("bn2.bias", (32,), 0.1),
        init("bn2.mean", (32,), 0.1), numpy_helper.from_array(np.abs(rng.standard_normal(32)).astype(np.float32) + 0.5, "bn2.var"),
        init("fc.w", (10, 32), 0.3), init("fc.b", (10,), 0.1),
    ]
    for t in inits:
        if t.name.endswith("scale"):
            arr = numpy_helper.to_array(t) + 1.0
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), t.name))
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c2", "bn2.scale", "bn2.bias", "bn2.mean", "bn2.var"], ["b2"], name="bn2"),
        helper.make_node("Relu", ["b2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tinycnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, producer_name="xnpu make_demo_model.py", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out)
    print(f"wrote {out} ({sum(np.prod(t.dims) for t in inits)} parameters)")

    # A reference input and ONNX Runtime's output for it, so tests compare xnpu with ORT.
    try:
        import onnxruntime as ort
    except ImportError:
        return
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    (probs,) = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"image": x})
    stem = out[: -len(".onnx")]
    np.save(f"{stem}.image.npy", x)
    np.save(f"{stem}.probs.ort.npy", probs)
    print(f"wrote {stem}.image.npy and {stem}.probs.ort.npy (onnxruntime {ort.__version__})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/tinycnn.onnx")
