#!/usr/bin/env python3
"""Writes the small ONNX models of tests/fusion.rs to tests/fixtures/fusion/.

Each model holds a pattern written node for node the way torch.onnx exports it (torch is
not needed: the graphs are built with onnx.helper), with fixed-seed random weights. Scalar
constants are Constant nodes, as torch's exporter writes them.

    /work/main/.venv/bin/python scripts/make_fusion_models.py
"""

import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "fusion")
rng = np.random.default_rng(20261125)


class G:
    """A graph under construction."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, inputs, [out], name=f"/{op_type}_{self.n}", **attrs)
        )
        return out

    def const(self, value, dtype=np.float32):
        """A Constant node, as torch writes scalars."""
        out = self.name("Constant")
        t = numpy_helper.from_array(np.array(value, dtype=dtype), out)
        self.nodes.append(helper.make_node("Constant", [], [out], value=t))
        return out

    def init(self, arr, p="w"):
        name = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def rand(self, *shape, scale=1.0, p="w"):
        return self.init(rng.standard_normal(shape).astype(np.float32) * scale, p)

    def save(self, file, inputs, outputs, opset=17):
        # The last node of each output chain writes the declared output name.
        g = helper.make_graph(self.nodes, file, inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.producer_name = "make_fusion_models.py"
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(OUT, file + ".onnx"))


def rename_last(g, out):
    g.nodes[-1].output[0] = out


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def conv_bn_act():
    """Conv → BatchNormalization → Relu, then Conv (no bias) → BN → Mul → Add → Clip(0, 6)."""
    g = G()
    w1, b1 = g.rand(8, 3, 3, 3, scale=0.3), g.rand(8, scale=0.1)
    c1 = g.op("Conv", ["x", w1, b1], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    bn = [g.init(rng.uniform(0.5, 1.5, 8)), g.rand(8, scale=0.1), g.rand(8, scale=0.1),
          g.init(rng.uniform(0.5, 2.0, 8))]
    n1 = g.op("BatchNormalization", [c1] + bn, epsilon=1e-5)
    r1 = g.op("Relu", [n1])
    w2 = g.rand(4, 8, 1, 1, scale=0.3)
    c2 = g.op("Conv", [r1, w2], kernel_shape=[1, 1])
    bn2 = [g.init(rng.uniform(0.5, 1.5, 4)), g.rand(4, scale=0.1), g.rand(4, scale=0.1),
           g.init(rng.uniform(0.5, 2.0, 4))]
    n2 = g.op("BatchNormalization", [c2] + bn2, epsilon=1e-5)
    # Caffe2-style Scale after SpatialBN: per-channel Mul and Add.
    n2 = g.op("Mul", [n2, g.init(rng.uniform(0.5, 1.5, (4, 1, 1)))])
    n2 = g.op("Add", [g.rand(1, 4, 1, 1, scale=0.1), n2])
    lo, hi = g.const(0.0), g.const(6.0)
    g.op("Clip", [n2, lo, hi])
    rename_last(g, "y")
    g.save("conv_bn_act", [f32("x", [1, 3, 8, 8])], [f32("y", [1, 4, 8, 8])])


def linear_bn():
    """Linear → BatchNorm1d → Relu (Gemm with transB), and MatMul → BatchNorm1d."""
    g = G()

    def bn(x, n):
        ins = [g.init(rng.uniform(0.5, 1.5, n)), g.rand(n, scale=0.1), g.rand(n, scale=0.1),
               g.init(rng.uniform(0.5, 2.0, n))]
        return g.op("BatchNormalization", [x] + ins, epsilon=1e-5)

    h = g.op("Gemm", ["x", g.rand(12, 16, scale=0.3), g.rand(12, scale=0.1)], transB=1)
    h = g.op("Relu", [bn(h, 12)])
    h = g.op("MatMul", [h, g.rand(12, 6, scale=0.3)])
    bn(h, 6)
    rename_last(g, "y")
    g.save("linear_bn", [f32("x", [4, 16])], [f32("y", [4, 6])])


def erf_gelu(g, x, half_first):
    """nn.GELU(): Div(x, 1.4142135) → Erf → Add 1 → Mul x → Mul 0.5 (or HF's 0.5 first)."""
    d = g.op("Div", [x, g.const(1.4142135)])
    e = g.op("Erf", [d])
    a = g.op("Add", [e, g.const(1.0)])
    if half_first:
        h = g.op("Mul", [x, g.const(0.5)])
        return g.op("Mul", [h, a])
    m = g.op("Mul", [x, a])
    return g.op("Mul", [m, g.const(0.5)])


def mlp_gelu():
    """Linear → GELU (erf) → Linear on [batch, seq, features], plus Gemm → Tanh."""
    g = G()
    h = g.op("MatMul", ["x", g.rand(16, 32, scale=0.3)])
    h = g.op("Add", [g.rand(32, scale=0.1), h])
    h = erf_gelu(g, h, half_first=False)
    h = g.op("MatMul", [h, g.rand(32, 16, scale=0.3)])
    h = g.op("Add", [h, g.rand(16, scale=0.1)])
    h = erf_gelu(g, h, half_first=True)
    rename_last(g, "y")
    g.op("Gemm", ["x2", g.rand(8, 16, scale=0.3), g.rand(8, scale=0.1)], transB=1)
    g.op("Tanh", [g.nodes[-1].output[0]])
    rename_last(g, "y2")
    g.save(
        "mlp_gelu",
        [f32("x", [2, 5, 16]), f32("x2", [4, 16])],
        [f32("y", [2, 5, 16]), f32("y2", [4, 8])],
    )


def gelu_tanh():
    """HF NewGELU, x³ as Pow(x, 3) and then as x·x·x."""
    g = G()

    def new_gelu(x, pow_form):
        if pow_form:
            c = g.op("Pow", [x, g.const(3.0)])
        else:
            c = g.op("Mul", [g.op("Mul", [x, x]), x])
        k = g.op("Mul", [g.const(0.044715), c])
        i = g.op("Add", [x, k])
        m = g.op("Mul", [g.const(math.sqrt(2.0 / math.pi)), i])
        t = g.op("Tanh", [m])
        a = g.op("Add", [g.const(1.0), t])
        h = g.op("Mul", [g.const(0.5), x])
        return g.op("Mul", [h, a])

    y = new_gelu("x", True)
    new_gelu(y, False)
    rename_last(g, "y")
    g.save("gelu_tanh", [f32("x", [2, 5, 16])], [f32("y", [2, 5, 16])])


def layer_norm():
    """nn.LayerNorm(16) as exported below opset 17, then one without affine parameters."""
    g = G()

    def ln(x, affine, eps):
        m = g.op("ReduceMean", [x], axes=[-1], keepdims=1)
        d = g.op("Sub", [x, m])
        p = g.op("Pow", [d, g.const(2.0)])
        v = g.op("ReduceMean", [p], axes=[-1], keepdims=1)
        a = g.op("Add", [v, g.const(eps)])
        s = g.op("Sqrt", [a])
        n = g.op("Div", [d, s])
        if affine:
            n = g.op("Mul", [n, g.init(rng.uniform(0.5, 1.5, 16), "gamma")])
            n = g.op("Add", [n, g.rand(16, scale=0.1, p="beta")])
        return n

    y = ln("x", True, 1e-5)
    y = g.op("Add", [y, "x"])
    ln(y, False, 1e-12)
    rename_last(g, "y")
    g.save("layer_norm", [f32("x", [2, 5, 16])], [f32("y", [2, 5, 16])])


def rms_norm():
    """HF LlamaRMSNorm (opset 18: ReduceMean's axes are an input)."""
    g = G()
    x = g.op("Cast", ["x"], to=TensorProto.FLOAT)
    p = g.op("Pow", [x, g.const(2.0)])
    v = g.op("ReduceMean", [p, g.const([-1], np.int64)], keepdims=1)
    a = g.op("Add", [v, g.const(1e-6)])
    s = g.op("Sqrt", [a])
    r = g.op("Reciprocal", [s])
    n = g.op("Mul", [x, r])
    n = g.op("Cast", [n], to=TensorProto.FLOAT)
    g.op("Mul", [g.init(rng.uniform(0.5, 1.5, 16), "weight"), n])
    rename_last(g, "y")
    g.save("rms_norm", [f32("x", [2, 5, 16])], [f32("y", [2, 5, 16])], opset=18)


def attention():
    """F.scaled_dot_product_attention(q, k, v, attn_mask) as torch exports it (√scale on Q
    and on K^T), and manual attention softmax(q @ k^T / √d) @ v."""
    g = G()
    d = 8
    sqrt_scale = g.const(math.sqrt(1.0 / math.sqrt(d)))
    kt = g.op("Transpose", ["k"], perm=[0, 1, 3, 2])
    qs = g.op("Mul", ["q", sqrt_scale])
    ks = g.op("Mul", [kt, sqrt_scale])
    s = g.op("MatMul", [qs, ks])
    s = g.op("Add", [s, "mask"])
    p = g.op("Softmax", [s], axis=-1)
    g.op("MatMul", [p, "v"])
    rename_last(g, "y")
    kt2 = g.op("Transpose", ["k2"], perm=[0, 1, 3, 2])
    s2 = g.op("MatMul", ["q", kt2])
    s2 = g.op("Div", [s2, g.const(math.sqrt(d))])
    p2 = g.op("Softmax", [s2], axis=-1)
    g.op("MatMul", [p2, "v"])
    rename_last(g, "y2")
    shape = [1, 2, 5, d]
    g.save(
        "attention",
        [f32("q", shape), f32("k", shape), f32("v", shape), f32("mask", [1, 1, 5, 5]),
         f32("k2", shape)],
        [f32("y", shape), f32("y2", shape)],
    )


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    conv_bn_act()
    linear_bn()
    mlp_gelu()
    gelu_tanh()
    layer_norm()
    rms_norm()
    attention()
    print("wrote", sorted(os.listdir(OUT)))
