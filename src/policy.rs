//! Device policy: which backends a session uses, in which order of preference.
//!
//! `SessionOptions::devices(Policy)`, the `XNPU_DEVICES` environment variable and the
//! CLI's `--devices` all take the same syntax: a policy name (`prefer-npu`, `prefer-gpu`,
//! `cpu-only`) or a comma-separated list of device ids (`openvino:npu,cpu`) as `xnpu devices`
//! prints them (the syntax is the registry's, see [`crate::registry`]), or `table:FILE.json`
//! (the CPU backend restricted by a capability table). Backends come from the registry only.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use crate::devices::Device;
use crate::registry;

use xnpu_backend_cpu::CpuBackend;
use xnpu_core::{Error, Result};
use xnpu_graph::backend::{Available, Backend, CapabilityTable, DeviceKind};

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
    /// Exactly these devices, in this order; one that is not available is an error. `npu` and
    /// `gpu` stand for every available device of that kind (none is an error saying why).
    Explicit(Vec<String>),
}

impl FromStr for Policy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Policy> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "prefer-npu" | "auto" => Policy::PreferNpu,
            "prefer-gpu" => Policy::PreferGpu,
            "cpu-only" => Policy::CpuOnly,
            _ => {
                let ids: Vec<String> = t
                    .split(',')
                    .map(|d| d.trim().to_string())
                    .filter(|d| !d.is_empty())
                    .collect();
                if ids.is_empty() {
                    return Err(Error::invalid_input(format!(
                        "an empty device list: {SYNTAX}"
                    )));
                }
                Policy::Explicit(ids)
            }
        })
    }
}

/// What a device list may hold, for messages that refuse one.
const SYNTAX: &str = "give device ids as `xnpu devices` lists them (cpu, openvino:npu, \
     qnn:htp-sim), `npu` or `gpu` for any device of that kind, or a policy: prefer-npu, \
     prefer-gpu, cpu-only";

impl Policy {
    /// The policy of `XNPU_DEVICES`, if set.
    pub fn from_env() -> Result<Option<Policy>> {
        match std::env::var("XNPU_DEVICES") {
            Ok(v) if v.trim().is_empty() => Ok(None),
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

/// What discovery found on this machine, read once per process (sessions consult it when
/// a policy falls back or an explicit device is missing).
fn discovered() -> &'static [Device] {
    static DEVICES: OnceLock<Vec<Device>> = OnceLock::new();
    DEVICES.get_or_init(crate::devices::devices)
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
/// The kind of accelerator a discovered row is, if it is one (NPU rows: not the CPU, not
/// OpenVINO's CPU device, not the QNN simulator).
fn discovered_kind(d: &Device) -> Option<DeviceKind> {
    match d.name {
        "npu" | "htp" => Some(DeviceKind::Npu),
        "gpu" => Some(DeviceKind::Gpu),
        _ => None,
    }
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
    let (avail, notes) = registry::available();
    let notes = notes.to_vec();
    match policy {
        Policy::CpuOnly => Ok((vec![cpu()], notes)),
        Policy::PreferNpu => Ok(prefer(DeviceKind::Npu, avail, notes)),
        Policy::PreferGpu => Ok(prefer(DeviceKind::Gpu, avail, notes)),
        Policy::Explicit(ids) => explicit(ids, avail, notes),
    }
}

/// The reference CPU backend, the last resort of every preference policy.
fn cpu() -> Arc<dyn Backend> {
    Arc::new(CpuBackend::new())
}

/// Accelerators, `wanted` kind first, then the reference CPU backend (CPU-kind backends of
/// providers and plugins would only duplicate it). On-demand providers are opened when they
/// may offer the `wanted` kind here.
fn prefer(wanted: DeviceKind, avail: &[Available], mut notes: Vec<String>) -> BackendsAndNotes {
    let mut accel: Vec<Available> = avail
        .iter()
        .filter(|a| a.backend.kind() != DeviceKind::Cpu)
        .cloned()
        .collect();
    for offers in on_demand_offers(Some(wanted)) {
        accel.extend(
            offers
                .available
                .iter()
                .filter(|a| a.backend.kind() != DeviceKind::Cpu)
                .cloned(),
        );
        notes.extend(offers.notes.iter().cloned());
    }
    // Stable: within a kind, the registry's order.
    accel.sort_by_key(|a| u8::from(a.backend.kind() != wanted));
    if !accel.iter().any(|a| a.backend.kind() == wanted) {
        notes.push(no_accelerator_note(wanted, accel.is_empty()));
    }
    let mut list: Vec<Arc<dyn Backend>> = accel.into_iter().map(|a| a.backend).collect();
    list.push(cpu());
    (list, notes)
}

/// Why a preference policy runs without its kind of device: what discovery says of each
/// accelerator it looked for, one per line.
fn no_accelerator_note(wanted: DeviceKind, nothing: bool) -> String {
    let why: String = missing_of_kind(DeviceKind::Npu)
        .iter()
        .map(|line| format!("\n  {line}"))
        .collect();
    format!(
        "no {wanted} available, running on {}{}",
        if nothing { "the cpu" } else { "what is" },
        if why.is_empty() {
            String::new()
        } else {
            format!(":{why}")
        }
    )
}

/// Exactly the devices named, in order; one that is not available is an error saying why.
fn explicit(
    ids: &[String],
    avail: &[Available],
    mut notes: Vec<String>,
) -> Result<BackendsAndNotes> {
    if ids.is_empty() {
        return Err(Error::invalid_input(format!(
            "an empty device list: {SYNTAX}"
        )));
    }
    let mut list = Vec::new();
    // Why a wildcard found nothing: a note when the rest of the list runs, else the error.
    let mut none_of_kind: Option<String> = None;
    for id in ids {
        if let Some(path) = id.strip_prefix("table:") {
            let table = CapabilityTable::load(Path::new(path))?;
            list.push(Arc::new(CpuBackend::with_table(table)) as Arc<dyn Backend>);
            continue;
        }
        if let Some(kind) = kind_wildcard(id) {
            let found = of_kind(kind, avail);
            if found.is_empty() {
                let why = no_device_of_kind(kind);
                notes.push(why.clone());
                none_of_kind.get_or_insert(why);
            }
            list.extend(found);
            continue;
        }
        if let Some(a) = avail.iter().find(|a| a.id.eq_ignore_ascii_case(id)) {
            list.push(a.backend.clone());
            continue;
        }
        match registry::provider_of(id).filter(|p| p.on_demand()) {
            Some(p) => list.push(from_on_demand(id, registry::on_demand(p).as_ref())?),
            None => return Err(not_available(id, avail)),
        }
    }
    match none_of_kind {
        Some(why) if list.is_empty() => Err(Error::invalid_input(why)),
        _ => Ok((list, notes)),
    }
}

/// The kind `npu` or `gpu` stands for in a device list.
fn kind_wildcard(id: &str) -> Option<DeviceKind> {
    match id.to_ascii_lowercase().as_str() {
        "npu" => Some(DeviceKind::Npu),
        "gpu" => Some(DeviceKind::Gpu),
        _ => None,
    }
}

/// Every available device of `kind`, on-demand providers opened when they may offer it.
fn of_kind(kind: DeviceKind, avail: &[Available]) -> Vec<Arc<dyn Backend>> {
    let mut found: Vec<Arc<dyn Backend>> = avail
        .iter()
        .filter(|a| a.backend.kind() == kind)
        .map(|a| a.backend.clone())
        .collect();
    for offers in on_demand_offers(Some(kind)) {
        found.extend(
            offers
                .available
                .iter()
                .filter(|a| a.backend.kind() == kind)
                .map(|a| a.backend.clone()),
        );
    }
    found
}

/// What the on-demand providers (QNN) offer, opened here: those that may offer `kind`, or all.
fn on_demand_offers(kind: Option<DeviceKind>) -> Vec<Arc<xnpu_graph::backend::Offers>> {
    registry::providers()
        .iter()
        .filter(|p| p.on_demand() && kind.is_none_or(|k| p.may_offer(k)))
        .map(|p| registry::on_demand(*p))
        .collect()
}

/// What discovery says of each device of `kind` it looked for and did not find usable:
/// `openvino:npu: not present — needs ...`.
fn missing_of_kind(kind: DeviceKind) -> Vec<String> {
    discovered()
        .iter()
        .filter(|d| !d.available() && discovered_kind(d) == Some(kind))
        .map(|d| format!("{}: {}", d.id(), status_line(d)))
        .collect()
}

/// Why there is no device of `kind`: what discovery says of each it looked for.
fn no_device_of_kind(kind: DeviceKind) -> String {
    let why = missing_of_kind(kind);
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join("; "))
    };
    format!(
        "no {kind} is available{why}; `{kind},cpu` runs on the CPU when there is none, \
         `prefer-{kind}` falls back to what there is"
    )
}

/// Device `id` from an on-demand provider's offers, or why it is not among them.
fn from_on_demand(id: &str, offers: &xnpu_graph::backend::Offers) -> Result<Arc<dyn Backend>> {
    if let Some(a) = offers
        .available
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(id))
    {
        return Ok(a.backend.clone());
    }
    let why = match offers.available.first() {
        Some(a) => format!(
            "this machine's {} backend is {} ({})",
            family(id),
            a.id,
            a.detail
        ),
        None => offers
            .unavailable
            .iter()
            .chain(&offers.notes)
            .map(|n| n.strip_prefix(&format!("{}: ", family(id))).unwrap_or(n))
            .collect::<Vec<_>>()
            .first()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "it found nothing".into()),
    };
    Err(Error::invalid_input(format!(
        "device \"{id}\" is not available: {why}"
    )))
}

/// The error for an id no backend answers to: unknown, or what discovery says of it, and what
/// this machine has instead.
fn not_available(id: &str, avail: &[Available]) -> Error {
    let mut known: Vec<String> = avail.iter().map(|a| a.id.clone()).collect();
    for offers in on_demand_offers(None) {
        known.extend(offers.available.iter().map(|a| a.id.clone()));
    }
    let known = known.join(", ");
    let family_known = registry::provider_of(id).is_some()
        || discovered()
            .iter()
            .any(|d| family(&d.id()).eq_ignore_ascii_case(family(id)))
        || avail
            .iter()
            .any(|a| family(&a.id).eq_ignore_ascii_case(family(id)));
    if !family_known {
        return Error::invalid_input(format!(
            "unknown device \"{id}\": {SYNTAX} (this machine has: {known})"
        ));
    }
    match discovery_says(id) {
        Some(status) => Error::invalid_input(format!(
            "device \"{id}\" is not available: {status} (this machine has: {known})"
        )),
        None => Error::invalid_input(format!("no device \"{id}\": this machine has {known}")),
    }
}

/// The family part of a device id.
fn family(id: &str) -> &str {
    id.split(':').next().unwrap_or(id)
}
