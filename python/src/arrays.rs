//! NumPy arrays to xnpu tensors and back, without copies where the layout allows (see the
//! crate's documentation for the rules).

use std::ffi::{c_int, c_void};
use std::ptr;

use bytes::Bytes;
use numpy::npyffi::{self, npy_intp, NpyTypes, NPY_TYPES, PY_ARRAY_API};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyList, PyTuple};
use xnpu::core::dtype::Kind;
use xnpu::{DType, Error, Session, Tensor, Value, ValueType};

use crate::{to_py, InvalidInputError, UnsupportedError};

/// NumPy's name of a dtype.
pub fn numpy_name(d: DType) -> &'static str {
    d.row().numpy
}

/// The xnpu dtype of a NumPy dtype, None where xnpu has none (strings are handled apart).
fn dtype_of(d: &Bound<'_, PyArrayDescr>) -> Option<DType> {
    Some(match (d.kind(), d.itemsize()) {
        (b'f', 2) => DType::F16,
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        (b'i', 1) => DType::I8,
        (b'i', 2) => DType::I16,
        (b'i', 4) => DType::I32,
        (b'i', 8) => DType::I64,
        (b'u', 1) => DType::U8,
        (b'u', 2) => DType::U16,
        (b'u', 4) => DType::U32,
        (b'u', 8) => DType::U64,
        (b'b', 1) => DType::Bool,
        // ml_dtypes' types (bfloat16, the float8 and float4 types, int4, uint2, ...) are
        // user-defined NumPy types of kind 'V', one element per item (the packed ones too).
        (b'V', size) => {
            let name = d.typeobj().name().ok()?.to_string();
            let found = DType::ALL
                .into_iter()
                .find(|t| (t.is_narrow() || *t == DType::Bf16) && t.row().numpy == name)?;
            if size != found.elem_bytes().unwrap_or(1) {
                return None;
            }
            found
        }
        _ => return None,
    })
}

/// ml_dtypes' NumPy dtype of `d` (bfloat16 and the narrow types), or None when ml_dtypes is
/// not installed (or has no such type).
fn ml_dtype(py: Python<'_>, d: DType) -> Option<Bound<'_, PyArrayDescr>> {
    static TYPES: PyOnceLock<Vec<(DType, Py<PyArrayDescr>)>> = PyOnceLock::new();
    TYPES
        .get_or_init(py, || {
            let Ok(module) = py.import("ml_dtypes") else {
                return Vec::new();
            };
            DType::ALL
                .into_iter()
                .filter(|t| t.is_narrow() || *t == DType::Bf16)
                .filter_map(|t| {
                    let ty = module.getattr(t.row().numpy).ok()?;
                    let descr = PyArrayDescr::new(py, &ty).ok()?;
                    Some((t, descr.unbind()))
                })
                .collect()
        })
        .iter()
        .find(|(t, _)| *t == d)
        .map(|(_, descr)| descr.bind(py).clone())
}

/// ml_dtypes' bfloat16 dtype, or None when ml_dtypes is not installed.
fn bfloat16(py: Python<'_>) -> Option<Bound<'_, PyArrayDescr>> {
    ml_dtype(py, DType::Bf16)
}

/// The NumPy dtype of an xnpu dtype. bfloat16 is ml_dtypes' when it is installed, else the
/// raw bits as uint16.
fn descr_of(py: Python<'_>, d: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    use numpy::dtype;
    let n = match d {
        DType::F32 => return Ok(dtype::<f32>(py)),
        DType::F64 => return Ok(dtype::<f64>(py)),
        DType::U8 => return Ok(dtype::<u8>(py)),
        DType::I8 => return Ok(dtype::<i8>(py)),
        DType::U16 => return Ok(dtype::<u16>(py)),
        DType::I16 => return Ok(dtype::<i16>(py)),
        DType::I32 => return Ok(dtype::<i32>(py)),
        DType::I64 => return Ok(dtype::<i64>(py)),
        DType::U32 => return Ok(dtype::<u32>(py)),
        DType::U64 => return Ok(dtype::<u64>(py)),
        DType::Bool => return Ok(dtype::<bool>(py)),
        DType::Bf16 => match bfloat16(py) {
            Some(d) => return Ok(d),
            None => return Ok(dtype::<u16>(py)),
        },
        DType::F16 => NPY_TYPES::NPY_HALF,
        DType::String => NPY_TYPES::NPY_OBJECT,
        d => {
            return ml_dtype(py, d).ok_or_else(|| {
                UnsupportedError::new_err(format!(
                    "NumPy has no {d} arrays without ml_dtypes: install ml_dtypes (pip install \
                     ml_dtypes) for {} arrays",
                    d.row().numpy
                ))
            })
        }
    };
    // SAFETY: a built-in type number; NumPy returns a new reference to its descriptor.
    unsafe {
        let descr = PY_ARRAY_API.PyArray_DescrFromType(py, n as c_int);
        Ok(Bound::from_owned_ptr(py, descr.cast()).cast_into_unchecked())
    }
}

/// The data of a Python object (a NumPy array, a `bytes`), kept alive by a reference to the
/// object, as the owner of a `Bytes`.
struct PyData {
    _owner: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is the data of the object this struct holds a reference to: it stays
// valid while the struct lives, from any thread. It is only read; `Py` may be dropped
// without the GIL (PyO3 defers the decref).
unsafe impl Send for PyData {}
// SAFETY: as above; nothing is mutated through `&PyData`.
unsafe impl Sync for PyData {}

impl AsRef<[u8]> for PyData {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` and `len` describe the data of `_owner`, which this struct keeps
        // alive: an immutable `bytes`, or an array the caller of `run` promises not to
        // change meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A `bytes` object's contents without a copy (it is immutable).
pub fn bytes_of(b: &Bound<'_, pyo3::types::PyBytes>) -> Bytes {
    let data = b.as_bytes();
    if data.is_empty() {
        return Bytes::new();
    }
    Bytes::from_owner(PyData {
        _owner: b.clone().into_any().unbind(),
        ptr: data.as_ptr(),
        len: data.len(),
    })
}

/// Whether xnpu can read the array in place.
fn in_place(a: &Bound<'_, PyUntypedArray>) -> bool {
    a.is_c_contiguous() && a.is_aligned() && a.dtype().is_native_byteorder() != Some(false)
}

/// `numpy.asarray(obj)`, in native byte order, C-contiguous and aligned.
fn normalise<'py>(
    py: Python<'py>,
    name: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let np = py.import("numpy")?;
    let bad =
        |e: PyErr| InvalidInputError::new_err(format!("input \"{name}\" is not an array: {e}"));
    let mut a = np.getattr("asarray")?.call1((obj,)).map_err(bad)?;
    let a_arr = a.cast::<PyUntypedArray>()?;
    if a_arr.dtype().is_native_byteorder() == Some(false) {
        let native = a_arr.dtype().call_method1("newbyteorder", ("=",))?;
        a = a.call_method1("astype", (native,))?;
    }
    let a = np.getattr("require")?.call1((a, py.None(), "CA"))?;
    Ok(a.cast_into::<PyUntypedArray>()?)
}

/// The element type of an input of type `ty`, when it is a tensor (or an optional one).
pub fn element_type(ty: &ValueType) -> Option<DType> {
    match ty {
        ValueType::Tensor(t) => Some(t.dtype),
        ValueType::Optional(inner) => element_type(inner),
        _ => None,
    }
}

/// Whether `obj` is plain Python data, which carries no dtype of its own: a list, a tuple, a
/// bool, int or float (not a NumPy scalar, which has one).
fn untyped(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_exact_instance_of::<PyBool>()
        || obj.is_exact_instance_of::<PyInt>()
        || obj.is_exact_instance_of::<PyFloat>()
}

/// Where a kind of element stands in bool < integer < float: a value converts without
/// changing its kind of number to a dtype at its place or above. None for others (strings,
/// complex numbers, objects).
fn rank(kind: Kind) -> Option<u8> {
    match kind {
        Kind::Bool => Some(0),
        Kind::Signed | Kind::Unsigned => Some(1),
        Kind::Float => Some(2),
        Kind::String => None,
    }
}

/// NumPy's kind character as a [`Kind`].
fn kind_of(numpy_kind: u8) -> Option<Kind> {
    Some(match numpy_kind {
        b'b' => Kind::Bool,
        b'i' => Kind::Signed,
        b'u' => Kind::Unsigned,
        b'f' => Kind::Float,
        _ => return None,
    })
}

/// Plain Python data (see [`untyped`]) for input `name` as an array of its element type
/// `want`; None where `want` is no number or bool type NumPy has (the data is then taken as
/// NumPy reads it). Values must keep their kind of number or go up (bool to int to float):
/// a float for an integer input, or an int for a bool one, is an error, and so is an integer
/// the element type cannot hold (NumPy refuses those).
fn convert<'py>(
    py: Python<'py>,
    name: &str,
    obj: &Bound<'py, PyAny>,
    want: DType,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(want_rank) = rank(want.kind()) else {
        return Ok(None);
    };
    let what = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let to = numpy_name(want);
    let target = match want {
        DType::Bf16 => bfloat16(py).ok_or_else(|| {
            InvalidInputError::new_err(format!(
                "input \"{name}\" is a {what} and its element type is bfloat16: install \
                 ml_dtypes to convert it, or pass a NumPy array"
            ))
        })?,
        _ => descr_of(py, want)?,
    };
    let np = py.import("numpy")?;
    let asarray = np.getattr("asarray")?;
    let unconvertible = |e: PyErr| {
        InvalidInputError::new_err(format!(
            "input \"{name}\": this {what} does not convert to {to}: {e}"
        ))
    };
    // NumPy's own reading first, to know what kind of numbers the data holds.
    let natural = asarray.call1((obj,)).map_err(unconvertible)?;
    let natural = natural.cast::<PyUntypedArray>()?;
    let found = natural.dtype();
    let fits = kind_of(found.kind())
        .and_then(rank)
        .is_some_and(|r| r <= want_rank);
    if !fits && !natural.is_empty() {
        let given = if natural.ndim() == 0 {
            format!("a {what} ({found})")
        } else {
            format!("a {what} of {found} values")
        };
        return Err(InvalidInputError::new_err(format!(
            "input \"{name}\" is {given}, which does not convert to {to} (the input's \
             element type) without loss: pass {to} values, or a NumPy array of {to}"
        )));
    }
    asarray
        .call1((obj, target))
        .map(Some)
        .map_err(unconvertible)
}

/// The tensor of input `name` from `obj`: over the array's own data where it can be read in
/// place (see [`in_place`]), else over a converted copy. Plain Python data (a list, tuple,
/// scalar) becomes an array of the input's element type `declared` where the model gives one
/// (see [`convert`]); a NumPy array keeps its dtype.
pub fn feed<'py>(
    py: Python<'py>,
    name: &str,
    obj: &Bound<'py, PyAny>,
    declared: Option<DType>,
) -> PyResult<Tensor> {
    let converted = match declared {
        Some(want) if untyped(obj) => convert(py, name, obj, want)?,
        _ => None,
    };
    let obj = converted.as_ref().unwrap_or(obj);
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) if in_place(a) => a.clone(),
        _ => normalise(py, name, obj)?,
    };
    let descr = arr.dtype();
    let shape = arr.shape().to_vec();
    let Some(dtype) = dtype_of(&descr) else {
        if matches!(descr.kind(), b'U' | b'O') {
            let values: Vec<String> = arr
                .call_method0("ravel")?
                .call_method0("tolist")?
                .extract()
                .map_err(|_| {
                    InvalidInputError::new_err(format!(
                        "input \"{name}\": an array of dtype {descr} must hold only str"
                    ))
                })?;
            return Tensor::from_strings(shape, values).map_err(to_py);
        }
        return Err(InvalidInputError::new_err(format!(
            "input \"{name}\": arrays of dtype {descr} are not supported"
        )));
    };
    let len = shape.iter().product::<usize>() * descr.itemsize();
    // SAFETY: `arr` is a live NumPy array; reading its data pointer field.
    let ptr = unsafe { (*npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data } as *const u8;
    if dtype.is_packed() {
        // ml_dtypes keeps one element per byte (its code in the low bits); xnpu packs them
        // as ONNX does.
        let codes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the array is C-contiguous and aligned (`in_place` or `normalise`), one
            // byte per element, `len` bytes, alive while `arr` is.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        };
        return xnpu::core::narrow::from_codes(dtype, shape, |i| codes[i])
            .map_err(|e| to_py(Error::invalid_input(format!("input \"{name}\": {e}"))));
    }
    let bytes = if len == 0 {
        Bytes::new()
    } else {
        Bytes::from_owner(PyData {
            _owner: arr.clone().into_any().unbind(),
            ptr,
            len,
        })
    };
    Tensor::from_bytes(dtype, shape, bytes)
        .map_err(|e| to_py(Error::invalid_input(format!("input \"{name}\": {e}"))))
}

/// Keeps alive the buffer of an output that a NumPy array uses in place (the array's base).
#[pyclass(frozen, module = "xnpu")]
pub struct OutputBuffer {
    _bytes: Bytes,
}

fn range_of(b: &[u8]) -> (usize, usize) {
    (b.as_ptr() as usize, b.as_ptr() as usize + b.len())
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The outputs of a run as NumPy arrays: in place where the buffer is the run's alone (see
/// the crate documentation), copied otherwise.
pub fn outputs<'py>(
    py: Python<'py>,
    session: &Session,
    results: Vec<(String, Value)>,
    inputs: &[(String, Tensor)],
) -> PyResult<Bound<'py, PyList>> {
    let ranges: Vec<(usize, usize)> = results
        .iter()
        .map(|(_, v)| match v {
            Value::Tensor(t) => range_of(t.raw_bytes()),
            _ => (0, 0),
        })
        .collect();
    let list = PyList::empty(py);
    for (i, (name, value)) in results.into_iter().enumerate() {
        let Value::Tensor(t) = value else {
            return Err(UnsupportedError::new_err(format!(
                "output \"{name}\" is not a tensor (sequences and maps are not returned to Python yet)"
            )));
        };
        if t.dtype() == DType::String {
            list.append(strings(py, &t)?)?;
            continue;
        }
        let r = ranges[i];
        let shared = r.0 == r.1
            || t.dtype()
                .elem_bytes()
                .is_none_or(|s| !r.0.is_multiple_of(s))
            || session.holds(t.raw_bytes())
            || inputs
                .iter()
                .any(|(_, t)| overlaps(range_of(t.raw_bytes()), r))
            || ranges
                .iter()
                .enumerate()
                .any(|(j, &o)| j != i && overlaps(o, r));
        list.append(array(py, t, !shared)?)?;
    }
    Ok(list)
}

/// A new NumPy array of `descr` with `dims`, C order: over `data` when it is not null (the
/// caller then sets the array's base), else over a buffer NumPy allocates.
///
/// # Safety
/// A non-null `data` must hold prod(dims) aligned elements of `descr` and stay valid while
/// the array lives; with `WRITEABLE` in `flags`, nothing else may read it meanwhile.
unsafe fn new_array<'py>(
    py: Python<'py>,
    descr: Bound<'py, PyArrayDescr>,
    dims: &mut [npy_intp],
    data: *mut c_void,
    flags: c_int,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: NumPy's initialised C API; the call steals the reference to `descr`, and
    // `data` is as the caller promises.
    unsafe {
        let p = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, NpyTypes::PyArray_Type),
            descr.into_dtype_ptr(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            ptr::null_mut(),
            data,
            flags,
            ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, p)
    }
}

/// A NumPy array of `t`: over its own buffer when `in_place` (the buffer must be this
/// array's alone: NumPy may write it), else a copy.
fn array(py: Python<'_>, t: Tensor, in_place: bool) -> PyResult<Bound<'_, PyAny>> {
    let descr = descr_of(py, t.dtype())?;
    let mut dims: Vec<npy_intp> = t.shape().iter().map(|&d| d as npy_intp).collect();
    if t.dtype().is_packed() {
        // One element per byte for ml_dtypes (the code in the low bits).
        let (dtype, bytes) = (t.dtype(), t.raw_bytes());
        // SAFETY: no data: NumPy allocates the buffer.
        let arr = unsafe { new_array(py, descr, &mut dims, ptr::null_mut(), 0)? };
        // SAFETY: the new array's buffer holds prod(dims) one-byte elements, `t.len()`.
        let out = unsafe {
            let fields = npyffi::_PyArray_GET_ITEM_DATA(arr.as_ptr() as *const _);
            std::slice::from_raw_parts_mut((*fields).data as *mut u8, t.len())
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = xnpu::core::narrow::code_at(dtype, bytes, i);
        }
        return Ok(arr);
    }
    if in_place {
        let Some(bytes) = t.into_bytes() else {
            return Err(UnsupportedError::new_err("a string tensor has no buffer"));
        };
        let data = bytes.as_ptr() as *mut c_void;
        let base = Bound::new(py, OutputBuffer { _bytes: bytes })?;
        // SAFETY: `data` holds prod(dims) elements of `descr`, aligned (checked by the
        // caller), and is kept alive by `base`, which becomes the array's base. The caller
        // checked that nothing else reads this buffer, so NumPy may write it: it is heap
        // memory that no Rust reference points to from here on (`Bytes` keeps a raw
        // pointer, and only its owner's destructor touches the allocation again).
        let arr = unsafe { new_array(py, descr, &mut dims, data, npyffi::NPY_ARRAY_WRITEABLE)? };
        // SAFETY: `arr` is the new array; the call steals the reference to `base`.
        let rc = unsafe {
            PY_ARRAY_API.PyArray_SetBaseObject(
                py,
                arr.as_ptr() as *mut npyffi::PyArrayObject,
                base.into_ptr(),
            )
        };
        if rc < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok(arr)
    } else {
        let src = t.raw_bytes();
        // SAFETY: no data: NumPy allocates the buffer.
        let arr = unsafe { new_array(py, descr, &mut dims, ptr::null_mut(), 0)? };
        // SAFETY: the new array's buffer holds prod(dims) × itemsize bytes, which is
        // `src.len()` (the tensor's byte count for the same shape and element size).
        unsafe {
            let fields = npyffi::_PyArray_GET_ITEM_DATA(arr.as_ptr() as *const _);
            ptr::copy_nonoverlapping(src.as_ptr(), (*fields).data as *mut u8, src.len());
        }
        Ok(arr)
    }
}

/// A string tensor as a NumPy array of Python str objects.
fn strings<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyAny>> {
    let values = t.strings().map_err(to_py)?;
    let np = py.import("numpy")?;
    let a = np
        .getattr("array")?
        .call1((PyList::new(py, values)?, "object"))?;
    a.call_method1("reshape", (t.shape().to_vec(),))
}
