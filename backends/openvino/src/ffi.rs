//! OpenVINO's C API (`libopenvino_c.so`), opened at run time: the structs shared with it
//! (layouts asserted below), the functions xnpu calls, the one gate every fallible call goes
//! through (for OpenVINO's error message), and the strings passed across. Signatures and
//! layouts are those of the 2026.4.1 headers (see `../shared/reference/openvino.md`);
//! element-type values are those of 2025.1 and later, so older libraries are refused.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

use xnpu_core::{Error, ErrorKind, Result};

pub type Status = c_int;
pub type P = *mut c_void;

/// `ov_shape_t` (`ov_shape.h`): a static shape.
#[repr(C)]
pub struct OvShape {
    pub rank: i64,
    pub dims: *mut i64,
}

/// `ov_available_devices_t` (`ov_core.h`): the device names a core lists.
#[repr(C)]
pub struct OvDevices {
    pub devices: *mut *mut c_char,
    pub size: usize,
}

/// `ov_property_t` (`ov_property.h`, 2026.4 and later): one key/value pair of
/// `ov_core_compile_model_props`. The header's `value` is a `const void*` (a string, or a
/// handle for GPU and encryption keys); xnpu only sends strings.
#[repr(C)]
pub struct OvProperty {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// `ov_version_t` (`ov_core.h`; the header's first field is `buildNumber`).
#[repr(C)]
pub struct OvVersion {
    pub build_number: *const c_char,
    pub description: *const c_char,
}

/// `ov_core_version_t` (`ov_core.h`): one plugin's name and version.
#[repr(C)]
pub struct OvCoreVersion {
    pub device_name: *const c_char,
    pub version: OvVersion,
}

/// `ov_core_version_list_t` (`ov_core.h`): what `ov_core_get_versions_by_device_name` fills.
#[repr(C)]
pub struct OvCoreVersionList {
    pub versions: *mut OvCoreVersion,
    pub size: usize,
}

// Layouts on x86_64 (LP64), as gcc lays out the C headers of the OpenVINO 2026.4.1 wheel
// (`openvino/include/openvino/c/`, measured with sizeof, _Alignof and offsetof):
// - ov_shape.h, `ov_shape_t { int64_t rank; int64_t* dims; }`: 16 bytes, align 8, dims at 8.
//   Passed by value to `ov_tensor_create_from_host_ptr`, so its size matters too.
// - ov_core.h, `ov_available_devices_t { char** devices; size_t size; }`: 16, align 8, size
//   at 8.
// - ov_property.h, `ov_property_t { const char* key; const void* value; }`: 16, align 8,
//   value at 8.
// - ov_core.h, `ov_version_t { const char* buildNumber; const char* description; }`: 16,
//   align 8, description at 8.
// - ov_core.h, `ov_core_version_t { const char* device_name; ov_version_t version; }`: 24,
//   align 8, version at 8; `ov_core_version_list_t { ov_core_version_t* versions; size_t
//   size; }`: 16, align 8, size at 8.
// - ov_common.h, `ov_status_e` and `ov_element_type_e` are C enums of 4 bytes (`c_int`).
// ov_shape_t, ov_available_devices_t, ov_version_t and the version list have the same fields
// in the earlier versions of these headers in openvinotoolkit/openvino
// (`src/bindings/c/include/`), so the 2025.x libraries agree; ov_property_t is new in 2026.4 and used only where
// `ov_core_compile_model_props` exists.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<OvShape>() == 16);
    assert!(align_of::<OvShape>() == 8);
    assert!(offset_of!(OvShape, rank) == 0);
    assert!(offset_of!(OvShape, dims) == 8);
    assert!(size_of::<OvDevices>() == 16);
    assert!(align_of::<OvDevices>() == 8);
    assert!(offset_of!(OvDevices, devices) == 0);
    assert!(offset_of!(OvDevices, size) == 8);
    assert!(size_of::<OvProperty>() == 16);
    assert!(align_of::<OvProperty>() == 8);
    assert!(offset_of!(OvProperty, key) == 0);
    assert!(offset_of!(OvProperty, value) == 8);
    assert!(size_of::<OvVersion>() == 16);
    assert!(align_of::<OvVersion>() == 8);
    assert!(offset_of!(OvVersion, build_number) == 0);
    assert!(offset_of!(OvVersion, description) == 8);
    assert!(size_of::<OvCoreVersion>() == 24);
    assert!(align_of::<OvCoreVersion>() == 8);
    assert!(offset_of!(OvCoreVersion, device_name) == 0);
    assert!(offset_of!(OvCoreVersion, version) == 8);
    assert!(size_of::<OvCoreVersionList>() == 16);
    assert!(align_of::<OvCoreVersionList>() == 8);
    assert!(offset_of!(OvCoreVersionList, versions) == 0);
    assert!(offset_of!(OvCoreVersionList, size) == 8);
    assert!(size_of::<Status>() == 4);
};

macro_rules! api {
    ($($name:ident : $ty:ty;)*) => {
        /// The functions of the C API that xnpu calls, each checked present at load.
        pub struct Api {
            $(pub $name: $ty,)*
            /// `ov_core_compile_model_props` (2026.4 and later only).
            pub compile_props: Option<CompileProps>,
            pub path: PathBuf,
            pub version: String,
            _lib: libloading::Library,
        }

        impl Api {
            fn resolve(lib: libloading::Library, path: &Path) -> Result<Api> {
                $(
                    // SAFETY: the symbol's type is the header's signature for that name.
                    let $name: $ty = unsafe {
                        lib.get::<$ty>(concat!(stringify!($name), "\0").as_bytes())
                    }
                    .map(|s| *s)
                    .map_err(|_| Error::unsupported(format!(
                        "{} has no {}: not an OpenVINO C library this backend can use",
                        path.display(),
                        stringify!($name)
                    )))?;
                )*
                // SAFETY: as above; absent before 2026.4, which is not an error.
                let compile_props = unsafe { lib.get::<CompileProps>(b"ov_core_compile_model_props\0") }
                    .ok()
                    .map(|s| *s);
                Ok(Api {
                    $($name,)*
                    compile_props,
                    path: path.to_path_buf(),
                    version: String::new(),
                    _lib: lib,
                })
            }
        }
    };
}

/// `ov_core_compile_model_props(core, model, device, n, props, &compiled)`.
pub type CompileProps =
    unsafe extern "C" fn(P, P, *const c_char, usize, *const OvProperty, *mut P) -> Status;

api! {
    ov_get_openvino_version: unsafe extern "C" fn(*mut OvVersion) -> Status;
    ov_version_free: unsafe extern "C" fn(*mut OvVersion);
    ov_core_create: unsafe extern "C" fn(*mut P) -> Status;
    ov_core_free: unsafe extern "C" fn(P);
    ov_core_get_available_devices: unsafe extern "C" fn(P, *mut OvDevices) -> Status;
    ov_available_devices_free: unsafe extern "C" fn(*mut OvDevices);
    ov_core_get_property: unsafe extern "C" fn(P, *const c_char, *const c_char, *mut *mut c_char) -> Status;
    // `ov_core_set_property(core, device, ...)`: the variadic part is read as ONE key/value
    // pair of C strings (`GET_PROPERTY_FROM_ARGS_LIST` is expanded once).
    ov_core_set_property: unsafe extern "C" fn(P, *const c_char, ...) -> Status;
    ov_core_get_versions_by_device_name: unsafe extern "C" fn(P, *const c_char, *mut OvCoreVersionList) -> Status;
    ov_core_versions_free: unsafe extern "C" fn(*mut OvCoreVersionList);
    // `ov_core_import_model(core, content, content_size, device_name, &compiled_model)`.
    ov_core_import_model: unsafe extern "C" fn(P, *const c_char, usize, *const c_char, *mut P) -> Status;
    // `ov_compiled_model_export_model(compiled_model, export_model_path)`.
    ov_compiled_model_export_model: unsafe extern "C" fn(P, *const c_char) -> Status;
    ov_core_read_model_from_memory_buffer: unsafe extern "C" fn(P, *const c_char, usize, P, *mut P) -> Status;
    ov_core_read_model: unsafe extern "C" fn(P, *const c_char, *const c_char, *mut P) -> Status;
    ov_compiled_model_get_property: unsafe extern "C" fn(P, *const c_char, *mut *mut c_char) -> Status;
    ov_compiled_model_output_by_index: unsafe extern "C" fn(P, usize, *mut P) -> Status;
    ov_compiled_model_inputs_size: unsafe extern "C" fn(P, *mut usize) -> Status;
    ov_compiled_model_input_by_index: unsafe extern "C" fn(P, usize, *mut P) -> Status;
    ov_port_get_any_name: unsafe extern "C" fn(P, *mut *mut c_char) -> Status;
    ov_const_port_get_shape: unsafe extern "C" fn(P, *mut OvShape) -> Status;
    ov_port_get_element_type: unsafe extern "C" fn(P, *mut c_int) -> Status;
    ov_output_const_port_free: unsafe extern "C" fn(P);
    ov_infer_request_set_output_tensor_by_index: unsafe extern "C" fn(P, usize, P) -> Status;
    ov_model_free: unsafe extern "C" fn(P);
    ov_core_compile_model: unsafe extern "C" fn(P, P, *const c_char, usize, *mut P, ...) -> Status;
    ov_compiled_model_free: unsafe extern "C" fn(P);
    ov_compiled_model_create_infer_request: unsafe extern "C" fn(P, *mut P) -> Status;
    ov_compiled_model_outputs_size: unsafe extern "C" fn(P, *mut usize) -> Status;
    ov_infer_request_free: unsafe extern "C" fn(P);
    ov_infer_request_set_input_tensor_by_index: unsafe extern "C" fn(P, usize, P) -> Status;
    ov_infer_request_infer: unsafe extern "C" fn(P) -> Status;
    ov_infer_request_get_output_tensor_by_index: unsafe extern "C" fn(P, usize, *mut P) -> Status;
    ov_infer_request_get_input_tensor_by_index: unsafe extern "C" fn(P, usize, *mut P) -> Status;
    ov_tensor_create_from_host_ptr: unsafe extern "C" fn(c_int, OvShape, *mut c_void, *mut P) -> Status;
    ov_tensor_data: unsafe extern "C" fn(P, *mut *mut c_void) -> Status;
    ov_tensor_get_shape: unsafe extern "C" fn(P, *mut OvShape) -> Status;
    ov_shape_free: unsafe extern "C" fn(*mut OvShape) -> Status;
    ov_tensor_get_element_type: unsafe extern "C" fn(P, *mut c_int) -> Status;
    ov_tensor_get_byte_size: unsafe extern "C" fn(P, *mut usize) -> Status;
    ov_tensor_free: unsafe extern "C" fn(P);
    ov_get_last_err_msg: unsafe extern "C" fn() -> *const c_char;
    ov_get_error_info: unsafe extern "C" fn(Status) -> *const c_char;
    ov_free: unsafe extern "C" fn(*const c_char);
}

impl Api {
    /// Opens the library (canonicalised first: the wheel's library finds its siblings
    /// through `$ORIGIN`) and checks its version (2025.1 or later).
    pub fn open(path: &Path) -> Result<Api> {
        let path = std::fs::canonicalize(path)
            .map_err(|e| Error::unsupported(format!("{}: {e}", path.display())))?;
        // A truncated or non-ELF file would kill the process inside the dynamic loader.
        xnpu_core::fs::check_shared_library(&path, "OpenVINO library")?;
        // SAFETY: loading OpenVINO's C library runs its initialisers, as any use of it does.
        let lib = unsafe { libloading::Library::new(&path) }
            .map_err(|e| Error::unsupported(format!("{} cannot be loaded: {e}", path.display())))?;
        let mut api = Api::resolve(lib, &path)?;
        let mut v = OvVersion {
            build_number: std::ptr::null(),
            description: std::ptr::null(),
        };
        // SAFETY: a valid out-struct; freed right after.
        let st = unsafe { (api.ov_get_openvino_version)(&mut v) };
        if st != 0 || v.build_number.is_null() {
            return Err(Error::unsupported(format!(
                "{}: ov_get_openvino_version failed ({st})",
                path.display()
            )));
        }
        // SAFETY: a NUL-terminated string owned by `v`.
        api.version = unsafe { CStr::from_ptr(v.build_number) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: `v` came from ov_get_openvino_version.
        unsafe { (api.ov_version_free)(&mut v) };
        let mut it = api
            .version
            .split(['.', '-'])
            .map(|x| x.parse::<u32>().unwrap_or(0));
        let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        if (major, minor) < (2025, 1) {
            return Err(Error::unsupported(format!(
                "{} is OpenVINO {}; xnpu needs 2025.1 or later (its element-type numbering)",
                path.display(),
                api.version
            )));
        }
        Ok(api)
    }

    /// Runs one fallible call of the library and, when it fails, reads OpenVINO's last-error
    /// message before any other call can replace it. OpenVINO keeps that message in one
    /// process-wide string (set when a call throws, never cleared on success), so every
    /// fallible call in this process goes through here, one at a time.
    pub fn call(&self, what: impl FnOnce() -> String, f: impl FnOnce() -> Status) -> Result<()> {
        let _serial = ERRORS.lock().unwrap_or_else(|p| p.into_inner());
        let status = f();
        if status == 0 {
            return Ok(());
        }
        let msg = if status == GENERAL_ERROR {
            // SAFETY: returns a new[] copy or NULL; freed with ov_free.
            let m = unsafe { (self.ov_get_last_err_msg)() };
            if m.is_null() {
                String::new()
            } else {
                // SAFETY: NUL-terminated, owned until ov_free below.
                let text = unsafe { CStr::from_ptr(m) }
                    .to_string_lossy()
                    .trim()
                    .to_string();
                // SAFETY: allocated by the library for us.
                unsafe { (self.ov_free)(m) };
                text
            }
        } else {
            // Statuses returned before anything throws leave a stale message: not read.
            String::new()
        };
        drop(_serial);
        // SAFETY: ov_get_error_info returns a static string (not freed).
        let info = unsafe { (self.ov_get_error_info)(status) };
        let info = if info.is_null() {
            String::new()
        } else {
            // SAFETY: static NUL-terminated string.
            unsafe { CStr::from_ptr(info) }
                .to_string_lossy()
                .into_owned()
        };
        let message = match (info.is_empty(), msg.is_empty()) {
            (_, true) => info,
            (true, false) => msg,
            (false, false) => format!("{info}: {msg}"),
        };
        Err(Error::backend(
            "OpenVINO",
            what(),
            Some(status.into()),
            message,
            ErrorKind::Compute,
        ))
    }

    /// Runs a call that cannot fail in a way that sets the message (frees), serialised with
    /// [`Api::call`] (`ov_core_free` clears the message).
    pub fn serial<T>(&self, f: impl FnOnce() -> T) -> T {
        let _serial = ERRORS.lock().unwrap_or_else(|p| p.into_inner());
        f()
    }
}

/// `GENERAL_ERROR`: the status of calls that caught an exception (and set the message).
const GENERAL_ERROR: Status = -1;

/// Serialises every call that may set or read OpenVINO's process-wide last-error message.
static ERRORS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A C string of `s`, refused when `s` holds a NUL byte (`what` names it in the error).
pub fn cstring(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid_input(format!("a NUL byte in a {what}: {s:?}")))
}

/// The keys and values of OpenVINO properties as C strings. A key whose value OpenVINO reads
/// as something other than a string (`CACHE_ENCRYPTION_CALLBACKS` takes a pointer to
/// callbacks) is refused: passing it a string would make the library call through it.
pub fn property_strings(properties: &[(String, String)]) -> Result<Vec<(CString, CString)>> {
    properties
        .iter()
        .map(|(k, v)| {
            if k == "CACHE_ENCRYPTION_CALLBACKS" {
                return Err(Error::invalid_input(format!(
                    "OpenVINO property {k} takes callbacks, not text; xnpu cannot pass it"
                )));
            }
            Ok((cstring(k, "property key")?, cstring(v, "property value")?))
        })
        .collect()
}

/// Takes a string the library allocated with `new[]`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string allocated by OpenVINO for the caller.
pub unsafe fn owned_string(api: &Api, p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: per the contract.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: allocated by the library for us; freed once.
    unsafe { (api.ov_free)(p) };
    s
}
