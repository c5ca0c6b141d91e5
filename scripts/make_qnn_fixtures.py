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


# One small model per lowering case (tests/fixtures/qnn/ops/<case>.onnx), for
# backends/qnn/tests/ops.rs: inputs are graph inputs, weights initializers; output shapes
# come from ONNX shape inference.
from onnx import shape_inference

ops_dir = os.path.join(out, "ops")
os.makedirs(ops_dir, exist_ok=True)


def arr(shape, scale=0.5, positive=False):
    a = rng.standard_normal(shape) * scale
    if positive:
        a = np.abs(a) + 0.5
    return a.astype(np.float32)


def case(name, nodes, inputs, inits=(), opset=17):
    """nodes: list of NodeProto whose last output is the graph output "y"; inputs: {name: shape}."""
    vis = [h.make_tensor_value_info(k, T.FLOAT, s) for k, s in inputs.items()]
    g = h.make_graph(nodes, name, vis, [h.make_tensor_value_info("y", T.FLOAT, None)],
                     [nh.from_array(v, k) for k, v in inits])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="xnpu make_qnn_fixtures.py")
    m.ir_version = 9 if opset >= 20 else 8
    m = shape_inference.infer_shapes(m, strict_mode=True)
    y = [v for v in m.graph.value_info if v.name == "y"]
    if y:
        m.graph.output[0].CopyFrom(y[0])
        m.graph.value_info.remove(y[0])
    del m.graph.value_info[:]
    assert m.graph.output[0].type.tensor_type.HasField("shape"), name
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(ops_dir, name + ".onnx"))


def one(name, op, inputs, inits=(), opset=17, **attrs):
    ins = list(inputs) + [k for k, _ in inits]
    case(name, [h.make_node(op, ins, ["y"], name=name, **attrs)], inputs, inits, opset)


X = [2, 3, 4]
for op in ["Add", "Sub", "Mul", "Max", "Min"]:
    one(op.lower(), op, {"x": X, "z": [4]})
one("div", "Div", {"x": X}, [("z", arr([3, 4], positive=True))])
for op in ["Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs"]:
    one(op.lower(), op, {"x": X})
one("sqrt", "Sqrt", {"x": X})  # the test feeds it positive values
one("gelu", "Gelu", {"x": X}, opset=20)
one("matmul", "MatMul", {"x": [2, 3, 8]}, [("w", arr([8, 5]))])
one("matmul_2in", "MatMul", {"x": [2, 3, 8], "w": [2, 8, 5]})
one("reshape", "Reshape", {"x": X}, [("s", np.array([4, 6], np.int64))])
one("flatten", "Flatten", {"x": [2, 3, 2, 2]}, axis=1)
one("squeeze", "Squeeze", {"x": [2, 1, 4]}, [("a", np.array([1], np.int64))])
one("unsqueeze", "Unsqueeze", {"x": [2, 4]}, [("a", np.array([0, 2], np.int64))])

NCHW = [1, 4, 7, 7]
one("conv", "Conv", {"x": NCHW}, [("w", arr([6, 4, 3, 3], 0.3)), ("b", arr([6]))], pads=[1, 1, 1, 1])
one("conv_strided_dilated", "Conv", {"x": [1, 3, 9, 8]}, [("w", arr([5, 3, 3, 2], 0.3))],
    strides=[2, 1], dilations=[2, 2], pads=[0, 1, 2, 0])
one("conv_group", "Conv", {"x": NCHW}, [("w", arr([6, 2, 3, 3], 0.3)), ("b", arr([6]))], group=2)
one("conv_depthwise", "Conv", {"x": NCHW}, [("w", arr([4, 1, 3, 3], 0.3)), ("b", arr([4]))],
    group=4, pads=[1, 1, 1, 1])
one("conv_same_upper", "Conv", {"x": [2, 3, 6, 6]}, [("w", arr([4, 3, 2, 2], 0.3))],
    auto_pad="SAME_UPPER", strides=[2, 2])
# FusedConv at level all: Conv + Relu, Conv + Clip(0, 6)
case("fused_conv_relu", [
    h.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
    h.make_node("Relu", ["c"], ["y"], name="relu"),
], {"x": NCHW}, [("w", arr([6, 4, 3, 3], 0.3)), ("b", arr([6]))])
case("fused_conv_clip", [
    h.make_node("Conv", ["x", "w"], ["c"], name="conv"),
    h.make_node("Clip", ["c", "lo", "hi"], ["y"], name="clip"),
], {"x": NCHW}, [("w", arr([4, 4, 3, 3], 0.6)), ("lo", np.array(0, np.float32)), ("hi", np.array(0.5, np.float32))])

one("maxpool", "MaxPool", {"x": NCHW}, kernel_shape=[3, 3], strides=[2, 2])
one("maxpool_ceil", "MaxPool", {"x": [1, 3, 8, 8]}, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
one("avgpool", "AveragePool", {"x": [1, 3, 8, 8]}, kernel_shape=[2, 2], strides=[2, 2])
one("avgpool_pads", "AveragePool", {"x": NCHW}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
one("avgpool_count_pad", "AveragePool", {"x": NCHW}, kernel_shape=[3, 3], strides=[2, 2],
    pads=[1, 1, 1, 1], count_include_pad=1)
one("avgpool_ceil", "AveragePool", {"x": [1, 3, 8, 8]}, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
one("global_avgpool", "GlobalAveragePool", {"x": NCHW})

one("gemm", "Gemm", {"a": [3, 8]}, [("b", arr([5, 8])), ("c", arr([5]))], transB=1)
one("gemm_trans_a_alpha_beta", "Gemm", {"a": [8, 3]}, [("b", arr([8, 5])), ("c", arr([3, 5]))],
    transA=1, alpha=0.5, beta=2.0)
one("gemm_no_c", "Gemm", {"a": [3, 8]}, [("b", arr([8, 5]))])
case("fused_gemm_sigmoid", [
    h.make_node("Gemm", ["a", "b", "c"], ["g"], name="gemm", transB=1),
    h.make_node("Sigmoid", ["g"], ["y"], name="sigmoid"),
], {"a": [3, 8]}, [("b", arr([5, 8])), ("c", arr([1, 5]))])
case("matmul_bias", [
    h.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
    h.make_node("Add", ["m", "b"], ["y"], name="add"),
], {"x": [2, 3, 8]}, [("w", arr([8, 5])), ("b", arr([5]))])
case("matmul_bias_relu", [
    h.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
    h.make_node("Add", ["m", "b"], ["a"], name="add"),
    h.make_node("Relu", ["a"], ["y"], name="relu"),
], {"x": [4, 8]}, [("w", arr([8, 6])), ("b", arr([6]))])
case("matmul_bias_tanh", [
    h.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
    h.make_node("Add", ["b", "m"], ["a"], name="add"),
    h.make_node("Tanh", ["a"], ["y"], name="tanh"),
], {"x": [4, 8]}, [("w", arr([8, 6])), ("b", arr([6]))])

one("softmax", "Softmax", {"x": X}, axis=-1)
one("softmax_axis1", "Softmax", {"x": X}, axis=1)
one("transpose", "Transpose", {"x": [2, 3, 4, 5]}, perm=[0, 2, 3, 1])
one("transpose_default", "Transpose", {"x": X})
one("concat", "Concat", {"x": [2, 3, 4], "z": [2, 2, 4], "u": [2, 1, 4]}, axis=1)
one("clip", "Clip", {"x": X}, [("lo", np.array(-0.3, np.float32)), ("hi", np.array(0.4, np.float32))])
case("clip_max_only", [h.make_node("Clip", ["x", "", "hi"], ["y"], name="clip")], {"x": X},
     [("hi", np.array(0.2, np.float32))])
one("layernorm", "LayerNormalization", {"x": X}, [("g", arr([4], positive=True)), ("b", arr([4]))],
    axis=-1, epsilon=1e-5)
one("layernorm_axis1_no_bias", "LayerNormalization", {"x": X}, [("g", arr([3, 4], positive=True))], axis=1)
# Added later (at the end, so the weights drawn above stay as committed): a depthwise conv
# with a channel multiplier (Conv2d with group), and a fused Clip with no lower bound.
one("conv_depthwise_multiplier", "Conv", {"x": NCHW}, [("w", arr([8, 1, 3, 3], 0.3))], group=4)
case("fused_gemm_clip_max_only", [
    h.make_node("Gemm", ["a", "b"], ["g"], name="gemm"),
    h.make_node("Clip", ["g", "", "hi"], ["y"], name="clip"),
], {"a": [3, 8]}, [("b", arr([8, 5])), ("hi", np.array(0.3, np.float32))])

# QDQ: a per-tensor uint8 QuantizeLinear → DequantizeLinear pair (step 0.02, zero point 128).
case("qdq", [
    h.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quantize"),
    h.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequantize"),
], {"x": X}, [("s", np.array(0.02, np.float32)), ("z", np.array(128, np.uint8))])

# Sum of two (ResNet's residual adds import as Sum).
one("sum", "Sum", {"x": X, "z": [4]})

# Padded pools (explicit Pad, then a count map for AveragePool), LRN, inference
# BatchNormalization with constant statistics.
one("maxpool_pads", "MaxPool", {"x": NCHW}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
one("maxpool_same_upper", "MaxPool", {"x": [1, 3, 8, 8]}, kernel_shape=[2, 2], auto_pad="SAME_UPPER")
one("avgpool_ceil_count_pad", "AveragePool", {"x": NCHW}, kernel_shape=[3, 3], strides=[2, 2],
    pads=[1, 1, 0, 0], ceil_mode=1, count_include_pad=1)
one("lrn", "LRN", {"x": [1, 8, 5, 5]}, size=5, alpha=1e-2, beta=0.75, bias=2.0)
one("batchnorm", "BatchNormalization", {"x": NCHW},
    [("s", arr([4])), ("b", arr([4])), ("m", arr([4])), ("v", arr([4], positive=True))], epsilon=1e-5)
one("batchnorm_2d", "BatchNormalization", {"x": [3, 6]},
    [("s", arr([6])), ("b", arr([6])), ("m", arr([6])), ("v", arr([6], positive=True))])

# An op QNN refuses at validation (HTP's Relu has no int32 kernel): the error must be QNN's own.
g = h.make_graph([h.make_node("Relu", ["x"], ["y"], name="relu_i32")], "invalid_relu_i32",
                 [h.make_tensor_value_info("x", T.INT32, [4])], [h.make_tensor_value_info("y", T.INT32, [4])])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="xnpu make_qnn_fixtures.py")
m.ir_version = 8
onnx.checker.check_model(m, full_check=True)
onnx.save(m, os.path.join(out, "invalid_relu_i32.onnx"))
print("wrote", ops_dir, "and invalid_relu_i32.onnx")

# A QDQ model as ONNX Runtime's quantiser writes it (uint8 activations, uint8 weights per
# tensor, int32 biases through DequantizeLinear), from the demo CNN (batch 1, pre-processed)
# and 4 seeded calibration images.
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class Images(CalibrationDataReader):
    def __init__(self):
        r = np.random.default_rng(7)
        self.batches = iter([{"image": r.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self.batches, None)


src = os.path.join(os.path.dirname(__file__), "..", "models", "tinycnn.onnx")
fixed = os.path.join(out, "tinycnn_static.onnx.tmp")
m = onnx.load(src)
for d in m.graph.input[0].type.tensor_type.shape.dim[:1]:
    d.ClearField("dim_param")
    d.dim_value = 1
onnx.save(m, fixed)
# ONNX Runtime's pre-processing first, as its quantiser asks (BatchNormalization folded).
quant_pre_process(fixed, fixed)
quantize_static(fixed, os.path.join(out, "tinycnn_qdq_ort.onnx"), Images(), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QUInt8, per_channel=False)
os.remove(fixed)
print("wrote tinycnn_qdq_ort.onnx")
