//! The devices this machine can run on, and for each NPU family xnpu looks for, why it can or
//! cannot be used (`xnpu::devices()`, what `xnpu devices` prints).

use std::ffi::{c_char, CString};
use std::mem::{offset_of, size_of};
use std::ptr;

use xnpu::{Device, DeviceStatus};

use crate::args::{write_sized, Growable};
use crate::status::{c_string, guard, quiet, Call, XnpuStatus};

/// Whether a device can be used, and if not, why (`XnpuDeviceInfo::status`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XnpuDeviceStatus {
    /// Device, driver and library are all there.
    Available = 0,
    /// The device is there but its user-space library is not.
    LibraryMissing = 1,
    /// The hardware is there but no kernel driver drives it.
    DriverNotBound = 2,
    /// The device node exists but this process may not open it.
    NoPermission = 3,
    /// No such hardware on this machine.
    NotPresent = 4,
    /// The hardware cannot be used from here at all (WSL, wrong generation, …).
    Unsupported = 5,
}

/// One device, filled by `xnpu_device_list_get`. Set `struct_size = sizeof(XnpuDeviceInfo)`
/// before the call; the library writes what that size covers and sets `struct_size` to the
/// bytes it wrote. The strings belong to the list: valid until `xnpu_device_list_free`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XnpuDeviceInfo {
    pub struct_size: usize,
    /// The id a device policy takes (`cpu`, `openvino:npu`, `qnn:htp`).
    pub id: *const c_char,
    /// `cpu`, `openvino`, `xdna`, `qnn`.
    pub backend: *const c_char,
    /// The device within the backend: `cpu`, `npu`, `htp`, `htp-sim`.
    pub name: *const c_char,
    pub vendor: *const c_char,
    /// What was found (a CPU model, a PCI device with its ids), or what was looked for.
    pub device: *const c_char,
    /// ISA features, the PCI address, the accel node.
    pub details: *const c_char,
    /// The vendor library's path (and version), NULL when none was found.
    pub library: *const c_char,
    /// The kernel driver and its version, NULL when none.
    pub driver: *const c_char,
    /// The status in words: `available`, `library missing (3 paths tried)`, ….
    pub status_text: *const c_char,
    /// One line: what to do (or, for an available device, what it is).
    pub hint: *const c_char,
    /// An `XnpuDeviceStatus`.
    pub status: u32,
    /// 1 when `status` is available.
    pub available: u32,
}

// SAFETY: `#[repr(C)]`, begins with `struct_size: usize`; pointers and numbers only.
unsafe impl Growable for XnpuDeviceInfo {
    const NAME: &'static str = "XnpuDeviceInfo";
    const MIN_SIZE: usize = 96;
}

const _: () = {
    assert!(offset_of!(XnpuDeviceInfo, id) == 8);
    assert!(offset_of!(XnpuDeviceInfo, backend) == 16);
    assert!(offset_of!(XnpuDeviceInfo, name) == 24);
    assert!(offset_of!(XnpuDeviceInfo, vendor) == 32);
    assert!(offset_of!(XnpuDeviceInfo, device) == 40);
    assert!(offset_of!(XnpuDeviceInfo, details) == 48);
    assert!(offset_of!(XnpuDeviceInfo, library) == 56);
    assert!(offset_of!(XnpuDeviceInfo, driver) == 64);
    assert!(offset_of!(XnpuDeviceInfo, status_text) == 72);
    assert!(offset_of!(XnpuDeviceInfo, hint) == 80);
    assert!(offset_of!(XnpuDeviceInfo, status) == 88);
    assert!(offset_of!(XnpuDeviceInfo, available) == 92);
    assert!(size_of::<XnpuDeviceInfo>() == 96);
};

/// What discovery found, listed once. Opaque: made by `xnpu_devices`, read with
/// `xnpu_device_list_count` and `xnpu_device_list_get`, freed by `xnpu_device_list_free`.
pub struct XnpuDeviceList {
    devices: Vec<DeviceStrings>,
}

/// One device's strings, kept for the pointers of its `XnpuDeviceInfo`.
struct DeviceStrings {
    id: CString,
    backend: CString,
    name: CString,
    vendor: CString,
    device: CString,
    details: CString,
    library: Option<CString>,
    driver: Option<CString>,
    status_text: CString,
    hint: CString,
    status: XnpuDeviceStatus,
}

impl DeviceStrings {
    fn new(d: &Device) -> DeviceStrings {
        DeviceStrings {
            id: c_string(&d.id()),
            backend: c_string(d.backend),
            name: c_string(d.name),
            vendor: c_string(&d.vendor),
            device: c_string(&d.device),
            details: c_string(&d.details),
            library: d.library.as_ref().map(|l| c_string(&l.to_string())),
            driver: d.driver.as_deref().map(c_string),
            status_text: c_string(&d.status.to_string()),
            hint: c_string(&d.hint),
            status: match d.status {
                DeviceStatus::Available => XnpuDeviceStatus::Available,
                DeviceStatus::LibraryMissing { .. } => XnpuDeviceStatus::LibraryMissing,
                DeviceStatus::DriverNotBound => XnpuDeviceStatus::DriverNotBound,
                DeviceStatus::NoPermission => XnpuDeviceStatus::NoPermission,
                DeviceStatus::NotPresent => XnpuDeviceStatus::NotPresent,
                DeviceStatus::Unsupported { .. } => XnpuDeviceStatus::Unsupported,
            },
        }
    }

    fn info(&self) -> XnpuDeviceInfo {
        let opt = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        XnpuDeviceInfo {
            struct_size: size_of::<XnpuDeviceInfo>(),
            id: self.id.as_ptr(),
            backend: self.backend.as_ptr(),
            name: self.name.as_ptr(),
            vendor: self.vendor.as_ptr(),
            device: self.device.as_ptr(),
            details: self.details.as_ptr(),
            library: opt(&self.library),
            driver: opt(&self.driver),
            status_text: self.status_text.as_ptr(),
            hint: self.hint.as_ptr(),
            status: self.status as u32,
            available: u32::from(self.status == XnpuDeviceStatus::Available),
        }
    }
}

/// Looks for devices (the CPU, and every NPU family xnpu knows) and lists them in `*out`,
/// freed with `xnpu_device_list_free`.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_devices(out: *mut *mut XnpuDeviceList) -> *mut XnpuStatus {
    let call = Call("xnpu_devices");
    guard(call, || {
        // SAFETY: NULL or writable (this function's contract).
        let out = unsafe { call.out(out, "out") }?;
        *out = ptr::null_mut();
        let devices = xnpu::devices().iter().map(DeviceStrings::new).collect();
        *out = Box::into_raw(Box::new(XnpuDeviceList { devices }));
        Ok(())
    })
}

/// The number of devices in the list (0 for NULL).
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn xnpu_device_list_count(list: *const XnpuDeviceList) -> usize {
    // SAFETY: NULL or a live list (this function's contract).
    quiet(0, || {
        unsafe { list.as_ref() }.map_or(0, |l| l.devices.len())
    })
}

/// Fills `info` with device `index` of the list.
///
/// # Safety
/// `list` is NULL or a live list; `info` is NULL or an `XnpuDeviceInfo` whose `struct_size`
/// is set and whose bytes up to it are writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_device_list_get(
    list: *const XnpuDeviceList,
    index: usize,
    info: *mut XnpuDeviceInfo,
) -> *mut XnpuStatus {
    let call = Call("xnpu_device_list_get");
    guard(call, || {
        // SAFETY: NULL or valid pointers (this function's contract).
        let (l, size) = unsafe { (call.get(list, "list")?, call.out_size(info, "info")?) };
        let d = l.devices.get(index).ok_or_else(|| {
            call.invalid(format!(
                "index is {index}, but the list has {} devices",
                l.devices.len()
            ))
        })?;
        // SAFETY: `info` is writable for `size` bytes (this function's contract).
        unsafe { write_sized(info, d.info(), size) };
        Ok(())
    })
}

/// Frees a device list (NULL is ignored).
///
/// # Safety
/// `list` is NULL or a list from `xnpu_devices`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn xnpu_device_list_free(list: *mut XnpuDeviceList) {
    quiet((), || {
        if !list.is_null() {
            // SAFETY: made by `Box::into_raw` in `xnpu_devices`, freed once (the contract).
            drop(unsafe { Box::from_raw(list) });
        }
    })
}
