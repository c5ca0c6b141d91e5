//! xnpu-backend-qnn: Qualcomm Hexagon NPUs through QNN (AI Engine Direct), whose backend
//! libraries are opened at run time with `libloading` (no build dependency, no SDK). On
//! x86_64 the HTP library of the `onnxruntime-qnn` wheel is Qualcomm's HTP simulator, which
//! executes QNN graphs on the CPU: it is offered as `qnn:htp-sim`, never as an NPU.
//!
//! Status (issue 7, in progress): the library is found, its interface providers read and an
//! unknown core API major refused; backend, device (with an HTP SoC model, so that fp32
//! computes as fp16 like the device) and context are created; graphs of elementwise ops,
//! activations and MatMul are built node by node, each node validated by QNN before it is
//! added, finalized and executed. Still to come: the rest of the op mapping (Conv in NHWC,
//! pooling, normalisations, softmax, reshapes), the capability table and `Backend` impl,
//! quantised tensors, context-binary caching, device listing and the conformance line.

pub mod ffi;

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use xnpu_core::{DType, Error, ErrorKind, Result};

use ffi::{Handle, Interface, QnnError};

/// The core API major version this code's structs are written for.
pub const CORE_API_MAJOR: u32 = 2;

/// Where `libQnnHtp.so` was looked for, in order: `XNPU_QNN_LIB_DIR`, the active venv's and
/// the project's `.venv` `onnxruntime_qnn` package, `QNN_SDK_ROOT/lib/<target>`.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("XNPU_QNN_LIB_DIR") {
        dirs.push(PathBuf::from(d));
    }
    for site in xnpu_core::locate::site_packages() {
        dirs.push(site.join("onnxruntime_qnn"));
    }
    if let Some(sdk) = std::env::var_os("QNN_SDK_ROOT") {
        let target = if cfg!(target_arch = "aarch64") {
            "aarch64-oe-linux-gcc11.2"
        } else {
            "x86_64-linux-clang"
        };
        dirs.push(PathBuf::from(sdk).join("lib").join(target));
    }
    dirs
}

/// Finds a QNN backend library (`libQnnHtp.so`, ...) in [`candidates`]. It must be opened
/// where it lies: the wheel's libraries find their bundled C++ runtime through `$ORIGIN`.
pub fn find_library(name: &str) -> Result<PathBuf> {
    let dirs = candidates();
    for d in &dirs {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    let tried: Vec<String> = dirs
        .iter()
        .map(|d| d.join(name).display().to_string())
        .collect();
    Err(Error::unsupported(format!(
        "QNN's {name} was not found (set XNPU_QNN_LIB_DIR, or pip install onnxruntime-qnn); \
         tried: {}",
        if tried.is_empty() {
            "nowhere (no venv, no XNPU_QNN_LIB_DIR, no QNN_SDK_ROOT)".to_string()
        } else {
            tried.join(", ")
        }
    )))
}

/// A provider a QNN library offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    pub backend_id: u32,
    pub name: String,
    pub core: ffi::Version,
    pub backend: ffi::Version,
}

/// Whether this code can drive a provider of this core API version.
pub fn check_core_version(name: &str, v: ffi::Version) -> Result<()> {
    if v.major != CORE_API_MAJOR {
        return Err(Error::unsupported(format!(
            "QNN provider {name} has core API {}.{}.{}; xnpu knows major {CORE_API_MAJOR} only",
            v.major, v.minor, v.patch
        )));
    }
    Ok(())
}

/// An opened QNN backend library and the provider chosen from it.
pub struct QnnLibrary {
    path: PathBuf,
    providers: Vec<Provider>,
    iface: *const Interface,
    _lib: libloading::Library,
}

// SAFETY: the interface table is immutable data of the loaded library, valid while `_lib`
// is; QNN's entry points are thread-safe for distinct handles.
unsafe impl Send for QnnLibrary {}
// SAFETY: as above.
unsafe impl Sync for QnnLibrary {}

type GetProviders = unsafe extern "C" fn(*mut *const *const Interface, *mut u32) -> QnnError;

impl QnnLibrary {
    /// Opens a QNN backend library and picks its first provider whose core API major this
    /// code knows; refuses the library (saying which versions it offers) otherwise.
    pub fn open(path: &Path) -> Result<QnnLibrary> {
        // A truncated or non-ELF file would kill the process inside the dynamic loader.
        xnpu_core::fs::check_shared_library(path, "QNN library")?;
        // SAFETY: loading QNN's library runs its initialisers, as any use of it does.
        let lib = stdout::caught(|| unsafe { libloading::Library::new(path) })
            .map_err(|e| Error::unsupported(format!("{} cannot be loaded: {e}", path.display())))?;
        // SAFETY: the symbol has QnnInterface_getProviders' signature.
        let get: GetProviders = unsafe { lib.get::<GetProviders>(b"QnnInterface_getProviders\0") }
            .map(|s| *s)
            .map_err(|_| {
                Error::unsupported(format!(
                    "{} has no QnnInterface_getProviders: not a QNN backend library",
                    path.display()
                ))
            })?;
        let mut list: *const *const Interface = std::ptr::null();
        let mut n = 0u32;
        // SAFETY: valid out-pointers; the list stays valid while the library is loaded.
        let err = unsafe { get(&mut list, &mut n) };
        if err != 0 || list.is_null() || n == 0 {
            return Err(Error::unsupported(format!(
                "{}: QnnInterface_getProviders returned error {} and {n} providers",
                path.display(),
                err & 0xffff
            )));
        }
        let mut providers = Vec::new();
        let mut chosen = None;
        for i in 0..n as usize {
            // SAFETY: `n` provider pointers.
            let p = unsafe { *list.add(i) };
            if p.is_null() {
                continue;
            }
            // SAFETY: a provider of the loaded library; only its header is read here.
            let it = unsafe { &*p };
            let name = if it.provider_name.is_null() {
                String::new()
            } else {
                // SAFETY: a NUL-terminated string of the library.
                unsafe { CStr::from_ptr(it.provider_name) }
                    .to_string_lossy()
                    .into_owned()
            };
            if chosen.is_none() && it.api_version.core.major == CORE_API_MAJOR {
                chosen = Some(p);
            }
            providers.push(Provider {
                backend_id: it.backend_id,
                name,
                core: it.api_version.core,
                backend: it.api_version.backend,
            });
        }
        let Some(iface) = chosen else {
            let offered: Vec<String> = providers
                .iter()
                .map(|p| {
                    format!(
                        "{} (core API {}.{}.{})",
                        p.name, p.core.major, p.core.minor, p.core.patch
                    )
                })
                .collect();
            return Err(Error::unsupported(format!(
                "{}: no provider with core API major {CORE_API_MAJOR}, which is what xnpu knows \
                 (offered: {})",
                path.display(),
                offered.join(", ")
            )));
        };
        Ok(QnnLibrary {
            path: path.to_path_buf(),
            providers,
            iface,
            _lib: lib,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    fn table(&self) -> &ffi::Table {
        // SAFETY: `iface` points into the loaded library, alive as long as `self`.
        unsafe { &(*self.iface).table }
    }

    /// The chosen provider's backend id (6 is HTP).
    pub fn backend_id(&self) -> u32 {
        // SAFETY: as in `table`.
        unsafe { (*self.iface).backend_id }
    }

    /// The backend's build id (`v2.51.0.260929181845`).
    pub fn build_id(&self) -> Result<String> {
        let f = slot(self.table().backend_get_build_id, "backendGetBuildId")?;
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: a valid out-pointer; the string belongs to the library.
        self.check(unsafe { f(&mut s) }, "backendGetBuildId")?;
        Ok(if s.is_null() {
            String::new()
        } else {
            // SAFETY: NUL-terminated, owned by the library.
            unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
        })
    }

    /// `Ok` for success; else QNN's code, its message, and what the log said just before,
    /// as a failure ([`ErrorKind::Compute`]).
    pub fn check(&self, err: QnnError, what: &str) -> Result<()> {
        self.check_as(err, what, ErrorKind::Compute)
    }

    /// As [`QnnLibrary::check`], saying whether a failure is QNN refusing the work
    /// ([`ErrorKind::Unsupported`]: validation, graph preparation) or failing at it.
    pub fn check_as(&self, err: QnnError, what: &str, kind: ErrorKind) -> Result<()> {
        if err == 0 {
            return Ok(());
        }
        let code = err & 0xffff;
        let mut text = String::new();
        if let Some(f) = self.table().error_get_message {
            let mut s: *const c_char = std::ptr::null();
            // SAFETY: a valid out-pointer; the message belongs to the library.
            if unsafe { f(err, &mut s) } == 0 && !s.is_null() {
                // SAFETY: NUL-terminated, owned by the library.
                text = unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned();
            }
        }
        let log = take_log();
        if !log.is_empty() {
            let sep = if text.is_empty() { "" } else { " " };
            text.push_str(&format!("{sep}(QNN log: {})", log.join("; ")));
        }
        Err(Error::backend("QNN", what, Some(code as i64), text, kind))
    }
}

/// A slot of the interface table, or an error naming it when the library left it NULL.
fn slot<F>(f: Option<F>, name: &str) -> Result<F> {
    f.ok_or_else(|| {
        Error::unsupported(format!(
            "this QNN library's interface has no {name} (a NULL slot)"
        ))
    })
}

// QNN's log lines at WARN and above, kept for the next error message (the backend may log
// from several threads).
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn take_log() -> Vec<String> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|p| p.into_inner()))
}

extern "C" {
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ap: *mut c_void) -> i32;
}

unsafe extern "C" fn log_callback(fmt: *const c_char, level: u32, _ts: u64, args: *mut c_void) {
    if fmt.is_null() || level > LOG_WARN {
        return;
    }
    let mut buf = [0 as c_char; 1024];
    // SAFETY: QNN passes a printf format and its va_list; the buffer bounds the output.
    unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), fmt, args) };
    // SAFETY: vsnprintf NUL-terminates within the buffer.
    let line = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .trim()
        .to_string();
    let mut log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    if log.len() >= 16 {
        log.remove(0);
    }
    log.push(line);
}

const LOG_WARN: u32 = 2;

/// The SoC model the first HTP device of this process was created with.
static PROCESS_SOC: Mutex<Option<u32>> = Mutex::new(None);

/// A QNN backend instance on one device: log, backend and device handles.
pub struct Qnn {
    lib: Arc<QnnLibrary>,
    log: Handle,
    backend: Handle,
    device: Handle,
    /// The HTP SoC model given to the device (0: none).
    soc: u32,
}

// SAFETY: QNN handles may be used from any thread; this type only frees them once.
unsafe impl Send for Qnn {}
// SAFETY: as above.
unsafe impl Sync for Qnn {}

impl Drop for Qnn {
    fn drop(&mut self) {
        let t = self.lib.table();
        // SAFETY: handles created by this instance, freed once in reverse order.
        unsafe {
            if let (Some(f), false) = (t.device_free, self.device.is_null()) {
                f(self.device);
            }
            if let (Some(f), false) = (t.backend_free, self.backend.is_null()) {
                f(self.backend);
            }
            if let (Some(f), false) = (t.log_free, self.log.is_null()) {
                f(self.log);
            }
        }
    }
}

/// The Snapdragon SoC the HTP simulator models by default (SM8750, HTP v79): with a SoC set
/// it computes fp32 graphs in fp16 as the device does; without one it runs true fp32 and
/// lacks some kernels (Gelu, RmsNorm).
pub const DEFAULT_SIM_SOC: u32 = 69;

impl Qnn {
    /// Creates the backend and its device, with `soc` as the HTP SoC model (0: none).
    pub fn new(lib: Arc<QnnLibrary>, soc: u32) -> Result<Qnn> {
        // The HTP library keeps the first device's SoC for the whole process (measured on
        // the 2.51 simulator: a device without a SoC created after one with SoC 69 still
        // computes in fp16, and devices with different SoCs alive at once crashed it).
        if lib.backend_id() == 6 {
            let mut first = PROCESS_SOC.lock().unwrap_or_else(|p| p.into_inner());
            match *first {
                Some(s) if s != soc => {
                    return Err(Error::unsupported(format!(
                        "QNN's HTP library keeps one SoC model per process: this process \
                         already uses SoC {s}, so SoC {soc} cannot be set (use one SoC per \
                         process, e.g. XNPU_QNN_SOC)"
                    )))
                }
                _ => *first = Some(soc),
            }
        }
        let t = lib.table();
        let mut q = Qnn {
            lib: lib.clone(),
            log: std::ptr::null_mut(),
            backend: std::ptr::null_mut(),
            device: std::ptr::null_mut(),
            soc,
        };
        if let Some(f) = t.log_create {
            // SAFETY: a callback of the declared type and a valid out-pointer.
            lib.check(
                unsafe { f(Some(log_callback), LOG_WARN, &mut q.log) },
                "logCreate",
            )?;
        }
        let f = slot(t.backend_create, "backendCreate")?;
        // SAFETY: a live log (or NULL), no configs, a valid out-pointer.
        lib.check(
            unsafe { f(q.log, std::ptr::null(), &mut q.backend) },
            "backendCreate",
        )?;
        let f = slot(t.device_create, "deviceCreate")?;
        let mut custom = ffi::HtpDeviceCustomConfig {
            option: ffi::HTP_DEVICE_CONFIG_SOC,
            _pad: 0,
            value: [soc, 0],
            _rest: [0; 4],
        };
        let config = ffi::DeviceConfig {
            option: 0,
            custom: (&mut custom as *mut ffi::HtpDeviceCustomConfig).cast(),
        };
        let configs: [*const ffi::DeviceConfig; 2] = [&config, std::ptr::null()];
        let list = if soc != 0 && lib.backend_id() == 6 {
            configs.as_ptr()
        } else {
            std::ptr::null()
        };
        // SAFETY: a NULL-terminated config list (or NULL) alive for the call.
        lib.check(unsafe { f(q.log, list, &mut q.device) }, "deviceCreate")?;
        Ok(q)
    }

    pub fn library(&self) -> &QnnLibrary {
        &self.lib
    }

    pub fn soc(&self) -> u32 {
        self.soc
    }

    /// The ops the backend reports (`package.name`).
    pub fn supported_operations(&self) -> Result<Vec<String>> {
        let f = slot(
            self.lib.table().backend_get_supported_operations,
            "backendGetSupportedOperations",
        )?;
        let mut n = 0u32;
        let mut list: *const ffi::OperationName = std::ptr::null();
        // SAFETY: a live backend and valid out-pointers; the list belongs to the backend.
        self.lib.check(
            unsafe { f(self.backend, &mut n, &mut list) },
            "backendGetSupportedOperations",
        )?;
        let cstr = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: NUL-terminated strings owned by the backend.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        Ok((0..n as usize)
            .map(|i| {
                // SAFETY: `n` entries.
                let o = unsafe { &*list.add(i) };
                format!("{}.{}", cstr(o.package), cstr(o.name))
            })
            .collect())
    }
}

/// QNN's data type for a dtype, where HTP has one.
pub fn qnn_dtype(d: DType) -> Option<u32> {
    use ffi::dtype::*;
    Some(match d {
        DType::F32 => FLOAT_32,
        DType::F16 => FLOAT_16,
        DType::I8 => INT_8,
        DType::I16 => INT_16,
        DType::I32 => INT_32,
        DType::U8 => UINT_8,
        DType::U16 => UINT_16,
        DType::U32 => UINT_32,
        DType::Bool => BOOL_8,
        _ => return None,
    })
}

/// Keeps C strings alive for as long as QNN may read them.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn add(&mut self, s: &str) -> *const c_char {
        let c = CString::new(s.replace('\0', "_")).unwrap_or_default();
        let p = c.as_ptr();
        self.0.push(c);
        p
    }
}

pub mod graph;
pub mod lower;
pub mod qdq;

pub use backend::QnnBackend;
pub use provider::{soc_from_env, QnnProvider, PROVIDER};

mod backend;
mod provider;
mod stdout;
