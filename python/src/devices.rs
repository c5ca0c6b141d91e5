//! `xnpu.devices()`: the devices discovery finds, as rows for the Python `Device` dataclass,
//! and their table, drawn by the renderer of the CLI's `xnpu devices`
//! (`xnpu::devices::render`) from whatever rows the Python list holds.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::prelude::*;
use xnpu::{Device, DeviceStatus, Discovery, Library};

use crate::guard;

/// One device, as the fields of the Python `Device` dataclass in their order: `(backend,
/// name, vendor, device, status, hint, details, library, library_version, driver, tried,
/// why)`. `status` is the label (`available`, `library missing`, ...), `tried` the paths
/// looked at for a missing library, `why` the reason of an `unsupported` one.
type DeviceRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<PathBuf>,
    Option<String>,
    Option<String>,
    Vec<PathBuf>,
    String,
);

fn row(d: Device) -> DeviceRow {
    let (tried, why) = match d.status.clone() {
        DeviceStatus::LibraryMissing { tried } => (tried, String::new()),
        DeviceStatus::Unsupported { why } => (Vec::new(), why),
        _ => (Vec::new(), String::new()),
    };
    let (library, library_version) = match d.library {
        Some(l) => (Some(l.path), l.version),
        None => (None, None),
    };
    (
        d.backend.to_string(),
        d.name.to_string(),
        d.vendor,
        d.device,
        d.status.label().to_string(),
        d.hint,
        d.details,
        library,
        library_version,
        d.driver,
        tried,
        why,
    )
}

/// The status a label names (the inverse of `DeviceStatus::label`); one no status has is
/// shown as `unsupported`, with the label as the reason.
fn status(label: &str, tried: Vec<PathBuf>, why: String) -> DeviceStatus {
    match label {
        "available" => DeviceStatus::Available,
        "library missing" => DeviceStatus::LibraryMissing { tried },
        "driver not bound" => DeviceStatus::DriverNotBound,
        "no permission" => DeviceStatus::NoPermission,
        "not present" => DeviceStatus::NotPresent,
        "unsupported" => DeviceStatus::Unsupported { why },
        other => DeviceStatus::Unsupported {
            why: if why.is_empty() {
                other.to_string()
            } else {
                format!("{other}: {why}")
            },
        },
    }
}

/// `s` as a `&'static str`, which `Device` names its backend and device with. Each distinct
/// name is kept once for the life of the process: they are the few backends and device
/// names discovery gives (and whatever names a program puts in `Device`s of its own).
fn interned(s: &str) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.iter().find(|n| **n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.push(n);
    n
}

fn device(r: DeviceRow) -> Device {
    let (backend, name, vendor, dev, label, hint, details, library, version, driver, tried, why) =
        r;
    Device {
        backend: interned(&backend),
        name: interned(&name),
        vendor,
        device: dev,
        details,
        library: library.map(|path| Library { path, version }),
        driver,
        status: status(&label, tried, why),
        hint,
    }
}

/// The devices of this machine, and the evidence that this is WSL (None when it is not).
#[pyfunction]
pub fn _devices(py: Python<'_>) -> PyResult<(Vec<DeviceRow>, Option<String>)> {
    guard("devices()", || {
        let (found, wsl) = py.detach(|| {
            let d = Discovery::system();
            (d.devices(), d.wsl())
        });
        Ok((found.into_iter().map(row).collect(), wsl))
    })
}

/// The table `xnpu devices` prints, of these rows (as `_devices` gives them).
#[pyfunction]
#[pyo3(signature = (rows, wsl=None))]
pub fn _render_devices(rows: Vec<DeviceRow>, wsl: Option<String>) -> PyResult<String> {
    guard("devices() table", || {
        let devices: Vec<Device> = rows.into_iter().map(device).collect();
        Ok(xnpu::devices::render(&devices, wsl.as_deref()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_gives_back_the_device_it_was_made_of() {
        let d = Device {
            backend: "openvino",
            name: "npu",
            vendor: "Intel".into(),
            device: "Intel NPU".into(),
            details: "0000:00:0b.0".into(),
            library: Some(Library {
                path: "/usr/lib/libopenvino.so".into(),
                version: Some("2025.1".into()),
            }),
            driver: Some("intel_vpu 1.0".into()),
            status: DeviceStatus::LibraryMissing {
                tried: vec!["/a".into(), "/b".into()],
            },
            hint: "install it".into(),
        };
        assert_eq!(device(row(d.clone())), d);
        let odd = status("broken", Vec::new(), String::new());
        assert_eq!(
            odd,
            DeviceStatus::Unsupported {
                why: "broken".into()
            }
        );
        assert!(std::ptr::eq(interned("npu"), interned("npu")));
    }
}
