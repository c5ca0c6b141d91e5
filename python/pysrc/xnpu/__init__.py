"""xnpu: run ONNX models on whatever accelerator this machine has (NPU, GPU, CPU).

    import numpy as np, xnpu
    print(xnpu.devices())
    s = xnpu.InferenceSession("model.onnx", devices="prefer-npu")
    (y,) = s.run(None, {"x": np.ones((1, 3), np.float32)})

The API follows ``onnxruntime.InferenceSession``; ``explain()`` adds the partition table.
Errors raise ``xnpu.XnpuError`` subclasses carrying xnpu's own message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ._xnpu import (
    ComputeError,
    InvalidInputError,
    ModelError,
    NodeArg,
    UnsupportedError,
    XnpuError,
    XnpuIOError,
)
from . import _xnpu

__all__ = [
    "Device",
    "devices",
    "InferenceSession",
    "Session",
    "NodeArg",
    "XnpuError",
    "ModelError",
    "UnsupportedError",
    "InvalidInputError",
    "ComputeError",
    "XnpuIOError",
]


@dataclass(frozen=True)
class Device:
    """A device xnpu found (or looked for): ``status`` says whether it can be used, ``hint``
    what to do when it cannot."""

    backend: str
    name: str
    vendor: str
    device: str
    status: str
    hint: str


def devices() -> List[Device]:
    """The devices of this machine, as ``xnpu devices`` lists them."""
    return [Device(*row) for row in _xnpu._devices()]


def _bf16():
    try:
        import ml_dtypes  # type: ignore

        return ml_dtypes.bfloat16
    except ImportError:
        return None


def _to_wire(name: str, value: Any):
    a = np.ascontiguousarray(value)
    dtype = a.dtype.name
    if dtype.startswith("str") or a.dtype.kind in "OUS":
        raise InvalidInputError(f'input "{name}": string arrays are not supported yet')
    return (dtype, list(a.shape), a.tobytes())


def _from_wire(dtype: str, shape, data: bytes) -> np.ndarray:
    if dtype == "bfloat16":
        bf16 = _bf16()
        raw = np.frombuffer(data, dtype=np.uint16).reshape(shape).copy()
        return raw.view(bf16) if bf16 is not None else raw
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()


class InferenceSession:
    """A model loaded and compiled for this machine's devices.

    ``model``: a path or the model's bytes. ``devices``: a policy (``prefer-npu``,
    ``prefer-gpu``, ``cpu-only``) or a comma-separated list (``openvino:npu,cpu``).
    ``level``: graph optimisation, ``none``, ``basic`` or ``all``. ``threads``: threads a
    backend may use for one run.
    """

    def __init__(
        self,
        model: Union[str, "os.PathLike[str]", bytes],
        devices: Optional[str] = None,
        level: Optional[str] = None,
        threads: Optional[int] = None,
    ) -> None:
        if isinstance(model, (bytes, bytearray, memoryview)):
            model = bytes(model)
        elif isinstance(model, os.PathLike):
            model = os.fspath(model)
        self._s = _xnpu.InferenceSession(model, devices=devices, level=level, threads=threads)

    def get_inputs(self) -> List[NodeArg]:
        return self._s.get_inputs()

    def get_outputs(self) -> List[NodeArg]:
        return self._s.get_outputs()

    @property
    def inputs(self) -> List[NodeArg]:
        return self._s.get_inputs()

    @property
    def outputs(self) -> List[NodeArg]:
        return self._s.get_outputs()

    def explain(self) -> str:
        """The partition table: which device runs each part of the model, and why."""
        return self._s.explain()

    def run(
        self,
        output_names: Optional[Sequence[str]],
        input_feed: Mapping[str, Any],
    ) -> List[np.ndarray]:
        """Runs the model; returns the named outputs (all when ``output_names`` is None)."""
        if not isinstance(input_feed, Mapping):
            raise TypeError("input_feed must be a mapping of input names to arrays")
        feeds: Dict[str, Any] = {k: _to_wire(k, v) for k, v in input_feed.items()}
        names = None if output_names is None else list(output_names)
        return [_from_wire(d, s, b) for d, s, b in self._s._run(names, feeds)]


Session = InferenceSession
