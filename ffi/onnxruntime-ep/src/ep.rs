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
}

/// The session option `key` of this EP, if set.
fn option(api: &Api, so: *const OrtSessionOptions, key: &str) -> R<Option<String>> {
    let full = cstring(&format!("{OPTION_PREFIX}{key}"));
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
    Ok(EpOptions {
        devices,
        session,
        explain_json,
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
    notes: Vec<String>,
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
            notes: resolved.notes,
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
                return desc
                    .nodes
                    .iter()
                    .map(|_| Err(self.everyone(ReasonCode::Other, &msg)))
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
            .map(|(nd, pre)| {
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
        if let Some(path) = &self.explain_json {
            let doc = self.explanation(&ex);
            write_atomically(path, doc.to_json().as_bytes()).map_err(|e| {
                Fail::invalid(format!(
                    "{EP_NAME}: option \"explain_json\": cannot write {}: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(())
    }

    /// Every graph's answers as one explanation (partition indices numbered across graphs).
    fn explanation(&self, per_graph: &[GraphExplained]) -> Explanation {
        let mut doc = Explanation {
            schema: EXPLANATION_SCHEMA.to_string(),
            model: per_graph.first().map(|g| g.0.clone()).unwrap_or_default(),
            devices: self.devices.clone(),
            notes: self.notes.clone(),
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

    fn compile_one(&self, graph: *const OrtGraph, fused: *const OrtNode) -> R<Box<Compiled>> {
        let api = &self.api;
        let desc = api.read_graph(graph)?;
        let o = api.ort;
        // SAFETY (the closures): the fused node ONNX Runtime passed; arrays of the count read.
        let ins = crate_list(
            api,
            "Node_GetInputs(fused)",
            |n| unsafe { (o.Node_GetNumInputs)(fused, n) },
            |p, n| unsafe { (o.Node_GetInputs)(fused, p, n) },
        )?;
        let outs = crate_list(
            api,
            "Node_GetOutputs(fused)",
            |n| unsafe { (o.Node_GetNumOutputs)(fused, n) },
            |p, n| unsafe { (o.Node_GetOutputs)(fused, p, n) },
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
        let all: Vec<usize> = (0..desc.nodes.len()).collect();
        let proto = desc.to_model(&all, Some(&inputs), Some(&outputs));
        let model = import(&proto, &fused_name)?;
        let session = Session::new(model, self.session.clone())?;
        let out_types: Vec<Option<DType>> = session
            .output_infos()
            .iter()
            .map(|i| i.ty.tensor().map(|t| t.dtype))
            .collect();
        Ok(Box::new(Compiled {
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
        }))
    }
}

fn crate_list<T: Copy>(
    api: &Api,
    what: &str,
    count: impl FnOnce(*mut usize) -> OrtStatusPtr,
    fill: impl FnOnce(*mut *const T, usize) -> OrtStatusPtr,
) -> R<Vec<*const T>> {
    let mut n = 0usize;
    api.check(count(&mut n), what)?;
    let mut v = vec![ptr::null(); n];
    if n > 0 {
        api.check(fill(v.as_mut_ptr(), n), what)?;
    }
    Ok(v)
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

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees half a file.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("xnpu"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
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
    _ep_context_nodes: *mut *mut OrtNode,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime passes our EP.
    let ep = unsafe { this_ep(this) };
    guarded(&ep.api, "Compile", || {
        if count > 0 && (graphs.is_null() || fused_nodes.is_null() || infos.is_null()) {
            return Err(Fail::invalid("Compile: NULL arrays"));
        }
        let mut done: Vec<Box<Compiled>> = Vec::with_capacity(count);
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
        for (i, c) in done.into_iter().enumerate() {
            // SAFETY: `count` slots of ONNX Runtime's array; each box given back in
            // ReleaseNodeComputeInfos.
            unsafe { *infos.add(i) = Box::into_raw(c).cast() };
        }
        Ok(())
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
            let (ti, shape, data) = unsafe { api.tensor_value(v) }?;
            let dtype = xnpu::graph::onnx::types::dtype(ti.elem_type).map_err(Fail::from)?;
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
