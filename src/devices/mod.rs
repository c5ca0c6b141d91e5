//! Device discovery: what this machine can run on, and for each NPU family xnpu looks for, why
//! it can or cannot be used and what to do about it.
//!
//! Discovery reads what the Linux kernel exposes (`/sys/class/accel`, `/sys/bus/pci/devices`,
//! `/dev/accel`, `/dev/fastrpc-*`, `/proc`), looks for the vendor libraries on disk without
//! loading them, and notices WSL. Every path is read below a root, `/` on the real machine
//! ([`Discovery::system`]) or a fixture tree in tests ([`Discovery::at`]).
//!
//! ```no_run
//! for d in xnpu::devices() {
//!     println!("{}:{} {} {}", d.backend, d.name, d.status, d.hint);
//! }
//! ```

mod cpu;
mod libs;
mod sys;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

pub use cpu::cpu_features;
use sys::{AccelNode, Access, NodeAccess, PciDev};

/// Whether a device can be used, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Device, driver and library are all there.
    Available,
    /// The device is there but the user-space library is not; `tried` lists every place looked.
    LibraryMissing { tried: Vec<PathBuf> },
    /// The hardware is on the PCI bus (or the SoC is known) but no kernel driver drives it.
    DriverNotBound,
    /// The device node exists but this process may not open it read-write.
    NoPermission,
    /// No such hardware on this machine.
    NotPresent,
    /// The hardware cannot be used from here at all (WSL, wrong generation, …).
    Unsupported { why: String },
}

impl DeviceStatus {
    pub fn is_available(&self) -> bool {
        matches!(self, DeviceStatus::Available)
    }

    /// A short label for tables: `available`, `library missing`, ….
    pub fn label(&self) -> &'static str {
        match self {
            DeviceStatus::Available => "available",
            DeviceStatus::LibraryMissing { .. } => "library missing",
            DeviceStatus::DriverNotBound => "driver not bound",
            DeviceStatus::NoPermission => "no permission",
            DeviceStatus::NotPresent => "not present",
            DeviceStatus::Unsupported { .. } => "unsupported",
        }
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceStatus::Unsupported { why } => write!(f, "unsupported ({why})"),
            DeviceStatus::LibraryMissing { tried } => {
                write!(f, "library missing ({} paths tried)", tried.len())
            }
            other => f.write_str(other.label()),
        }
    }
}

/// A vendor library found on disk (never loaded by discovery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    pub path: PathBuf,
    /// From the wheel's metadata or the SONAME, when that is cheap to read.
    pub version: Option<String>,
}

impl Library {
    fn at(path: PathBuf) -> Library {
        Library {
            path,
            version: None,
        }
    }

    fn versioned(mut self, f: fn(&Path) -> Option<String>) -> Library {
        self.version = f(&self.path);
        self
    }
}

impl fmt::Display for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(v) = &self.version {
            write!(f, " ({v})")?;
        }
        Ok(())
    }
}

/// One row of `xnpu devices`: a device xnpu can run on, or an NPU family it looked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// `cpu`, `openvino`, `xdna` or `qnn`.
    pub backend: &'static str,
    /// The device within the backend: `cpu`, `npu`, `htp`, `htp-sim`.
    pub name: &'static str,
    pub vendor: String,
    /// What was found: a CPU model, or a PCI device with its ids
    /// (`Intel Lunar Lake NPU [8086:643e]`); what would be looked for when nothing was.
    pub device: String,
    /// ISA features, the PCI address, the accel node: what a user checks next.
    pub details: String,
    pub library: Option<Library>,
    /// Kernel driver and its version (the module's, else the kernel release).
    pub driver: Option<String>,
    pub status: DeviceStatus,
    /// One line: what to do (or, for an available device, what it is).
    pub hint: String,
}

impl Device {
    /// The device id as `--devices` takes it (the registry's syntax): `backend:name`, e.g.
    /// `openvino:npu`, or just `backend` for a backend whose one device is named like it
    /// (`cpu`).
    pub fn id(&self) -> String {
        if self.backend == self.name {
            self.backend.to_string()
        } else {
            format!("{}:{}", self.backend, self.name)
        }
    }

    pub fn available(&self) -> bool {
        self.status.is_available()
    }

    /// The row as `xnpu devices --json` prints it (docs/cli-json.md).
    pub fn to_json(&self) -> serde_json::Value {
        let why = match &self.status {
            DeviceStatus::Unsupported { why } => Some(why.clone()),
            _ => None,
        };
        serde_json::json!({
            "id": self.id(),
            "backend": self.backend,
            "name": self.name,
            "device": self.device,
            "vendor": self.vendor,
            "status": self.status.label(),
            "available": self.available(),
            "unsupported_because": why,
            "library": self.library.as_ref().map(|l| l.path.display().to_string()),
            "library_version": self.library.as_ref().and_then(|l| l.version.clone()),
            "driver": self.driver,
            "details": self.details,
            "hint": self.hint,
        })
    }
}

/// The environment variables discovery reads.
const ENV_VARS: &[&str] = &[
    "XNPU_OPENVINO_LIB",
    "XNPU_SITE_PACKAGES",
    "XNPU_QNN_LIB_DIR",
    "XNPU_XRT_LIB",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "HOME",
    "LD_LIBRARY_PATH",
    "INTEL_OPENVINO_DIR",
    "OPENVINO_INSTALL_DIR",
    "QNN_SDK_ROOT",
    "XILINX_XRT",
];

/// Where and how to look. [`Discovery::system`] looks at this machine; [`Discovery::at`] at a
/// fixture tree laid out like `/` (`sys/…`, `dev/…`, `proc/…`, `usr/lib/…`), with no
/// environment, so that the outcome depends on the tree alone.
#[derive(Clone, Debug)]
pub struct Discovery {
    root: PathBuf,
    env: BTreeMap<String, OsString>,
    exe: Option<PathBuf>,
    arch: String,
    access: Access,
}

impl Discovery {
    /// This machine: root `/`, the process environment, the running executable (to find a
    /// `.venv` beside the repository it was built in), and device nodes probed by opening them.
    pub fn system() -> Discovery {
        let env = ENV_VARS
            .iter()
            .filter_map(|k| Some((k.to_string(), std::env::var_os(k)?)))
            .collect();
        Discovery {
            root: PathBuf::from("/"),
            env,
            exe: std::env::current_exe().ok(),
            arch: std::env::consts::ARCH.to_string(),
            access: Access::Open,
        }
    }

    /// A tree laid out like `/`. No environment is read; add what a test needs with
    /// [`Discovery::env`]. Device-node access is decided from owner, group and mode bits against
    /// the credentials in `<root>/proc/self/status` (uid 0 when absent), so that tests running as
    /// root can still produce `NoPermission`.
    pub fn at(root: impl Into<PathBuf>) -> Discovery {
        Discovery {
            root: root.into(),
            env: BTreeMap::new(),
            exe: None,
            arch: std::env::consts::ARCH.to_string(),
            access: Access::ModeBits,
        }
    }

    /// Sets (or overrides) an environment variable discovery reads, e.g. `XNPU_OPENVINO_LIB`.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Discovery {
        self.env.insert(key.to_string(), value.into());
        self
    }

    /// Pretends to run on another architecture (`x86_64`, `aarch64`): it decides whether the
    /// QNN HTP simulator row is shown and which QNN build counts for the real HTP.
    pub fn arch(mut self, arch: &str) -> Discovery {
        self.arch = arch.to_string();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn var(&self, key: &str) -> Option<&OsStr> {
        self.env.get(key).map(|v| v.as_os_str())
    }

    /// When this is WSL, the evidence (`/dev/dxg`, `/usr/lib/wsl/lib`, the kernel release).
    pub fn wsl(&self) -> Option<String> {
        let found = sys::wsl_evidence(&self.root);
        (!found.is_empty()).then(|| found.join(", "))
    }

    /// The driver column: `intel_vpu 1.0.0` from `sys/module/<name>/version`, else
    /// `intel_vpu (kernel 6.8.0)`.
    fn driver_label(&self, module: &str) -> String {
        match sys::module_version(&self.root, module) {
            Some(v) => format!("{module} {v}"),
            None => match sys::kernel_release(&self.root) {
                Some(k) => format!("{module} (kernel {k})"),
                None => module.to_string(),
            },
        }
    }

    /// Every row: the CPU, then each family xnpu looks for, found or not.
    pub fn devices(&self) -> Vec<Device> {
        let pci = sys::pci_devices(&self.root);
        let wsl = self.wsl();
        let openvino = self.find_openvino();
        let mut out = vec![cpu::device(&self.root, &self.arch)];
        if let Ok(lib) = &openvino {
            out.push(Device {
                backend: "openvino",
                name: "cpu",
                vendor: "Intel".into(),
                device: "OpenVINO CPU plugin".into(),
                details: String::new(),
                library: Some(lib.clone()),
                driver: None,
                status: DeviceStatus::Available,
                hint: "OpenVINO's CPU plugin: runs on this CPU, not an NPU (useful to test the \
                       OpenVINO backend)"
                    .into(),
            });
        }
        out.push(self.intel_npu(&pci, wsl.as_deref(), &openvino));
        out.push(self.amd_xdna(&pci, wsl.as_deref()));
        out.push(self.qualcomm_htp(wsl.as_deref()));
        if self.arch == "x86_64" {
            out.push(self.qnn_simulator());
        }
        out
    }
}

/// Every row on this machine ([`Discovery::system`]).
pub fn devices() -> Vec<Device> {
    Discovery::system().devices()
}

/// Why no NPU can be used under WSL (the evidence is in the WSL note of [`render`]).
const WSL_WHY: &str = "WSL: devices come through the Windows host (/dev/dxg)";

/// What a PCI-attached NPU family looks like.
struct Family {
    backend: &'static str,
    vendor: &'static str,
    vendor_id: u16,
    /// Kernel driver (the `driver` link's name and the module name).
    driver: &'static str,
    /// Known device ids and their names.
    ids: &'static [(u16, &'static str)],
    /// Which hardware has it, for `NotPresent`.
    hardware: &'static str,
    /// How to get the kernel driver bound.
    driver_hint: &'static str,
}

const INTEL_NPU: Family = Family {
    backend: "openvino",
    vendor: "Intel",
    vendor_id: 0x8086,
    driver: "intel_vpu",
    ids: &[
        (0x7d1d, "Intel Meteor Lake NPU"),
        (0xad1d, "Intel Arrow Lake NPU"),
        (0x643e, "Intel Lunar Lake NPU"),
        (0xb03e, "Intel Panther Lake NPU"),
        (0xfd3e, "Intel Wildcat Lake NPU"),
        (0xd71d, "Intel Nova Lake NPU"),
    ],
    hardware: "an Intel Core Ultra processor (Meteor Lake or newer)",
    driver_hint: "load the intel_vpu kernel driver (`sudo modprobe intel_vpu`; in mainline Linux \
                  since 6.3 for Meteor Lake, newer NPUs need newer kernels) and install the NPU \
                  firmware from linux-firmware",
};

const AMD_XDNA: Family = Family {
    backend: "xdna",
    vendor: "AMD",
    vendor_id: 0x1022,
    driver: "amdxdna",
    ids: &[
        (0x1502, "AMD XDNA 1 NPU (Phoenix/Hawk Point)"),
        (0x17f0, "AMD XDNA 2 NPU (Strix/Krackan)"),
    ],
    hardware: "an AMD Ryzen AI 300 series processor (Strix Point, Strix Halo or Krackan: XDNA 2)",
    driver_hint:
        "load the amdxdna kernel driver (`sudo modprobe amdxdna`; in mainline Linux since \
                  6.14, or the DKMS driver from github.com/amd/xdna-driver for 6.10+) and install \
                  the amdnpu firmware from linux-firmware",
};

fn pci_name(family: &Family, vendor: u16, device: u16, revision: Option<u8>) -> String {
    let name = family
        .ids
        .iter()
        .find(|(id, _)| *id == device)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("{} NPU", family.vendor));
    let name = match (vendor, device, revision) {
        (0x1022, 0x17f0, Some(0x10)) => name.replace("Strix/Krackan", "Strix Point"),
        (0x1022, 0x17f0, Some(0x11)) => name.replace("Strix/Krackan", "Strix Halo"),
        (0x1022, 0x17f0, Some(0x20)) => name.replace("Strix/Krackan", "Krackan"),
        _ => name,
    };
    format!("{name} [{vendor:04x}:{device:04x}]")
}

/// The device, driver and permission part of a PCI NPU family's status. With `true` the row is
/// `Available` so far and the library check comes next; with `false` the row is final.
fn probe_pci_family(
    d: &Discovery,
    f: &Family,
    pci: &[PciDev],
    wsl: Option<&str>,
) -> (Device, bool) {
    let row = Device {
        backend: f.backend,
        name: "npu",
        vendor: f.vendor.into(),
        device: format!("{} NPU ({} driver)", f.vendor, f.driver),
        details: String::new(),
        library: None,
        driver: None,
        status: DeviceStatus::NotPresent,
        hint: format!("needs {}; none found on this machine", f.hardware),
    };
    // A bound accelerator: /sys/class/accel/accelN whose device is driven by the family driver.
    let accels = sys::accel_nodes(&d.root);
    if let Some(a) = accels
        .iter()
        .find(|a| a.driver.as_deref() == Some(f.driver))
    {
        return probe_accel_node(d, f, a, row);
    }
    // The hardware on the PCI bus, without the family driver.
    if let Some(p) = pci
        .iter()
        .find(|p| p.vendor == f.vendor_id && f.ids.iter().any(|(id, _)| *id == p.device))
    {
        return (unbound_pci_device(d, f, p, row), false);
    }
    if wsl.is_some() {
        let row = Device {
            status: DeviceStatus::Unsupported {
                why: WSL_WHY.into(),
            },
            hint: "Linux NPU drivers cannot bind devices under WSL; run on Windows or on \
                   bare-metal Linux"
                .into(),
            ..row
        };
        return (row, false);
    }
    (row, false)
}

/// `row` for the family's accelerator node `a`: `Available` (and `true`) when this user may
/// open its /dev/accel node, else why not.
fn probe_accel_node(d: &Discovery, f: &Family, a: &AccelNode, mut row: Device) -> (Device, bool) {
    row.device = pci_name(
        f,
        a.vendor.unwrap_or(f.vendor_id),
        a.device.unwrap_or(0),
        a.revision,
    );
    row.driver = Some(d.driver_label(f.driver));
    row.details = format!("/dev/accel/{}", a.name);
    match d.access.check(&d.root, &a.node) {
        NodeAccess::Ok => {
            row.status = DeviceStatus::Available;
            (row, true)
        }
        NodeAccess::Denied => {
            row.status = DeviceStatus::NoPermission;
            row.hint = format!(
                "/dev/accel/{} is not readable and writable by this user: add the user to \
                 its group (usually `render`: `sudo usermod -aG render $USER`, then log in \
                 again) or add a udev rule",
                a.name
            );
            (row, false)
        }
        NodeAccess::Missing => {
            row.status = DeviceStatus::Unsupported {
                why: format!(
                    "the kernel lists {} but /dev/accel/{} does not exist",
                    a.name, a.name
                ),
            };
            row.hint = "check that devtmpfs and udev create /dev/accel nodes (a container \
                        needs /dev/accel passed through)"
                .into();
            (row, false)
        }
    }
}

/// `row` for the family's hardware `p` on the PCI bus with no accelerator node: bound to the
/// family driver without the accel subsystem, or not bound to it.
fn unbound_pci_device(d: &Discovery, f: &Family, p: &PciDev, mut row: Device) -> Device {
    row.device = pci_name(f, p.vendor, p.device, p.revision);
    row.details = format!("PCI {}", p.bdf);
    row.driver = p.driver.clone();
    if p.driver.as_deref() == Some(f.driver) {
        // Bound, yet no accel node: a kernel without the accel subsystem, or a failed probe.
        row.driver = Some(d.driver_label(f.driver));
        row.status = DeviceStatus::Unsupported {
            why: format!(
                "{} is bound to PCI {} but the kernel lists no /sys/class/accel device",
                f.driver, p.bdf
            ),
        };
        row.hint = "check `dmesg` for the driver's probe errors (firmware missing?) and                         that the kernel has CONFIG_DRM_ACCEL"
            .into();
        return row;
    }
    row.status = DeviceStatus::DriverNotBound;
    let bound = match &p.driver {
        Some(other) => format!("it is bound to {other}, not {}; ", f.driver),
        None => String::new(),
    };
    let kernel = sys::kernel_release(&d.root)
        .map(|k| format!(" (this kernel: {k})"))
        .unwrap_or_default();
    row.hint = format!("{bound}{}{kernel}", f.driver_hint);
    row
}

impl Discovery {
    fn intel_npu(&self, pci: &[PciDev], wsl: Option<&str>, openvino: &libs::Found) -> Device {
        let mut row = match probe_pci_family(self, &INTEL_NPU, pci, wsl) {
            (row, true) => row,
            (mut row, false) => {
                row.library = openvino.as_ref().ok().cloned();
                if row.status == DeviceStatus::NotPresent && openvino.is_err() {
                    row.hint.push_str(" (and OpenVINO: `pip install openvino`)");
                }
                return row;
            }
        };
        match openvino {
            Err(tried) => {
                row.status = DeviceStatus::LibraryMissing {
                    tried: tried.clone(),
                };
                row.hint = "install OpenVINO (`pip install openvino` in the active virtual \
                            environment) or set XNPU_OPENVINO_LIB to libopenvino_c.so.*"
                    .into();
            }
            Ok(lib) => {
                row.library = Some(lib.clone());
                let ov_dir = lib.path.parent();
                match self.find_level_zero(ov_dir) {
                    Ok(()) => {
                        row.hint = "Intel NPU through OpenVINO".into();
                    }
                    Err(tried) => {
                        row.status = DeviceStatus::LibraryMissing { tried };
                        row.hint = "OpenVINO's NPU plugin needs the Level Zero loader \
                                    (libze_loader.so.1, Debian package libze1) and Intel's NPU \
                                    user-mode driver (libze_intel_npu.so, from \
                                    github.com/intel/linux-npu-driver releases)"
                            .into();
                    }
                }
            }
        }
        row
    }

    fn amd_xdna(&self, pci: &[PciDev], wsl: Option<&str>) -> Device {
        let xrt = self.find_xrt();
        let mut row = match probe_pci_family(self, &AMD_XDNA, pci, wsl) {
            (row, true) => row,
            (mut row, false) => {
                row.library = xrt.ok();
                if row.device.contains("[1022:1502]") && row.status == DeviceStatus::DriverNotBound
                {
                    row.hint
                        .push_str("; note: this is XDNA 1, and xnpu's XDNA backend targets XDNA 2");
                }
                return row;
            }
        };
        if row.device.contains("[1022:1502]") {
            row.status = DeviceStatus::Unsupported {
                why: "XDNA 1 (Phoenix/Hawk Point); xnpu's XDNA backend targets XDNA 2".into(),
            };
            row.hint = "use the CPU, or an XDNA 2 machine (Ryzen AI 300 series)".into();
            row.library = xrt.ok();
            return row;
        }
        match xrt {
            Ok(lib) => {
                row.library = Some(lib);
                row.hint = "AMD XDNA 2 NPU through the amdxdna driver".into();
            }
            Err(tried) => {
                row.status = DeviceStatus::LibraryMissing { tried };
                row.hint = "install XRT 2.20 or newer with the amdxdna plugin (Debian/Ubuntu \
                            packages libxrt2 and libxrt-npu2, or AMD's packages in \
                            /opt/xilinx/xrt), or set XNPU_XRT_LIB to libxrt_coreutil.so.*"
                    .into();
            }
        }
        row
    }

    fn qualcomm_htp(&self, wsl: Option<&str>) -> Device {
        let mut row = Device {
            backend: "qnn",
            name: "htp",
            vendor: "Qualcomm".into(),
            device: "Hexagon NPU (HTP) via FastRPC".into(),
            details: String::new(),
            library: None,
            driver: None,
            status: DeviceStatus::NotPresent,
            hint: "needs a Qualcomm Snapdragon SoC with a Hexagon NPU (e.g. Snapdragon X Elite) \
                   running Linux with the fastrpc driver (/dev/fastrpc-cdsp)"
                .into(),
        };
        if self.arch == "x86_64" {
            row.hint
                .push_str("; on this x86_64 machine see qnn:htp-sim");
        }
        let nodes = sys::fastrpc_nodes(&self.root);
        let cdsp = nodes.iter().find(|(n, _)| n.starts_with("fastrpc-cdsp"));
        let Some((name, node)) = cdsp else {
            let qcom = sys::dt_compatible(&self.root)
                .into_iter()
                .find(|c| c.starts_with("qcom,"));
            if let Some(soc) = qcom {
                row.device = format!("Hexagon NPU ({soc})");
                row.status = DeviceStatus::DriverNotBound;
                row.hint = if nodes.is_empty() {
                    "no /dev/fastrpc-cdsp: load the fastrpc driver (`sudo modprobe fastrpc`) and \
                     make sure the compute DSP (CDSP) remoteproc and its firmware are up"
                        .into()
                } else {
                    format!(
                        "only {} found; the HTP sits behind the compute DSP (/dev/fastrpc-cdsp): \
                         enable the CDSP remoteproc and its firmware",
                        nodes
                            .iter()
                            .map(|(n, _)| format!("/dev/{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
            } else if wsl.is_some() {
                row.status = DeviceStatus::Unsupported {
                    why: WSL_WHY.into(),
                };
                row.hint = "Linux cannot reach the Hexagon NPU under WSL; run on Windows (QNN) or \
                            on bare-metal Linux"
                    .into();
            }
            return row;
        };
        row.details = format!("/dev/{name}");
        row.driver = Some(self.driver_label("fastrpc"));
        if self.access.check(&self.root, node) == NodeAccess::Denied {
            row.status = DeviceStatus::NoPermission;
            row.hint = format!(
                "/dev/{name} is not readable and writable by this user: add the user to its \
                 group or add a udev rule"
            );
            return row;
        }
        match self.find_qnn_htp(false) {
            Ok(lib) => {
                row.library = Some(lib);
                row.status = DeviceStatus::Available;
                row.hint = "Hexagon NPU through QNN (needs the matching libQnnHtpV*Stub/Skel \
                            next to libQnnHtp.so)"
                    .into();
            }
            Err(tried) => {
                row.status = DeviceStatus::LibraryMissing { tried };
                row.hint = "install Qualcomm's QAIRT/QNN SDK for this Arm machine and set \
                            QNN_SDK_ROOT, or set XNPU_QNN_LIB_DIR to the folder with libQnnHtp.so"
                    .into();
            }
        }
        row
    }

    fn qnn_simulator(&self) -> Device {
        let mut row = Device {
            backend: "qnn",
            name: "htp-sim",
            vendor: "Qualcomm".into(),
            device: "HTP simulator (runs on the CPU)".into(),
            details: String::new(),
            library: None,
            driver: None,
            status: DeviceStatus::Available,
            hint: "a CPU simulation of the Hexagon HTP, not an NPU: it checks QNN graphs and \
                   numerics; its timings mean nothing for a real NPU"
                .into(),
        };
        match self.find_qnn_htp(true) {
            Ok(lib) => row.library = Some(lib),
            Err(tried) => {
                row.status = DeviceStatus::LibraryMissing { tried };
                row.hint = "install the simulator with `pip install onnxruntime-qnn` in the \
                            active virtual environment, or set XNPU_QNN_LIB_DIR to its \
                            onnxruntime_qnn folder"
                    .into();
            }
        }
        row
    }
}

/// `xnpu devices` as text: an aligned table, then one hint line per row other than the CPU's,
/// the paths tried for each missing library, and a WSL note when this is WSL.
pub fn render(devices: &[Device], wsl: Option<&str>) -> String {
    let rows: Vec<[String; 5]> = devices
        .iter()
        .map(|d| {
            let mut lib_driver = Vec::new();
            if let Some(l) = &d.library {
                lib_driver.push(l.to_string());
            }
            if let Some(dr) = &d.driver {
                lib_driver.push(format!("driver {dr}"));
            }
            if !d.details.is_empty() {
                lib_driver.push(d.details.clone());
            }
            [
                d.id(),
                d.device.clone(),
                d.vendor.clone(),
                d.status.label().to_string(),
                lib_driver.join("; "),
            ]
        })
        .collect();
    let header = [
        "device",
        "name",
        "vendor",
        "status",
        "library / driver / details",
    ];
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    out.push_str(&line(header));
    out.push('\n');
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
        out.push('\n');
    }
    let notes: Vec<&Device> = devices.iter().filter(|d| d.backend != "cpu").collect();
    if !notes.is_empty() {
        out.push('\n');
    }
    for d in notes {
        let status = match &d.status {
            DeviceStatus::Unsupported { why } => format!(" ({why})"),
            _ => String::new(),
        };
        out.push_str(&format!("{}{status}: {}\n", d.id(), d.hint));
        if let DeviceStatus::LibraryMissing { tried } = &d.status {
            let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            out.push_str(&format!("    tried: {}\n", tried.join(", ")));
        }
    }
    if let Some(w) = wsl {
        out.push_str(&format!(
            "\nWSL detected ({w}): NPUs and GPUs come through the Windows host (/dev/dxg); Linux NPU \
             drivers cannot bind them\n"
        ));
    }
    out
}
