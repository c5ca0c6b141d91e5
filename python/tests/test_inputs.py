"""Feeds that are not NumPy arrays of the input's dtype: lists, tuples and Python scalars are
converted to the input's element type; arrays keep theirs; big-endian arrays are read right."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import xnpu


def identity_model(elem_type: int, shape) -> bytes:
    """y = Identity(x) for one element type and shape, as bytes."""
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", elem_type, shape)],
        [helper.make_tensor_value_info("y", elem_type, shape)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m.SerializeToString()


def session(elem_type: int, shape=("n", 3)) -> xnpu.InferenceSession:
    return xnpu.InferenceSession(identity_model(elem_type, list(shape)), devices="cpu-only")


@pytest.mark.parametrize(
    "elem, dtype, feed",
    [
        (TensorProto.FLOAT, np.float32, [[1.0, 2.0, 3.0]]),  # floats are float64 to NumPy
        (TensorProto.FLOAT, np.float32, [[1, 2, 3], [4, 5, 6]]),  # ints go up to float
        (TensorProto.FLOAT16, np.float16, [[0.5, 1.5, True]]),
        (TensorProto.DOUBLE, np.float64, [[1.0, 2.0, 3.0]]),
        (TensorProto.INT64, np.int64, [[1, -2, 3]]),
        (TensorProto.INT32, np.int32, [[1, -2, 3]]),
        (TensorProto.UINT8, np.uint8, [[0, 128, 255]]),
        (TensorProto.BOOL, np.bool_, [[True, False, True]]),
        (TensorProto.INT64, np.int64, []),  # empty: no values to lose
    ],
)
def test_lists_become_arrays_of_the_input_type(elem, dtype, feed):
    s = session(elem, shape=("n", 3) if feed else ("n",))
    (y,) = s.run(None, {"x": feed})
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.asarray(feed, dtype=dtype))


def test_nested_lists_and_tuples_become_arrays_of_the_input_type():
    s = session(TensorProto.INT64, shape=(2, 2, 3))
    nested = [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]
    (y,) = s.run(None, {"x": nested})
    assert y.dtype == np.int64 and y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y, np.arange(1, 13).reshape(2, 2, 3))
    as_tuples = tuple(tuple(tuple(r) for r in m) for m in nested)
    (z,) = s.run(None, {"x": as_tuples})
    np.testing.assert_array_equal(z, y)
    f = session(TensorProto.FLOAT)
    (w,) = f.run(None, {"x": ((0.25, 0.5, 1.0),)})
    assert w.dtype == np.float32 and w.tolist() == [[0.25, 0.5, 1.0]]


@pytest.mark.parametrize(
    "elem, dtype, value",
    [
        (TensorProto.FLOAT, np.float32, 2.5),
        (TensorProto.FLOAT, np.float32, 3),
        (TensorProto.INT64, np.int64, -7),
        (TensorProto.BOOL, np.bool_, True),
        (TensorProto.DOUBLE, np.float64, 0.1),
    ],
)
def test_python_scalars_become_0d_arrays_of_the_input_type(elem, dtype, value):
    s = session(elem, shape=())
    (y,) = s.run(None, {"x": value})
    assert y.dtype == dtype and y.shape == ()
    assert y == np.asarray(value, dtype=dtype)


def test_bfloat16_lists_convert_with_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    s = session(TensorProto.BFLOAT16)
    (y,) = s.run(None, {"x": [[1.0, 2.0, 0.5]]})
    assert y.dtype == ml_dtypes.bfloat16
    assert y.astype(np.float32).tolist() == [[1.0, 2.0, 0.5]]


@pytest.mark.parametrize(
    "elem, feed, match",
    [
        # A float for an integer input would lose its fraction.
        (TensorProto.INT64, [[1.5, 2.0, 3.0]], r'"x" is a list of float64 values.*int64'),
        # An int for a bool input is not a truth value NumPy keeps.
        (TensorProto.BOOL, [[1, 0, 1]], r'"x" is a list of int64 values.*bool'),
        # An integer the element type cannot hold.
        (TensorProto.UINT8, [[1, 2, 300]], r'"x": this list does not convert to uint8: .*300'),
        (TensorProto.INT8, [[-129, 0, 0]], r'"x": this list does not convert to int8: .*-129'),
        # Rows of different lengths are no array at all.
        (TensorProto.FLOAT, [[1.0, 2.0, 3.0], [4.0]], r'"x": this list does not convert'),
        # Strings are no numbers.
        (TensorProto.FLOAT, [["a", "b", "c"]], r'"x" is a list of <U1 values'),
    ],
)
def test_unconvertible_lists_raise_an_error_naming_the_input(elem, feed, match):
    s = session(elem)
    with pytest.raises(xnpu.InvalidInputError, match=match):
        s.run(None, {"x": feed})


def test_a_scalar_that_does_not_convert_names_the_input():
    s = session(TensorProto.INT64, shape=())
    with pytest.raises(xnpu.InvalidInputError, match=r'"x" is a float \(float64\).*int64'):
        s.run(None, {"x": 2.5})


def test_numpy_arrays_and_scalars_keep_their_dtype():
    s = session(TensorProto.FLOAT)
    with pytest.raises(xnpu.InvalidInputError, match=r"x.*f64"):
        s.run(None, {"x": np.ones((1, 3))})
    with pytest.raises(xnpu.InvalidInputError, match=r"x.*i64"):
        s.run(None, {"x": np.ones((1, 3), np.int64)})
    scalar = session(TensorProto.FLOAT, shape=())
    with pytest.raises(xnpu.InvalidInputError, match=r"x.*f64"):
        scalar.run(None, {"x": np.float64(1.0)})  # a float subclass, but typed
    (y,) = scalar.run(None, {"x": np.float32(1.5)})
    assert y.dtype == np.float32 and y == 1.5


def test_lists_of_strings_still_feed_string_inputs():
    s = session(TensorProto.STRING)
    (y,) = s.run(None, {"x": [["a", "bc", ""]]})
    assert y.dtype == object and y.tolist() == [["a", "bc", ""]]


@pytest.mark.parametrize(
    "elem, big",
    [
        (TensorProto.FLOAT, ">f4"),
        (TensorProto.DOUBLE, ">f8"),
        (TensorProto.INT64, ">i8"),
        (TensorProto.INT32, ">i4"),
        (TensorProto.UINT16, ">u2"),
    ],
)
def test_big_endian_arrays_are_read_in_their_byte_order(elem, big, tmp_path):
    s = session(elem)
    x = (np.arange(6).reshape(2, 3) * 1000 + 7).astype(big)
    assert x.dtype.byteorder == ">"
    (y,) = s.run(None, {"x": x})
    assert y.dtype == x.dtype.newbyteorder("=") and y.dtype.isnative
    np.testing.assert_array_equal(y, x)
    # The same through a .npy file, as np.load gives it.
    np.save(tmp_path / "x.npy", x)
    loaded = np.load(tmp_path / "x.npy")
    assert loaded.dtype.byteorder == ">"
    (z,) = s.run(None, {"x": loaded})
    np.testing.assert_array_equal(z, x)
    zero_d = x[1, 2, ...]  # a 0-d view, big-endian too
    assert zero_d.shape == () and zero_d.dtype.byteorder == ">"
    (w,) = session(elem, shape=()).run(None, {"x": zero_d})
    assert w.shape == () and w == x[1, 2]
