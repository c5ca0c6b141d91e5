"""The xnpu wheel: devices, sessions, dtypes, threads and errors (run by scripts/test.sh)."""

import os
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import xnpu

REPO = Path(__file__).resolve().parents[2]
TINYCNN = REPO / "models" / "tinycnn.onnx"


def identity_model(elem_type: int) -> bytes:
    """y = Identity(x) for one element type, as bytes."""
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", elem_type, ["n", 3])],
        [helper.make_tensor_value_info("y", elem_type, ["n", 3])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString()


def test_devices_lists_the_cpu_as_available():
    found = xnpu.devices()
    cpu = [d for d in found if d.backend == "cpu"]
    assert len(cpu) == 1 and cpu[0].status == "available"
    for d in found:
        assert isinstance(d.hint, str) and d.hint


def test_tinycnn_matches_its_stored_output_and_onnxruntime():
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    want = np.load(REPO / "models" / "tinycnn.probs.ort.npy")
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    assert [i.name for i in s.get_inputs()] == ["image"]
    assert s.get_outputs()[0].shape == ["batch", 10]
    (y,) = s.run(None, {"image": x})
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    ref = ort.InferenceSession(str(TINYCNN), providers=["CPUExecutionProvider"])
    (r,) = ref.run(None, {"image": x})
    np.testing.assert_allclose(y, r, rtol=1e-5, atol=1e-6)
    assert "cpu" in s.explain()


def test_path_like_and_bytes_load_the_same_model():
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    a = xnpu.InferenceSession(TINYCNN, devices="cpu-only").run(["probs"], {"image": x})[0]
    b = xnpu.InferenceSession(TINYCNN.read_bytes(), devices="cpu-only").run(None, {"image": x})[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "elem, dtype",
    [
        (TensorProto.FLOAT16, np.float16),
        (TensorProto.INT8, np.int8),
        (TensorProto.BOOL, np.bool_),
        (TensorProto.INT64, np.int64),
        (TensorProto.UINT8, np.uint8),
        (TensorProto.DOUBLE, np.float64),
    ],
)
def test_dtypes_round_trip(elem, dtype):
    s = xnpu.InferenceSession(identity_model(elem), devices="cpu-only")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 3)) * 50).astype(dtype)
    (y,) = s.run(None, {"x": x})
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, x)


def test_bfloat16_round_trips_through_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    s = xnpu.InferenceSession(identity_model(TensorProto.BFLOAT16), devices="cpu-only")
    x = np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)
    (y,) = s.run(None, {"x": x})
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y.astype(np.float32), x.astype(np.float32))


def test_two_threads_share_one_session():
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    (want,) = s.run(None, {"image": x})
    errors = []

    def work():
        try:
            for _ in range(20):
                (y,) = s.run(None, {"image": x})
                np.testing.assert_array_equal(y, want)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_wrong_dtype_raises_invalid_input():
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    x = np.zeros((1, 3, 32, 32), np.float64)
    with pytest.raises(xnpu.InvalidInputError) as e:
        s.run(None, {"image": x})
    assert "image" in str(e.value) and "f64" in str(e.value)


def test_missing_input_raises_invalid_input():
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    with pytest.raises(xnpu.InvalidInputError) as e:
        s.run(None, {})
    assert "image" in str(e.value)


def test_unknown_output_raises_invalid_input():
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    with pytest.raises(xnpu.InvalidInputError, match="no output"):
        s.run(["nope"], {"image": x})


def test_corrupt_file_raises_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(TINYCNN.read_bytes()[:100])
    with pytest.raises(xnpu.ModelError) as e:
        xnpu.InferenceSession(str(bad))
    assert "bad.onnx" in str(e.value)


def test_missing_file_raises_io_error(tmp_path):
    with pytest.raises(xnpu.XnpuError) as e:
        xnpu.InferenceSession(str(tmp_path / "none.onnx"))
    assert "none.onnx" in str(e.value)
