"""The xnpu wheel: devices, sessions, dtypes, threads and errors (run by scripts/test.sh)."""

import json
import os
import subprocess
import sys
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


def test_devices_print_as_the_table_of_xnpu_devices():
    found = xnpu.devices()
    assert isinstance(found, list) and isinstance(found, xnpu.DeviceList)
    assert all(isinstance(d, xnpu.Device) for d in found) and found[0] is list(found)[0]
    lines = str(found).splitlines()
    assert lines[0].split() == ["device", "name", "vendor", "status", "library", "/", "driver",
                                "/", "details"]
    for d, line in zip(found, lines[1:]):
        assert line.split()[0] == d.id and d.status in line and d.vendor in line
    # Each device other than the CPU has its hint line below the table.
    for d in found:
        if d.backend != "cpu":
            assert any(line.startswith(f"{d.id}") and d.hint in line for line in lines)
    assert repr(found) == str(found)
    cpu = next(d for d in found if d.backend == "cpu")
    assert repr(cpu) == f"Device(id='cpu', device={cpu.device!r}, status='available')"
    assert cpu.details and cpu.details in str(found)


def test_the_table_follows_the_list_it_is_of():
    found = xnpu.devices()
    cpu = next(d for d in found if d.backend == "cpu")
    mine = xnpu.DeviceList([cpu, xnpu.Device("acme", "npu", "Acme", "Acme NPU [1234:5678]",
                                              "library missing", "install libacme",
                                              tried=("/opt/acme/libacme.so",))])
    text = str(mine)
    assert len(text.splitlines()) == 3 + 3  # header, two rows; blank, hint, tried
    assert "acme:npu" in text and "library missing" in text
    assert "acme:npu: install libacme" in text and "tried: /opt/acme/libacme.so" in text
    del found[1:]
    found.wsl = None
    assert len(str(found).splitlines()) == 2  # the header and the CPU's row
    assert str(xnpu.DeviceList()).split()[0] == "device"


@pytest.mark.parametrize(
    "name",
    ["XnpuError", "ModelError", "UnsupportedError", "InvalidInputError", "ComputeError",
     "CancelledError", "XnpuIOError", "InferenceSession", "RunOptions", "NodeArg", "PlanRow",
     "Explanation", "LanguageModel", "TokenStream"],
)
def test_public_names_belong_to_the_xnpu_module(name):
    assert getattr(xnpu, name).__module__ == "xnpu"
    assert getattr(xnpu, name).__qualname__ == name


def test_errors_show_as_xnpu_errors_in_tracebacks():
    import traceback

    with pytest.raises(xnpu.ModelError) as e:
        xnpu.InferenceSession(b"not a model")
    (line,) = traceback.format_exception_only(e.type, e.value)
    assert line.startswith("xnpu.ModelError: ")
    assert "_xnpu" not in repr(xnpu.RunOptions)


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
    e = s.explain()
    assert "why not elsewhere" in str(e)
    assert len(e) == len(e.rows) > 0 and all(r.device == "cpu" for r in e)
    assert e.devices == [("cpu", len(e))] and e.partitions == [("cpu", len(e))]
    assert {r.op for r in e.rows} >= {"Softmax"}


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


@pytest.mark.parametrize(
    "elem, name",
    [
        (TensorProto.INT4, "int4"),
        (TensorProto.UINT4, "uint4"),
        (TensorProto.INT2, "int2"),
        (TensorProto.UINT2, "uint2"),
        (TensorProto.FLOAT8E4M3FN, "float8_e4m3fn"),
        (TensorProto.FLOAT8E5M2FNUZ, "float8_e5m2fnuz"),
        (TensorProto.FLOAT4E2M1, "float4_e2m1fn"),
    ],
)
def test_narrow_dtypes_cross_as_ml_dtypes_arrays(elem, name):
    """ml_dtypes keeps one element per byte; xnpu packs the sub-byte ones as ONNX does and
    unpacks them on the way out, and casts them with ONNX's rules."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dtype = getattr(ml_dtypes, name)
    g = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["y"]),
            helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["f"], ["back"], to=elem),
        ],
        "narrow",
        [helper.make_tensor_value_info("x", elem, ["n", 3])],
        [
            helper.make_tensor_value_info("y", elem, ["n", 3]),
            helper.make_tensor_value_info("f", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("back", elem, ["n", 3]),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)])
    s = xnpu.InferenceSession(m.SerializeToString(), devices="cpu-only")
    # An odd element count: the last packed byte is partly used.
    x = np.array([[-1, 0, 1], [1, 0, -1], [1, 1, 0]], np.float32).astype(dtype)
    y, f, back = s.run(None, {"x": x})
    assert y.dtype == dtype and back.dtype == dtype and f.dtype == np.float32
    np.testing.assert_array_equal(y.view(np.uint8), x.view(np.uint8))
    np.testing.assert_array_equal(f, x.astype(np.float32))
    np.testing.assert_array_equal(back.view(np.uint8), x.view(np.uint8))


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


def const_output_model() -> bytes:
    """y = Identity(x); c = Identity(constant initializer)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["w"], ["c"])],
        "const_out",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, [3]),
        ],
        initializer=[w],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString()


def test_computed_outputs_are_returned_in_place_and_writable():
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    (y,) = s.run(None, {"image": x})
    # No copy: the array is a view of xnpu's own buffer, which it keeps alive.
    assert type(y.base).__name__ == "OutputBuffer"
    assert y.flags.writeable and y.flags.c_contiguous and y.flags.aligned
    want = y.copy()
    y[:] = 0
    (again,) = s.run(None, {"image": x})
    np.testing.assert_array_equal(again, want)


def test_outputs_sharing_an_input_or_a_constant_are_copies(tmp_path):
    for model in (const_output_model(), None):
        if model is None:  # the same model from a file: its constant lies in a mapped file
            path = tmp_path / "const_out.onnx"
            path.write_bytes(const_output_model())
            model = str(path)
        s = xnpu.InferenceSession(model, devices="cpu-only", level="none")
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        y, c = s.run(None, {"x": x})
        assert not np.shares_memory(y, x) and y.flags.writeable
        y[:] = -1
        np.testing.assert_array_equal(x, np.arange(6, dtype=np.float32).reshape(2, 3))
        c[:] = -1
        (c2,) = s.run(["c"], {"x": x})
        np.testing.assert_array_equal(c2, [1.0, 2.0, 3.0])


def test_an_output_asked_for_twice_gives_two_arrays():
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    s = xnpu.InferenceSession(str(TINYCNN), devices="cpu-only")
    a, b = s.run(["probs", "probs"], {"image": x})
    assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, b)


def test_inputs_of_any_layout_give_the_same_result():
    s = xnpu.InferenceSession(identity_model(TensorProto.FLOAT), devices="cpu-only")
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    strided = base[:, ::2]  # not contiguous
    fortran = np.asfortranarray(base[:, :3])
    swapped = base[:, :3].astype(">f4")  # big-endian
    nested = base[:, :3].tolist()  # a list, not an array: converted to the input's float32
    for x in (strided, fortran, swapped, nested):
        (y,) = s.run(None, {"x": x})
        np.testing.assert_array_equal(y, np.asarray(x, dtype=np.float32))
        assert y.dtype == np.float32
    with pytest.raises(xnpu.InvalidInputError, match="f64"):  # an array keeps its dtype
        s.run(None, {"x": np.asarray(nested)})


def test_bad_feeds_raise_clear_errors():
    s = xnpu.InferenceSession(identity_model(TensorProto.FLOAT), devices="cpu-only")
    with pytest.raises(TypeError, match="dict"):
        s.run(None, [("x", np.zeros((1, 3), np.float32))])
    with pytest.raises(xnpu.InvalidInputError, match="complex"):
        s.run(None, {"x": np.zeros((1, 3), np.complex64)})
    with pytest.raises(xnpu.InvalidInputError, match="no input"):
        s.run(None, {"x": np.zeros((1, 3), np.float32), "nope": np.zeros(1)})
    with pytest.raises(xnpu.InvalidInputError, match="threads"):
        xnpu.InferenceSession(identity_model(TensorProto.FLOAT), threads=0)


def test_plugins_in_the_package_folder_are_found_and_run():
    pkg = Path(xnpu.__file__).resolve().parent
    plugins = {b.id: b for b in xnpu.backends()}
    assert "plugin:cpu" in plugins, plugins
    assert str(pkg) in plugins["plugin:cpu"].detail
    x = np.load(REPO / "models" / "tinycnn.image.npy")
    (want,) = xnpu.InferenceSession(str(TINYCNN), devices="cpu").run(None, {"image": x})
    (got,) = xnpu.InferenceSession(str(TINYCNN), devices="plugin:cpu").run(None, {"image": x})
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_vendor_wheels_beside_the_package_are_found():
    # openvino is installed in the test venv: the package names its site folders to the
    # native discovery, so no VIRTUAL_ENV is needed.
    pytest.importorskip("openvino")
    found = {(d.backend, d.name): d.status for d in xnpu.devices()}
    assert found.get(("openvino", "cpu")) == "available", found
    ids = {b.id for b in xnpu.backends()}
    assert "openvino:cpu" in ids, ids


LLM = os.environ.get("XNPU_LLM_MODELS")


@pytest.mark.skipif(not LLM, reason="XNPU_LLM_MODELS (the tiny models scripts/test.sh makes) unset")
def test_generate_streams_the_tokens_onnxruntime_genai_generates():
    model = Path(LLM) / "tiny-fp32"
    prompt = "The quick brown fox"
    ref = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "ref_genai.py"), str(model), "--prompt", prompt,
         "--max-tokens", "16", "--no-eos"],
        check=True, capture_output=True, text=True,
    )
    want = json.loads(ref.stdout)
    lm = xnpu.LanguageModel(model, devices="cpu-only")
    assert lm.encode(prompt) == want["prompt_ids"]
    stream = xnpu.generate(lm, prompt, 16, ignore_eos=True)
    assert stream.finish is None
    pieces = list(stream)
    assert stream.ids == want["generated_ids"]
    assert stream.finish == "length"
    assert "".join(pieces) == lm.decode(stream.ids)
    stats = stream.stats
    assert stats["generated_tokens"] == 16 and stats["decode_steps"] == 15
    # A stream stopped early ends at once.
    s2 = xnpu.generate(model, prompt, 16, ignore_eos=True, devices="cpu-only")
    next(iter(s2))
    s2.stop()
    assert list(s2) == [] and s2.finish == "stopped"


def test_generate_reports_bad_arguments():
    with pytest.raises(xnpu.XnpuError):
        xnpu.LanguageModel(REPO / "models")  # not a language model folder
    if LLM:
        lm = xnpu.LanguageModel(Path(LLM) / "tiny-fp32", devices="cpu-only")
        with pytest.raises(xnpu.InvalidInputError, match="top_p"):
            lm.generate("hi", do_sample=True, top_p=0.0)
        with pytest.raises(TypeError, match="prompt"):
            lm.generate(3.5)


def test_strings_round_trip_as_object_arrays():
    s = xnpu.InferenceSession(identity_model(TensorProto.STRING), devices="cpu-only")
    for x in (np.array([["a", "héllo", ""]]), np.array([["x", "y", "z"]], dtype=object)):
        (y,) = s.run(None, {"x": x})
        assert y.dtype == object and y.shape == (1, 3)
        assert y.tolist() == x.tolist()
    with pytest.raises(xnpu.InvalidInputError, match="str"):
        s.run(None, {"x": np.array([[1, "a", None]], dtype=object)})


CASES = os.environ.get("XNPU_ONNX_CASES")
LIGHT = sorted((Path(CASES) / "light").glob("light_*.onnx")) if CASES else []


@pytest.mark.skipif(not LIGHT, reason="XNPU_ONNX_CASES (made by scripts/test.sh) unset")
@pytest.mark.parametrize("model", LIGHT, ids=lambda p: p.stem)
def test_light_models_match_their_stored_outputs(model):
    # Fed and compared as onnx's own runner does: arange(n).reshape(shape) / n as float32
    # (unknown dims 1), rtol 1e-3 (2e-3 for densenet121), atol 1e-7.
    from onnx import numpy_helper

    s = xnpu.InferenceSession(model, devices="cpu-only")
    (inp,) = [i for i in s.get_inputs()]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    n = int(np.prod(shape))
    x = (np.arange(n, dtype=np.float32).reshape(shape) / n).astype(np.float32)
    (y,) = s.run([s.get_outputs()[0].name], {inp.name: x})
    t = onnx.TensorProto()
    t.ParseFromString(model.with_name(f"{model.stem}_output_0.pb").read_bytes())
    want = numpy_helper.to_array(t)
    rtol = 2e-3 if "densenet121" in model.stem else 1e-3
    np.testing.assert_allclose(y, want, rtol=rtol, atol=1e-7)


def constant_node_model() -> bytes:
    """k = Constant node; y = Identity(k) + nothing else: outputs share the node's tensor."""
    k = helper.make_tensor("k", TensorProto.FLOAT, [3], [4.0, 5.0, 6.0])
    g = helper.make_graph(
        [
            helper.make_node("Constant", [], ["k"], value=k),
            helper.make_node("Identity", ["k"], ["y"]),
            helper.make_node("Shape", ["x"], ["s"]),
        ],
        "const_node",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [3]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
        ],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def if_branch_model() -> bytes:
    """y = If(c) then: an initializer of the branch; else: x."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [7.0, 8.0, 9.0])
    then = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["t"])], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3])], initializer=[w],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3])],
    )
    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)],
        "branch",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("level", ["none", "all"])
def test_constant_nodes_and_branch_constants_are_never_handed_out_for_writing(level):
    s = xnpu.InferenceSession(constant_node_model(), devices="cpu-only", level=level)
    x = np.zeros((2, 3), np.float32)
    y, shape = s.run(None, {"x": x})
    y[:] = -1
    (y2,) = s.run(["y"], {"x": x})
    np.testing.assert_array_equal(y2, [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(shape, [2, 3])
    b = xnpu.InferenceSession(if_branch_model(), devices="cpu-only", level=level)
    feed = {"c": np.array(True), "x": np.ones(3, np.float32)}
    (y,) = b.run(None, feed)
    y[:] = -1
    np.testing.assert_array_equal(b.run(None, feed)[0], [7.0, 8.0, 9.0])


def test_onnxruntime_habits_work_or_fail_clearly():
    s = xnpu.InferenceSession(identity_model(TensorProto.FLOAT), devices="cpu-only")
    x = np.ones((2, 3), np.float32)
    (y,) = s.run([], {"x": x})  # an empty list asks for every output, as in onnxruntime
    np.testing.assert_array_equal(y, x)
    assert s.get_inputs()[0].type == "tensor(float)" and s.inputs[0].dtype == "float32"
    with pytest.raises(TypeError, match="run_options"):
        s.run(None, {"x": x}, object())
    with pytest.raises(TypeError, match="devices must be a str"):
        xnpu.InferenceSession(identity_model(TensorProto.FLOAT), ort.SessionOptions())


@pytest.mark.skipif(not LLM, reason="XNPU_LLM_MODELS unset")
def test_stop_from_another_thread_ends_the_stream():
    lm = xnpu.LanguageModel(Path(LLM) / "tiny-fp32", devices="cpu-only")
    stream = lm.generate("The quick brown fox", 64, ignore_eos=True)
    first, stopped = threading.Event(), threading.Event()
    seen = []

    def consume():
        for piece in stream:
            seen.append(piece)
            first.set()
            stopped.wait(timeout=30)  # hold the stream until the other thread has stopped it

    t = threading.Thread(target=consume)
    t.start()
    assert first.wait(timeout=30)
    stream.stop()  # takes no lock: returns while the consumer holds the stream
    stopped.set()
    t.join(timeout=30)
    assert not t.is_alive()
    assert stream.finish == "stopped"
    assert len(seen) == 1 and 1 <= len(stream.ids) < 64
