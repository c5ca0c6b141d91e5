//! `xnpu._xnpu`: the native half of the `xnpu` Python package (see `pysrc/xnpu`).
//!
//! Arrays cross as contiguous bytes plus a NumPy dtype name and shape: NumPy does the
//! conversions on the Python side of the boundary (`numpy.ascontiguousarray`, `tobytes`,
//! `frombuffer`), so every dtype NumPy and `ml_dtypes` know (bfloat16 included) travels the
//! same way. Every call catches Rust panics and raises `XnpuError` instead; model runs release
//! the GIL.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use xnpu::graph::passes::Level;
use xnpu::{DType, Error, Policy, Session, SessionOptions, Tensor, Value, ValueType};

create_exception!(
    _xnpu,
    XnpuError,
    PyException,
    "An error from xnpu; str() is its message."
);
create_exception!(
    _xnpu,
    ModelError,
    XnpuError,
    "The model is malformed or inconsistent."
);
create_exception!(
    _xnpu,
    UnsupportedError,
    XnpuError,
    "Something xnpu does not support (yet)."
);
create_exception!(
    _xnpu,
    InvalidInputError,
    XnpuError,
    "An input to a run is wrong: name, dtype or shape."
);
create_exception!(
    _xnpu,
    ComputeError,
    XnpuError,
    "A kernel or backend failed while running."
);
create_exception!(
    _xnpu,
    XnpuIOError,
    XnpuError,
    "A file could not be read or written."
);

/// The Python exception for an xnpu error, with the same message.
fn to_py(e: Error) -> PyErr {
    use xnpu::core::error::ErrorKind as K;
    let msg = e.to_string();
    match e.kind() {
        K::Model => ModelError::new_err(msg),
        K::Unsupported => UnsupportedError::new_err(msg),
        K::InvalidInput => InvalidInputError::new_err(msg),
        K::Compute => ComputeError::new_err(msg),
        K::Io => XnpuIOError::new_err(msg),
    }
}

/// Runs `f`, turning a panic into `XnpuError` (a panic must never unwind into Python).
fn guard<T>(what: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let detail = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(XnpuError::new_err(format!(
                "internal error in {what} (please report it): {detail}"
            )))
        }
    }
}

/// NumPy's name of a dtype.
fn numpy_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::F16 => "float16",
        DType::Bf16 => "bfloat16",
        DType::U8 => "uint8",
        DType::I8 => "int8",
        DType::U16 => "uint16",
        DType::I16 => "int16",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::U32 => "uint32",
        DType::U64 => "uint64",
        DType::Bool => "bool",
        DType::String => "str",
    }
}

fn from_numpy_name(name: &str) -> Option<DType> {
    DType::ALL.into_iter().find(|&d| numpy_name(d) == name)
}

/// A model input or output: name, dtype (NumPy's name) and shape (ints, or strings for
/// symbolic dimensions, None where unknown).
#[pyclass(frozen, get_all, module = "xnpu")]
struct NodeArg {
    name: String,
    dtype: Option<String>,
    shape: Option<Vec<Py<PyAny>>>,
}

#[pymethods]
impl NodeArg {
    fn __repr__(&self, py: Python<'_>) -> String {
        let shape = match &self.shape {
            None => "None".to_string(),
            Some(s) => {
                let dims: Vec<String> = s
                    .iter()
                    .map(|d| d.bind(py).repr().map(|r| r.to_string()).unwrap_or_default())
                    .collect();
                format!("[{}]", dims.join(", "))
            }
        };
        format!(
            "NodeArg(name={:?}, dtype={}, shape={shape})",
            self.name,
            self.dtype
                .as_deref()
                .map_or("None".into(), |d| format!("{d:?}"))
        )
    }
}

fn node_arg(py: Python<'_>, name: &str, ty: &ValueType) -> PyResult<NodeArg> {
    let (dtype, shape) = match ty {
        ValueType::Tensor(t) => {
            let shape = match &t.shape {
                None => None,
                Some(s) => Some(
                    s.0.iter()
                        .map(|d| match d {
                            xnpu::Dim::Known(n) => Ok(n.into_pyobject(py)?.into_any().unbind()),
                            xnpu::Dim::Sym(s) => Ok(s.into_pyobject(py)?.into_any().unbind()),
                        })
                        .collect::<PyResult<Vec<_>>>()?,
                ),
            };
            (Some(numpy_name(t.dtype).to_string()), shape)
        }
        _ => (None, None),
    };
    Ok(NodeArg {
        name: name.to_string(),
        dtype,
        shape,
    })
}

fn node_args(py: Python<'_>, infos: Vec<xnpu::IoInfo>) -> PyResult<Vec<NodeArg>> {
    infos.iter().map(|i| node_arg(py, &i.name, &i.ty)).collect()
}

/// A loaded model, compiled for this machine's devices.
#[pyclass(frozen, module = "xnpu")]
struct InferenceSession {
    inner: Arc<Session>,
}

#[pymethods]
impl InferenceSession {
    #[new]
    #[pyo3(signature = (model, devices=None, level=None, threads=None))]
    fn new(
        py: Python<'_>,
        model: &Bound<'_, PyAny>,
        devices: Option<&str>,
        level: Option<&str>,
        threads: Option<usize>,
    ) -> PyResult<InferenceSession> {
        guard("InferenceSession()", || {
            let mut options = SessionOptions::new();
            if let Some(d) = devices {
                options = options.devices(d.parse::<Policy>().map_err(to_py)?);
            }
            if let Some(l) = level {
                options = options.level(l.parse::<Level>().map_err(to_py)?);
            }
            if let Some(n) = threads {
                options = options.threads(n);
            }
            let session = if let Ok(b) = model.cast::<PyBytes>() {
                let bytes = bytes::Bytes::copy_from_slice(b.as_bytes());
                py.detach(|| {
                    xnpu::graph::onnx::load_bytes(bytes, "<bytes>", None)
                        .and_then(|m| Session::new(m, options))
                })
            } else {
                let path: std::path::PathBuf = model.extract().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(
                        "model must be a path (str or os.PathLike) or the model's bytes",
                    )
                })?;
                py.detach(|| Session::load_with(&path, options))
            };
            Ok(InferenceSession {
                inner: Arc::new(session.map_err(to_py)?),
            })
        })
    }

    /// The inputs the model takes.
    fn get_inputs(&self, py: Python<'_>) -> PyResult<Vec<NodeArg>> {
        node_args(py, self.inner.inputs())
    }

    /// The outputs the model gives.
    fn get_outputs(&self, py: Python<'_>) -> PyResult<Vec<NodeArg>> {
        node_args(py, self.inner.outputs())
    }

    /// How the model was split between devices, and why each node runs where it runs.
    fn explain(&self) -> PyResult<String> {
        guard("explain()", || Ok(self.inner.explain()))
    }

    /// Runs the model. `feeds` maps input names to arrays (already converted by the Python
    /// layer to `(dtype name, shape, bytes)`); returns the named outputs (all when `outputs`
    /// is None) as `(dtype name, shape, bytes)`.
    #[pyo3(signature = (outputs, feeds))]
    fn _run<'py>(
        &self,
        py: Python<'py>,
        outputs: Option<Vec<String>>,
        feeds: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyList>> {
        guard("run()", || {
            let mut inputs: Vec<(String, Value)> = Vec::with_capacity(feeds.len());
            for (k, v) in feeds.iter() {
                let name: String = k.extract()?;
                let (dtype, shape, data): (String, Vec<usize>, Bound<'py, PyBytes>) =
                    v.extract()?;
                let d = from_numpy_name(&dtype).ok_or_else(|| {
                    InvalidInputError::new_err(format!(
                        "input \"{name}\": arrays of dtype {dtype} are not supported"
                    ))
                })?;
                let t =
                    Tensor::from_bytes(d, shape, bytes::Bytes::copy_from_slice(data.as_bytes()))
                        .map_err(|e| {
                            to_py(Error::InvalidInput(format!("input \"{name}\": {e}")))
                        })?;
                inputs.push((name, t.into()));
            }
            // The outputs asked for, by position (checked before the model runs).
            let wanted: Option<Vec<usize>> = match outputs {
                None => None,
                Some(want) => {
                    let names: Vec<String> =
                        self.inner.outputs().into_iter().map(|o| o.name).collect();
                    let pos = want.iter().map(|w| {
                        names.iter().position(|n| n == w).ok_or_else(|| {
                            InvalidInputError::new_err(format!(
                                "the model has no output \"{w}\" (it has {})",
                                names.join(", ")
                            ))
                        })
                    });
                    Some(pos.collect::<PyResult<_>>()?)
                }
            };
            let session = self.inner.clone();
            // A clone of a tensor shares its bytes.
            let results = py
                .detach(|| session.run(inputs.iter().map(|(n, v)| (n.as_str(), v.clone()))))
                .map_err(to_py)?;
            let wanted = wanted.unwrap_or_else(|| (0..results.len()).collect());
            let list = PyList::empty(py);
            for i in wanted {
                let (name, value) = &results[i];
                let Value::Tensor(t) = value else {
                    return Err(UnsupportedError::new_err(format!(
                        "output \"{name}\" is not a tensor (sequences and maps are not returned to Python yet)"
                    )));
                };
                if t.dtype() == DType::String {
                    return Err(UnsupportedError::new_err(format!(
                        "output \"{name}\" holds strings, which are not returned to Python yet"
                    )));
                }
                let shape = PyTuple::new(py, t.shape())?;
                let data = PyBytes::new(py, t.raw_bytes());
                list.append((numpy_name(t.dtype()), shape, data))?;
            }
            Ok(list)
        })
    }
}

/// One device: `(backend, name, vendor, device, status, hint)`.
type DeviceRow = (String, String, String, String, String, String);

/// The devices this machine has (see `xnpu.devices()`).
#[pyfunction]
fn _devices(py: Python<'_>) -> PyResult<Vec<DeviceRow>> {
    guard("devices()", || {
        let found = py.detach(xnpu::devices);
        Ok(found
            .into_iter()
            .map(|d| {
                (
                    d.backend.to_string(),
                    d.name.to_string(),
                    d.vendor.clone(),
                    d.device.clone(),
                    d.status.label().to_string(),
                    d.hint.clone(),
                )
            })
            .collect())
    })
}

#[pymodule]
fn _xnpu(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(_devices, m)?)?;
    m.add_class::<InferenceSession>()?;
    m.add_class::<NodeArg>()?;
    m.add("XnpuError", py.get_type::<XnpuError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("ComputeError", py.get_type::<ComputeError>())?;
    m.add("XnpuIOError", py.get_type::<XnpuIOError>())?;
    Ok(())
}
