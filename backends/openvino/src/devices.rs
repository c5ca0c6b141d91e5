//! The devices an OpenVINO core lists (`CPU`, `GPU.0`, `NPU`) and their properties
//! (`FULL_DEVICE_NAME`, `SUPPORTED_PROPERTIES`, ...).

use std::ffi::{c_char, CStr};

use xnpu_core::Result;

use crate::ffi::{cstring, owned_string, OvCoreVersionList, OvDevices};
use crate::OpenVino;

/// One device OpenVINO reports.
#[derive(Clone, Debug, PartialEq)]
pub struct OvDevice {
    /// OpenVINO's name (`CPU`, `GPU`, `GPU.1`, `NPU`).
    pub name: String,
    pub full_name: String,
    /// The device driver's version, where OpenVINO reports one (`NPU_DRIVER_VERSION`).
    pub driver_version: Option<String>,
}

impl OpenVino {
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

    /// The plugins that serve `device`, each as `device: build (description)`
    /// (`CPU: 2026.4.1-22982-e213a147257-releases/2026/4 (openvino_intel_cpu_plugin)`),
    /// joined by `; `.
    pub fn plugin_versions(&self, device: &str) -> Result<String> {
        let d = cstring(device, "device name")?;
        let mut list = OvCoreVersionList {
            versions: std::ptr::null_mut(),
            size: 0,
        };
        let api = &self.api;
        // SAFETY: a live core, a NUL-terminated name and a valid out-struct.
        api.call(
            || format!("reading the plugin versions of {device}"),
            || unsafe {
                (api.ov_core_get_versions_by_device_name)(self.core, d.as_ptr(), &mut list)
            },
        )?;
        // SAFETY: NULL or a NUL-terminated string owned by `list`.
        let text = |p: *const c_char| unsafe {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        let mut out = Vec::with_capacity(list.size);
        for i in 0..list.size {
            // SAFETY: `size` entries owned by `list`.
            let v = unsafe { &*list.versions.add(i) };
            out.push(format!(
                "{}: {} ({})",
                text(v.device_name),
                text(v.version.build_number),
                text(v.version.description)
            ));
        }
        // SAFETY: `list` came from ov_core_get_versions_by_device_name; freed once.
        unsafe { (api.ov_core_versions_free)(&mut list) };
        Ok(out.join("; "))
    }
}
