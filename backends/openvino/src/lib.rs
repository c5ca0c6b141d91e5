//! xnpu-backend-openvino: Intel AI Boost NPUs, and OpenVINO's own CPU device, through
//! OpenVINO's C library (`libopenvino_c.so`), opened at run time with `libloading`; OpenVINO
//! is never a build dependency.
//!
//! Status (issue 6, in progress): the library is found and opened, its devices listed, and
//! a partition compiled from ONNX bytes and run with host-pointer input tensors. The
//! capability table is provisional (every op but control flow, on numeric tensors); proving
//! it against OpenVINO, the compile cache, static reshapes for the NPU and the plugin build
//! are still to come.

mod ffi;

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_graph::backend::{
    Backend, CapabilityTable, DeviceKind, Executable, NodeContext, OpCapability, Support,
};
use xnpu_graph::{Graph, Model};

use ffi::{Api, OvDevices, OvShape, P};

/// Where the library was looked for, when it was not found.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        venvs.push(PathBuf::from(v));
    }
    // A `.venv` above the executable (target/<profile>/[deps/]exe in a checkout).
    if let Ok(exe) = std::env::current_exe() {
        for a in exe.ancestors().skip(1).take(5) {
            venvs.push(a.join(".venv"));
        }
    }
    for v in venvs {
        if let Ok(rd) = std::fs::read_dir(v.join("lib")) {
            for e in rd.flatten() {
                dirs.push(e.path().join("site-packages/openvino/libs"));
            }
        }
    }
    for d in ["/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Finds `libopenvino_c.so*`: `XNPU_OPENVINO_LIB`, an installed `openvino` Python package
/// (the active or the project's virtual environment), the system library folders. The
/// error lists every place tried.
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
        // SAFETY: created by ov_core_create, freed once.
        unsafe { (self.api.ov_core_free)(self.core) };
    }
}

/// One device OpenVINO reports.
#[derive(Clone, Debug, PartialEq)]
pub struct OvDevice {
    /// OpenVINO's name (`CPU`, `GPU`, `NPU`).
    pub name: String,
    pub full_name: String,
}

impl OpenVino {
    /// Opens the library found by [`find_library`] and creates a core.
    pub fn open() -> Result<OpenVino> {
        OpenVino::open_at(&find_library()?)
    }

    pub fn open_at(path: &Path) -> Result<OpenVino> {
        let api = Arc::new(Api::open(path)?);
        let mut core: P = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        api.check("ov_core_create", unsafe { (api.ov_core_create)(&mut core) })?;
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
        let mut list = OvDevices {
            devices: std::ptr::null_mut(),
            size: 0,
        };
        let api = &self.api;
        // SAFETY: a live core and a valid out-struct.
        api.check("ov_core_get_available_devices", unsafe {
            (api.ov_core_get_available_devices)(self.core, &mut list)
        })?;
        let mut names = Vec::with_capacity(list.size);
        for i in 0..list.size {
            // SAFETY: `size` NUL-terminated strings owned by `list`.
            let s = unsafe { CStr::from_ptr(*list.devices.add(i)) };
            names.push(s.to_string_lossy().into_owned());
        }
        // SAFETY: `list` came from ov_core_get_available_devices.
        unsafe { (api.ov_available_devices_free)(&mut list) };
        Ok(names
            .into_iter()
            .map(|name| OvDevice {
                full_name: self.property(&name, "FULL_DEVICE_NAME").unwrap_or_default(),
                name,
            })
            .collect())
    }

    /// A device property as a string.
    pub fn property(&self, device: &str, key: &str) -> Result<String> {
        let d = CString::new(device).map_err(|_| Error::invalid_input("a NUL in a device name"))?;
        let k = CString::new(key).map_err(|_| Error::invalid_input("a NUL in a property key"))?;
        let mut v: *mut c_char = std::ptr::null_mut();
        let api = &self.api;
        // SAFETY: a live core, NUL-terminated strings and a valid out-pointer.
        api.check("ov_core_get_property", unsafe {
            (api.ov_core_get_property)(self.core, d.as_ptr(), k.as_ptr(), &mut v)
        })?;
        // SAFETY: a new[] string from the library, freed with ov_free.
        let s = unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned();
        // SAFETY: as above.
        unsafe { (api.ov_free)(v) };
        Ok(s)
    }
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

/// A backend on one OpenVINO device (`CPU` here; `NPU` on Core Ultra machines).
pub struct OpenVinoBackend {
    ov: Arc<OpenVino>,
    device: String,
    name: String,
    table: CapabilityTable,
}

impl OpenVinoBackend {
    /// A backend on `device` (as OpenVINO names it), which must be one it lists.
    pub fn new(ov: Arc<OpenVino>, device: &str) -> Result<OpenVinoBackend> {
        let devices = ov.devices()?;
        if !devices.iter().any(|d| d.name == device) {
            let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
            return Err(Error::unsupported(format!(
                "OpenVINO {} at {} has no device {device} (it lists: {})",
                ov.version(),
                ov.library().display(),
                names.join(", ")
            )));
        }
        let kind = match device {
            "NPU" => DeviceKind::Npu,
            "GPU" => DeviceKind::Gpu,
            _ => DeviceKind::Cpu,
        };
        let name = format!("openvino:{}", device.to_ascii_lowercase());
        // Provisional: every op but control flow, on non-string tensors; the NPU wants
        // static shapes.
        let table = CapabilityTable {
            name: name.clone(),
            kind,
            ops: [("*".to_string(), OpCapability::default())]
                .into_iter()
                .collect(),
            dtypes: None,
            refuse_dtypes: vec!["string".into()],
            max_rank: None,
            static_shapes: kind == DeviceKind::Npu,
            control_flow: false,
            default_cost: 0.5,
        };
        Ok(OpenVinoBackend {
            ov,
            device: device.to_string(),
            name,
            table,
        })
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
        self.table.check(cx)
    }
    fn needs_static_shapes(&self) -> bool {
        self.table.static_shapes
    }
    fn capabilities(&self) -> Option<&CapabilityTable> {
        Some(&self.table)
    }

    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        let api = &self.ov.api;
        let onnx = xnpu_graph::onnx::to_bytes(&Model {
            name: partition.name.clone(),
            graph: partition.clone(),
            ..Default::default()
        })?;
        let mut model: P = std::ptr::null_mut();
        // SAFETY: a live core; ONNX bytes copied by OpenVINO during the call; no weights.
        api.check("reading the partition", unsafe {
            (api.ov_core_read_model_from_memory_buffer)(
                self.ov.core,
                onnx.as_ptr().cast(),
                onnx.len(),
                std::ptr::null_mut(),
                &mut model,
            )
        })?;
        let dev = CString::new(self.device.as_str()).unwrap_or_default();
        let mut cm: P = std::ptr::null_mut();
        // f32 unless asked otherwise: OpenVINO's CPU device computes in bf16 by default on
        // CPUs with AVX-512 BF16 (measured on this machine: 4e-3 relative error on the demo
        // model; the reference notes were taken on an AVX2-only CPU, where it stays f32).
        let (key, value) = (c"INFERENCE_PRECISION_HINT", c"f32");
        // SAFETY: live core and model; one key/value pair of NUL-terminated strings
        // (property_args_size counts arguments: 2).
        let st = unsafe {
            (api.ov_core_compile_model)(
                self.ov.core,
                model,
                dev.as_ptr(),
                2,
                &mut cm,
                key.as_ptr(),
                value.as_ptr(),
            )
        };
        // SAFETY: the model is not needed once compiled (or when compiling failed).
        unsafe { (api.ov_model_free)(model) };
        api.check(&format!("compiling for {}", self.device), st)?;
        let mut n_out = 0usize;
        let mut req: P = std::ptr::null_mut();
        // SAFETY: a live compiled model and valid out-pointers.
        let r = api
            .check("ov_compiled_model_outputs_size", unsafe {
                (api.ov_compiled_model_outputs_size)(cm, &mut n_out)
            })
            .and_then(|_| {
                api.check("creating an infer request", unsafe {
                    (api.ov_compiled_model_create_infer_request)(cm, &mut req)
                })
            });
        let exe = OvExecutable {
            ov: self.ov.clone(),
            compiled: cm,
            request: Mutex::new(req),
            n_outputs: n_out,
        };
        r?;
        Ok(Box::new(exe))
    }
}

struct OvExecutable {
    ov: Arc<OpenVino>,
    compiled: P,
    /// One infer request; requests are not shared between threads.
    request: Mutex<P>,
    n_outputs: usize,
}

// SAFETY: the compiled model is thread-safe; the request is only used under the mutex.
unsafe impl Send for OvExecutable {}
// SAFETY: as above.
unsafe impl Sync for OvExecutable {}

impl Drop for OvExecutable {
    fn drop(&mut self) {
        let api = &self.ov.api;
        if let Ok(r) = self.request.get_mut() {
            if !r.is_null() {
                // SAFETY: created by create_infer_request, freed once.
                unsafe { (api.ov_infer_request_free)(*r) };
            }
        }
        // SAFETY: created by compile_model, freed once.
        unsafe { (api.ov_compiled_model_free)(self.compiled) };
    }
}

/// Frees an ov_tensor_t when dropped.
struct OvTensor<'a>(&'a Api, P);

impl Drop for OvTensor<'_> {
    fn drop(&mut self) {
        // SAFETY: a tensor handle this code created or received, freed once.
        unsafe { (self.0.ov_tensor_free)(self.1) };
    }
}

impl Executable for OvExecutable {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        let api = &self.ov.api;
        let req = *self
            .request
            .lock()
            .map_err(|_| Error::compute("a previous run panicked"))?;
        // Inputs: host-pointer tensors over our buffers (no copy), kept alive until infer.
        let mut held = Vec::with_capacity(inputs.len());
        let mut aligned: Vec<Vec<u64>> = Vec::new();
        for (i, v) in inputs.iter().enumerate() {
            let t = v.as_tensor()?;
            let ty = ov_type(t.dtype()).ok_or_else(|| {
                Error::unsupported(format!("OpenVINO takes no {} tensors", t.dtype()))
            })?;
            let mut dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            let bytes = t.raw_bytes();
            let mut ptr = bytes.as_ptr() as *mut c_void;
            if (ptr as usize) % t.dtype().size().max(1) != 0 {
                // Misaligned (a memory-mapped constant): copy into an aligned buffer.
                let mut buf = vec![0u64; bytes.len().div_ceil(8)];
                let dst: &mut [u8] = &mut bytemuck::cast_slice_mut(&mut buf)[..bytes.len()];
                dst.copy_from_slice(bytes);
                ptr = buf.as_mut_ptr().cast();
                aligned.push(buf);
            }
            let shape = OvShape {
                rank: dims.len() as i64,
                dims: dims.as_mut_ptr(),
            };
            let mut h: P = std::ptr::null_mut();
            // SAFETY: `ptr` points to the tensor's bytes, alive and unmoved until this
            // function returns (after infer); OpenVINO only reads inputs; the shape is copied.
            api.check("creating an input tensor", unsafe {
                (api.ov_tensor_create_from_host_ptr)(ty, shape, ptr, &mut h)
            })?;
            let h = OvTensor(api, h);
            // SAFETY: live request and tensor.
            api.check(&format!("setting input {i}"), unsafe {
                (api.ov_infer_request_set_input_tensor_by_index)(req, i, h.1)
            })?;
            held.push(h);
        }
        // SAFETY: a live request whose inputs are set.
        api.check("inference", unsafe { (api.ov_infer_request_infer)(req) })?;
        let mut outs = Vec::with_capacity(self.n_outputs);
        for i in 0..self.n_outputs {
            let mut h: P = std::ptr::null_mut();
            // SAFETY: live request, valid out-pointer.
            api.check(&format!("reading output {i}"), unsafe {
                (api.ov_infer_request_get_output_tensor_by_index)(req, i, &mut h)
            })?;
            let h = OvTensor(api, h);
            let (mut ty, mut n, mut data) = (0, 0usize, std::ptr::null_mut::<c_void>());
            let mut shape = OvShape {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            // SAFETY: a live tensor and valid out-pointers; the shape is freed below.
            unsafe {
                api.check(
                    "output type",
                    (api.ov_tensor_get_element_type)(h.1, &mut ty),
                )?;
                api.check("output size", (api.ov_tensor_get_byte_size)(h.1, &mut n))?;
                api.check("output data", (api.ov_tensor_data)(h.1, &mut data))?;
                api.check("output shape", (api.ov_tensor_get_shape)(h.1, &mut shape))?;
            }
            let dims: Vec<usize> = if shape.rank > 0 && !shape.dims.is_null() {
                // SAFETY: `rank` dims owned by `shape`.
                unsafe { std::slice::from_raw_parts(shape.dims, shape.rank as usize) }
                    .iter()
                    .map(|&d| d.max(0) as usize)
                    .collect()
            } else {
                Vec::new()
            };
            // SAFETY: filled by ov_tensor_get_shape.
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
            outs.push(Value::Tensor(Tensor::from_bytes(
                dtype,
                dims,
                xnpu_core::Bytes::copy_from_slice(bytes),
            )?));
        }
        drop(held);
        drop(aligned);
        Ok(outs)
    }
}
