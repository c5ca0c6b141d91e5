//! `xnpu._xnpu`: the native half of the `xnpu` Python package (see `pysrc/xnpu`).
//!
//! Arrays cross without copies where their layout allows. An input that is a C-contiguous,
//! aligned NumPy array in native byte order is read in place (the session keeps the array
//! alive while it runs); another array is converted once with NumPy, keeping its dtype; a
//! list, tuple or Python scalar becomes an array of the input's element type. An output
//! whose buffer belongs to this run alone becomes a writable NumPy array over that buffer;
//! one that shares memory with the model (a constant, the mapped model file), an input or
//! another output is copied, so that writing into a result never changes the model or another
//! array. Every call catches Rust panics and raises `XnpuError` instead; model runs release
//! the GIL.
//!
//! The runtime's warnings (fallbacks, skipped plugins and settings) are records of Python's
//! `logging`, logger `xnpu` (see `log`).

mod arrays;
mod devices;
mod llm;
mod log;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList};
use xnpu::graph::passes::Level;
use xnpu::{Error, Policy, Session, SessionOptions, Tensor, Value, ValueType};

use arrays::numpy_name;

create_exception!(
    xnpu,
    XnpuError,
    PyException,
    "An error from xnpu; str() is its message."
);
create_exception!(
    xnpu,
    ModelError,
    XnpuError,
    "The model is malformed or inconsistent."
);
create_exception!(
    xnpu,
    UnsupportedError,
    XnpuError,
    "Something xnpu does not support (yet)."
);
create_exception!(
    xnpu,
    InvalidInputError,
    XnpuError,
    "An input to a run is wrong: name, dtype or shape."
);
create_exception!(
    xnpu,
    ComputeError,
    XnpuError,
    "A kernel or backend failed while running."
);
create_exception!(
    xnpu,
    CancelledError,
    XnpuError,
    "The run was cancelled (RunOptions.terminate) or passed its time limit."
);
create_exception!(
    xnpu,
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
        K::Cancelled => CancelledError::new_err(msg),
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

/// Session options from the keyword arguments every loader takes.
fn session_options(
    devices: Option<&str>,
    level: Option<&str>,
    threads: Option<usize>,
) -> PyResult<SessionOptions> {
    let mut options = SessionOptions::new();
    if let Some(d) = devices {
        options = options.devices(d.parse::<Policy>().map_err(to_py)?);
    }
    if let Some(l) = level {
        options = options.level(l.parse::<Level>().map_err(to_py)?);
    }
    if let Some(n) = threads {
        if n == 0 {
            return Err(InvalidInputError::new_err("threads must be at least 1"));
        }
        options = options.threads(n);
    }
    Ok(options)
}

/// Options of one run, as onnxruntime's `RunOptions`: set `terminate` (from any thread) to
/// stop the runs given these options at their next check; `timeout` (seconds, or None)
/// stops each run that takes longer. A stopped run raises `CancelledError`.
#[pyclass(frozen, module = "xnpu")]
struct RunOptions {
    inner: std::sync::Mutex<xnpu::RunOptions>,
}

#[pymethods]
impl RunOptions {
    #[new]
    #[pyo3(signature = (timeout=None))]
    fn new(timeout: Option<f64>) -> PyResult<RunOptions> {
        let o = RunOptions {
            inner: std::sync::Mutex::new(xnpu::RunOptions::new()),
        };
        o.set_timeout(timeout)?;
        Ok(o)
    }

    /// Whether the runs given these options are told to stop.
    #[getter]
    fn get_terminate(&self) -> bool {
        self.options().is_terminated()
    }

    #[setter]
    fn set_terminate(&self, stop: bool) {
        let o = self.options();
        if stop {
            o.terminate()
        } else {
            o.reset()
        }
    }

    /// Seconds a run may take (None: no limit).
    #[getter]
    fn get_timeout(&self) -> Option<f64> {
        self.options().limit().map(|d| d.as_secs_f64())
    }

    #[setter]
    fn set_timeout(&self, seconds: Option<f64>) -> PyResult<()> {
        let mut o = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *o = match seconds {
            None => o.clone().no_timeout(),
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => {
                o.clone().timeout(std::time::Duration::from_secs_f64(s))
            }
            Some(s) => {
                return Err(InvalidInputError::new_err(format!(
                    "timeout must be a number of seconds above 0, not {s}"
                )))
            }
        };
        Ok(())
    }
}

impl RunOptions {
    fn options(&self) -> xnpu::RunOptions {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A size in bytes given as an int or a str (`"4G"`, `"512MiB"`).
fn memory_size(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    let Some(v) = v else { return Ok(None) };
    if let Ok(n) = v.extract::<u64>() {
        if n == 0 {
            return Err(InvalidInputError::new_err("max_memory must be above 0"));
        }
        return Ok(Some(n));
    }
    let s: String = v.extract().map_err(|_| {
        PyTypeError::new_err("max_memory must be a number of bytes or a str such as \"4G\"")
    })?;
    xnpu::limits::parse_size(&s).map(Some).map_err(to_py)
}

/// A model input or output: name, dtype (NumPy's name) and shape (ints, or strings for
/// symbolic dimensions; None where unknown).
#[pyclass(frozen, get_all, module = "xnpu")]
struct NodeArg {
    name: String,
    dtype: Option<String>,
    shape: Option<Vec<Py<PyAny>>>,
    /// onnxruntime's name of the type: `tensor(float)`, `seq(tensor(int64))`...
    r#type: String,
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

/// onnxruntime's name of a value type (`NodeArg.type`): ONNX's type name in lower case
/// (`tensor(float)`, `tensor(bfloat16)`).
fn ort_type(ty: &ValueType) -> String {
    match ty {
        ValueType::Tensor(t) => format!("tensor({})", t.dtype.row().onnx_name.to_ascii_lowercase()),
        ValueType::Sequence(e) => format!("seq({})", ort_type(e)),
        ValueType::Optional(e) => format!("optional({})", ort_type(e)),
        _ => "unknown".to_string(),
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
        r#type: ort_type(ty),
    })
}

fn node_args(py: Python<'_>, infos: &[xnpu::IoInfo]) -> PyResult<Vec<NodeArg>> {
    infos.iter().map(|i| node_arg(py, &i.name, &i.ty)).collect()
}

/// One node of the partition plan: where it runs and why not elsewhere.
#[pyclass(frozen, get_all, module = "xnpu")]
struct PlanRow {
    /// The node's name in the compiled graph.
    node: String,
    /// Its operator.
    op: String,
    /// The device (backend id) that runs it.
    device: String,
    /// The index of its partition.
    partition: usize,
    /// A fallback note, then each other device's reason for refusing it (`; `-separated).
    why: String,
}

#[pymethods]
impl PlanRow {
    fn __repr__(&self) -> String {
        format!(
            "PlanRow(node={:?}, op={:?}, device={:?}, partition={}, why={:?})",
            self.node, self.op, self.device, self.partition, self.why
        )
    }
}

/// How a session split its model between devices (`InferenceSession.explain()`): `rows`
/// has one `PlanRow` per node, `devices` the nodes per device; `str()` is the table
/// `xnpu partition --explain` prints.
#[pyclass(frozen, module = "xnpu")]
struct Explanation {
    #[pyo3(get)]
    rows: Vec<Py<PlanRow>>,
    /// (device, node count), in the session's order of preference.
    #[pyo3(get)]
    devices: Vec<(String, usize)>,
    /// What the device policy fell back from, and plugins it skipped.
    #[pyo3(get)]
    notes: Vec<String>,
    /// Partitions, in the order they run: (device, node count).
    #[pyo3(get)]
    partitions: Vec<(String, usize)>,
    text: String,
    json: String,
}

#[pymethods]
impl Explanation {
    fn __str__(&self) -> &str {
        &self.text
    }

    fn __repr__(&self) -> &str {
        &self.text
    }

    fn __len__(&self) -> usize {
        self.rows.len()
    }

    /// The explanation as JSON, in the schema every xnpu surface shares (docs/explain.md):
    /// per node its op, domain, device and each other device's refusal (a stable `code`, the
    /// vendor's code, a message). `json.loads(e.json())` reads it.
    fn json(&self) -> &str {
        &self.json
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(PyList::new(py, &self.rows)?
            .as_any()
            .try_iter()?
            .into_any()
            .unbind())
    }
}

/// A loaded model, compiled for this machine's devices.
///
/// `model`: a path (str or os.PathLike) or the model's bytes. `devices`: a policy
/// (`prefer-npu`, `prefer-gpu`, `cpu-only`) or a comma-separated list of device ids
/// (`openvino:npu,cpu`). `level`: graph optimisation, `none`, `basic` or `all`. `threads`:
/// threads a backend may use for one run.
#[pyclass(frozen, subclass, module = "xnpu")]
struct InferenceSession {
    inner: Arc<Session>,
}

#[pymethods]
impl InferenceSession {
    #[new]
    #[pyo3(signature = (model, devices=None, level=None, threads=None, max_memory=None))]
    fn new(
        py: Python<'_>,
        model: &Bound<'_, PyAny>,
        devices: Option<&Bound<'_, PyAny>>,
        level: Option<&str>,
        threads: Option<usize>,
        max_memory: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<InferenceSession> {
        guard("InferenceSession()", || {
            let devices: Option<String> =
                match devices {
                    None => None,
                    Some(d) => Some(d.extract().map_err(|_| {
                        PyTypeError::new_err(format!(
                        "devices must be a str: a policy (prefer-npu, prefer-gpu, cpu-only) or \
                         device ids (openvino:npu,cpu), not {} (onnxruntime's SessionOptions \
                         and providers are not taken; see xnpu.backends())",
                        d.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                    ))
                    })?),
                };
            let mut options = session_options(devices.as_deref(), level, threads)?;
            if let Some(m) = memory_size(max_memory)? {
                options = options.max_memory(m);
            }
            let bytes = if let Ok(b) = model.cast::<PyBytes>() {
                Some(arrays::bytes_of(b))
            } else if let Ok(b) = model.cast::<PyByteArray>() {
                Some(bytes::Bytes::from(b.to_vec()))
            } else {
                None
            };
            let session = match bytes {
                Some(bytes) => py.detach(|| {
                    xnpu::graph::onnx::load_bytes(bytes, "<bytes>", None)
                        .and_then(|m| Session::new(m, options))
                }),
                None => {
                    let path: std::path::PathBuf = model.extract().map_err(|_| {
                        PyTypeError::new_err(
                            "model must be a path (str or os.PathLike) or the model's bytes",
                        )
                    })?;
                    py.detach(|| Session::load_with(&path, options))
                }
            }
            .map_err(to_py)?;
            Ok(InferenceSession {
                inner: Arc::new(session),
            })
        })
    }

    /// The inputs the model takes.
    fn get_inputs(&self, py: Python<'_>) -> PyResult<Vec<NodeArg>> {
        guard("get_inputs()", || node_args(py, self.inner.input_infos()))
    }

    /// The outputs the model gives.
    fn get_outputs(&self, py: Python<'_>) -> PyResult<Vec<NodeArg>> {
        guard("get_outputs()", || node_args(py, self.inner.output_infos()))
    }

    /// The inputs the model takes (as `get_inputs()`).
    #[getter(inputs)]
    fn inputs_attr(&self, py: Python<'_>) -> PyResult<Vec<NodeArg>> {
        self.get_inputs(py)
    }

    /// The outputs the model gives (as `get_outputs()`).
    #[getter(outputs)]
    fn outputs_attr(&self, py: Python<'_>) -> PyResult<Vec<NodeArg>> {
        self.get_outputs(py)
    }

    /// How the model was split between devices, and why each node runs where it runs.
    fn explain(&self, py: Python<'_>) -> PyResult<Explanation> {
        guard("explain()", || {
            let s = &self.inner;
            let plan = s.plan();
            let rows = plan
                .rows(&s.model().graph)
                .into_iter()
                .map(|r| {
                    Py::new(
                        py,
                        PlanRow {
                            node: r.node,
                            op: r.op,
                            device: r.backend,
                            partition: r.partition,
                            why: r.why,
                        },
                    )
                })
                .collect::<PyResult<_>>()?;
            Ok(Explanation {
                rows,
                devices: plan
                    .nodes_per_backend()
                    .into_iter()
                    .map(|(b, n)| (b.to_string(), n))
                    .collect(),
                notes: s.notes().to_vec(),
                partitions: plan
                    .partitions
                    .iter()
                    .map(|p| (plan.backends[p.backend].clone(), p.nodes.len()))
                    .collect(),
                text: s.explain(),
                json: s.explanation().to_json(),
            })
        })
    }

    /// Runs the model: `input_feed` maps input names to arrays (NumPy arrays, or anything
    /// `numpy.asarray` takes: a list, tuple or Python scalar becomes an array of the
    /// input's element type); returns the outputs named in `output_names` (all, in model
    /// order, when it is None or empty) as NumPy arrays. The arrays given must not be
    /// changed by another thread while the run lasts: they are read in place.
    /// `run_options`: an `xnpu.RunOptions` (a time limit, `terminate` from another thread),
    /// or None.
    #[pyo3(signature = (output_names, input_feed, run_options=None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        output_names: Option<Vec<String>>,
        input_feed: &Bound<'py, PyAny>,
        run_options: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let run_options = match run_options {
            None => None,
            Some(o) => Some(
                o.cast::<RunOptions>()
                    .map_err(|_| {
                        PyTypeError::new_err(
                            "run_options must be an xnpu.RunOptions or None (onnxruntime's \
                             RunOptions is not taken)",
                        )
                    })?
                    .get()
                    .options(),
            ),
        };
        let output_names = output_names.filter(|n| !n.is_empty());
        guard("run()", || {
            let feeds = input_feed.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err("input_feed must be a dict of input names to arrays")
            })?;
            // The outputs asked for, by position (checked before the model runs).
            let outs = self.inner.output_infos();
            let wanted: Option<Vec<usize>> = match output_names {
                None => None,
                Some(want) => Some(
                    want.iter()
                        .map(|w| {
                            outs.iter().position(|o| o.name == *w).ok_or_else(|| {
                                let names: Vec<&str> =
                                    outs.iter().map(|o| o.name.as_str()).collect();
                                InvalidInputError::new_err(format!(
                                    "the model has no output \"{w}\" (it has {})",
                                    names.join(", ")
                                ))
                            })
                        })
                        .collect::<PyResult<_>>()?,
                ),
            };
            let mut inputs: Vec<(String, Tensor)> = Vec::with_capacity(feeds.len());
            for (k, v) in feeds.iter() {
                let name: String = k.extract().map_err(|_| {
                    PyTypeError::new_err("input_feed's keys must be input names (str)")
                })?;
                let declared = self
                    .inner
                    .input_infos()
                    .iter()
                    .find(|i| i.name == name)
                    .and_then(|i| arrays::element_type(&i.ty));
                let tensor = arrays::feed(py, &name, &v, declared)?;
                inputs.push((name, tensor));
            }
            let session = &*self.inner;
            // A clone of a tensor shares its bytes.
            let results = py
                .detach(|| {
                    session.run_with(
                        inputs
                            .iter()
                            .map(|(n, t)| (n.as_str(), Value::Tensor(t.clone()))),
                        run_options.as_ref(),
                    )
                })
                .map_err(to_py)?;
            // Values share their buffers: an output asked for twice is copied into each array
            // (`arrays::outputs` copies any output that overlaps another).
            let picked: Vec<(String, Value)> = match wanted {
                None => results,
                Some(w) => w.iter().map(|&i| results[i].clone()).collect(),
            };
            arrays::outputs(py, session, picked, &inputs)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "InferenceSession(model={:?}, devices={:?})",
            self.inner.model().name,
            self.inner.plan().backends
        )
    }
}

/// One backend: `(id, kind, detail)`.
type BackendRow = (String, String, String);

/// The backends sessions can use, and notes on plugins that were skipped.
#[pyfunction]
fn _backends(py: Python<'_>) -> PyResult<(Vec<BackendRow>, Vec<String>)> {
    guard("backends()", || {
        let (list, notes) = py.detach(xnpu::registry::available);
        Ok((
            list.iter()
                .map(|a| (a.id.clone(), a.backend.kind().to_string(), a.detail.clone()))
                .collect(),
            notes.to_vec(),
        ))
    })
}

/// Adds a folder to look for backend plugins in (the package's own folder).
#[pyfunction]
fn _add_plugin_dir(dir: std::path::PathBuf) -> PyResult<()> {
    guard("_add_plugin_dir()", || {
        xnpu::plugins::add_search_dir(dir);
        Ok(())
    })
}

#[pymodule]
fn _xnpu(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    log::install();
    m.add_function(wrap_pyfunction!(devices::_devices, m)?)?;
    m.add_function(wrap_pyfunction!(devices::_render_devices, m)?)?;
    m.add_function(wrap_pyfunction!(_backends, m)?)?;
    m.add_function(wrap_pyfunction!(_add_plugin_dir, m)?)?;
    m.add_class::<InferenceSession>()?;
    m.add_class::<RunOptions>()?;
    m.add_class::<NodeArg>()?;
    m.add_class::<PlanRow>()?;
    m.add_class::<Explanation>()?;
    m.add_class::<arrays::OutputBuffer>()?;
    llm::register(m)?;
    m.add("XnpuError", py.get_type::<XnpuError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("ComputeError", py.get_type::<ComputeError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("XnpuIOError", py.get_type::<XnpuIOError>())?;
    Ok(())
}
