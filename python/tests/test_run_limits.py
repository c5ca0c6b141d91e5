"""Run limits from Python (issue 21): RunOptions' terminate and timeout stop an endless run
with CancelledError; a session's max_memory refuses an output before allocating it."""

import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper

import xnpu


def endless_loop_model() -> bytes:
    """A Loop whose body passes its condition and a value on unchanged: given True it never
    ends; given False it returns the value."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["v"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1]),
        ],
    )
    g = helper.make_graph(
        [helper.make_node("Loop", ["", "cond", "v0"], ["last"], body=body)],
        "endless",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("last", TensorProto.FLOAT, [1])],
        initializer=[helper.make_tensor("v0", TensorProto.FLOAT, [1], [7.0])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString()


def expand_model(n: int) -> bytes:
    """y = Expand(x, [n]): n floats from one."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [n])
    g = helper.make_graph(
        [helper.make_node("Expand", ["x", "shape"], ["y"])],
        "expand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString()


def test_a_timeout_stops_an_endless_run():
    s = xnpu.InferenceSession(endless_loop_model(), devices="cpu")
    t0 = time.monotonic()
    with pytest.raises(xnpu.CancelledError, match="time limit of 0.200 s"):
        s.run(None, {"cond": np.array(True)}, run_options=xnpu.RunOptions(timeout=0.2))
    assert time.monotonic() - t0 < 10


def test_terminate_from_another_thread_stops_a_run_until_reset():
    s = xnpu.InferenceSession(endless_loop_model(), devices="cpu")
    options = xnpu.RunOptions()
    stopper = threading.Timer(0.2, lambda: setattr(options, "terminate", True))
    stopper.start()
    with pytest.raises(xnpu.CancelledError, match="cancelled"):
        s.run(None, {"cond": np.array(True)}, run_options=options)
    stopper.join()
    assert options.terminate
    # Later runs with these options stop at once; a run that ends by itself works after reset.
    with pytest.raises(xnpu.CancelledError):
        s.run(None, {"cond": np.array(False)}, run_options=options)
    options.terminate = False
    assert s.run(None, {"cond": np.array(False)}, run_options=options)[0].tolist() == [7.0]


def test_bad_run_options_are_refused():
    with pytest.raises(xnpu.InvalidInputError, match="timeout"):
        xnpu.RunOptions(timeout=-1)
    s = xnpu.InferenceSession(endless_loop_model(), devices="cpu")
    with pytest.raises(TypeError, match="xnpu.RunOptions"):
        s.run(None, {"cond": np.array(False)}, run_options=object())


def test_max_memory_refuses_an_output_past_it():
    one = {"x": np.ones(1, np.float32)}
    s = xnpu.InferenceSession(expand_model(1 << 20), devices="cpu", max_memory="1M")
    with pytest.raises(xnpu.XnpuError, match="memory limit of 1.0 MiB"):
        s.run(None, one)
    s = xnpu.InferenceSession(expand_model(1 << 20), devices="cpu", max_memory=64 << 20)
    assert s.run(None, one)[0].size == 1 << 20
    with pytest.raises(xnpu.InvalidInputError):
        xnpu.InferenceSession(expand_model(4), devices="cpu", max_memory=0)
