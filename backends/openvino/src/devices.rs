//! The devices an OpenVINO core lists (`CPU`, `GPU.0`, `NPU`) and their properties
//! (`FULL_DEVICE_NAME`, `SUPPORTED_PROPERTIES`, ...).

use std::ffi::{c_char, CStr};

use xnpu_core::Result;

use crate::ffi::{cstring, owned_string, OvDevices};
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
}
