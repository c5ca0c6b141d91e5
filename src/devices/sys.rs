//! What the Linux kernel exposes, read below a configurable root: PCI devices, accel nodes,
//! FastRPC nodes, WSL markers and the credentials of the process. Nothing here opens a device
//! except [`Access::Open`], which is what [`super::Discovery::system`] uses.

use std::fs;
use std::io::ErrorKind;
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A PCI function from `sys/bus/pci/devices/<bdf>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PciDev {
    pub bdf: String,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub revision: Option<u8>,
    /// The name of the bound driver (the last part of the `driver` link), if any.
    pub driver: Option<String>,
}

/// A compute accelerator from `sys/class/accel/accelN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccelNode {
    /// `accel0`, …
    pub name: String,
    pub driver: Option<String>,
    pub vendor: Option<u16>,
    pub device: Option<u16>,
    pub revision: Option<u8>,
    /// `dev/accel/accelN` below the root.
    pub node: PathBuf,
}

/// Parses `0x8086` (or `8086`) as hex.
pub(crate) fn parse_hex(s: &str) -> Option<u32> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u32::from_str_radix(s, 16).ok()
}

fn read_hex(path: &Path) -> Option<u32> {
    parse_hex(&fs::read_to_string(path).ok()?)
}

/// The name a `driver` symlink points at (`../../../bus/pci/drivers/intel_vpu` → `intel_vpu`).
/// The link may dangle (fixtures, or a driver directory that moved): only its text matters.
fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

/// Every PCI function below `root/sys/bus/pci/devices`.
pub(crate) fn pci_devices(root: &Path) -> Vec<PciDev> {
    sorted_entries(&root.join("sys/bus/pci/devices"))
        .into_iter()
        .filter_map(|(bdf, dir)| {
            Some(PciDev {
                vendor: read_hex(&dir.join("vendor"))? as u16,
                device: read_hex(&dir.join("device"))? as u16,
                class: read_hex(&dir.join("class")).unwrap_or(0),
                revision: read_hex(&dir.join("revision")).map(|r| r as u8),
                driver: link_name(&dir.join("driver")),
                bdf,
            })
        })
        .collect()
}

/// Every `accelN` below `root/sys/class/accel`, with its node under `root/dev/accel`.
pub(crate) fn accel_nodes(root: &Path) -> Vec<AccelNode> {
    sorted_entries(&root.join("sys/class/accel"))
        .into_iter()
        .filter(|(name, _)| name.starts_with("accel"))
        .map(|(name, dir)| {
            let dev = dir.join("device");
            AccelNode {
                driver: link_name(&dev.join("driver")),
                vendor: read_hex(&dev.join("vendor")).map(|v| v as u16),
                device: read_hex(&dev.join("device")).map(|v| v as u16),
                revision: read_hex(&dev.join("revision")).map(|r| r as u8),
                node: root.join("dev/accel").join(&name),
                name,
            }
        })
        .collect()
}

/// `dev/fastrpc-*` nodes (Qualcomm FastRPC: `fastrpc-cdsp`, `fastrpc-adsp-secure`, …), by name.
pub(crate) fn fastrpc_nodes(root: &Path) -> Vec<(String, PathBuf)> {
    sorted_entries(&root.join("dev"))
        .into_iter()
        .filter(|(name, _)| name.starts_with("fastrpc-"))
        .collect()
}

/// The version a kernel module reports in `sys/module/<name>/version`, if it has one.
pub(crate) fn module_version(root: &Path, module: &str) -> Option<String> {
    let v = fs::read_to_string(root.join("sys/module").join(module).join("version")).ok()?;
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// `proc/sys/kernel/osrelease`, trimmed.
pub(crate) fn kernel_release(root: &Path) -> Option<String> {
    let v = fs::read_to_string(root.join("proc/sys/kernel/osrelease")).ok()?;
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The device-tree `compatible` strings of the machine (Arm boards), if any.
pub(crate) fn dt_compatible(root: &Path) -> Vec<String> {
    [
        "proc/device-tree/compatible",
        "sys/firmware/devicetree/base/compatible",
    ]
    .iter()
    .find_map(|p| fs::read(root.join(p)).ok())
    .map(|bytes| {
        bytes
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    })
    .unwrap_or_default()
}

/// Evidence that this is WSL: `/dev/dxg`, `/usr/lib/wsl/lib`, or a Microsoft kernel release.
pub(crate) fn wsl_evidence(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if root.join("dev/dxg").exists() {
        found.push("/dev/dxg".to_string());
    }
    if root.join("usr/lib/wsl/lib").is_dir() {
        found.push("/usr/lib/wsl/lib".to_string());
    }
    if let Some(release) = kernel_release(root) {
        let lower = release.to_ascii_lowercase();
        if lower.contains("microsoft") || lower.contains("wsl") {
            found.push(format!("kernel {release}"));
        }
    }
    found
}

/// Who is asking: the effective uid, and the primary and supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl Credentials {
    /// Parses the `Uid:`, `Gid:` and `Groups:` lines of `/proc/<pid>/status` (the effective ids
    /// are the second column).
    pub fn parse(status: &str) -> Option<Credentials> {
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|t| t.parse::<u32>().ok())
                        .collect::<Vec<u32>>()
                })
        };
        let uid = *field("Uid:")?.get(1)?;
        let mut gids = Vec::new();
        if let Some(g) = field("Gid:").and_then(|g| g.get(1).copied()) {
            gids.push(g);
        }
        gids.extend(field("Groups:").unwrap_or_default());
        Some(Credentials { uid, gids })
    }

    /// Whether these credentials may open `meta` for reading and writing, from its owner, group
    /// and mode bits (uid 0 may open anything). ACLs are not looked at.
    #[cfg(unix)]
    pub fn may_read_write(&self, meta: &fs::Metadata) -> bool {
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        let bits = if meta.uid() == self.uid {
            mode >> 6
        } else if self.gids.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & 0o6 == 0o6
    }

    /// Without Unix mode bits, only the read-only flag says anything.
    #[cfg(not(unix))]
    pub fn may_read_write(&self, meta: &fs::Metadata) -> bool {
        !meta.permissions().readonly()
    }
}

/// How to decide whether a device node can be opened read-write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Open it (`O_RDWR`) and close it again: the kernel's answer, ACLs and all. Used on the
    /// real machine.
    Open,
    /// Compare owner, group and mode bits with the credentials in `<root>/proc/self/status`
    /// (uid 0 when the file is absent). Used on fixture trees, so that a test running as root
    /// can still exercise the `NoPermission` path.
    ModeBits,
}

/// The outcome of probing one device node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeAccess {
    Ok,
    Missing,
    Denied,
}

impl Access {
    pub fn check(&self, root: &Path, node: &Path) -> NodeAccess {
        let Ok(meta) = fs::metadata(node) else {
            return NodeAccess::Missing;
        };
        match self {
            Access::Open => match fs::OpenOptions::new().read(true).write(true).open(node) {
                Ok(_) => NodeAccess::Ok,
                Err(e) if e.kind() == ErrorKind::PermissionDenied => NodeAccess::Denied,
                // Busy or a driver-level error: not a permission problem; the backend will say.
                Err(_) => NodeAccess::Ok,
            },
            Access::ModeBits => {
                let creds = fs::read_to_string(root.join("proc/self/status"))
                    .ok()
                    .and_then(|s| Credentials::parse(&s))
                    .unwrap_or(Credentials {
                        uid: 0,
                        gids: vec![0],
                    });
                if creds.may_read_write(&meta) {
                    NodeAccess::Ok
                } else {
                    NodeAccess::Denied
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        assert_eq!(parse_hex("0x8086\n"), Some(0x8086));
        assert_eq!(parse_hex("7d1d"), Some(0x7d1d));
        assert_eq!(parse_hex("0x120000"), Some(0x120000));
        assert_eq!(parse_hex("zz"), None);
    }

    #[test]
    fn credentials() {
        let status = "Name:\tcat\nUid:\t1000\t1001\t1000\t1000\nGid:\t100\t105\t100\t100\nGroups:\t24 44 992 \n";
        let c = Credentials::parse(status).unwrap();
        assert_eq!(c.uid, 1001);
        assert_eq!(c.gids, vec![105, 24, 44, 992]);
        assert_eq!(Credentials::parse("Name: x\n"), None);
    }

    #[cfg(unix)]
    #[test]
    fn mode_bits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("accel0");
        fs::write(&f, "").unwrap();
        let meta = |mode| {
            fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
            fs::metadata(&f).unwrap()
        };
        let owner = fs::metadata(&f).unwrap().uid();
        let group = fs::metadata(&f).unwrap().gid();
        let stranger = Credentials {
            uid: owner.wrapping_add(12345),
            gids: vec![group.wrapping_add(12345)],
        };
        let member = Credentials {
            uid: owner.wrapping_add(12345),
            gids: vec![group],
        };
        let root = Credentials {
            uid: 0,
            gids: vec![0],
        };
        assert!(!stranger.may_read_write(&meta(0o660)));
        assert!(member.may_read_write(&meta(0o660)));
        assert!(!member.may_read_write(&meta(0o640)));
        assert!(stranger.may_read_write(&meta(0o666)));
        assert!(root.may_read_write(&meta(0o000)));
    }
}
