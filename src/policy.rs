//! Device policy: which backends a session uses, in which order of preference.
//!
//! `SessionOptions::devices(Policy)`, the `XNPU_DEVICES` environment variable and the
//! CLI's `--devices` all take the same syntax: a policy name (`prefer-npu`, `prefer-gpu`,
//! `cpu-only`) or a comma-separated list of device ids (`openvino:npu,cpu`), where an id is a
//! backend's name (built in, or from a plugin; a plugin backend whose name a built-in one
//! already has is `plugin:<name>`), or `table:FILE.json` (the CPU backend restricted by a
//! capability table).

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use crate::devices::Device;

use xnpu_backend_cpu::CpuBackend;
use xnpu_core::{Error, Result};
use xnpu_graph::backend::{Backend, CapabilityTable, DeviceKind};

/// Which devices a session may use, in which order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// NPUs first, then GPUs, then the CPU; whatever is available (the default).
    #[default]
    PreferNpu,
    /// GPUs first, then NPUs, then the CPU.
    PreferGpu,
    /// The built-in CPU backend only.
    CpuOnly,
    /// Exactly these devices, in this order; one that is not available is an error.
    Explicit(Vec<String>),
}

impl FromStr for Policy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Policy> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "" | "prefer-npu" | "npu" | "auto" => Policy::PreferNpu,
            "prefer-gpu" | "gpu" => Policy::PreferGpu,
            "cpu-only" => Policy::CpuOnly,
            _ => Policy::Explicit(
                t.split(',')
                    .map(|d| d.trim().to_string())
                    .filter(|d| !d.is_empty())
                    .collect(),
            ),
        })
    }
}

impl Policy {
    /// The policy of `XNPU_DEVICES`, if set.
    pub fn from_env() -> Result<Option<Policy>> {
        match std::env::var("XNPU_DEVICES") {
            Ok(v) => v
                .parse()
                .map(Some)
                .map_err(|e: Error| e.context("XNPU_DEVICES")),
            Err(_) => Ok(None),
        }
    }

    /// Whether a device may be replaced by the next one when it fails (not for an
    /// explicit list: the user asked for those devices).
    pub fn allows_fallback(&self) -> bool {
        !matches!(self, Policy::Explicit(_))
    }
}

/// A backend a session can use, under its device id.
#[derive(Clone)]
pub struct Available {
    pub id: String,
    pub backend: Arc<dyn Backend>,
    /// What drives it, for `xnpu devices` (library, version, the device's own name).
    pub detail: String,
}

/// The backends this process can use, and notes on plugins that were skipped: discovered
/// once per process, then shared by every session.
pub fn available() -> (&'static [Available], &'static [String]) {
    static FOUND: OnceLock<(Vec<Available>, Vec<String>)> = OnceLock::new();
    let (list, notes) = FOUND.get_or_init(discover_available);
    (list, notes)
}

/// What discovery found on this machine, read once per process (sessions consult it when
/// a policy falls back or an explicit device is missing).
fn discovered() -> &'static [Device] {
    static DEVICES: OnceLock<Vec<Device>> = OnceLock::new();
    DEVICES.get_or_init(crate::devices::devices)
}

/// The built-in CPU backend and every loadable plugin's default backend. Plugins that fail
/// to load or to create their backend are returned as notes, not errors.
pub fn discover_available() -> (Vec<Available>, Vec<String>) {
    let mut found = vec![Available {
        id: "cpu".into(),
        backend: Arc::new(CpuBackend::new()),
        detail: "xnpu's reference CPU backend".into(),
    }];
    let mut notes = Vec::new();
    #[cfg(feature = "openvino")]
    openvino_backends(&mut found, &mut notes);
    for (path, plugin) in crate::plugins::discover() {
        // The QNN plugin would open libQnnHtp.so in every process (40 ms, a line on
        // stdout); the built-in QNN backend is the same code, created on demand.
        #[cfg(feature = "qnn")]
        if plugin.as_ref().is_ok_and(|p| p.name() == "qnn") {
            continue;
        }
        let backend = plugin.and_then(|p| p.create_backend(""));
        match backend {
            Ok(b) => {
                let name = b.name().to_string();
                let id = if found.iter().any(|a| a.id == name) {
                    format!("plugin:{name}")
                } else {
                    name
                };
                found.push(Available {
                    id,
                    backend: Arc::new(b),
                    detail: format!("plugin {}", path.display()),
                });
            }
            Err(e) => notes.push(format!("skipped {}: {e}", path.display())),
        }
    }
    (found, notes)
}

/// One backend per device OpenVINO lists (`openvino:cpu`, `openvino:npu`, ...), when its
/// library is found. `XNPU_OPENVINO_CONFIG` (`KEY=VALUE,...`) adds OpenVINO properties to
/// every compile.
#[cfg(feature = "openvino")]
fn openvino_backends(found: &mut Vec<Available>, notes: &mut Vec<String>) {
    use xnpu_backend_openvino::{find_library, OpenVino, OpenVinoBackend};
    let explicit = std::env::var_os("XNPU_OPENVINO_LIB").is_some();
    let path = match find_library() {
        Ok(p) => p,
        // Not installed: `xnpu devices` says where it looked; no note on every session.
        Err(e) => {
            if explicit {
                notes.push(format!("openvino: {e}"));
            }
            return;
        }
    };
    let config = match std::env::var("XNPU_OPENVINO_CONFIG") {
        Ok(text) => match OpenVinoBackend::parse_config(&text) {
            Ok(c) => c,
            Err(e) => {
                notes.push(format!("openvino: XNPU_OPENVINO_CONFIG: {e}"));
                return;
            }
        },
        Err(_) => Vec::new(),
    };
    let ov = match OpenVino::open_at(&path) {
        Ok(ov) => Arc::new(ov),
        Err(e) => {
            notes.push(format!("openvino: {e}"));
            return;
        }
    };
    let devices = match ov.devices() {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!("openvino: {e}"));
            return;
        }
    };
    for d in devices {
        match OpenVinoBackend::listed(ov.clone(), &d.name) {
            Ok(b) => {
                let driver = d
                    .driver_version
                    .as_ref()
                    .map(|v| format!(", driver {v}"))
                    .unwrap_or_default();
                found.push(Available {
                    id: b.name().to_string(),
                    detail: format!(
                        "OpenVINO {} device {}: {}{driver} ({})",
                        ov.version(),
                        d.name,
                        d.full_name,
                        ov.library().display()
                    ),
                    backend: Arc::new(b.with_config(config.clone())),
                });
            }
            Err(e) => notes.push(format!("openvino {}: {e}", d.name)),
        }
    }
}

/// The QNN backend (`qnn:htp-sim`, Qualcomm's HTP simulator on x86_64; `qnn:htp` on Arm),
/// created on first call and then shared: opening libQnnHtp.so costs about 40 ms and prints a
/// line on stdout, so it is opened only when a policy names a `qnn:` device, for prefer-npu
/// on Arm, and for `xnpu devices`. The error says where the library was looked for.
///
/// `XNPU_QNN_SOC` (a number, 0 for none) sets the HTP SoC model; the default on the
/// simulator is `DEFAULT_SIM_SOC` (fp32 computes as fp16, like the device), on Arm none.
#[cfg(feature = "qnn")]
pub fn qnn() -> std::result::Result<&'static Available, &'static str> {
    static QNN: OnceLock<std::result::Result<Available, String>> = OnceLock::new();
    QNN.get_or_init(create_qnn).as_ref().map_err(String::as_str)
}

/// The HTP SoC model of `XNPU_QNN_SOC`, or the default (`DEFAULT_SIM_SOC` on the x86_64
/// simulator, none on Arm).
#[cfg(feature = "qnn")]
pub fn qnn_soc() -> Result<u32> {
    match std::env::var("XNPU_QNN_SOC") {
        Ok(v) => v.trim().parse().map_err(|_| {
            Error::invalid_input(format!(
                "XNPU_QNN_SOC={v} is not a number (an HTP SoC model, 0 for none)"
            ))
        }),
        Err(_) if cfg!(target_arch = "x86_64") => Ok(xnpu_backend_qnn::DEFAULT_SIM_SOC),
        Err(_) => Ok(0),
    }
}

#[cfg(feature = "qnn")]
fn create_qnn() -> std::result::Result<Available, String> {
    use xnpu_backend_qnn::{find_library, Qnn, QnnBackend, QnnLibrary};
    let soc = qnn_soc().map_err(|e| e.to_string())?;
    let path = find_library("libQnnHtp.so").map_err(|e| e.to_string())?;
    let lib = Arc::new(QnnLibrary::open(&path).map_err(|e| e.to_string())?);
    let build = lib.build_id().unwrap_or_else(|e| format!("unknown ({e})"));
    let provider = lib
        .providers()
        .iter()
        .find(|p| p.backend_id == lib.backend_id())
        .map(|p| {
            let v =
                |v: xnpu_backend_qnn::ffi::Version| format!("{}.{}.{}", v.major, v.minor, v.patch);
            format!(
                "{} (core API {}, backend API {})",
                p.name,
                v(p.core),
                v(p.backend)
            )
        })
        .unwrap_or_else(|| format!("backend id {}", lib.backend_id()));
    let q = Qnn::new(lib, soc).map_err(|e| e.to_string())?;
    let backend = QnnBackend::new(Arc::new(q));
    let soc_text = if soc == 0 {
        "no SoC model".to_string()
    } else {
        format!("SoC model {soc}")
    };
    let what = if backend.kind() == DeviceKind::Npu {
        "the Hexagon NPU".to_string()
    } else if soc == 0 {
        "Qualcomm's HTP simulator, running on the CPU (not an NPU), exact fp32".to_string()
    } else {
        "Qualcomm's HTP simulator, running on the CPU (not an NPU), fp32 computed as fp16 \
         like the device"
            .to_string()
    };
    Ok(Available {
        id: backend.name().to_string(),
        detail: format!(
            "QNN {provider}, build {build}, {soc_text}: {what} ({})",
            path.display()
        ),
        backend: Arc::new(backend),
    })
}

/// What discovery says about a device id that is not available, for the error message.
fn discovery_says(id: &str) -> Option<String> {
    discovered()
        .iter()
        .find(|d| device_id(d).eq_ignore_ascii_case(id))
        .map(status_line)
}

// What the policy reads of a discovered device.
fn device_id(d: &Device) -> String {
    d.id()
}
fn status_line(d: &Device) -> String {
    if d.hint.is_empty() {
        d.status.label().to_string()
    } else {
        format!("{} — {}", d.status.label(), d.hint)
    }
}
/// NPU rows (not the CPU, not OpenVINO's CPU device, not the QNN simulator).
fn is_accelerator(d: &Device) -> bool {
    d.name == "npu" || d.name == "htp"
}

/// Backends in order of preference, and notes on what the policy fell back from.
pub struct Resolved {
    pub backends: Vec<Arc<dyn Backend>>,
    pub notes: Vec<String>,
}

/// The backends of `policy`, in order, and notes on what it fell back from.
pub fn resolve(policy: &Policy) -> Result<Resolved> {
    let (backends, notes) = resolve_inner(policy)?;
    Ok(Resolved { backends, notes })
}

type BackendsAndNotes = (Vec<Arc<dyn Backend>>, Vec<String>);

fn resolve_inner(policy: &Policy) -> Result<BackendsAndNotes> {
    let (avail, notes) = available();
    let mut notes = notes.to_vec();
    let cpu = || -> Arc<dyn Backend> { Arc::new(CpuBackend::new()) };
    match policy {
        Policy::CpuOnly => Ok((vec![cpu()], notes)),
        Policy::PreferNpu | Policy::PreferGpu => {
            let order = |k: DeviceKind| match (policy, k) {
                (Policy::PreferNpu, DeviceKind::Npu) | (Policy::PreferGpu, DeviceKind::Gpu) => 0,
                (_, DeviceKind::Npu | DeviceKind::Gpu) => 1,
                (_, DeviceKind::Cpu) => 2,
            };
            // Accelerators from plugins, then the built-in CPU backend (other CPU plugins
            // would only duplicate it).
            let mut accel: Vec<&Available> = avail
                .iter()
                .filter(|a| a.backend.kind() != DeviceKind::Cpu)
                .collect();
            // The real HTP (never the x86_64 simulator, which is of CPU kind).
            #[cfg(all(feature = "qnn", target_arch = "aarch64"))]
            if *policy == Policy::PreferNpu {
                match qnn() {
                    Ok(a) if a.backend.kind() == DeviceKind::Npu => accel.push(a),
                    Ok(_) => {}
                    Err(e) => {
                        if std::env::var_os("XNPU_QNN_LIB_DIR").is_some() {
                            notes.push(format!("qnn: {e}"));
                        }
                    }
                }
            }
            accel.sort_by_key(|a| order(a.backend.kind()));
            let wanted = if *policy == Policy::PreferNpu {
                DeviceKind::Npu
            } else {
                DeviceKind::Gpu
            };
            if !accel.iter().any(|a| a.backend.kind() == wanted) {
                let why: Vec<String> = discovered()
                    .iter()
                    .filter(|d| is_accelerator(d) && !d.available())
                    .map(|d| format!("{}: {}", device_id(d), status_line(d)))
                    .collect();
                notes.push(format!(
                    "no {wanted} available, running on {}{}",
                    if accel.is_empty() {
                        "the cpu"
                    } else {
                        "what is"
                    },
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join("; "))
                    }
                ));
            }
            let mut list: Vec<Arc<dyn Backend>> = accel.iter().map(|a| a.backend.clone()).collect();
            list.push(cpu());
            Ok((list, notes))
        }
        Policy::Explicit(ids) => {
            if ids.is_empty() {
                return Err(Error::invalid_input("an empty device list"));
            }
            let mut list = Vec::new();
            for id in ids {
                if let Some(path) = id.strip_prefix("table:") {
                    list.push(
                        Arc::new(CpuBackend::with_table(CapabilityTable::load(Path::new(
                            path,
                        ))?)) as Arc<dyn Backend>,
                    );
                    continue;
                }
                match avail.iter().find(|a| a.id.eq_ignore_ascii_case(id)) {
                    Some(a) => list.push(a.backend.clone()),
                    #[cfg(feature = "qnn")]
                    None if id.to_ascii_lowercase().starts_with("qnn:") => match qnn() {
                        Ok(a) if a.id.eq_ignore_ascii_case(id) => list.push(a.backend.clone()),
                        Ok(a) => {
                            return Err(Error::invalid_input(format!(
                                "device \"{id}\" is not available: this machine's QNN backend \
                                 is {} ({})",
                                a.id, a.detail
                            )))
                        }
                        Err(e) => {
                            return Err(Error::invalid_input(format!(
                                "device \"{id}\" is not available: {e}"
                            )))
                        }
                    },
                    None => {
                        let known: Vec<&str> = avail.iter().map(|a| a.id.as_str()).collect();
                        let status = discovery_says(id)
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default();
                        return Err(Error::invalid_input(format!(
                            "device \"{id}\" is not available{status} (available: {})",
                            known.join(", ")
                        )));
                    }
                }
            }
            Ok((list, notes))
        }
    }
}
