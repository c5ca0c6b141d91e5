# Type stubs of the native module (re-exported by __init__.py).
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

class XnpuError(Exception): ...
class ModelError(XnpuError): ...
class UnsupportedError(XnpuError): ...
class InvalidInputError(XnpuError): ...
class ComputeError(XnpuError): ...
class CancelledError(XnpuError): ...
class XnpuIOError(XnpuError): ...

class NodeArg:
    """A model input or output."""

    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> Optional[str]:
        """NumPy's name of the element type (``float32``, ``bfloat16``...)."""
    @property
    def shape(self) -> Optional[List[Union[int, str]]]:
        """Dimensions: ints, or names for symbolic ones; None when unknown."""
    @property
    def type(self) -> str:
        """onnxruntime's name of the type: ``tensor(float)``, ``seq(tensor(int64))``..."""

class PlanRow:
    """One node of the partition plan."""

    @property
    def node(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def why(self) -> str:
        """A fallback note, then each other device's reason for refusing the node."""

class Explanation:
    """How a session split its model between devices; ``str()`` is the table."""

    @property
    def rows(self) -> List[PlanRow]: ...
    @property
    def devices(self) -> List[Tuple[str, int]]:
        """(device, node count)."""
    @property
    def partitions(self) -> List[Tuple[str, int]]:
        """(device, node count) per partition, in the order they run."""
    @property
    def notes(self) -> List[str]: ...
    def json(self) -> str:
        """The explanation in the JSON schema every xnpu surface shares (docs/explain.md)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[PlanRow]: ...

class OutputBuffer:
    """The base of an output array that uses xnpu's buffer in place."""

class RunOptions:
    """Options of one run (as onnxruntime's ``RunOptions``): set ``terminate`` from any
    thread to stop the runs given these options; ``timeout`` (seconds) stops a run that takes
    longer. A stopped run raises ``CancelledError``."""

    def __init__(self, timeout: Optional[float] = None) -> None: ...
    terminate: bool
    timeout: Optional[float]

class InferenceSession:
    """A model loaded and compiled for this machine's devices.

    ``model``: a path or the model's bytes. ``devices``: a policy (``prefer-npu``,
    ``prefer-gpu``, ``cpu-only``) or a comma-separated list of device ids
    (``openvino:npu,cpu``). ``level``: ``none``, ``basic`` or ``all``. ``threads``: threads a
    backend may use for one run. ``max_memory``: the most bytes one run may hold (an int, or
    a str such as ``"4G"``); work past it raises ``ComputeError`` before it allocates.
    """

    def __init__(
        self,
        model: Union[str, "os.PathLike[str]", bytes, bytearray],
        devices: Optional[str] = None,
        level: Optional[str] = None,
        threads: Optional[int] = None,
        max_memory: Union[int, str, None] = None,
    ) -> None: ...
    def get_inputs(self) -> List[NodeArg]: ...
    def get_outputs(self) -> List[NodeArg]: ...
    @property
    def inputs(self) -> List[NodeArg]: ...
    @property
    def outputs(self) -> List[NodeArg]: ...
    def explain(self) -> Explanation: ...
    def run(
        self,
        output_names: Optional[Sequence[str]],
        input_feed: Dict[str, Any],
        run_options: Optional[RunOptions] = None,
    ) -> List[np.ndarray]:
        """Runs the model; returns the named outputs (all when ``output_names`` is None or
        empty). Inputs are read in place: do not change them from another thread meanwhile.
        A list, tuple or Python scalar becomes an array of the input's element type (a value
        that would lose its kind of number, such as a float for an int64 input, raises
        ``InvalidInputError``); a NumPy array keeps its dtype."""

class TokenStream(Iterator[str]):
    """One generation: iterate it for text pieces as they are generated."""

    def __iter__(self) -> "TokenStream": ...
    def __next__(self) -> str: ...
    def stop(self) -> None:
        """Ends the generation before its next step."""
    @property
    def ids(self) -> List[int]: ...
    @property
    def finish(self) -> Optional[str]:
        """``length``, ``eos`` or ``stopped``; None while the generation goes on."""
    @property
    def stats(self) -> Dict[str, float]: ...

class LanguageModel:
    """A language model folder (genai_config.json, decoder, tokenizer.json), loaded."""

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        devices: Optional[str] = None,
        level: Optional[str] = None,
        threads: Optional[int] = None,
        prefill_devices: Optional[str] = None,
    ) -> None: ...
    def encode(self, text: str) -> List[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def generate(
        self,
        prompt: Union[str, Sequence[int]],
        max_tokens: int = 128,
        *,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int = 0,
        max_length: Optional[int] = None,
        chunk_size: Optional[int] = None,
        ignore_eos: bool = False,
    ) -> TokenStream: ...

_DeviceRow = Tuple[
    str, str, str, str, str, str, str, Optional[str], Optional[str], Optional[str], List[str], str
]

def _devices() -> Tuple[List[_DeviceRow], Optional[str]]: ...
def _render_devices(rows: Sequence[_DeviceRow], wsl: Optional[str] = None) -> str: ...
def _backends() -> Tuple[List[Tuple[str, str, str]], List[str]]: ...
def _add_plugin_dir(dir: Union[str, "os.PathLike[str]"]) -> None: ...
