#!/usr/bin/env python3
"""Models for `xnpu bench` that the onnx wheel does not ship (random weights, fixed seeds).

    .venv/bin/python scripts/make_bench_models.py [OUT_DIR] [--only NAME,...]   # default target/bench-models

- matmul1024.onnx: Y = A @ B, A a 1024x1024 float32 input, B a constant 1024x1024 weight
  (the GEMM target of issue 19: 2.1 GFLOP per inference).
- mobilenet_v3.onnx: MobileNet-v3-small's layout (torchvision's block table): 3x3 stem with
  HardSwish, inverted residual blocks (1x1 expand, depthwise 3x3/5x5, squeeze-excite with
  HardSigmoid, 1x1 project, residual Add), global pooling, a 1024-wide head; 1x3x224x224.
- resnet18.onnx: ResNet-18's layout (batch norm folded into the convolutions), 1x3x224x224.
- resnet18_qdq.onnx: the same network quantised to QDQ int8 by onnxruntime's static
  quantiser (int8 activations and per-channel weights, calibrated on 8 seeded inputs).
- bert_encoder.onnx: a small BERT encoder (4 layers, hidden 256, 4 heads, FFN 1024, erf GELU,
  post-norm), token ids and attention mask of shape [1, 128] in, hidden states out.
- whisper_encoder.onnx: a Whisper-style encoder (whisper-tiny's widths: two Conv1d + GELU
  over 80 log-mel bins, sinusoidal positions, 4 pre-norm layers of 6 heads, hidden 384,
  FFN 1536) over 1,000 frames (10 s of audio, 500 positions).

The layouts are written here with onnx.helper, as the exporters write them (Transpose and
Reshape around the attention heads, Softmax over the last axis, LayerNormalization,
`x * 0.5 * (1 + Erf(x / sqrt 2))`), so that xnpu's passes and ONNX Runtime's fusions see
the same graph.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Builder:
    """A graph under construction: nodes, initializers and fresh names."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: np.ndarray, hint: str = "c") -> str:
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def weight(self, shape: tuple[int, ...], fan_in: int, hint: str = "w") -> str:
        w = self.rng.standard_normal(shape).astype(np.float32) * np.float32(
            math.sqrt(2.0 / fan_in)
        )
        return self.const(w, hint)

    def bias(self, n: int) -> str:
        return self.const((self.rng.standard_normal(n) * 0.01).astype(np.float32), "b")

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def classifier(self, name: str, out: Path) -> onnx.ModelProto:
        """The graph as an image classifier: input `input` 1x3x224x224, the last node's output
        renamed `logits` 1x1000; saved as NAME.onnx in `out`."""
        self.nodes[-1].output[0] = "logits"
        model = self.model(
            name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
        )
        onnx.save(model, out / f"{name}.onnx")
        return model

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model

    # -- convolutional pieces ------------------------------------------------------------
    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> str:
        w = self.weight((cout, cin // group, k, k), cin // group * k * k)
        p = k // 2
        return self.op(
            "Conv",
            [x, w, self.bias(cout)],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[p, p, p, p],
            group=group,
        )

    def act(self, x: str, kind: str) -> str:
        if kind == "relu":
            return self.op("Relu", [x])
        if kind == "hswish":
            return self.op("HardSwish", [x])
        if kind == "hsigmoid":
            return self.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
        raise ValueError(kind)

    # -- transformer pieces --------------------------------------------------------------
    def linear(self, x: str, cin: int, cout: int) -> str:
        y = self.op("MatMul", [x, self.weight((cin, cout), cin)])
        return self.op("Add", [y, self.bias(cout)])

    def layer_norm(self, x: str, width: int) -> str:
        noise = self.rng.standard_normal(width).astype(np.float32) * np.float32(0.01)
        gamma = self.const(np.float32(1.0) + noise)
        beta = self.const((self.rng.standard_normal(width) * 0.01).astype(np.float32))
        return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)

    def gelu(self, x: str) -> str:
        """GELU as exporters write it at opset < 20: x * 0.5 * (1 + erf(x / sqrt 2))."""
        d = self.op("Div", [x, self.const(np.array(math.sqrt(2.0), np.float32))])
        e = self.op("Erf", [d])
        a = self.op("Add", [e, self.const(np.array(1.0, np.float32))])
        m = self.op("Mul", [x, a])
        return self.op("Mul", [m, self.const(np.array(0.5, np.float32))])

    def attention(self, x: str, seq: int, width: int, heads: int, mask: str | None) -> str:
        hd = width // heads
        split = self.const(np.array([1, seq, heads, hd], np.int64), "shape")

        def project(perm: list[int]) -> str:
            y = self.op("Reshape", [self.linear(x, width, width), split])
            return self.op("Transpose", [y], perm=perm)

        q = project([0, 2, 1, 3])
        k = project([0, 2, 3, 1])
        v = project([0, 2, 1, 3])
        s = self.op("MatMul", [q, k])
        s = self.op("Div", [s, self.const(np.array(math.sqrt(hd), np.float32))])
        if mask is not None:
            s = self.op("Add", [s, mask])
        p = self.op("Softmax", [s], axis=-1)
        c = self.op("Transpose", [self.op("MatMul", [p, v])], perm=[0, 2, 1, 3])
        c = self.op("Reshape", [c, self.const(np.array([1, seq, width], np.int64), "shape")])
        return self.linear(c, width, width)


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


def make_divisible(v: float, d: int = 8) -> int:
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


def mobilenet_v3(out: Path) -> None:
    b = Builder(1)
    x = b.act(b.conv("input", 3, 16, 3, 2), "hswish")
    # (kernel, expanded, out, squeeze-excite, activation, stride): torchvision's small table.
    table = [
        (3, 16, 16, True, "relu", 2),
        (3, 72, 24, False, "relu", 2),
        (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hswish", 2),
        (5, 240, 40, True, "hswish", 1),
        (5, 240, 40, True, "hswish", 1),
        (5, 120, 48, True, "hswish", 1),
        (5, 144, 48, True, "hswish", 1),
        (5, 288, 96, True, "hswish", 2),
        (5, 576, 96, True, "hswish", 1),
        (5, 576, 96, True, "hswish", 1),
    ]
    cin = 16
    for k, exp, cout, se, act, stride in table:
        y = x
        if exp != cin:
            y = b.act(b.conv(y, cin, exp, 1), act)
        y = b.act(b.conv(y, exp, exp, k, stride, group=exp), act)
        if se:
            sq = make_divisible(exp / 4)
            s = b.op("GlobalAveragePool", [y])
            s = b.act(b.conv(s, exp, sq, 1), "relu")
            s = b.act(b.conv(s, sq, exp, 1), "hsigmoid")
            y = b.op("Mul", [y, s])
        y = b.conv(y, exp, cout, 1)
        x = b.op("Add", [x, y]) if stride == 1 and cin == cout else y
        cin = cout
    x = b.act(b.conv(x, cin, 576, 1), "hswish")
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    x = b.op("Gemm", [x, b.weight((1024, 576), 576), b.bias(1024)], transB=1)
    x = b.act(x, "hswish")
    b.op("Gemm", [x, b.weight((1000, 1024), 1024), b.bias(1000)], transB=1)
    b.classifier("mobilenet_v3", out)


def resnet18(out: Path) -> onnx.ModelProto:
    b = Builder(2)
    x = b.act(b.conv("input", 3, 64, 7, 2), "relu")
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for width, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for block in range(2):
            s = stride if block == 0 else 1
            y = b.act(b.conv(x, cin, width, 3, s), "relu")
            y = b.conv(y, width, width, 3)
            short = b.conv(x, cin, width, 1, s) if (s != 1 or cin != width) else x
            x = b.act(b.op("Add", [y, short]), "relu")
            cin = width
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])], axis=1)
    b.op("Gemm", [x, b.weight((1000, 512), 512), b.bias(1000)], transB=1)
    return b.classifier("resnet18", out)


def resnet18_qdq(out: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    src = out / "resnet18.onnx"
    if not src.exists():
        resnet18(out)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(3)
            self.batches = iter(
                [{"input": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)} for _ in range(8)]
            )

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(src),
        str(out / "resnet18_qdq.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )


def bert_encoder(out: Path) -> None:
    seq, width, heads, ffn, layers, vocab = 128, 256, 4, 1024, 4, 8192
    b = Builder(4)
    words = b.const((b.rng.standard_normal((vocab, width)) * 0.02).astype(np.float32), "words")
    positions = b.const((b.rng.standard_normal((1, seq, width)) * 0.02).astype(np.float32), "positions")
    x = b.op("Add", [b.op("Gather", [words, "input_ids"], axis=0), positions])
    x = b.layer_norm(x, width)
    # The additive mask: (1 - mask) * -10000 as [1, 1, 1, seq].
    m = b.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m = b.op("Sub", [b.const(np.array(1.0, np.float32)), m])
    m = b.op("Mul", [m, b.const(np.array(-10000.0, np.float32))])
    mask = b.op("Unsqueeze", [m, b.const(np.array([1, 2], np.int64), "axes")])
    for _ in range(layers):
        x = b.layer_norm(b.op("Add", [x, b.attention(x, seq, width, heads, mask)]), width)
        h = b.linear(b.gelu(b.linear(x, width, ffn)), ffn, width)
        x = b.layer_norm(b.op("Add", [x, h]), width)
    b.nodes[-1].output[0] = "last_hidden_state"
    model = b.model(
        "bert_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, seq]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, seq]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, seq, width])],
    )
    onnx.save(model, out / "bert_encoder.onnx")


def whisper_encoder(out: Path) -> None:
    mels, frames, width, heads, ffn, layers = 80, 1000, 384, 6, 1536, 4
    seq = frames // 2
    b = Builder(5)

    def conv1d(x: str, cin: int, cout: int, stride: int) -> str:
        w = b.weight((cout, cin, 3), cin * 3)
        return b.op("Conv", [x, w, b.bias(cout)], kernel_shape=[3], strides=[stride], pads=[1, 1])

    x = b.gelu(conv1d("input_features", mels, width, 1))
    x = b.gelu(conv1d(x, width, width, 2))
    x = b.op("Transpose", [x], perm=[0, 2, 1])
    # Whisper's sinusoidal positions.
    scale = np.exp(-math.log(10000) / (width // 2 - 1) * np.arange(width // 2))
    t = np.arange(seq)[:, None] * scale[None, :]
    positions = np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)
    x = b.op("Add", [x, b.const(positions[None], "positions")])
    for _ in range(layers):
        x = b.op("Add", [x, b.attention(b.layer_norm(x, width), seq, width, heads, None)])
        h = b.linear(b.gelu(b.linear(b.layer_norm(x, width), width, ffn)), ffn, width)
        x = b.op("Add", [x, h])
    x = b.layer_norm(x, width)
    b.nodes[-1].output[0] = "last_hidden_state"
    model = b.model(
        "whisper_encoder",
        [helper.make_tensor_value_info("input_features", TensorProto.FLOAT, [1, mels, frames])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, seq, width])],
    )
    onnx.save(model, out / "whisper_encoder.onnx")


MODELS = {
    "matmul1024": matmul1024,
    "mobilenet_v3": mobilenet_v3,
    "resnet18": resnet18,
    "resnet18_qdq": resnet18_qdq,
    "bert_encoder": bert_encoder,
    "whisper_encoder": whisper_encoder,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="target/bench-models")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(MODELS))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(MODELS)
    for name in names:
        if name not in MODELS:
            print(f"unknown model {name!r}; choose from {', '.join(MODELS)}", file=sys.stderr)
            return 2
        MODELS[name](out)
        print(f"wrote {out / (name + '.onnx')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
