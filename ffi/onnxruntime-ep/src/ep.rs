//! The factory (devices), the execution provider (claims and compiles) and the compiled
//! fused nodes (runs).

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::ptr;
use std::sync::{Arc, Mutex};

use xnpu::core::Bytes;
use xnpu::graph::backend::{
    Backend, CompileCache, PerformanceHint, Precision, ReasonCode, Support,
};
use xnpu::graph::onnx::ops::{Lookup, Registry};
use xnpu::graph::partition::{
    convex_groups, ExplainedNode, ExplainedPartition, Explanation, Refusal, EXPLANATION_SCHEMA,
};
use xnpu::graph::passes::Level;
use xnpu::{DType, Policy, Session, SessionOptions, Tensor, Value};

use crate::context;
use crate::graph::{GraphDesc, TensorData};
use crate::ort::*;

/// The EP's name (ONNX Runtime's convention: it ends in `ExecutionProvider`). Options reach
/// `CreateEp` as session entries `ep.xnpuexecutionprovider.<key>`.
pub const EP_NAME: &str = "XnpuExecutionProvider";
const OPTION_PREFIX: &str = "ep.xnpuexecutionprovider.";
/// The options this EP takes (any other `ep.xnpuexecutionprovider.*` key is an error).
pub const OPTIONS: [&str; 7] = [
    "devices",
    "level",
    "threads",
    "precision",
    "performance",
    "cache_dir",
    "explain_json",
];

/// Metadata keys of our `OrtEpDevice`s.
pub const META_DEVICE: &str = "xnpu.device";
pub const META_VENDOR: &str = "xnpu.vendor";

const HW_CPU: i32 = 0;
const HW_GPU: i32 = 1;
const HW_NPU: i32 = 2;

/// An xnpu device as ONNX Runtime sees it: its hardware type and whether it is a simulator
/// (which runs on the CPU, and so is a CPU-type device).
fn hardware_type(d: &xnpu::Device) -> (i32, bool) {
    let simulated = d.name.ends_with("-sim");
    let t = if simulated || d.name == "cpu" {
        HW_CPU
    } else if d.name.contains("gpu") {
        HW_GPU
    } else {
        HW_NPU
    };
    (t, simulated)
}

#[repr(C)]
pub struct Factory {
    base: OrtEpFactory,
    api: Api,
    name: CString,
    vendor: CString,
    version: CString,
    /// Hardware devices we made for xnpu devices ONNX Runtime did not list (released with us).
    made: Mutex<Vec<usize>>,
}

impl Factory {
    pub fn new(api: Api) -> Box<Factory> {
        Box::new(Factory {
            base: OrtEpFactory {
                ort_version_supported: 23,
                GetName: factory_name,
                GetVendor: factory_vendor,
                GetSupportedDevices: supported_devices,
                CreateEp: create_ep,
                ReleaseEp: release_ep,
                GetVendorId: factory_vendor_id,
                GetVersion: factory_version,
                ValidateCompiledModelCompatibilityInfo: None,
                CreateAllocator: None,
                ReleaseAllocator: None,
                CreateDataTransfer: create_data_transfer,
                IsStreamAware: None,
                CreateSyncStreamForDevice: None,
            },
            api,
            name: cstring(EP_NAME),
            vendor: cstring("xnpu"),
            version: cstring(env!("CARGO_PKG_VERSION")),
            made: Mutex::new(Vec::new()),
        })
    }

    pub fn into_raw(self: Box<Factory>) -> *mut OrtEpFactory {
        Box::into_raw(self).cast()
    }

    /// # Safety
    /// `p` came from [`Factory::into_raw`] and is released once.
    pub unsafe fn release(p: *mut OrtEpFactory) {
        // SAFETY: the contract: our box, given back once.
        let f = unsafe { Box::from_raw(p.cast::<Factory>()) };
        let made = std::mem::take(&mut *f.made.lock().unwrap_or_else(|e| e.into_inner()));
        for d in made {
            // SAFETY: a hardware device we created and nobody else releases.
            unsafe { (f.api.ep.ReleaseHardwareDevice)(d as *mut OrtHardwareDevice) };
        }
    }
}

/// # Safety
/// `p` is a factory this library made (ONNX Runtime passes back what we gave it).
unsafe fn factory<'a>(p: *const OrtEpFactory) -> &'a Factory {
    // SAFETY: `OrtEpFactory` is the first field of the repr(C) `Factory`.
    unsafe { &*p.cast::<Factory>() }
}

unsafe extern "system" fn factory_name(this: *const OrtEpFactory) -> *const c_char {
    // SAFETY: ONNX Runtime passes our factory.
    unsafe { factory(this) }.name.as_ptr()
}

unsafe extern "system" fn factory_vendor(this: *const OrtEpFactory) -> *const c_char {
    // SAFETY: as above.
    unsafe { factory(this) }.vendor.as_ptr()
}

unsafe extern "system" fn factory_version(this: *const OrtEpFactory) -> *const c_char {
    // SAFETY: as above.
    unsafe { factory(this) }.version.as_ptr()
}

unsafe extern "system" fn factory_vendor_id(_this: *const OrtEpFactory) -> u32 {
    0
}

unsafe extern "system" fn create_data_transfer(
    this: *mut OrtEpFactory,
    out: *mut *mut OrtDataTransferImpl,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our factory.
    let f = unsafe { factory(this) };
    guarded(&f.api, "CreateDataTransfer", || {
        // Tensors stay in host memory: no transfer to implement.
        if !out.is_null() {
            // SAFETY: ONNX Runtime's out-pointer.
            unsafe { *out = ptr::null_mut() };
        }
        Ok(())
    })
}

unsafe extern "system" fn supported_devices(
    this: *mut OrtEpFactory,
    devices: *const *const OrtHardwareDevice,
    num_devices: usize,
    ep_devices: *mut *mut OrtEpDevice,
    max_ep_devices: usize,
    num_ep_devices: *mut usize,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our factory.
    let f = unsafe { factory(this) };
    let api = f.api;
    guarded(&api, "GetSupportedDevices", || {
        if num_ep_devices.is_null() || (max_ep_devices > 0 && ep_devices.is_null()) {
            return Err(Fail::invalid("GetSupportedDevices: NULL output"));
        }
        // SAFETY: ONNX Runtime's out-pointer.
        unsafe { *num_ep_devices = 0 };
        let hw: Vec<*const OrtHardwareDevice> = if devices.is_null() {
            Vec::new()
        } else {
            // SAFETY: ONNX Runtime's array of `num_devices` devices.
            unsafe { std::slice::from_raw_parts(devices, num_devices) }.to_vec()
        };
        // SAFETY (the type and vendor reads below): live hardware devices from ONNX Runtime.
        let hw_type =
            |d: *const OrtHardwareDevice| unsafe { (api.ort.HardwareDevice_Type)(d) } as i32;
        let mut n = 0usize;
        for d in xnpu::devices()
            .into_iter()
            .filter(|d| d.status.is_available())
        {
            if n >= max_ep_devices {
                break;
            }
            let (t, simulated) = hardware_type(&d);
            let id = d.id();
            let matching = hw
                .iter()
                .copied()
                .find(|&h| !h.is_null() && hw_type(h) == t);
            let device = match matching {
                Some(h) => h,
                None => {
                    // ONNX Runtime did not find it (its discovery lists no NPU on Linux):
                    // a hardware device of our own, released with the factory.
                    let meta = Pairs::new(&api, &[("xnpu.discovered", "1")]);
                    let vendor = cstring(&d.vendor);
                    let mut made = ptr::null_mut();
                    // SAFETY: the metadata and vendor outlive the call, which copies them.
                    let s = unsafe {
                        (api.ep.CreateHardwareDevice)(t, 0, 0, vendor.as_ptr(), meta.ptr, &mut made)
                    };
                    api.check(s, "CreateHardwareDevice")?;
                    f.made
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(made as usize);
                    made as *const OrtHardwareDevice
                }
            };
            let kind = match t {
                HW_CPU => "cpu",
                HW_GPU => "gpu",
                _ => "npu",
            };
            let meta = Pairs::new(
                &api,
                &[
                    (META_DEVICE, id.as_str()),
                    (META_VENDOR, d.vendor.as_str()),
                    ("xnpu.kind", kind),
                    ("simulated", if simulated { "1" } else { "0" }),
                ],
            );
            let mut out = ptr::null_mut();
            // SAFETY: our factory, a live hardware device, pairs copied by the call.
            let s =
                unsafe { (api.ep.CreateEpDevice)(this, device, meta.ptr, ptr::null(), &mut out) };
            api.check(s, "CreateEpDevice")?;
            // SAFETY: `n < max_ep_devices` slots of ONNX Runtime's array.
            unsafe { *ep_devices.add(n) = out };
            n += 1;
        }
        // SAFETY: ONNX Runtime's out-pointer.
        unsafe { *num_ep_devices = n };
        Ok(())
    })
}

/// What a session's options ask of this EP.
struct EpOptions {
    devices: Vec<String>,
    session: SessionOptions,
    explain_json: Option<PathBuf>,
    context: Option<ContextOut>,
}

/// ONNX Runtime's compile API asks for EPContext nodes (`ep.context_enable`): embedded in the
/// model (`ep.context_embed_mode` 1, its default) or in a file beside it.
#[derive(Clone, Debug)]
struct ContextOut {
    embed: bool,
    /// The compiled model's path (`ep.context_file_path`), for blobs written beside it.
    model_path: Option<PathBuf>,
}

/// The session option `key` of this EP, if set.
fn option(api: &Api, so: *const OrtSessionOptions, key: &str) -> R<Option<String>> {
    config(api, so, &format!("{OPTION_PREFIX}{key}"))
}

/// The session config entry `key`, if set.
fn config(api: &Api, so: *const OrtSessionOptions, key: &str) -> R<Option<String>> {
    let full = cstring(key);
    let mut has = 0;
    // SAFETY: the session options ONNX Runtime passed to CreateEp, alive for the call.
    let s = unsafe { (api.ort.HasSessionConfigEntry)(so, full.as_ptr(), &mut has) };
    api.check(s, "HasSessionConfigEntry")?;
    if has == 0 {
        return Ok(None);
    }
    let mut size = 0usize;
    // SAFETY: a size probe.
    let s =
        unsafe { (api.ort.GetSessionConfigEntry)(so, full.as_ptr(), ptr::null_mut(), &mut size) };
    api.ignore(s);
    let mut buf = vec![0u8; size.max(1)];
    let mut len = buf.len();
    // SAFETY: a buffer of the size asked for.
    let s = unsafe {
        (api.ort.GetSessionConfigEntry)(so, full.as_ptr(), buf.as_mut_ptr().cast(), &mut len)
    };
    api.check(s, "GetSessionConfigEntry")?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(Some(String::from_utf8_lossy(&buf[..end]).into_owned()))
}

/// Every `ep.xnpuexecutionprovider.*` key set, to refuse those this EP does not know.
fn option_keys(api: &Api, so: *const OrtSessionOptions) -> R<Vec<String>> {
    let mut kv = ptr::null_mut();
    // SAFETY: live session options; `kv` is ours to release.
    let s = unsafe { (api.ort.GetSessionOptionsConfigEntries)(so, &mut kv) };
    api.check(s, "GetSessionOptionsConfigEntries")?;
    if kv.is_null() {
        return Ok(Vec::new());
    }
    let (mut keys, mut vals, mut n) = (ptr::null(), ptr::null(), 0usize);
    // SAFETY: live pairs; the arrays are borrowed from them.
    unsafe { (api.ort.GetKeyValuePairs)(kv, &mut keys, &mut vals, &mut n) };
    let mut out = Vec::new();
    for i in 0..n {
        // SAFETY: `n` keys, strings the pairs own.
        let k = unsafe { text(*keys.add(i)) };
        if let Some(rest) = k.strip_prefix(OPTION_PREFIX) {
            out.push(rest.to_string());
        }
    }
    // SAFETY: made above, released once.
    unsafe { (api.ort.ReleaseKeyValuePairs)(kv) };
    Ok(out)
}

fn read_options(api: &Api, so: *const OrtSessionOptions, given: Vec<String>) -> R<EpOptions> {
    if so.is_null() {
        return Err(Fail::invalid("CreateEp: no session options"));
    }
    for k in option_keys(api, so)? {
        if !OPTIONS.contains(&k.as_str()) {
            return Err(Fail::invalid(format!(
                "{EP_NAME}: unknown option \"{k}\" (options: {})",
                OPTIONS.join(", ")
            )));
        }
    }
    let bad =
        |key: &str, e: xnpu::Error| Fail::invalid(format!("{EP_NAME}: option \"{key}\": {e}"));
    let devices = match option(api, so, "devices")? {
        Some(d) => {
            let list: Vec<String> = d
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                return Err(Fail::invalid(format!(
                    "{EP_NAME}: option \"devices\" is empty"
                )));
            }
            list
        }
        None => given,
    };
    let mut session = SessionOptions::new();
    if let Some(l) = option(api, so, "level")? {
        session = session.level(l.parse::<Level>().map_err(|e| bad("level", e))?);
    }
    if let Some(t) = option(api, so, "threads")? {
        let n: usize = t.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
            Fail::invalid(format!(
                "{EP_NAME}: option \"threads\": \"{t}\" is not a number of at least 1"
            ))
        })?;
        session = session.threads(n);
    }
    if let Some(p) = option(api, so, "precision")? {
        session = session.precision(p.parse::<Precision>().map_err(|e| bad("precision", e))?);
    }
    if let Some(p) = option(api, so, "performance")? {
        session = session.performance(
            p.parse::<PerformanceHint>()
                .map_err(|e| bad("performance", e))?,
        );
    }
    if let Some(d) = option(api, so, "cache_dir")? {
        session = session.compile_cache(CompileCache::Dir(PathBuf::from(d)));
    }
    let explain_json = option(api, so, "explain_json")?.map(PathBuf::from);
    let context = match config(api, so, "ep.context_enable")?.as_deref() {
        Some("1") => Some(ContextOut {
            embed: config(api, so, "ep.context_embed_mode")?.as_deref() != Some("0"),
            model_path: config(api, so, "ep.context_file_path")?
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        }),
        _ => None,
    };
    Ok(EpOptions {
        devices,
        session,
        explain_json,
        context,
    })
}

/// One execution provider: a session's devices and what it claimed.
#[repr(C)]
pub struct Ep {
    base: OrtEp,
    api: Api,
    name: CString,
    logger: *const OrtLogger,
    /// The xnpu devices, in preference order, and their backends.
    devices: Vec<String>,
    backends: Vec<Arc<dyn Backend>>,
    /// What compiling a fused node uses (the devices, then xnpu's CPU for what the passes'
    /// fused ops make that the devices refuse).
    session: SessionOptions,
    explain_json: Option<PathBuf>,
    /// Write EPContext nodes in Compile (ONNX Runtime's compile API).
    context: Option<ContextOut>,
    notes: Vec<String>,
    /// What Compile did with EPContext nodes (loaded, compiled again and why), for the
    /// explanation.
    compile_notes: Mutex<Vec<String>>,
    /// What GetCapability answered, per graph (ONNX Runtime asks once per graph and
    /// subgraph, and again after fusing): the latest answer for each.
    explained: Mutex<Vec<GraphExplained>>,
}

/// A graph's name, its fused groups and its nodes' answers.
type GraphExplained = (String, Vec<ExplainedPartition>, Vec<ExplainedNode>);

unsafe extern "system" fn create_ep(
    this: *mut OrtEpFactory,
    _devices: *const *const OrtHardwareDevice,
    ep_metadata: *const *const OrtKeyValuePairs,
    num_devices: usize,
    session_options: *const OrtSessionOptions,
    logger: *const OrtLogger,
    out: *mut *mut OrtEp,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our factory.
    let f = unsafe { factory(this) };
    let api = f.api;
    guarded(&api, "CreateEp", || {
        if out.is_null() {
            return Err(Fail::invalid("CreateEp: NULL output"));
        }
        let mut given = Vec::new();
        if !ep_metadata.is_null() {
            for i in 0..num_devices {
                // SAFETY: ONNX Runtime's array of `num_devices` metadata sets (each live).
                let kv = unsafe { *ep_metadata.add(i) };
                // SAFETY: NULL or live pairs.
                if let Some(id) = unsafe { pair(&api, kv, META_DEVICE) } {
                    if !given.contains(&id) {
                        given.push(id);
                    }
                }
            }
        }
        if given.is_empty() {
            given.push("cpu".into());
        }
        let o = read_options(&api, session_options, given)?;
        let policy: Policy = o
            .devices
            .join(",")
            .parse()
            .map_err(|e: xnpu::Error| Fail::invalid(format!("{EP_NAME}: devices: {e}")))?;
        let resolved = xnpu::policy::resolve(&policy).map_err(|e| {
            Fail::invalid(format!(
                "{EP_NAME}: the devices {} cannot be used: {e}",
                o.devices.join(",")
            ))
        })?;
        let mut compile_backends = resolved.backends.clone();
        if !resolved.backends.iter().any(|b| b.name() == "cpu") {
            if let Ok(cpu) = xnpu::policy::resolve(&"cpu".parse::<Policy>()?) {
                compile_backends.extend(cpu.backends);
            }
        }
        let mut session = o.session;
        session.backends = compile_backends;
        // A device the session names is the device it runs on: a partition that fails to
        // compile there is an error (xnpu's rule for explicit device lists), not a silent
        // move to the CPU.
        session.fallback = policy.allows_fallback();
        let ep = Box::new(Ep {
            base: OrtEp {
                ort_version_supported: 24,
                GetName: ep_name,
                GetCapability: get_capability,
                Compile: compile,
                ReleaseNodeComputeInfos: release_node_compute_infos,
                GetPreferredDataLayout: None,
                ShouldConvertDataLayoutForOp: None,
                SetDynamicOptions: None,
                OnRunStart: None,
                OnRunEnd: None,
                CreateAllocator: None,
                CreateSyncStreamForDevice: None,
                GetCompiledModelCompatibilityInfo: None,
                GetKernelRegistry: kernel_registry,
                IsConcurrentRunSupported: concurrent_runs,
            },
            api,
            name: cstring(EP_NAME),
            logger,
            devices: resolved
                .backends
                .iter()
                .map(|b| b.name().to_string())
                .collect(),
            backends: resolved.backends,
            session,
            explain_json: o.explain_json,
            context: o.context,
            notes: resolved.notes,
            compile_notes: Mutex::new(Vec::new()),
            explained: Mutex::new(Vec::new()),
        });
        // SAFETY: ONNX Runtime's out-pointer.
        unsafe { *out = Box::into_raw(ep).cast() };
        Ok(())
    })
}

unsafe extern "system" fn release_ep(_this: *mut OrtEpFactory, ep: *mut OrtEp) {
    if !ep.is_null() {
        // SAFETY: an EP from `create_ep`, given back once.
        drop(unsafe { Box::from_raw(ep.cast::<Ep>()) });
    }
}

/// # Safety
/// `p` is an EP this library made.
unsafe fn this_ep<'a>(p: *const OrtEp) -> &'a Ep {
    // SAFETY: `OrtEp` is the first field of the repr(C) `Ep`.
    unsafe { &*p.cast::<Ep>() }
}

unsafe extern "system" fn ep_name(this: *const OrtEp) -> *const c_char {
    // SAFETY: ONNX Runtime passes our EP.
    unsafe { this_ep(this) }.name.as_ptr()
}

unsafe extern "system" fn kernel_registry(
    _this: *mut OrtEp,
    out: *mut *const OrtKernelRegistry,
) -> OrtStatusPtr {
    // We compile fused nodes; no kernel registry.
    if !out.is_null() {
        // SAFETY: ONNX Runtime's out-pointer.
        unsafe { *out = ptr::null() };
    }
    OrtStatusPtr(ptr::null_mut())
}

// A compiled session runs from many threads at once (`Session: Sync`).
const _: () = {
    const fn sync<T: Sync + Send>() {}
    sync::<Session>();
};

unsafe extern "system" fn concurrent_runs(_this: *mut OrtEp, out: *mut bool) -> OrtStatusPtr {
    if !out.is_null() {
        // SAFETY: ONNX Runtime's out-pointer.
        unsafe { *out = true };
    }
    OrtStatusPtr(ptr::null_mut())
}

/// Why xnpu cannot take a node before asking any device (it cannot read it as xnpu's op).
fn unreadable(desc: &GraphDesc) -> Vec<Option<(ReasonCode, String)>> {
    let opsets: HashMap<&str, i64> = desc
        .opsets
        .iter()
        .map(|(d, v)| (xnpu::graph::onnx::ops::canonical_domain(d), *v))
        .collect();
    let bad_inits: HashMap<&str, &str> = desc
        .initializers
        .iter()
        .filter_map(|(n, t)| t.as_ref().err().map(|e| (n.as_str(), e.as_str())))
        .collect();
    desc.nodes
        .iter()
        .map(|nd| {
            if !nd.ep.is_empty() {
                return Some((
                    ReasonCode::Other,
                    format!("ONNX Runtime gave it to {}", nd.ep),
                ));
            }
            if let Err(e) = &nd.attributes {
                return Some((ReasonCode::Attribute, e.clone()));
            }
            let domain = xnpu::graph::onnx::ops::canonical_domain(&nd.domain);
            let version = opsets.get(domain).copied().unwrap_or(0);
            let shown = if domain.is_empty() { "ai.onnx" } else { domain };
            match Registry::standard().lookup(domain, &nd.op_type, version) {
                Lookup::Found(_) => {}
                _ => {
                    return Some((
                        ReasonCode::OpNotSupported,
                        format!("xnpu has no op {} of {shown} (opset {version})", nd.op_type),
                    ))
                }
            }
            nd.inputs
                .iter()
                .find_map(|i| bad_inits.get(i.as_str()).map(|e| (i, e)))
                .map(|(i, e)| {
                    (
                        ReasonCode::Dtype,
                        format!("initializer \"{i}\" cannot be read: {e}"),
                    )
                })
        })
        .collect()
}

/// For an EPContext node, the EP that wrote it (its `source`).
fn context_source(nd: &crate::graph::NodeDesc) -> Option<String> {
    if nd.op_type != context::OP || nd.domain != context::DOMAIN {
        return None;
    }
    let attr = |name: &str| {
        nd.attributes
            .as_ref()
            .ok()
            .and_then(|a| a.iter().find(|a| a.name == name))
    };
    Some(
        attr("source")
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
            .unwrap_or_default(),
    )
}

fn import(
    proto: &xnpu::graph::onnx::proto::ModelProto,
    name: &str,
) -> xnpu::Result<xnpu::graph::Model> {
    let dir = xnpu::graph::onnx::DataDir::new(None)?;
    xnpu::graph::onnx::import_model(proto, name, &dir)
}

impl Ep {
    fn everyone(&self, code: ReasonCode, message: &str) -> Vec<Refusal> {
        self.devices
            .iter()
            .map(|d| Refusal {
                device: d.clone(),
                code,
                vendor_code: None,
                message: message.to_string(),
            })
            .collect()
    }

    /// The answer for every node of `desc`: the first device that takes it, or every
    /// device's refusal.
    fn answers(&self, desc: &GraphDesc) -> Vec<Result<usize, Vec<Refusal>>> {
        let mut pre = unreadable(desc);
        // EPContext nodes: ours (a group compiled earlier) are taken as they are; another
        // EP's are not ours to run. Neither goes through xnpu's importer.
        let contexts: Vec<Option<String>> = desc.nodes.iter().map(context_source).collect();
        for (p, c) in pre.iter_mut().zip(&contexts) {
            if c.is_some() {
                *p = Some((ReasonCode::Other, String::new()));
            }
        }
        let keep = |pre: &[Option<(ReasonCode, String)>]| -> Vec<usize> {
            (0..pre.len()).filter(|&i| pre[i].is_none()).collect()
        };
        let mut model = import(&desc.to_model(&keep(&pre), None, None), &desc.name);
        if model.is_err() {
            // Find the nodes xnpu cannot import, one at a time, and leave them out.
            let inits: HashSet<&str> = desc.initializers.iter().map(|(k, _)| k.as_str()).collect();
            for i in keep(&pre) {
                let nd = &desc.nodes[i];
                let mut inputs: Vec<String> = Vec::new();
                for n in nd.inputs.iter().chain(&nd.implicit_inputs) {
                    if !n.is_empty() && !inits.contains(n.as_str()) && !inputs.contains(n) {
                        inputs.push(n.clone());
                    }
                }
                let outputs: Vec<String> = nd
                    .outputs
                    .iter()
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .collect();
                let one = desc.to_model(&[i], Some(&inputs), Some(&outputs));
                if let Err(e) = import(&one, &desc.name) {
                    pre[i] = Some((ReasonCode::Other, format!("xnpu cannot import it: {e}")));
                }
            }
            model = import(&desc.to_model(&keep(&pre), None, None), &desc.name);
        }
        let model = match model {
            Ok(m) => m,
            Err(e) => {
                let msg = format!("xnpu cannot import the graph: {e}");
                return contexts
                    .iter()
                    .map(|c| match c.as_deref() {
                        Some(EP_NAME) => Ok(0),
                        _ => Err(self.everyone(ReasonCode::Other, &msg)),
                    })
                    .collect();
            }
        };
        let by_name: HashMap<&str, usize> = model
            .graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let claims: Vec<Vec<Support>> = self
            .backends
            .iter()
            .map(|b| b.claim(&model.graph))
            .collect();
        desc.nodes
            .iter()
            .zip(&pre)
            .zip(&contexts)
            .map(|((nd, pre), context)| {
                match context.as_deref() {
                    Some(EP_NAME) => return Ok(0),
                    Some(other) => {
                        return Err(self.everyone(
                            ReasonCode::OpNotSupported,
                            &format!("an EPContext node of {other}, not of xnpu"),
                        ))
                    }
                    None => {}
                }
                if let Some((code, msg)) = pre {
                    return Err(self.everyone(*code, msg));
                }
                let Some(&k) = by_name.get(nd.name.as_str()) else {
                    return Err(
                        self.everyone(ReasonCode::Other, "xnpu's import did not keep the node")
                    );
                };
                let mut refusals = Vec::new();
                for (b, c) in claims.iter().enumerate() {
                    match c.get(k) {
                        Some(Support::Supported { .. }) => return Ok(b),
                        Some(Support::Unsupported {
                            code,
                            vendor_code,
                            reason,
                        }) => refusals.push(Refusal {
                            device: self.devices[b].clone(),
                            code: *code,
                            vendor_code: *vendor_code,
                            message: reason.clone(),
                        }),
                        None => refusals.push(Refusal {
                            device: self.devices[b].clone(),
                            code: ReasonCode::NoAnswer,
                            vendor_code: None,
                            message: "no answer".into(),
                        }),
                    }
                }
                Err(refusals)
            })
            .collect()
    }

    fn get_capability(&self, graph: *const OrtGraph, info: *mut OrtEpGraphSupportInfo) -> R<()> {
        let api = &self.api;
        let desc = api.read_graph(graph)?;
        let mut answers = self.answers(&desc);
        let n = desc.nodes.len();
        let mut producer: HashMap<&str, usize> = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, nd) in desc.nodes.iter().enumerate() {
            for o in nd.outputs.iter().filter(|o| !o.is_empty()) {
                producer.insert(o, i);
            }
            for v in nd
                .inputs
                .iter()
                .chain(&nd.implicit_inputs)
                .filter(|v| !v.is_empty())
            {
                consumers.entry(v).or_default().push(i);
            }
        }
        let graph_outputs: HashSet<&str> = desc.outputs.iter().map(|(n, _)| n.as_str()).collect();
        let preds: Vec<Vec<usize>> = desc
            .nodes
            .iter()
            .map(|nd| {
                let mut p: Vec<usize> = nd
                    .inputs
                    .iter()
                    .chain(&nd.implicit_inputs)
                    .filter_map(|i| producer.get(i.as_str()).copied())
                    .collect();
                p.sort_unstable();
                p.dedup();
                p
            })
            .collect();
        // Topological order (ONNX Runtime's node list should be one; made sure of here).
        let order = topological(&preds);
        let mut pos = vec![0; n];
        for (k, &i) in order.iter().enumerate() {
            pos[i] = k;
        }
        let ordered_preds: Vec<Vec<usize>> = order
            .iter()
            .map(|&i| preds[i].iter().map(|&p| pos[p]).collect())
            .collect();
        // Group, then leave out nodes that would pass a sequence (or other non-tensor) across
        // a group's edge, which the EP interface cannot carry; again until nothing changes.
        let groups = loop {
            let side: Vec<usize> = order
                .iter()
                .map(|&i| usize::from(answers[i].is_err()))
                .collect();
            let groups = convex_groups(&ordered_preds, &side);
            let mut changed = false;
            for (_, nodes) in groups.iter().filter(|(b, _)| *b == 0) {
                let set: HashSet<usize> = nodes.iter().map(|&k| order[k]).collect();
                for &i in &set {
                    let nd = &desc.nodes[i];
                    let crossing = nd.non_tensor.iter().find(|v| {
                        let made_outside =
                            producer.get(v.as_str()).is_none_or(|p| !set.contains(p));
                        let read_outside = consumers
                            .get(v.as_str())
                            .is_some_and(|c| c.iter().any(|c| !set.contains(c)));
                        let is_input = nd.inputs.contains(v);
                        (is_input && made_outside)
                            || (!is_input && (read_outside || graph_outputs.contains(v.as_str())))
                    });
                    if let Some(v) = crossing {
                        answers[i] = Err(self.everyone(
                            ReasonCode::Dtype,
                            &format!(
                                "\"{v}\" is a sequence, optional or map, which cannot cross ONNX \
                                 Runtime's EP interface"
                            ),
                        ));
                        changed = true;
                    }
                }
            }
            if !changed {
                break groups;
            }
        };
        let options = OrtNodeFusionOptions {
            ort_version_supported: 23,
            drop_constant_initializers: true,
        };
        let mut partitions = Vec::new();
        let mut group_of = vec![None; n];
        for (_, nodes) in groups.iter().filter(|(b, _)| *b == 0) {
            let ids: Vec<usize> = nodes.iter().map(|&k| order[k]).collect();
            let ptrs: Vec<*const OrtNode> = ids.iter().map(|&i| desc.nodes[i].ptr).collect();
            // SAFETY: ONNX Runtime's support info and nodes of the graph it passed.
            let s = unsafe {
                (api.ep.EpGraphSupportInfo_AddNodesToFuse)(
                    info,
                    ptrs.as_ptr(),
                    ptrs.len(),
                    &options,
                )
            };
            api.check(s, "EpGraphSupportInfo_AddNodesToFuse")?;
            let device = ids
                .iter()
                .find_map(|&i| answers[i].as_ref().ok().map(|&b| self.devices[b].clone()))
                .unwrap_or_default();
            for &i in &ids {
                group_of[i] = Some(partitions.len());
            }
            partitions.push(ExplainedPartition {
                index: partitions.len(),
                device,
                nodes: ids.len(),
                inputs: Vec::new(),
                outputs: Vec::new(),
            });
        }
        let mut nodes = Vec::new();
        let mut refused = 0;
        for (i, (nd, a)) in desc.nodes.iter().zip(&answers).enumerate() {
            if !nd.ep.is_empty() {
                continue; // ONNX Runtime already placed it (a fused node of an earlier pass)
            }
            let (device, refusals) = match a {
                Ok(b) => (Some(self.devices[*b].clone()), Vec::new()),
                Err(r) => {
                    refused += 1;
                    for x in r {
                        api.log(
                            self.logger,
                            OrtLoggingLevel::ORT_LOGGING_LEVEL_INFO,
                            &format!(
                                "{EP_NAME}: node \"{}\" ({}) stays with ONNX Runtime: {}: [{}] {}",
                                nd.name, nd.op_type, x.device, x.code, x.message
                            ),
                        );
                    }
                    (None, r.clone())
                }
            };
            nodes.push(ExplainedNode {
                node: nd.name.clone(),
                op: nd.op_type.clone(),
                domain: nd.domain.clone(),
                device,
                partition: group_of[i],
                note: None,
                refusals,
            });
        }
        if refused > 0 {
            api.log(
                self.logger,
                OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING,
                &format!(
                    "{EP_NAME}: took {} of {} nodes of graph \"{}\" on {}; {refused} stay with \
                     ONNX Runtime (reasons at INFO level, or the explain_json option)",
                    nodes.len() - refused,
                    nodes.len(),
                    desc.name,
                    self.devices.join(",")
                ),
            );
        }
        let mut ex = self.explained.lock().unwrap_or_else(|e| e.into_inner());
        if nodes.is_empty() && ex.iter().any(|(g, _, _)| *g == desc.name) {
            // A later pass over a graph whose nodes are all placed: keep what it said before.
        } else if let Some(e) = ex.iter_mut().find(|(g, _, _)| *g == desc.name) {
            *e = (desc.name.clone(), partitions, nodes);
        } else {
            ex.push((desc.name.clone(), partitions, nodes));
        }
        drop(ex);
        self.write_explanation()
    }

    /// Writes the explanation file, when the session asked for one.
    fn write_explanation(&self) -> R<()> {
        let Some(path) = &self.explain_json else {
            return Ok(());
        };
        let ex = self.explained.lock().unwrap_or_else(|e| e.into_inner());
        let doc = self.explanation(&ex);
        xnpu::core::blob::write_atomically(path, doc.to_json().as_bytes()).map_err(|e| {
            Fail::invalid(format!(
                "{EP_NAME}: option \"explain_json\": cannot write {}: {e}",
                path.display()
            ))
        })
    }

    /// Every graph's answers as one explanation (partition indices numbered across graphs).
    fn explanation(&self, per_graph: &[GraphExplained]) -> Explanation {
        let mut doc = Explanation {
            schema: EXPLANATION_SCHEMA.to_string(),
            model: per_graph.first().map(|g| g.0.clone()).unwrap_or_default(),
            devices: self.devices.clone(),
            notes: self
                .notes
                .iter()
                .chain(
                    self.compile_notes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter(),
                )
                .cloned()
                .collect(),
            partitions: Vec::new(),
            nodes: Vec::new(),
        };
        for (_, parts, nodes) in per_graph {
            let base = doc.partitions.len();
            doc.partitions.extend(parts.iter().cloned().map(|mut p| {
                p.index += base;
                p
            }));
            doc.nodes.extend(nodes.iter().cloned().map(|mut n| {
                n.partition = n.partition.map(|k| k + base);
                n
            }));
        }
        doc
    }

    /// Compiles one fused group: from its EPContext node when it is one of ours, else from
    /// its nodes; and, when ONNX Runtime's compile API asks, the EPContext node holding it.
    fn compile_one(
        &self,
        graph: *const OrtGraph,
        fused: *const OrtNode,
    ) -> R<(Box<Compiled>, *mut OrtNode)> {
        let api = &self.api;
        let desc = api.read_graph(graph)?;
        let o = api.ort;
        // SAFETY (the closures): the fused node ONNX Runtime passed; arrays of the count read.
        let ins = crate::graph::list(
            api,
            "Node_GetInputs(fused)",
            |n| unsafe { (o.Node_GetNumInputs)(fused, n) },
            |p, n| unsafe { (o.Node_GetInputs)(fused, p, n) },
            ptr::null(),
        )?;
        let outs = crate::graph::list(
            api,
            "Node_GetOutputs(fused)",
            |n| unsafe { (o.Node_GetNumOutputs)(fused, n) },
            |p, n| unsafe { (o.Node_GetOutputs)(fused, p, n) },
            ptr::null(),
        )?;
        let inputs: Vec<String> = ins.iter().map(|&v| api.value_name(v)).collect::<R<_>>()?;
        let outputs: Vec<String> = outs.iter().map(|&v| api.value_name(v)).collect::<R<_>>()?;
        let mut fused_name = ptr::null();
        // SAFETY: as above.
        api.check(
            unsafe { (o.Node_GetName)(fused, &mut fused_name) },
            "Node_GetName",
        )?;
        // SAFETY: a string the node owns.
        let fused_name = unsafe { text(fused_name) };
        let ours =
            desc.nodes.len() == 1 && context_source(&desc.nodes[0]).as_deref() == Some(EP_NAME);
        let (session, node) = if ours {
            let session = self.load_context(graph, &desc, &inputs, &outputs, &fused_name)?;
            (session, ptr::null_mut())
        } else {
            let all: Vec<usize> = (0..desc.nodes.len()).collect();
            let proto = desc.to_model(&all, Some(&inputs), Some(&outputs));
            let model = import(&proto, &fused_name)?;
            match &self.context {
                None => {
                    let session = Session::new(model, self.session.clone())?;
                    self.prepare(&session, &desc, &inputs)?;
                    (session, ptr::null_mut())
                }
                Some(out) => {
                    let (session, blob) =
                        self.compile_for_context(model, &proto, &desc, &inputs)?;
                    let node = self.context_node(out, &fused_name, &inputs, &outputs, &blob)?;
                    (session, node)
                }
            }
        };
        let out_types: Vec<Option<DType>> = session
            .output_infos()
            .iter()
            .map(|i| i.ty.tensor().map(|t| t.dtype))
            .collect();
        // What xnpu's passes and partitioner made of the group, for the explanation.
        let per: Vec<String> = session
            .plan()
            .nodes_per_backend()
            .into_iter()
            .map(|(b, n)| format!("{b} {n}"))
            .collect();
        self.compile_notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "{fused_name}: {}; nodes per device: {}",
                session.optimization_report(),
                per.join(", ")
            ));
        let compiled = Box::new(Compiled {
            base: OrtNodeComputeInfo {
                ort_version_supported: 23,
                CreateState: create_state,
                Compute: compute,
                ReleaseState: release_state,
            },
            api: self.api,
            session,
            name: fused_name,
            inputs: inputs.len(),
            out_types,
        });
        Ok((compiled, node))
    }

    /// Compiles now, for the static input shapes ONNX Runtime declares, what the first run
    /// would compile (static-shape devices compile per shape).
    fn prepare(&self, session: &Session, desc: &GraphDesc, inputs: &[String]) -> R<usize> {
        let dims: Vec<(&str, Vec<usize>)> = inputs
            .iter()
            .filter_map(|n| {
                let (_, t) = desc.inputs.iter().find(|(k, _)| k == n)?;
                let d = t.as_ref()?.dims.as_ref()?;
                let known: Option<Vec<usize>> = d
                    .iter()
                    .map(|d| match d {
                        crate::graph::Dim::Known(k) => usize::try_from(*k).ok(),
                        _ => None,
                    })
                    .collect();
                Some((n.as_str(), known?))
            })
            .collect();
        let dims: Vec<(&str, &[usize])> = dims.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        Ok(session.prepare(&dims)?)
    }

    /// What the compiled artifacts of a group are valid for: this xnpu, the devices with the
    /// builds of their libraries and drivers, and the compile options.
    fn compat(&self) -> Vec<(&'static str, String)> {
        let (available, _) = xnpu::registry::everything();
        let details: Vec<String> = self
            .devices
            .iter()
            .map(|d| {
                let detail = available
                    .iter()
                    .find(|a| a.id == *d)
                    .map(|a| a.detail.clone())
                    .unwrap_or_default();
                format!("{d} [{detail}]")
            })
            .collect();
        vec![
            ("xnpu", env!("CARGO_PKG_VERSION").to_string()),
            ("devices", details.join("; ")),
            ("soc", std::env::var("XNPU_QNN_SOC").unwrap_or_default()),
            // What the vendor compilers were asked (not where their cache lies).
            (
                "compile",
                format!(
                    "threads {:?}, precision {:?}, performance {:?}",
                    self.session.compile.threads,
                    self.session.compile.precision,
                    self.session.compile.performance
                ),
            ),
        ]
    }

    /// Compiles a group with its vendor caches in a folder of its own, and packs the group
    /// (its ONNX) with what the compile left there into an EPContext blob.
    fn compile_for_context(
        &self,
        model: xnpu::graph::Model,
        proto: &xnpu::graph::onnx::proto::ModelProto,
        desc: &GraphDesc,
        inputs: &[String],
    ) -> R<(Session, Vec<u8>)> {
        use prost::Message;
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xnpu-epcontext-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Fail::ep(format!("cannot make {}: {e}", dir.display())))?;
        let mut options = self.session.clone();
        options.compile.cache = CompileCache::Dir(dir.clone());
        let session = Session::new(model, options)
            .map_err(Fail::from)
            .and_then(|s| {
                self.prepare(&s, desc, inputs)?;
                Ok(s)
            });
        let files = context::files_in(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let session = session?;
        let compat = self.compat();
        let compat: Vec<(&str, &str)> = compat.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok((
            session,
            context::pack(&proto.encode_to_vec(), &compat, &files),
        ))
    }

    /// The EPContext node for a group: the blob embedded, or written beside the compiled
    /// model and named.
    fn context_node(
        &self,
        out: &ContextOut,
        name: &str,
        inputs: &[String],
        outputs: &[String],
        blob: &[u8],
    ) -> R<*mut OrtNode> {
        let api = &self.api;
        let stored: Vec<u8> = if out.embed {
            blob.to_vec()
        } else {
            let model = out.model_path.as_ref().ok_or_else(|| {
                Fail::invalid(
                    "EPContext in a file needs ep.context_file_path (the compiled model's path)",
                )
            })?;
            let file = format!(
                "{}_{}.xnpu",
                model
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("model"),
                name
            );
            let path = model
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(&file);
            xnpu::core::blob::write_atomically(&path, blob)
                .map_err(|e| Fail::ep(format!("cannot write {}: {e}", path.display())))?;
            file.into_bytes()
        };
        let mut attrs = Vec::new();
        let make =
            |n: &str, data: *const c_void, len: usize, t: OrtOpAttrType| -> R<*mut OrtOpAttr> {
                let len = i32::try_from(len).map_err(|_| {
                    Fail::ep(format!("an EPContext blob of {len} bytes is over 2 GiB"))
                })?;
                let n = cstring(n);
                let mut a = ptr::null_mut();
                // SAFETY: `data` holds what `t` and `len` say; ONNX Runtime copies it.
                let s = unsafe { (api.ort.CreateOpAttr)(n.as_ptr(), data, len, t, &mut a) };
                api.check(s, "CreateOpAttr")?;
                Ok(a)
            };
        let one = 1i64;
        let embed = i64::from(out.embed);
        let result = (|| -> R<*mut OrtNode> {
            let int = OrtOpAttrType::ORT_OP_ATTR_INT;
            let string = OrtOpAttrType::ORT_OP_ATTR_STRING;
            attrs.push(make("main_context", (&one as *const i64).cast(), 1, int)?);
            attrs.push(make("embed_mode", (&embed as *const i64).cast(), 1, int)?);
            attrs.push(make(
                "ep_cache_context",
                stored.as_ptr().cast(),
                stored.len(),
                string,
            )?);
            attrs.push(make(
                "source",
                EP_NAME.as_ptr().cast(),
                EP_NAME.len(),
                string,
            )?);
            attrs.push(make(
                "partition_name",
                name.as_ptr().cast(),
                name.len(),
                string,
            )?);
            let c = |v: &[String]| v.iter().map(|s| cstring(s)).collect::<Vec<_>>();
            let (ins, outs) = (c(inputs), c(outputs));
            let ip: Vec<*const c_char> = ins.iter().map(|s| s.as_ptr()).collect();
            let op: Vec<*const c_char> = outs.iter().map(|s| s.as_ptr()).collect();
            let (opn, dom, nn) = (
                cstring(context::OP),
                cstring(context::DOMAIN),
                cstring(name),
            );
            let mut node = ptr::null_mut();
            // SAFETY: strings and arrays alive for the call; the node takes the attributes
            // (and nulls their slots).
            let s = unsafe {
                (api.editor.CreateNode)(
                    opn.as_ptr(),
                    dom.as_ptr(),
                    nn.as_ptr(),
                    ip.as_ptr(),
                    ip.len(),
                    op.as_ptr(),
                    op.len(),
                    attrs.as_mut_ptr(),
                    attrs.len(),
                    &mut node,
                )
            };
            api.check(s, "CreateNode(EPContext)")?;
            Ok(node)
        })();
        for a in attrs.into_iter().filter(|a| !a.is_null()) {
            // SAFETY: attributes CreateNode did not take (it nulls those it takes).
            unsafe { (api.ort.ReleaseOpAttr)(a) };
        }
        result
    }

    /// A group from its EPContext node: the vendor artifacts back in a cache folder, the
    /// group compiled from its ONNX against them (which builds nothing when they fit).
    fn load_context(
        &self,
        graph: *const OrtGraph,
        desc: &GraphDesc,
        inputs: &[String],
        outputs: &[String],
        fused_name: &str,
    ) -> R<Session> {
        use prost::Message;
        let nd = &desc.nodes[0];
        let attr = |name: &str| {
            nd.attributes
                .as_ref()
                .ok()
                .and_then(|a| a.iter().find(|a| a.name == name))
        };
        let bad = |why: String| Fail::invalid(format!("EPContext node \"{}\": {why}", nd.name));
        let stored = attr("ep_cache_context").ok_or_else(|| bad("no ep_cache_context".into()))?;
        let embed = attr("embed_mode").map(|a| a.i).unwrap_or(1);
        let bytes: Vec<u8> = if embed == 1 {
            stored.s.to_vec()
        } else {
            let file = String::from_utf8_lossy(&stored.s).into_owned();
            if !std::path::Path::new(&file)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
            {
                return Err(bad(format!(
                    "the blob file \"{file}\" is not a name beside the model"
                )));
            }
            let mut mp = ptr::null();
            // SAFETY: the graph ONNX Runtime passed; the path is a string it owns.
            let s = unsafe { (self.api.ort.Graph_GetModelPath)(graph, &mut mp) };
            self.api.check(s, "Graph_GetModelPath")?;
            // SAFETY: NULL or a string alive for the call (os_char is char on Linux).
            let model = unsafe { text(mp.cast()) };
            let dir = std::path::Path::new(&model)
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_default();
            let path = dir.join(&file);
            xnpu::core::blob::read_file(&path, 1 << 40)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?
        };
        let compat = self.compat();
        let compat_ref: Vec<(&str, &str)> = compat.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (onnx, artifacts) = context::unpack(&bytes, &compat_ref)
            .map_err(|e| bad(format!("{e}; compile the model again")))?;
        let proto = xnpu::graph::onnx::proto::ModelProto::decode(onnx)
            .map_err(|e| bad(format!("its graph is not ONNX: {e}")))?;
        // The group's inputs and outputs as this fused node orders them.
        let mut proto = proto;
        if let Some(g) = proto.graph.as_mut() {
            let reorder = |list: &mut Vec<xnpu::graph::onnx::proto::ValueInfoProto>,
                           names: &[String]|
             -> R<()> {
                let mut out = Vec::with_capacity(names.len());
                for n in names {
                    let k = list
                        .iter()
                        .position(|v| v.name == *n)
                        .ok_or_else(|| bad(format!("its graph has no value \"{n}\"")))?;
                    out.push(list[k].clone());
                }
                *list = out;
                Ok(())
            };
            reorder(&mut g.input, inputs)?;
            reorder(&mut g.output, outputs)?;
        }
        // The group compiles under the name it had when the blob was made (vendor caches key
        // on the graph, its name included); this fused node's name comes from this model.
        let name = attr("partition_name")
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
            .unwrap_or_else(|| fused_name.to_string());
        let model = import(&proto, &name)?;
        let note = |s: String| {
            self.api
                .log(self.logger, OrtLoggingLevel::ORT_LOGGING_LEVEL_INFO, &s);
            self.compile_notes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(s);
        };
        match artifacts {
            Ok(files) => {
                // Unpacked below the session's compile cache (xnpu's default one unless the
                // cache_dir option names another), one folder per blob.
                let root = match &self.session.compile.cache {
                    CompileCache::Off => None,
                    c => c.dir_for("epcontext"),
                }
                .unwrap_or_else(|| std::env::temp_dir().join("xnpu-epcontext"));
                let dir = root.join(context::digest(&bytes));
                context::write_files(&dir, &files).map_err(|e| {
                    Fail::ep(format!(
                        "cannot unpack EPContext artifacts into {}: {e}",
                        dir.display()
                    ))
                })?;
                let before = context::files_in(&dir).len();
                let mut options = self.session.clone();
                options.compile.cache = CompileCache::Dir(dir.clone());
                let session = Session::new(model, options)?;
                self.prepare(&session, desc, inputs)?;
                let compiles = context::files_in(&dir).len().saturating_sub(before);
                note(format!(
                    "{fused_name}: from its EPContext blob, {} compiled file(s) reused, {compiles} compile(s)",
                    files.len()
                ));
                Ok(session)
            }
            Err(why) => {
                let msg = format!(
                    "{EP_NAME}: EPContext node \"{}\": its compiled artifacts are {why}; compiling the group again",
                    nd.name
                );
                self.api.log(
                    self.logger,
                    OrtLoggingLevel::ORT_LOGGING_LEVEL_WARNING,
                    &msg,
                );
                note(format!(
                    "{fused_name}: EPContext artifacts {why}: compiled again"
                ));
                let session = Session::new(model, self.session.clone())?;
                self.prepare(&session, desc, inputs)?;
                Ok(session)
            }
        }
    }
}

/// Kahn's order of nodes by their predecessors (stable: ready nodes in index order).
fn topological(preds: &[Vec<usize>]) -> Vec<usize> {
    let n = preds.len();
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut succ = vec![Vec::new(); n];
    for (i, p) in preds.iter().enumerate() {
        for &q in p {
            succ[q].push(i);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&i| indeg[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &succ[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.push(std::cmp::Reverse(s));
            }
        }
    }
    // A cycle (not a valid ONNX graph) leaves nodes out: append them so every node is placed.
    if order.len() < n {
        let placed: HashSet<usize> = order.iter().copied().collect();
        order.extend((0..n).filter(|i| !placed.contains(i)));
    }
    order
}

unsafe extern "system" fn get_capability(
    this: *mut OrtEp,
    graph: *const OrtGraph,
    info: *mut OrtEpGraphSupportInfo,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our EP.
    let ep = unsafe { this_ep(this) };
    guarded(&ep.api, "GetCapability", || {
        if graph.is_null() || info.is_null() {
            return Err(Fail::invalid("GetCapability: NULL graph or support info"));
        }
        ep.get_capability(graph, info)
    })
}

unsafe extern "system" fn compile(
    this: *mut OrtEp,
    graphs: *const *const OrtGraph,
    fused_nodes: *const *const OrtNode,
    count: usize,
    infos: *mut *mut OrtNodeComputeInfo,
    ep_context_nodes: *mut *mut OrtNode,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our EP.
    let ep = unsafe { this_ep(this) };
    guarded(&ep.api, "Compile", || {
        if count > 0 && (graphs.is_null() || fused_nodes.is_null() || infos.is_null()) {
            return Err(Fail::invalid("Compile: NULL arrays"));
        }
        let mut done: Vec<(Box<Compiled>, *mut OrtNode)> = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: ONNX Runtime's arrays of `count` graphs and fused nodes.
            let (g, n) = unsafe { (*graphs.add(i), *fused_nodes.add(i)) };
            done.push(ep.compile_one(g, n).map_err(|f| {
                Fail::new(
                    f.code,
                    format!(
                        "{EP_NAME}: compiling fused node {i} on {}: {}",
                        ep.devices.join(","),
                        f.message
                    ),
                )
            })?);
        }
        let wants_context = ep.context.is_some() && !ep_context_nodes.is_null();
        for (i, (c, node)) in done.into_iter().enumerate() {
            // SAFETY: `count` slots of ONNX Runtime's arrays; each box given back in
            // ReleaseNodeComputeInfos, each EPContext node owned by ONNX Runtime from here.
            unsafe {
                *infos.add(i) = Box::into_raw(c).cast();
                if wants_context {
                    *ep_context_nodes.add(i) = node;
                }
            }
        }
        ep.write_explanation()
    })
}

unsafe extern "system" fn release_node_compute_infos(
    _this: *mut OrtEp,
    infos: *mut *mut OrtNodeComputeInfo,
    count: usize,
) {
    if infos.is_null() {
        return;
    }
    for i in 0..count {
        // SAFETY: the array we filled in `compile`, each box given back once.
        let p = unsafe { *infos.add(i) };
        if !p.is_null() {
            // SAFETY: as above.
            drop(unsafe { Box::from_raw(p.cast::<Compiled>()) });
        }
    }
}

/// A fused node compiled into an xnpu session.
#[repr(C)]
pub struct Compiled {
    base: OrtNodeComputeInfo,
    api: Api,
    session: Session,
    name: String,
    inputs: usize,
    out_types: Vec<Option<DType>>,
}

/// ONNX Runtime's input buffer, borrowed for one `Compute` (see the SAFETY note there).
struct Borrowed {
    ptr: *const u8,
    len: usize,
}

// SAFETY: a read-only view of memory ONNX Runtime keeps unchanged for the whole Compute call.
unsafe impl Send for Borrowed {}
// SAFETY: as above.
unsafe impl Sync for Borrowed {}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `len` readable bytes at `ptr` for as long as this lives (within Compute).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Compiled {
    fn compute(&self, ctx: *mut OrtKernelContext) -> R<()> {
        let api = &self.api;
        let o = api.ort;
        let mut n = 0usize;
        // SAFETY: ONNX Runtime's kernel context for this call.
        api.check(
            unsafe { (o.KernelContext_GetInputCount)(ctx, &mut n) },
            "KernelContext_GetInputCount",
        )?;
        if n != self.inputs {
            return Err(Fail::ep(format!(
                "{}: {n} inputs, {} expected",
                self.name, self.inputs
            )));
        }
        let mut args = Vec::with_capacity(n);
        for i in 0..n {
            let mut v = ptr::null();
            // SAFETY: as above; `v` is borrowed from the context.
            api.check(
                unsafe { (o.KernelContext_GetInput)(ctx, i, &mut v) },
                "KernelContext_GetInput",
            )?;
            if v.is_null() {
                args.push(None);
                continue;
            }
            // SAFETY: a live input value for the call.
            let (elem, shape, data) = unsafe { api.run_input(v) }?;
            let dtype = xnpu::graph::onnx::types::dtype(elem).map_err(Fail::from)?;
            let t = match data {
                TensorData::Strings(v) => Tensor::from_strings(shape, v),
                TensorData::Bytes(bytes) => {
                    // Zero-copy: the tensor views ONNX Runtime's buffer. SAFETY of the borrow:
                    // the buffer stays valid and unchanged until Compute returns, and the tensor
                    // and every value made from it are dropped before then (outputs are copied
                    // out below).
                    let data = Bytes::from_owner(Borrowed {
                        ptr: bytes.as_ptr(),
                        len: bytes.len(),
                    });
                    Tensor::from_bytes(dtype, shape, data)
                }
            };
            args.push(Some(Value::Tensor(t.map_err(Fail::from)?)));
        }
        let outs = self.session.run_positional(args).map_err(Fail::from)?;
        for (j, v) in outs.into_iter().enumerate() {
            let Value::Tensor(t) = v else {
                return Err(Fail::new(
                    OrtErrorCode::ORT_NOT_IMPLEMENTED,
                    format!("{}: output {j} is not a tensor", self.name),
                ));
            };
            if let Some(Some(want)) = self.out_types.get(j) {
                if *want != t.dtype() {
                    return Err(Fail::ep(format!(
                        "{}: output {j} is {}, the graph declares {want}",
                        self.name,
                        t.dtype()
                    )));
                }
            }
            let dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            let mut out = ptr::null_mut();
            // SAFETY: the context of this call; ONNX Runtime allocates output j of these dims.
            let s =
                unsafe { (o.KernelContext_GetOutput)(ctx, j, dims.as_ptr(), dims.len(), &mut out) };
            api.check(s, "KernelContext_GetOutput")?;
            if t.dtype() == DType::String {
                let strings = t.strings().map_err(Fail::from)?;
                let c: Vec<CString> = strings.iter().map(|s| cstring(s)).collect();
                let ptrs: Vec<*const c_char> = c.iter().map(|s| s.as_ptr()).collect();
                // SAFETY: the output just allocated with as many elements; the strings
                // outlive the call, which copies them.
                let s = unsafe { (o.FillStringTensor)(out, ptrs.as_ptr(), ptrs.len()) };
                api.check(s, "FillStringTensor")?;
                continue;
            }
            let src = t.raw_bytes();
            if src.is_empty() {
                continue;
            }
            let mut dst: *mut c_void = ptr::null_mut();
            // SAFETY: the output just allocated.
            api.check(
                unsafe { (o.GetTensorMutableData)(out, &mut dst) },
                "GetTensorMutableData",
            )?;
            let mut size = 0usize;
            // SAFETY: as above.
            api.check(
                unsafe { (o.GetTensorSizeInBytes)(out, &mut size) },
                "GetTensorSizeInBytes",
            )?;
            if dst.is_null() || size != src.len() {
                return Err(Fail::ep(format!(
                    "{}: output {j} holds {size} bytes, xnpu made {}",
                    self.name,
                    src.len()
                )));
            }
            // SAFETY: `size` writable bytes at `dst` (ONNX Runtime's buffer), equal to the
            // source's length; the two do not overlap (ours is xnpu's memory or an input's).
            unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst.cast::<u8>(), size) };
        }
        Ok(())
    }
}

/// # Safety
/// `p` is a compute info this library made.
unsafe fn compiled<'a>(p: *const OrtNodeComputeInfo) -> &'a Compiled {
    // SAFETY: `OrtNodeComputeInfo` is the first field of the repr(C) `Compiled`.
    unsafe { &*p.cast::<Compiled>() }
}

unsafe extern "system" fn create_state(
    this: *mut OrtNodeComputeInfo,
    _context: *mut OrtNodeComputeContext,
    state: *mut *mut c_void,
) -> OrtStatusPtr {
    // The compiled session is the state: one per fused node, shared by concurrent runs.
    if !state.is_null() {
        // SAFETY: ONNX Runtime's out-pointer.
        unsafe { *state = this.cast() };
    }
    OrtStatusPtr(ptr::null_mut())
}

unsafe extern "system" fn compute(
    this: *mut OrtNodeComputeInfo,
    _state: *mut c_void,
    context: *mut OrtKernelContext,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our compute info.
    let c = unsafe { compiled(this) };
    guarded(&c.api, "Compute", || c.compute(context))
}

unsafe extern "system" fn release_state(_this: *mut OrtNodeComputeInfo, _state: *mut c_void) {}
