//! xnpu-backend-openvino: Intel AI Boost NPUs, Intel GPUs and OpenVINO's own CPU device,
//! through OpenVINO's C library (`libopenvino_c.so`), opened at run time with `libloading`;
//! OpenVINO is never a build dependency.
//!
//! A partition goes to OpenVINO as ONNX (xnpu's exporter): from memory, or, past
//! [`OpenVinoBackend::inline_limit`] bytes of weights, as a file with external data in a
//! private temporary folder (OpenVINO resolves external data read from memory against the
//! process's working directory). Compiled models are cached on disk in OpenVINO's cache
//! (`CACHE_DIR`, one folder per backend; OpenVINO names each blob by a hash of the model and
//! its compile properties). Inputs, and outputs whose shapes are known after compiling, are
//! shared with OpenVINO through host pointers without copies.
//!
//! OpenVINO's C API has no per-op query, so what the backend claims is a capability table
//! kept beside it (`capabilities.json`), proven against OpenVINO by this crate's tests.

mod ffi;
mod table;

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use xnpu_core::{Bytes, DType, Error, Result, Tensor, Value};
use xnpu_graph::backend::{
    Backend, CapabilityTable, CompileOptions, DeviceKind, Executable, NodeContext, PerformanceHint,
    Precision, Support,
};
use xnpu_graph::{Graph, Model};

use ffi::{Api, OvDevices, OvProperty, OvShape, P};

pub use table::{capability_table, TABLE_JSON};

/// Where the library was looked for, in order.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for site in xnpu_core::locate::site_packages() {
        dirs.push(site.join("openvino/libs"));
    }
    for key in ["INTEL_OPENVINO_DIR", "OPENVINO_INSTALL_DIR"] {
        if let Some(d) = std::env::var_os(key) {
            dirs.push(PathBuf::from(d).join("runtime/lib/intel64"));
        }
    }
    for d in ["/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Finds `libopenvino_c.so*`: `XNPU_OPENVINO_LIB`, an installed `openvino` Python package
/// (the active or the project's virtual environment), an OpenVINO archive
/// (`INTEL_OPENVINO_DIR`), the system library folders. The error lists every place tried.
pub fn find_library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("XNPU_OPENVINO_LIB") {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(Error::unsupported(format!(
                "XNPU_OPENVINO_LIB is {}, which does not exist",
                p.display()
            )))
        };
    }
    let dirs = candidates();
    for d in &dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libopenvino_c.so"))
                })
                .collect();
            found.sort();
            if let Some(p) = found.pop() {
                return Ok(p);
            }
        }
    }
    let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(Error::unsupported(format!(
        "OpenVINO's C library (libopenvino_c.so*) was not found (set XNPU_OPENVINO_LIB, or \
         pip install openvino); tried: {}",
        tried.join(", ")
    )))
}

/// An OpenVINO core: the opened library and one `ov_core_t`.
pub struct OpenVino {
    api: Arc<Api>,
    core: P,
}

// SAFETY: ov_core_t is thread-safe for reading models, compiling and queries (OpenVINO's
// documented threading model); the pointer is owned here and freed once.
unsafe impl Send for OpenVino {}
// SAFETY: as above.
unsafe impl Sync for OpenVino {}

impl Drop for OpenVino {
    fn drop(&mut self) {
        let (api, core) = (&self.api, self.core);
        // SAFETY: created by ov_core_create, freed once (serialised: it clears the message).
        api.serial(|| unsafe { (api.ov_core_free)(core) });
    }
}

/// One device OpenVINO reports.
#[derive(Clone, Debug, PartialEq)]
pub struct OvDevice {
    /// OpenVINO's name (`CPU`, `GPU`, `GPU.1`, `NPU`).
    pub name: String,
    pub full_name: String,
    /// The device driver's version, where OpenVINO reports one (`NPU_DRIVER_VERSION`).
    pub driver_version: Option<String>,
}

/// Where OpenVINO reads a model from.
pub enum Source<'a> {
    /// ONNX bytes in memory (copied by OpenVINO while reading).
    Onnx(&'a [u8]),
    /// An ONNX file; its external data is found beside it.
    File(&'a Path),
}

impl OpenVino {
    /// Opens the library found by [`find_library`] and creates a core.
    pub fn open() -> Result<OpenVino> {
        OpenVino::open_at(&find_library()?)
    }

    /// Opens the library at `path` (refused when it is not OpenVINO 2025.1 or later).
    pub fn open_at(path: &Path) -> Result<OpenVino> {
        let api = Arc::new(Api::open(path)?);
        let mut core: P = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        api.call(
            || "ov_core_create".into(),
            || unsafe { (api.ov_core_create)(&mut core) },
        )?;
        Ok(OpenVino { api, core })
    }

    pub fn library(&self) -> &Path {
        &self.api.path
    }

    /// OpenVINO's build number (`2026.4.1-22982-...`).
    pub fn version(&self) -> &str {
        &self.api.version
    }

    /// The devices OpenVINO can use on this machine, with their full names.
    pub fn devices(&self) -> Result<Vec<OvDevice>> {
        Ok(self
            .device_names()?
            .into_iter()
            .map(|name| OvDevice {
                full_name: self.property(&name, "FULL_DEVICE_NAME").unwrap_or_default(),
                driver_version: name
                    .starts_with("NPU")
                    .then(|| self.property(&name, "NPU_DRIVER_VERSION").ok())
                    .flatten(),
                name,
            })
            .collect())
    }

    /// The names of the devices OpenVINO can use (`CPU`, `GPU.0`, `NPU`).
    pub fn device_names(&self) -> Result<Vec<String>> {
        let mut list = OvDevices {
            devices: std::ptr::null_mut(),
            size: 0,
        };
        let api = &self.api;
        // SAFETY: a live core and a valid out-struct.
        api.call(
            || "listing devices".into(),
            || unsafe { (api.ov_core_get_available_devices)(self.core, &mut list) },
        )?;
        let mut names = Vec::with_capacity(list.size);
        for i in 0..list.size {
            // SAFETY: `size` NUL-terminated strings owned by `list`.
            let s = unsafe { CStr::from_ptr(*list.devices.add(i)) };
            names.push(s.to_string_lossy().into_owned());
        }
        // SAFETY: `list` came from ov_core_get_available_devices.
        unsafe { (api.ov_available_devices_free)(&mut list) };
        Ok(names)
    }

    /// A device property as a string.
    pub fn property(&self, device: &str, key: &str) -> Result<String> {
        let d = cstring(device, "device name")?;
        let k = cstring(key, "property key")?;
        let mut v: *mut c_char = std::ptr::null_mut();
        let api = &self.api;
        // SAFETY: a live core, NUL-terminated strings and a valid out-pointer.
        api.call(
            || format!("reading {key} of {device}"),
            || unsafe { (api.ov_core_get_property)(self.core, d.as_ptr(), k.as_ptr(), &mut v) },
        )?;
        // SAFETY: a new[] string from the library (freed by owned_string).
        Ok(unsafe { owned_string(api, v) })
    }

    /// Reads a model and compiles it for `device` with `properties` (key/value pairs as
    /// OpenVINO spells them). Every error carries OpenVINO's own message.
    pub fn compile(
        self: &Arc<Self>,
        source: Source<'_>,
        device: &str,
        properties: &[(String, String)],
    ) -> Result<CompiledModel> {
        let api = &self.api;
        let mut model: P = std::ptr::null_mut();
        match source {
            Source::Onnx(bytes) => {
                // SAFETY: a live core; the ONNX bytes are copied by OpenVINO during the call;
                // no weights tensor (ONNX carries its own).
                api.call(
                    || "reading the model".into(),
                    || unsafe {
                        (api.ov_core_read_model_from_memory_buffer)(
                            self.core,
                            bytes.as_ptr().cast(),
                            bytes.len(),
                            std::ptr::null_mut(),
                            &mut model,
                        )
                    },
                )?
            }
            Source::File(path) => {
                let p = cstring(&path.to_string_lossy(), "model path")?;
                // SAFETY: a live core, a NUL-terminated path, no separate weights path.
                api.call(
                    || format!("reading {}", path.display()),
                    || unsafe {
                        (api.ov_core_read_model)(
                            self.core,
                            p.as_ptr(),
                            std::ptr::null(),
                            &mut model,
                        )
                    },
                )?
            }
        }
        let dev = cstring(device, "device name")?;
        let keys: Vec<CString> = properties
            .iter()
            .map(|(k, _)| cstring(k, "property key"))
            .collect::<Result<_>>()?;
        let values: Vec<CString> = properties
            .iter()
            .map(|(_, v)| cstring(v, "property value"))
            .collect::<Result<_>>()?;
        let mut cm: P = std::ptr::null_mut();
        let what = || format!("compiling for {device}");
        let r = match api.compile_props {
            Some(compile_props) => {
                let props: Vec<OvProperty> = keys
                    .iter()
                    .zip(&values)
                    .map(|(k, v)| OvProperty {
                        key: k.as_ptr(),
                        value: v.as_ptr(),
                    })
                    .collect();
                // SAFETY: live core and model; `props` and the strings it points to outlive
                // the call.
                api.call(what, || unsafe {
                    compile_props(
                        self.core,
                        model,
                        dev.as_ptr(),
                        props.len(),
                        props.as_ptr(),
                        &mut cm,
                    )
                })
            }
            None => {
                let kv: Vec<*const c_char> = keys
                    .iter()
                    .zip(&values)
                    .flat_map(|(k, v)| [k.as_ptr(), v.as_ptr()])
                    .collect();
                // SAFETY: live core and model; NUL-terminated strings alive for the call.
                api.call(what, || unsafe {
                    compile_variadic(api, self.core, model, &dev, &kv, &mut cm)
                })
            }
        };
        // SAFETY: the model is not needed once compiled (or when compiling failed).
        unsafe { (api.ov_model_free)(model) };
        r?;
        Ok(CompiledModel {
            ov: self.clone(),
            ptr: cm,
        })
    }
}

/// `ov_core_compile_model`'s variadic form (OpenVINO before 2026.4), for up to 8 pairs.
///
/// # Safety
/// `core` and `model` are live; `kv` holds NUL-terminated key/value strings in pairs.
unsafe fn compile_variadic(
    api: &Api,
    core: P,
    model: P,
    dev: &CStr,
    kv: &[*const c_char],
    out: *mut P,
) -> ffi::Status {
    let f = api.ov_core_compile_model;
    let d = dev.as_ptr();
    let n = kv.len();
    // SAFETY: the variadic arguments are `n` C strings, as `property_args_size` says.
    unsafe {
        match *kv {
            [] => f(core, model, d, 0, out),
            [a, b] => f(core, model, d, n, out, a, b),
            [a, b, c, e] => f(core, model, d, n, out, a, b, c, e),
            [a, b, c, e, g, h] => f(core, model, d, n, out, a, b, c, e, g, h),
            [a, b, c, e, g, h, i, j] => f(core, model, d, n, out, a, b, c, e, g, h, i, j),
            [a, b, c, e, g, h, i, j, k, l] => {
                f(core, model, d, n, out, a, b, c, e, g, h, i, j, k, l)
            }
            [a, b, c, e, g, h, i, j, k, l, m, o] => {
                f(core, model, d, n, out, a, b, c, e, g, h, i, j, k, l, m, o)
            }
            [a, b, c, e, g, h, i, j, k, l, m, o, p, q] => f(
                core, model, d, n, out, a, b, c, e, g, h, i, j, k, l, m, o, p, q,
            ),
            [a, b, c, e, g, h, i, j, k, l, m, o, p, q, r, s] => f(
                core, model, d, n, out, a, b, c, e, g, h, i, j, k, l, m, o, p, q, r, s,
            ),
            // INVALID_C_PARAM: more properties than this OpenVINO's variadic call is given.
            _ => -14,
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid_input(format!("a NUL byte in a {what}: {s:?}")))
}

/// Takes a string the library allocated with `new[]`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string allocated by OpenVINO for the caller.
unsafe fn owned_string(api: &Api, p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: per the contract.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated by the library for us; freed once.
    unsafe { (api.ov_free)(p) };
    s
}

/// A compiled model (`ov_compiled_model_t`).
pub struct CompiledModel {
    ov: Arc<OpenVino>,
    ptr: P,
}

// SAFETY: OpenVINO's compiled models are thread-safe; the pointer is freed once.
unsafe impl Send for CompiledModel {}
// SAFETY: as above.
unsafe impl Sync for CompiledModel {}

impl Drop for CompiledModel {
    fn drop(&mut self) {
        let api = &self.ov.api;
        // SAFETY: created by compile_model, freed once.
        unsafe { (api.ov_compiled_model_free)(self.ptr) };
    }
}

impl CompiledModel {
    /// A property of the compiled model (`EXECUTION_DEVICES`, `INFERENCE_PRECISION_HINT`,
    /// `LOADED_FROM_CACHE`, ...).
    pub fn property(&self, key: &str) -> Result<String> {
        let k = cstring(key, "property key")?;
        let api = &self.ov.api;
        let mut v: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live compiled model, a NUL-terminated key and a valid out-pointer.
        api.call(
            || format!("reading {key} of a compiled model"),
            || unsafe { (api.ov_compiled_model_get_property)(self.ptr, k.as_ptr(), &mut v) },
        )?;
        // SAFETY: a new[] string from the library.
        Ok(unsafe { owned_string(api, v) })
    }

    /// Whether OpenVINO took this model from its cache instead of compiling it.
    pub fn loaded_from_cache(&self) -> bool {
        self.property("LOADED_FROM_CACHE")
            .is_ok_and(|v| v.eq_ignore_ascii_case("yes") || v == "true" || v == "1")
    }

    /// The names of the compiled model's inputs, in its order.
    fn input_names(&self) -> Result<Vec<String>> {
        let api = &self.ov.api;
        let mut n = 0usize;
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "counting inputs".into(),
            || unsafe { (api.ov_compiled_model_inputs_size)(self.ptr, &mut n) },
        )?;
        let mut names = Vec::with_capacity(n);
        for i in 0..n {
            let mut port: P = std::ptr::null_mut();
            // SAFETY: a live compiled model, an index below the count, a valid out-pointer.
            api.call(
                || format!("reading input port {i}"),
                || unsafe { (api.ov_compiled_model_input_by_index)(self.ptr, i, &mut port) },
            )?;
            let mut name: *mut c_char = std::ptr::null_mut();
            // SAFETY: a live port and a valid out-pointer.
            let r = api.call(
                || format!("input {i}'s name"),
                || unsafe { (api.ov_port_get_any_name)(port, &mut name) },
            );
            // SAFETY: the port came from input_by_index; freed once.
            unsafe { (api.ov_output_const_port_free)(port) };
            r?;
            // SAFETY: a new[] string from the library.
            names.push(unsafe { owned_string(api, name) });
        }
        Ok(names)
    }

    /// Element type and, when fixed after compiling, shape of each output.
    fn outputs(&self) -> Result<Vec<OutPort>> {
        let api = &self.ov.api;
        let mut n = 0usize;
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "counting outputs".into(),
            || unsafe { (api.ov_compiled_model_outputs_size)(self.ptr, &mut n) },
        )?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let mut port: P = std::ptr::null_mut();
            // SAFETY: a live compiled model, an index below the count, a valid out-pointer.
            api.call(
                || format!("reading output port {i}"),
                || unsafe { (api.ov_compiled_model_output_by_index)(self.ptr, i, &mut port) },
            )?;
            let mut ty = 0;
            // SAFETY: a live port and a valid out-pointer.
            let ty_ok = api.call(
                || format!("output {i}'s element type"),
                || unsafe { (api.ov_port_get_element_type)(port, &mut ty) },
            );
            let mut shape = OvShape {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            // A dynamic output has no static shape: that call fails, and the output is then
            // copied out after each run instead of written in place.
            // SAFETY: a live port and a valid out-struct (freed below when filled).
            let fixed = api
                .call(
                    || format!("output {i}'s shape"),
                    || unsafe { (api.ov_const_port_get_shape)(port, &mut shape) },
                )
                .is_ok();
            let dims = if fixed {
                // SAFETY: filled by ov_const_port_get_shape.
                let d = unsafe { shape_dims(&shape) };
                // SAFETY: as above; freed once.
                unsafe { (api.ov_shape_free)(&mut shape) };
                Some(d)
            } else {
                None
            };
            // SAFETY: the port came from output_by_index; freed once.
            unsafe { (api.ov_output_const_port_free)(port) };
            ty_ok?;
            out.push(OutPort {
                dtype: from_ov_type(ty),
                shape: dims,
            });
        }
        Ok(out)
    }
}

/// The dims of a filled `ov_shape_t`.
///
/// # Safety
/// `shape` was filled by the library (its `dims` holds `rank` values).
unsafe fn shape_dims(shape: &OvShape) -> Vec<usize> {
    if shape.rank <= 0 || shape.dims.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    unsafe { std::slice::from_raw_parts(shape.dims, shape.rank as usize) }
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect()
}

/// OpenVINO's element type (2025.1+ numbering) of a dtype.
fn ov_type(d: DType) -> Option<i32> {
    Some(match d {
        DType::Bool => 1,
        DType::Bf16 => 2,
        DType::F16 => 3,
        DType::F32 => 4,
        DType::F64 => 5,
        DType::I8 => 7,
        DType::I16 => 8,
        DType::I32 => 9,
        DType::I64 => 10,
        DType::U8 => 16,
        DType::U16 => 17,
        DType::U32 => 18,
        DType::U64 => 19,
        DType::String => return None,
    })
}

fn from_ov_type(t: i32) -> Option<DType> {
    DType::ALL.iter().copied().find(|&d| ov_type(d) == Some(t))
}

/// Weights up to this many bytes go to OpenVINO in memory; more go through a file.
pub const DEFAULT_INLINE_LIMIT: usize = 256 << 20;

/// A backend on one OpenVINO device (`NPU` on Core Ultra machines; `CPU` here).
pub struct OpenVinoBackend {
    ov: Arc<OpenVino>,
    device: String,
    name: String,
    table: CapabilityTable,
    /// The device's `SUPPORTED_PROPERTIES`: hints it does not take are not sent.
    supported: Vec<String>,
    /// Properties given by the user, sent after (and over) the backend's own.
    config: Vec<(String, String)>,
    inline_limit: usize,
}

impl OpenVinoBackend {
    /// A backend on `device` (as OpenVINO names it: `CPU`, `GPU`, `NPU`), which must be one
    /// it lists. Its id is `openvino:<device in lower case>`.
    pub fn new(ov: Arc<OpenVino>, device: &str) -> Result<OpenVinoBackend> {
        let names = ov.device_names()?;
        if !names.iter().any(|d| d == device) {
            return Err(Error::unsupported(format!(
                "OpenVINO {} at {} has no device {device} (it lists: {})",
                ov.version(),
                ov.library().display(),
                names.join(", ")
            )));
        }
        OpenVinoBackend::listed(ov, device)
    }

    /// A backend on a device OpenVINO has just listed (from [`OpenVino::devices`] or
    /// [`OpenVino::device_names`]), without listing the devices again.
    pub fn listed(ov: Arc<OpenVino>, device: &str) -> Result<OpenVinoBackend> {
        let kind = match device.split('.').next().unwrap_or(device) {
            "NPU" => DeviceKind::Npu,
            "GPU" => DeviceKind::Gpu,
            _ => DeviceKind::Cpu,
        };
        let name = format!("openvino:{}", device.to_ascii_lowercase());
        let table = capability_table(&name, kind)?;
        let supported = ov
            .property(device, "SUPPORTED_PROPERTIES")
            .map(|s| {
                s.split([' ', ','])
                    .map(|k| k.split(':').next().unwrap_or(k).trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(OpenVinoBackend {
            ov,
            device: device.to_string(),
            name,
            table,
            supported,
            config: Vec::new(),
            inline_limit: DEFAULT_INLINE_LIMIT,
        })
    }

    /// The preferred device: `NPU` when OpenVINO lists one, then `GPU`, then `CPU`.
    pub fn preferred(ov: Arc<OpenVino>) -> Result<OpenVinoBackend> {
        let names = ov.device_names()?;
        match ["NPU", "GPU", "CPU"]
            .iter()
            .find(|p| names.iter().any(|d| d == *p))
        {
            Some(pick) => OpenVinoBackend::listed(ov, pick),
            // None of them: `new` says what OpenVINO lists instead.
            None => OpenVinoBackend::new(ov, "CPU"),
        }
    }

    /// OpenVINO properties sent with every compile, after the backend's own (e.g.
    /// `NPU_COMPILER_TYPE=DRIVER`). A key the device does not know fails the compile.
    pub fn with_config(mut self, config: Vec<(String, String)>) -> OpenVinoBackend {
        self.config = config;
        self
    }

    /// Parses `KEY=VALUE` pairs separated by commas or spaces (`XNPU_OPENVINO_CONFIG`).
    pub fn parse_config(text: &str) -> Result<Vec<(String, String)>> {
        text.split([',', ' '])
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        Error::invalid_input(format!("OpenVINO config: \"{p}\" is not KEY=VALUE"))
                    })
            })
            .collect()
    }

    /// Replaces the capability table (tests, and users who know their device better).
    pub fn with_table(mut self, mut table: CapabilityTable) -> OpenVinoBackend {
        table.name = self.name.clone();
        self.table = table;
        self
    }

    /// Partitions with more bytes of weights than this go to OpenVINO as an ONNX file with
    /// external data in a temporary folder instead of from memory.
    pub fn inline_limit(mut self, bytes: usize) -> OpenVinoBackend {
        self.inline_limit = bytes;
        self
    }

    /// OpenVINO's name for the device.
    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn openvino(&self) -> &Arc<OpenVino> {
        &self.ov
    }

    /// The properties a compile sends: precision (f32 unless asked otherwise, on the devices
    /// that take a hint: OpenVINO's CPU device computes in bf16 by default on CPUs with
    /// AVX-512 BF16), performance hint, threads, cache folder, then the user's config.
    pub fn properties(&self, options: &CompileOptions) -> Vec<(String, String)> {
        let mut props: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| {
            if self.supported.iter().any(|s| s == k) {
                props.push((k.to_string(), v));
            }
        };
        let precision = match (options.precision, self.table.kind) {
            (Some(p), _) => Some(p),
            (None, DeviceKind::Cpu | DeviceKind::Gpu) => Some(Precision::F32),
            (None, DeviceKind::Npu) => None,
        };
        if let Some(p) = precision {
            put("INFERENCE_PRECISION_HINT", p.to_string());
        }
        put(
            "PERFORMANCE_HINT",
            match options.performance.unwrap_or(PerformanceHint::Latency) {
                PerformanceHint::Latency => "LATENCY",
                PerformanceHint::Throughput => "THROUGHPUT",
            }
            .into(),
        );
        if let Some(n) = options.threads {
            put("INFERENCE_NUM_THREADS", n.to_string());
        }
        if let Some(dir) = options.cache.dir_for(&self.name) {
            if std::fs::create_dir_all(&dir).is_ok() {
                // Every device takes CACHE_DIR as a compile property.
                props.push(("CACHE_DIR".into(), dir.to_string_lossy().into_owned()));
            }
        }
        for (k, v) in &self.config {
            props.retain(|(pk, _)| pk != k);
            props.push((k.clone(), v.clone()));
        }
        props
    }

    /// Compiles a partition, returning OpenVINO's executable (what [`Backend::compile_with`]
    /// boxes).
    pub fn compile_partition(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<OvExecutable> {
        let model = Model {
            name: partition.name.clone(),
            graph: partition.clone(),
            ..Default::default()
        };
        let weights: usize = partition
            .values
            .iter()
            .filter_map(|v| v.constant.as_ref())
            .map(|t| t.raw_bytes().len())
            .sum();
        let props = self.properties(options);
        let proto = xnpu_graph::onnx::to_model_proto(&model)?;
        // OpenVINO may drop inputs it folds away (an empty `axes`, an unused LSTM input):
        // inputs are matched to the partition's by name.
        let names: Vec<String> = proto
            .graph
            .as_ref()
            .map(|g| g.input.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        let (compiled, folder) = if weights <= self.inline_limit {
            let onnx = prost::Message::encode_to_vec(&proto);
            drop(proto);
            (
                self.ov.compile(Source::Onnx(&onnx), &self.device, &props)?,
                None,
            )
        } else {
            let dir = tempfile::Builder::new()
                .prefix("xnpu-openvino-")
                .tempdir()
                .map_err(|e| Error::compute(format!("a temporary folder for weights: {e}")))?;
            let path = dir.path().join("partition.onnx");
            xnpu_graph::onnx::save_with_external_data(&model, &path, 1024)?;
            let c = self.ov.compile(Source::File(&path), &self.device, &props)?;
            (c, Some(dir))
        };
        OvExecutable::new(compiled, folder, names)
    }
}

impl Backend for OpenVinoBackend {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> DeviceKind {
        self.table.kind
    }
    fn supports(&self, cx: &NodeContext<'_>) -> Support {
        if let Some(why) = table::refused_configuration(cx) {
            return Support::Unsupported {
                reason: format!("{} refuses {}: {why}", self.name, cx.node.op.name()),
            };
        }
        self.table.check(cx)
    }
    fn needs_static_shapes(&self) -> bool {
        self.table.static_shapes
    }
    fn capabilities(&self) -> Option<&CapabilityTable> {
        Some(&self.table)
    }
    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        self.compile_with(partition, &CompileOptions::default())
    }
    fn compile_with(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<Box<dyn Executable>> {
        Ok(Box::new(self.compile_partition(partition, options)?))
    }
}

/// An output's element type and, when OpenVINO fixed it at compile time, its shape.
struct OutPort {
    dtype: Option<DType>,
    shape: Option<Vec<usize>>,
}

/// A compiled partition and its infer request.
pub struct OvExecutable {
    /// One infer request, used under the mutex (requests are not shared between threads).
    request: Mutex<Request>,
    /// How many inputs the partition passes.
    n_given: usize,
    /// For each input of the compiled model, the partition input it reads.
    input_map: Vec<usize>,
    outputs: Vec<OutPort>,
    loaded_from_cache: bool,
    compiled: CompiledModel,
    /// The temporary folder of a partition read from a file (its weights may be mapped).
    _folder: Option<tempfile::TempDir>,
}

// SAFETY: the compiled model is thread-safe; the request is only used under the mutex.
unsafe impl Send for OvExecutable {}
// SAFETY: as above.
unsafe impl Sync for OvExecutable {}

impl Drop for OvExecutable {
    fn drop(&mut self) {
        let api = &self.compiled.ov.api;
        if let Ok(r) = self.request.get_mut() {
            if !r.ptr.is_null() {
                // SAFETY: created by create_infer_request, freed once (before the model).
                unsafe { (api.ov_infer_request_free)(r.ptr) };
            }
        }
    }
}

/// An infer request and what each of its inputs is bound to.
struct Request {
    ptr: P,
    /// Per input: the host pointer, shape and element type it was last set to. A run whose
    /// input has the same three skips re-creating and re-setting the tensor (most of the
    /// per-run cost inside OpenVINO's CPU plugin).
    bound: Vec<Option<(usize, Vec<i64>, i32)>>,
    /// Per output: `Some(false)` where OpenVINO would not write into a buffer set for it
    /// (the output is an input passed through); such outputs are copied out instead.
    in_place_ok: Vec<Option<bool>>,
}

/// Frees an ov_tensor_t when dropped.
struct OvTensor<'a>(&'a Api, P);

impl Drop for OvTensor<'_> {
    fn drop(&mut self) {
        // SAFETY: a tensor handle this code created or received, freed once.
        unsafe { (self.0.ov_tensor_free)(self.1) };
    }
}

/// A buffer of 8-byte-aligned storage that becomes a tensor's bytes without a copy.
struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Aligned {
        Aligned {
            words: vec![0u64; len.div_ceil(8)],
            len,
        }
    }
    fn ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr().cast()
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

impl OvExecutable {
    fn new(
        compiled: CompiledModel,
        folder: Option<tempfile::TempDir>,
        partition_inputs: Vec<String>,
    ) -> Result<OvExecutable> {
        let api = &compiled.ov.api;
        let outputs = compiled.outputs()?;
        // A compiled input is the partition input of its name; OpenVINO may drop inputs it
        // folds away, keeping the others in order, and an input passed straight through to
        // an output may answer with the output's name: such an input is the next one in
        // order.
        let mut input_map: Vec<usize> = Vec::new();
        let mut next = 0usize;
        for name in compiled.input_names()? {
            let at = match partition_inputs.iter().position(|n| *n == name) {
                Some(p) if p >= next => p,
                _ if next < partition_inputs.len() => next,
                _ => {
                    return Err(Error::compute(format!(
                        "OpenVINO's compiled model has an input \"{name}\" that matches none \
                         of the partition's (inputs: {})",
                        partition_inputs.join(", ")
                    )))
                }
            };
            input_map.push(at);
            next = at + 1;
        }
        let n_inputs = input_map.len();
        let mut req: P = std::ptr::null_mut();
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "creating an infer request".into(),
            || unsafe { (api.ov_compiled_model_create_infer_request)(compiled.ptr, &mut req) },
        )?;
        // An output that is one of the inputs (OpenVINO passes it through) shares the
        // input's memory and is never written into a buffer set for it: copied out instead.
        let mut in_place_ok = vec![None; outputs.len()];
        let mut input_data = Vec::with_capacity(n_inputs);
        for i in 0..n_inputs {
            input_data.push(tensor_data(api, req, i, true)?);
        }
        for (i, o) in outputs.iter().enumerate() {
            if o.shape.is_some() {
                let d = tensor_data(api, req, i, false)?;
                if !d.is_null() && input_data.contains(&d) {
                    in_place_ok[i] = Some(false);
                }
            }
        }
        Ok(OvExecutable {
            request: Mutex::new(Request {
                ptr: req,
                bound: vec![None; n_inputs],
                in_place_ok,
            }),
            n_given: partition_inputs.len(),
            input_map,
            outputs,
            loaded_from_cache: compiled.loaded_from_cache(),
            compiled,
            _folder: folder,
        })
    }

    /// Whether OpenVINO took the compiled model from its cache.
    pub fn loaded_from_cache(&self) -> bool {
        self.loaded_from_cache
    }

    pub fn compiled(&self) -> &CompiledModel {
        &self.compiled
    }

    /// How many outputs are written in place (their shapes were fixed at compile time).
    pub fn outputs_in_place(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| o.shape.is_some() && o.dtype.is_some())
            .count()
    }
}

impl Executable for OvExecutable {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        let api = &self.compiled.ov.api;
        if inputs.len() != self.n_given {
            return Err(Error::invalid_input(format!(
                "the compiled partition takes {} inputs, {} given",
                self.n_given,
                inputs.len()
            )));
        }
        let mut request = self
            .request
            .lock()
            .map_err(|_| Error::compute("a previous run panicked"))?;
        let req = request.ptr;
        // Inputs: host-pointer tensors over our buffers (no copy), alive until infer returns.
        let mut held = Vec::with_capacity(inputs.len() + self.outputs.len());
        let mut copies: Vec<Aligned> = Vec::new();
        for (i, &from) in self.input_map.iter().enumerate() {
            let t = inputs[from].as_tensor()?;
            let ty = ov_type(t.dtype()).ok_or_else(|| {
                Error::unsupported(format!("OpenVINO takes no {} tensors", t.dtype()))
            })?;
            let mut dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            let bytes = t.raw_bytes();
            let mut ptr = bytes.as_ptr() as *mut c_void;
            let key = (ptr as usize, dims.clone(), ty);
            if request.bound[i].as_ref() == Some(&key) {
                // Bound to these very bytes already: OpenVINO reads them in place. (Between
                // runs the request keeps a pointer that may dangle; OpenVINO reads it only
                // inside infer, and every run first checks it is the current input's or
                // rebinds it.)
                continue;
            }
            request.bound[i] = None;
            if (ptr as usize) % t.dtype().size().max(1) != 0 {
                // Misaligned (a memory-mapped constant): copy into an aligned buffer.
                let mut buf = Aligned::zeroed(bytes.len());
                bytemuck::cast_slice_mut::<u64, u8>(&mut buf.words)[..bytes.len()]
                    .copy_from_slice(bytes);
                ptr = buf.ptr();
                copies.push(buf);
            }
            let shape = OvShape {
                rank: dims.len() as i64,
                dims: dims.as_mut_ptr(),
            };
            let mut h: P = std::ptr::null_mut();
            // SAFETY: `ptr` points to the tensor's bytes, alive and unmoved until this
            // function returns (after infer); OpenVINO only reads inputs; the shape is copied.
            api.call(
                || format!("creating input tensor {i}"),
                || unsafe { (api.ov_tensor_create_from_host_ptr)(ty, shape, ptr, &mut h) },
            )?;
            let h = OvTensor(api, h);
            // SAFETY: live request and tensor.
            api.call(
                || format!("setting input {i}"),
                || unsafe { (api.ov_infer_request_set_input_tensor_by_index)(req, i, h.1) },
            )?;
            if ptr as usize == key.0 {
                request.bound[i] = Some(key);
            }
            held.push(h);
        }
        // Outputs of fixed shape: OpenVINO writes straight into buffers that become ours.
        let mut in_place: Vec<Option<(DType, Vec<usize>, Aligned)>> = Vec::new();
        for (i, o) in self.outputs.iter().enumerate() {
            let (Some(dtype), Some(shape), true) =
                (o.dtype, &o.shape, request.in_place_ok[i] != Some(false))
            else {
                in_place.push(None);
                continue;
            };
            let n = shape
                .iter()
                .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
                .ok_or_else(|| {
                    Error::compute(format!("output {i}'s shape {shape:?} overflows memory"))
                })?;
            let mut buf = Aligned::zeroed(n);
            let mut dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let ovshape = OvShape {
                rank: dims.len() as i64,
                dims: dims.as_mut_ptr(),
            };
            let ty = ov_type(dtype).unwrap_or(0);
            let ptr = buf.ptr();
            let mut h: P = std::ptr::null_mut();
            // SAFETY: `buf` holds `n` writable bytes, alive and unmoved until infer returns.
            api.call(
                || format!("creating output tensor {i}"),
                || unsafe { (api.ov_tensor_create_from_host_ptr)(ty, ovshape, ptr, &mut h) },
            )?;
            let h = OvTensor(api, h);
            // SAFETY: live request and tensor.
            api.call(
                || format!("setting output {i}"),
                || unsafe { (api.ov_infer_request_set_output_tensor_by_index)(req, i, h.1) },
            )?;
            held.push(h);
            in_place.push(Some((dtype, shape.clone(), buf)));
        }
        // SAFETY: a live request whose inputs (and fixed outputs) are set.
        api.call(
            || "inference".into(),
            || unsafe { (api.ov_infer_request_infer)(req) },
        )?;
        let mut outs = Vec::with_capacity(self.outputs.len());
        for (i, placed) in in_place.into_iter().enumerate() {
            if let Some((dtype, shape, buf)) = placed {
                outs.push(Value::Tensor(Tensor::from_bytes(
                    dtype,
                    shape,
                    Bytes::from_owner(buf),
                )?));
                continue;
            }
            outs.push(Value::Tensor(read_output(api, req, i)?));
        }
        drop(held);
        drop(copies);
        Ok(outs)
    }
}

/// Where the request's input (or output) `i` keeps its data (NULL while it has none).
fn tensor_data(api: &Api, req: P, i: usize, input: bool) -> Result<*mut c_void> {
    let mut h: P = std::ptr::null_mut();
    let get = if input {
        api.ov_infer_request_get_input_tensor_by_index
    } else {
        api.ov_infer_request_get_output_tensor_by_index
    };
    // SAFETY: live request, valid out-pointer.
    api.call(
        || format!("reading the request's tensor {i}"),
        || unsafe { get(req, i, &mut h) },
    )?;
    let h = OvTensor(api, h);
    let mut data = std::ptr::null_mut::<c_void>();
    // SAFETY: a live tensor and a valid out-pointer. An empty dynamic tensor may have no
    // data: that is a NULL, not an error.
    let _ = api.call(
        || format!("tensor {i}'s data"),
        || unsafe { (api.ov_tensor_data)(h.1, &mut data) },
    );
    Ok(data)
}

/// Copies output `i` out of the request (an output whose shape is known only after a run).
fn read_output(api: &Api, req: P, i: usize) -> Result<Tensor> {
    let mut h: P = std::ptr::null_mut();
    // SAFETY: live request, valid out-pointer.
    api.call(
        || format!("reading output {i}"),
        || unsafe { (api.ov_infer_request_get_output_tensor_by_index)(req, i, &mut h) },
    )?;
    let h = OvTensor(api, h);
    let (mut ty, mut n, mut data) = (0, 0usize, std::ptr::null_mut::<c_void>());
    let mut shape = OvShape {
        rank: 0,
        dims: std::ptr::null_mut(),
    };
    // SAFETY: a live tensor and valid out-pointers.
    api.call(
        || format!("output {i}'s type"),
        || unsafe { (api.ov_tensor_get_element_type)(h.1, &mut ty) },
    )?;
    // SAFETY: as above.
    api.call(
        || format!("output {i}'s size"),
        || unsafe { (api.ov_tensor_get_byte_size)(h.1, &mut n) },
    )?;
    // SAFETY: as above.
    api.call(
        || format!("output {i}'s data"),
        || unsafe { (api.ov_tensor_data)(h.1, &mut data) },
    )?;
    // SAFETY: as above; the shape is freed right after reading it.
    api.call(
        || format!("output {i}'s shape"),
        || unsafe { (api.ov_tensor_get_shape)(h.1, &mut shape) },
    )?;
    // SAFETY: filled by ov_tensor_get_shape.
    let dims = unsafe { shape_dims(&shape) };
    // SAFETY: as above; freed once.
    unsafe { (api.ov_shape_free)(&mut shape) };
    let dtype = from_ov_type(ty).ok_or_else(|| {
        Error::unsupported(format!(
            "OpenVINO returned element type {ty}, which xnpu has not"
        ))
    })?;
    let bytes = if n == 0 || data.is_null() {
        &[][..]
    } else {
        // SAFETY: `n` bytes of the request's output, valid until the next infer.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) }
    };
    Tensor::from_bytes(dtype, dims, Bytes::copy_from_slice(bytes))
}
