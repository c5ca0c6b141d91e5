//! What crosses between ONNX Runtime and this library: the plugin-EP structs this side
//! fills (written by hand from `../shared/reference/ort-plugin-ep.md`, since no package
//! ships ONNX Runtime's headers), and a thin layer over the `OrtApi` table ONNX Runtime hands
//! us (its layout from `ort-sys`, features `disable-linking` and `api-24`: a prefix of the
//! table every ONNX Runtime from 1.24 provides).
//!
//! Each struct declares the version whose layout it copies: ONNX Runtime reads a member only
//! when the declared version covers it, so slots after ours are never touched.

#![allow(non_snake_case)]

use std::ffi::{c_char, c_void, CStr, CString};

pub use ort_sys::{
    OrtApi, OrtApiBase, OrtErrorCode, OrtGraph, OrtHardwareDevice, OrtKernelContext,
    OrtKeyValuePairs, OrtLogger, OrtLoggingLevel, OrtNode, OrtOpAttr, OrtOpAttrType,
    OrtSessionOptions, OrtStatusPtr, OrtValue, OrtValueInfo,
};

/// The `OrtApi` version this library asks for (the layout `ort-sys` gives with `api-24`).
pub const API_VERSION: u32 = 24;

// Opaque types of the EP API that `ort-sys` leaves out or that we only pass along.
#[repr(C)]
pub struct OrtEpDevice {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtEpGraphSupportInfo {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtNodeComputeContext {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtDataTransferImpl {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OrtKernelRegistry {
    _private: [u8; 0],
}

type Status = OrtStatusPtr;
type Unused = Option<unsafe extern "system" fn()>;

/// `OrtEpFactory` with the layout of version 23 (declared as 23). `GetVersion` and
/// `CreateDataTransfer` must be set: ONNX Runtime 1.32 calls them whatever the version.
#[repr(C)]
pub struct OrtEpFactory {
    pub ort_version_supported: u32,
    pub GetName: unsafe extern "system" fn(this: *const OrtEpFactory) -> *const c_char,
    pub GetVendor: unsafe extern "system" fn(this: *const OrtEpFactory) -> *const c_char,
    pub GetSupportedDevices: unsafe extern "system" fn(
        this: *mut OrtEpFactory,
        devices: *const *const OrtHardwareDevice,
        num_devices: usize,
        ep_devices: *mut *mut OrtEpDevice,
        max_ep_devices: usize,
        num_ep_devices: *mut usize,
    ) -> Status,
    pub CreateEp: unsafe extern "system" fn(
        this: *mut OrtEpFactory,
        devices: *const *const OrtHardwareDevice,
        ep_metadata: *const *const OrtKeyValuePairs,
        num_devices: usize,
        session_options: *const OrtSessionOptions,
        logger: *const OrtLogger,
        ep: *mut *mut OrtEp,
    ) -> Status,
    pub ReleaseEp: unsafe extern "system" fn(this: *mut OrtEpFactory, ep: *mut OrtEp),
    pub GetVendorId: unsafe extern "system" fn(this: *const OrtEpFactory) -> u32,
    pub GetVersion: unsafe extern "system" fn(this: *const OrtEpFactory) -> *const c_char,
    pub ValidateCompiledModelCompatibilityInfo: Unused,
    pub CreateAllocator: Unused,
    pub ReleaseAllocator: Unused,
    pub CreateDataTransfer: unsafe extern "system" fn(
        this: *mut OrtEpFactory,
        data_transfer: *mut *mut OrtDataTransferImpl,
    ) -> Status,
    pub IsStreamAware: Unused,
    pub CreateSyncStreamForDevice: Unused,
}

/// `OrtEp` with the layout of version 24 (declared as 24): up to `IsConcurrentRunSupported`.
#[repr(C)]
pub struct OrtEp {
    pub ort_version_supported: u32,
    pub GetName: unsafe extern "system" fn(this: *const OrtEp) -> *const c_char,
    pub GetCapability: unsafe extern "system" fn(
        this: *mut OrtEp,
        graph: *const OrtGraph,
        info: *mut OrtEpGraphSupportInfo,
    ) -> Status,
    pub Compile: unsafe extern "system" fn(
        this: *mut OrtEp,
        graphs: *const *const OrtGraph,
        fused_nodes: *const *const OrtNode,
        count: usize,
        node_compute_infos: *mut *mut OrtNodeComputeInfo,
        ep_context_nodes: *mut *mut OrtNode,
    ) -> Status,
    pub ReleaseNodeComputeInfos: unsafe extern "system" fn(
        this: *mut OrtEp,
        infos: *mut *mut OrtNodeComputeInfo,
        count: usize,
    ),
    pub GetPreferredDataLayout: Unused,
    pub ShouldConvertDataLayoutForOp: Unused,
    pub SetDynamicOptions: Unused,
    pub OnRunStart: Unused,
    pub OnRunEnd: Unused,
    pub CreateAllocator: Unused,
    pub CreateSyncStreamForDevice: Unused,
    pub GetCompiledModelCompatibilityInfo: Unused,
    pub GetKernelRegistry: unsafe extern "system" fn(
        this: *mut OrtEp,
        registry: *mut *const OrtKernelRegistry,
    ) -> Status,
    pub IsConcurrentRunSupported:
        unsafe extern "system" fn(this: *mut OrtEp, supported: *mut bool) -> Status,
}

/// `OrtNodeComputeInfo` (version 23 layout): one per fused node.
#[repr(C)]
pub struct OrtNodeComputeInfo {
    pub ort_version_supported: u32,
    pub CreateState: unsafe extern "system" fn(
        this: *mut OrtNodeComputeInfo,
        context: *mut OrtNodeComputeContext,
        state: *mut *mut c_void,
    ) -> Status,
    pub Compute: unsafe extern "system" fn(
        this: *mut OrtNodeComputeInfo,
        state: *mut c_void,
        context: *mut OrtKernelContext,
    ) -> Status,
    pub ReleaseState: unsafe extern "system" fn(this: *mut OrtNodeComputeInfo, state: *mut c_void),
}

/// `OrtNodeFusionOptions`: `drop_constant_initializers` makes weights part of the fused
/// graph (read in `Compile`) rather than inputs of every `Compute`.
#[repr(C)]
pub struct OrtNodeFusionOptions {
    pub ort_version_supported: u32,
    pub drop_constant_initializers: bool,
}

/// The first slots of `OrtEpApi` (all this library calls), in ONNX Runtime's order.
#[repr(C)]
pub struct EpApi {
    pub CreateEpDevice: unsafe extern "system" fn(
        factory: *mut OrtEpFactory,
        device: *const OrtHardwareDevice,
        ep_metadata: *const OrtKeyValuePairs,
        ep_options: *const OrtKeyValuePairs,
        out: *mut *mut OrtEpDevice,
    ) -> Status,
    pub ReleaseEpDevice: unsafe extern "system" fn(device: *mut OrtEpDevice),
    pub EpGraphSupportInfo_AddNodesToFuse: unsafe extern "system" fn(
        info: *mut OrtEpGraphSupportInfo,
        nodes: *const *const OrtNode,
        num_nodes: usize,
        options: *const OrtNodeFusionOptions,
    ) -> Status,
    pub EpGraphSupportInfo_AddSingleNode: Unused,
    pub NodeComputeContext_NodeName:
        unsafe extern "system" fn(context: *const OrtNodeComputeContext) -> *const c_char,
    pub EpDevice_AddAllocatorInfo: Unused,
    pub MemoryInfo_GetMemoryDevice: Unused,
    pub Value_GetMemoryDevice: Unused,
    pub MemoryDevice_AreEqual: Unused,
    pub MemoryDevice_GetDeviceType: Unused,
    pub MemoryDevice_GetMemoryType: Unused,
    pub MemoryDevice_GetVendorId: Unused,
    pub MemoryDevice_GetDeviceId: Unused,
    pub SyncStream_GetImpl: Unused,
    pub SyncStream_GetSyncId: Unused,
    pub GetSyncIdForLastWaitOnSyncStream: Unused,
    pub CreateHardwareDevice: unsafe extern "system" fn(
        device_type: i32,
        vendor_id: u32,
        device_id: u32,
        vendor_name: *const c_char,
        metadata: *const OrtKeyValuePairs,
        out: *mut *mut OrtHardwareDevice,
    ) -> Status,
    pub ReleaseHardwareDevice: unsafe extern "system" fn(device: *mut OrtHardwareDevice),
}

// The slots the reference pins (section 3), checked at compile time on 64-bit targets.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{offset_of, size_of};
    const fn slot(n: usize) -> usize {
        8 * n
    }
    assert!(offset_of!(OrtEpFactory, GetName) == slot(1));
    assert!(offset_of!(OrtEpFactory, GetVersion) == slot(7));
    assert!(offset_of!(OrtEpFactory, CreateDataTransfer) == slot(11));
    assert!(size_of::<OrtEpFactory>() == slot(14));
    assert!(offset_of!(OrtEp, GetCapability) == slot(2));
    assert!(offset_of!(OrtEp, GetCompiledModelCompatibilityInfo) == slot(12));
    assert!(offset_of!(OrtEp, IsConcurrentRunSupported) == slot(14));
    assert!(size_of::<OrtEp>() == slot(15));
    assert!(size_of::<OrtNodeComputeInfo>() == slot(4));
    assert!(offset_of!(EpApi, EpGraphSupportInfo_AddNodesToFuse) == slot(2));
    assert!(offset_of!(EpApi, NodeComputeContext_NodeName) == slot(4));
    assert!(offset_of!(EpApi, CreateHardwareDevice) == slot(16));
    assert!(offset_of!(OrtNodeFusionOptions, drop_constant_initializers) == 4);
};

/// ONNX Runtime's API tables, obtained once from the `OrtApiBase` it passes in.
#[derive(Clone, Copy)]
pub struct Api {
    pub ort: &'static OrtApi,
    pub ep: &'static EpApi,
    /// The model editor (EPContext nodes are made with it).
    pub editor: &'static ort_sys::OrtModelEditorApi,
}

// SAFETY: both are immutable tables of function pointers that live as long as the process's
// ONNX Runtime, which outlives every plugin object (it unloads us last).
unsafe impl Send for Api {}
// SAFETY: as above.
unsafe impl Sync for Api {}

/// An error on our side, with the ONNX Runtime code it becomes.
#[derive(Debug)]
pub struct Fail {
    pub code: OrtErrorCode,
    pub message: String,
}

impl Fail {
    pub fn new(code: OrtErrorCode, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Fail {
        Fail::new(OrtErrorCode::ORT_INVALID_ARGUMENT, message)
    }

    pub fn ep(message: impl Into<String>) -> Fail {
        Fail::new(OrtErrorCode::ORT_EP_FAIL, message)
    }
}

impl From<xnpu::Error> for Fail {
    fn from(e: xnpu::Error) -> Fail {
        use xnpu::core::ErrorKind;
        let code = match e.kind() {
            ErrorKind::InvalidInput => OrtErrorCode::ORT_INVALID_ARGUMENT,
            ErrorKind::Model => OrtErrorCode::ORT_INVALID_GRAPH,
            ErrorKind::Unsupported => OrtErrorCode::ORT_NOT_IMPLEMENTED,
            _ => OrtErrorCode::ORT_EP_FAIL,
        };
        Fail::new(code, e.to_string())
    }
}

pub type R<T> = std::result::Result<T, Fail>;

/// A C string for ONNX Runtime (interior NULs, which ONNX Runtime could not show, become
/// spaces).
pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// A string ONNX Runtime gave us (empty for NULL).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string alive for the call.
pub unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Api {
    /// The tables of the ONNX Runtime that loaded us, or the status to return when it is older
    /// than [`API_VERSION`] (made with its version-1 table, which every version has).
    ///
    /// # Safety
    /// `base` is the `OrtApiBase` ONNX Runtime passed to `CreateEpFactories`.
    pub unsafe fn from_base(base: *const OrtApiBase) -> std::result::Result<Api, Status> {
        if base.is_null() {
            return Err(OrtStatusPtr(std::ptr::null_mut()));
        }
        // SAFETY: a valid OrtApiBase, per the contract.
        let base = unsafe { &*base };
        // SAFETY: GetApi takes any version and answers NULL for one it lacks.
        let api = unsafe { (base.GetApi)(API_VERSION) };
        if api.is_null() {
            // SAFETY: as above; version 1 exists in every ONNX Runtime.
            let v1 = unsafe { (base.GetApi)(1) };
            // SAFETY: GetVersionString returns a static string.
            let version = unsafe { text((base.GetVersionString)()) };
            if v1.is_null() {
                return Err(OrtStatusPtr(std::ptr::null_mut()));
            }
            let msg = cstring(&format!(
                "xnpu's execution provider needs ONNX Runtime 1.{API_VERSION} or newer; this \
                 is {version}"
            ));
            // SAFETY: CreateStatus is the first slot of every OrtApi, and copies the message.
            return Err(unsafe {
                ((*v1).CreateStatus)(OrtErrorCode::ORT_NOT_IMPLEMENTED, msg.as_ptr())
            });
        }
        // SAFETY: a non-NULL table of the version asked for, alive for the process.
        let ort: &'static OrtApi = unsafe { &*api };
        // SAFETY: GetEpApi exists from version 22 on (we hold 24).
        let ep = unsafe { (ort.GetEpApi)() }.cast::<EpApi>();
        if ep.is_null() {
            let msg = cstring("this ONNX Runtime has no plugin EP API (OrtApi::GetEpApi)");
            // SAFETY: as above.
            return Err(unsafe {
                (ort.CreateStatus)(OrtErrorCode::ORT_NOT_IMPLEMENTED, msg.as_ptr())
            });
        }
        // SAFETY: GetModelEditorApi exists from version 22 on (we hold 24).
        let editor = unsafe { (ort.GetModelEditorApi)() };
        if editor.is_null() {
            let msg =
                cstring("this ONNX Runtime has no model editor API (OrtApi::GetModelEditorApi)");
            // SAFETY: as above.
            return Err(unsafe {
                (ort.CreateStatus)(OrtErrorCode::ORT_NOT_IMPLEMENTED, msg.as_ptr())
            });
        }
        // SAFETY: the EP API table, whose first slots `EpApi` mirrors, and the model editor's,
        // alive for the process.
        Ok(Api {
            ort,
            ep: unsafe { &*ep },
            editor: unsafe { &*editor },
        })
    }

    /// A status for ONNX Runtime (NULL for success).
    pub fn status(&self, r: R<()>) -> Status {
        match r {
            Ok(()) => OrtStatusPtr(std::ptr::null_mut()),
            Err(f) => {
                let msg = cstring(&f.message);
                // SAFETY: CreateStatus copies the message.
                unsafe { (self.ort.CreateStatus)(f.code, msg.as_ptr()) }
            }
        }
    }

    /// `Ok` for a NULL status; otherwise its message as an error (the status released).
    pub fn check(&self, s: Status, what: &str) -> R<()> {
        if s.0.is_null() {
            return Ok(());
        }
        // SAFETY: a status ONNX Runtime returned, released once here.
        let message = unsafe { text((self.ort.GetErrorMessage)(s.0)) };
        // SAFETY: as above.
        unsafe { (self.ort.ReleaseStatus)(s.0) };
        Err(Fail::ep(format!("ONNX Runtime's {what} failed: {message}")))
    }

    /// Releases a status we do not need (a size probe's).
    pub fn ignore(&self, s: Status) {
        if !s.0.is_null() {
            // SAFETY: a status ONNX Runtime returned, released once.
            unsafe { (self.ort.ReleaseStatus)(s.0) };
        }
    }

    /// Writes `message` to ONNX Runtime's log at `level`.
    pub fn log(&self, logger: *const OrtLogger, level: OrtLoggingLevel, message: &str) {
        if logger.is_null() {
            return;
        }
        let msg = cstring(message);
        let file = c"xnpu_onnxruntime_ep";
        let func = c"xnpu";
        // SAFETY: a logger ONNX Runtime gave us for the session; the strings outlive the
        // call, which copies them.
        let s = unsafe {
            (self.ort.Logger_LogMessage)(
                logger,
                level,
                msg.as_ptr(),
                file.as_ptr(),
                0,
                func.as_ptr(),
            )
        };
        self.ignore(s);
    }
}

/// Key-value pairs we create and release.
pub struct Pairs<'a> {
    api: &'a Api,
    pub ptr: *mut OrtKeyValuePairs,
}

impl<'a> Pairs<'a> {
    pub fn new(api: &'a Api, entries: &[(&str, &str)]) -> Pairs<'a> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: writes a new, empty set to `ptr`.
        unsafe { (api.ort.CreateKeyValuePairs)(&mut ptr) };
        for (k, v) in entries {
            let (k, v) = (cstring(k), cstring(v));
            if !ptr.is_null() {
                // SAFETY: a live set; the strings are copied.
                unsafe { (api.ort.AddKeyValuePair)(ptr, k.as_ptr(), v.as_ptr()) };
            }
        }
        Pairs { api, ptr }
    }
}

impl Drop for Pairs<'_> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: created in `new`, released once.
            unsafe { (self.api.ort.ReleaseKeyValuePairs)(self.ptr) };
        }
    }
}

/// The value of `key` in pairs ONNX Runtime owns (`None` when absent).
///
/// # Safety
/// `kv` is NULL or live key-value pairs.
pub unsafe fn pair(api: &Api, kv: *const OrtKeyValuePairs, key: &str) -> Option<String> {
    if kv.is_null() {
        return None;
    }
    let k = cstring(key);
    // SAFETY: live pairs (the contract); the key outlives the call.
    let v = unsafe { (api.ort.GetKeyValue)(kv, k.as_ptr()) };
    // SAFETY: NULL or a string the pairs own.
    (!v.is_null()).then(|| unsafe { text(v) })
}

/// Runs `f`, turning a panic into a status: no unwind ever reaches ONNX Runtime.
pub fn guarded(api: &Api, what: &str, f: impl FnOnce() -> R<()>) -> Status {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(Fail::ep(format!("xnpu: internal error in {what}: {why}")))
    });
    api.status(r)
}
