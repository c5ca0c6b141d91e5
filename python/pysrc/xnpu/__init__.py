"""xnpu: run ONNX models on whatever accelerator this machine has (NPU, GPU, CPU).

    import numpy as np, xnpu
    print(xnpu.devices())
    s = xnpu.InferenceSession("model.onnx", devices="prefer-npu")
    (y,) = s.run(None, {"x": np.ones((1, 3), np.float32)})
    print(s.explain())

    for piece in xnpu.generate("phi-3.5-mini-int4", "The capital of France is", max_tokens=32):
        print(piece, end="", flush=True)

The API follows ``onnxruntime.InferenceSession``; ``explain()`` adds the partition table and
``generate`` streams text from a language model folder. Errors raise ``xnpu.XnpuError``
subclasses carrying xnpu's own message. Warnings (a fallback to another device, a plugin or
setting that was skipped) are records of the ``xnpu`` logger of ``logging``; ``XNPU_LOG``
(off, error, warn, info, debug, trace; default warn), read at import, says which levels.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple, Union

# Vendor libraries that come as wheels (openvino, onnxruntime-qnn) are looked for in this
# interpreter's site folders: set before the native module (and any plugin) reads it.
os.environ.setdefault(
    "XNPU_SITE_PACKAGES",
    os.pathsep.join(
        p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)
    ),
)

from . import _xnpu  # noqa: E402
from ._xnpu import (  # noqa: E402
    CancelledError,
    ComputeError,
    Explanation,
    InferenceSession,
    InvalidInputError,
    LanguageModel,
    ModelError,
    NodeArg,
    PlanRow,
    RunOptions,
    TokenStream,
    UnsupportedError,
    XnpuError,
    XnpuIOError,
)

# Backend plugins shipped in the wheel lie beside this file.
_xnpu._add_plugin_dir(os.path.dirname(os.path.abspath(__file__)))

Session = InferenceSession

#: The name xnpu's ONNX Runtime execution provider registers under (its devices'
#: ``ep_name``).
EP_NAME = "XnpuExecutionProvider"


def get_ep_library_path() -> str:
    """The path of xnpu's ONNX Runtime plugin execution provider, shipped in this wheel::

        import onnxruntime as ort, xnpu
        ort.register_execution_provider_library("xnpu", xnpu.get_ep_library_path())
        devices = [d for d in ort.get_ep_devices() if d.ep_name == xnpu.EP_NAME]
        so = ort.SessionOptions()
        so.add_provider_for_devices(devices[:1], {"level": "all"})
        session = ort.InferenceSession("model.onnx", so)

    Each device carries ``xnpu.device`` (``cpu``, ``openvino:npu``, ``qnn:htp``...) in its
    ``ep_metadata``. Options: devices, level, threads, precision, performance, cache_dir,
    explain_json (a file to write the partition explanation to). Importing ``xnpu`` also
    tells the EP where this interpreter's vendor wheels (openvino, onnxruntime-qnn) are.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libxnpu_onnxruntime_ep.so")
    if not os.path.isfile(path):
        raise XnpuIOError(
            f"{path} is missing: this xnpu wheel was built without the ONNX Runtime "
            "execution provider (scripts/build_wheel.sh packs it)"
        )
    return path

__all__ = [
    "Backend",
    "backends",
    "Device",
    "DeviceList",
    "devices",
    "EP_NAME",
    "get_ep_library_path",
    "Explanation",
    "generate",
    "InferenceSession",
    "LanguageModel",
    "NodeArg",
    "PlanRow",
    "RunOptions",
    "plugin_notes",
    "Session",
    "TokenStream",
    "XnpuError",
    "ModelError",
    "UnsupportedError",
    "InvalidInputError",
    "ComputeError",
    "CancelledError",
    "XnpuIOError",
]


@dataclass(frozen=True, repr=False)
class Device:
    """A device xnpu found (or looked for): ``status`` says whether it can be used, ``hint``
    what to do when it cannot. ``details`` holds what a user checks next (ISA features, the
    PCI address, the accel node); ``library`` (and ``library_version``) the vendor library
    found, ``driver`` the kernel driver; ``tried`` the paths looked at for a missing library,
    ``why`` the reason of an ``unsupported`` status."""

    backend: str
    name: str
    vendor: str
    device: str
    status: str
    hint: str
    details: str = ""
    library: Optional[str] = None
    library_version: Optional[str] = None
    driver: Optional[str] = None
    tried: Tuple[str, ...] = ()
    why: str = ""

    @property
    def id(self) -> str:
        """The device id ``devices=`` takes (``openvino:npu``); ``cpu`` for the CPU."""
        return self.backend if self.backend == self.name else f"{self.backend}:{self.name}"

    def __repr__(self) -> str:
        return f"Device(id={self.id!r}, device={self.device!r}, status={self.status!r})"


class DeviceList(List[Device]):
    """The list ``devices()`` returns: a list of ``Device``; ``str()`` (and ``repr()``) is the
    table ``xnpu devices`` prints, of the devices it holds."""

    def __init__(self, devices: Iterable[Device] = (), wsl: Optional[str] = None) -> None:
        super().__init__(devices)
        #: Why this looks like WSL (NPUs come through the Windows host there); None elsewhere.
        self.wsl = wsl

    def __str__(self) -> str:
        rows = [
            (
                d.backend, d.name, d.vendor, d.device, d.status, d.hint, d.details, d.library,
                d.library_version, d.driver, list(d.tried), d.why,
            )
            for d in self
        ]
        return _xnpu._render_devices(rows, self.wsl).rstrip("\n")

    __repr__ = __str__


def devices() -> DeviceList:
    """The devices of this machine, as ``xnpu devices`` lists them: ``print(xnpu.devices())``
    shows the table, and the result is a list of ``Device``."""
    rows, wsl = _xnpu._devices()
    found = []
    for *fields, tried, why in rows:
        found.append(Device(*fields, tuple(tried), why))
    return DeviceList(found, wsl)


@dataclass(frozen=True)
class Backend:
    """A backend sessions can use: ``id`` is what ``devices=`` takes, ``kind`` the device
    kind (npu, gpu, cpu), ``detail`` what drives it (library, plugin file)."""

    id: str
    kind: str
    detail: str


def backends() -> List[Backend]:
    """The backends sessions can use on this machine: built in, and plugins (those in the
    package folder, in ``XNPU_PLUGIN_PATH``, next to the executable). ``plugin_notes()``
    says why a plugin found there was skipped."""
    rows, _notes = _xnpu._backends()
    return [Backend(*row) for row in rows]


def plugin_notes() -> List[str]:
    """Why plugins that were found could not be used (one line each, naming the file)."""
    return list(_xnpu._backends()[1])


def generate(
    model: Union[str, "os.PathLike[str]", LanguageModel],
    prompt: Union[str, Sequence[int]],
    max_tokens: int = 128,
    *,
    devices: Optional[str] = None,
    level: Optional[str] = None,
    threads: Optional[int] = None,
    **options,
) -> TokenStream:
    """Streams the text a language model generates after ``prompt``.

    ``model``: a model folder (``genai_config.json``, the decoder, ``tokenizer.json``),
    loaded with ``devices``, ``level`` and ``threads``, or a loaded ``LanguageModel`` (load
    it once to generate many times). ``options`` are those of
    ``LanguageModel.generate``: ``do_sample``, ``temperature``, ``top_k``, ``top_p``,
    ``repetition_penalty``, ``seed``, ``max_length``, ``chunk_size``, ``ignore_eos``.
    Iterate the result for text pieces; its ``ids``, ``finish`` and ``stats`` tell the rest.
    """
    if not isinstance(model, LanguageModel):
        model = LanguageModel(os.fspath(model), devices=devices, level=level, threads=threads)
    elif devices is not None or level is not None or threads is not None:
        raise TypeError("devices, level and threads are set when the LanguageModel is loaded")
    return model.generate(prompt, max_tokens, **options)
