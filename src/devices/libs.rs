//! Finding the vendor libraries without loading them: an env override, installed Python wheels
//! (virtual environments, the user's and the system's site-packages) and the system library
//! directories. Every place looked at is recorded, so that a miss can say where it looked.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Discovery, Library};

/// The result of a search: the library, or every path (or pattern) tried.
pub(crate) type Found = Result<Library, Vec<PathBuf>>;

/// Whether `name` is `prefix` or `prefix` followed by a version suffix (`libfoo.so.2641`).
fn matches(name: &str, prefix: &str) -> bool {
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The newest file in `dir` named like `prefix` (`libopenvino_c.so` matches
/// `libopenvino_c.so.2641`). Records `dir/prefix*` in `tried` when none is there.
fn find_in(dir: &Path, prefix: &str, tried: &mut Vec<PathBuf>) -> Option<PathBuf> {
    let mut hits: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| matches(&e.file_name().to_string_lossy(), prefix))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    hits.sort();
    let hit = hits.pop();
    if hit.is_none() {
        tried.push(dir.join(format!("{prefix}*")));
    }
    hit
}

/// `<base>/lib/python3*/site-packages` for each base; when there is none, records
/// `<base>/lib/python3*/site-packages/<wanted>` as tried.
fn site_packages_of(base: &Path, wanted: &str, out: &mut Vec<PathBuf>, tried: &mut Vec<PathBuf>) {
    let lib = base.join("lib");
    let mut found = false;
    let mut pythons: Vec<PathBuf> = fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    pythons.sort();
    for p in pythons {
        for leaf in ["site-packages", "dist-packages"] {
            if p.join(leaf).is_dir() {
                out.push(p.join(leaf));
                found = true;
            }
        }
    }
    if !found {
        tried.push(lib.join("python3*/site-packages").join(wanted));
    }
}

/// The version of an installed distribution, from `<site>/<dist>-*.dist-info/METADATA`.
fn wheel_version(site: &Path, dist: &str) -> Option<String> {
    let prefix = format!("{dist}-");
    let info = fs::read_dir(site).ok()?.flatten().find(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.starts_with(&prefix) && n.ends_with(".dist-info")
    })?;
    let meta = fs::read_to_string(info.path().join("METADATA")).ok()?;
    meta.lines()
        .find_map(|l| l.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
}

/// OpenVINO's SONAME suffix encodes the release: `.so.2641` is 2026.4.1.
fn openvino_version_from_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let digits = name.rsplit_once(".so.")?.1;
    let d: Vec<char> = digits.chars().collect();
    (d.len() == 4 && d.iter().all(char::is_ascii_digit))
        .then(|| format!("20{}{}.{}.{}", d[0], d[1], d[2], d[3]))
}

/// A generic SONAME version: `libxrt_coreutil.so.2.13.0` → `2.13.0`.
fn soname_version(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let v = name.rsplit_once(".so.")?.1;
    (!v.is_empty()).then(|| v.to_string())
}

impl Discovery {
    /// A path below the discovery root (`/usr/lib` → `<root>/usr/lib`).
    pub(crate) fn rooted(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// Directories of every `:`-separated entry of an env var (absolute paths, not rooted).
    fn env_dirs(&self, key: &str) -> Vec<PathBuf> {
        self.var(key)
            .map(|v| std::env::split_paths(v).collect())
            .unwrap_or_default()
    }

    /// Every site-packages directory worth looking in: those of `XNPU_SITE_PACKAGES` (set by
    /// the `xnpu` Python package to its interpreter's), `VIRTUAL_ENV`, `CONDA_PREFIX`, a `.venv`
    /// beside any ancestor of the executable (`repo/target/release/xnpu` → `repo/.venv`), the
    /// user's `~/.local`, and the system's Python directories below the root (`/usr/lib/python3*`
    /// covers Debian's `python3/dist-packages`).
    pub(crate) fn site_packages(&self, wanted: &str, tried: &mut Vec<PathBuf>) -> Vec<PathBuf> {
        let mut bases: Vec<PathBuf> = Vec::new();
        for key in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
            if let Some(v) = self.var(key) {
                bases.push(PathBuf::from(v));
            }
        }
        if let Some(exe) = &self.exe {
            for dir in exe.ancestors().skip(1) {
                let venv = dir.join(".venv");
                if venv.is_dir() {
                    bases.push(venv);
                    break;
                }
            }
        }
        if let Some(home) = self.var("HOME") {
            bases.push(Path::new(home).join(".local"));
        }
        bases.push(self.rooted("/usr"));
        bases.push(self.rooted("/usr/local"));
        let mut out: Vec<PathBuf> = self
            .env_dirs("XNPU_SITE_PACKAGES")
            .into_iter()
            .filter(|d| d.is_dir())
            .collect();
        let mut seen = Vec::new();
        for b in bases {
            if seen.contains(&b) {
                continue;
            }
            site_packages_of(&b, wanted, &mut out, tried);
            seen.push(b);
        }
        xnpu_core::locate::unique(out)
    }

    /// The system library directories below the root, then `LD_LIBRARY_PATH`.
    fn system_lib_dirs(&self, extra: &[&str]) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = extra.iter().map(|d| self.rooted(d)).collect();
        let triplet = format!("/usr/lib/{}-linux-gnu", self.arch);
        for d in [triplet.as_str(), "/usr/lib", "/usr/local/lib", "/lib"] {
            dirs.push(self.rooted(d));
        }
        dirs.extend(self.env_dirs("LD_LIBRARY_PATH"));
        dirs
    }

    /// An explicit override (`XNPU_*`): a file, or a directory to look in. It is authoritative:
    /// when it names nothing usable, the search stops there so that the mistake shows.
    fn search_override(&self, key: &str, prefix: &str) -> Option<Found> {
        let path = PathBuf::from(self.var(key)?);
        if path.is_file() {
            return Some(Ok(Library::at(path)));
        }
        let mut tried = Vec::new();
        if path.is_dir() {
            if let Some(hit) = find_in(&path, prefix, &mut tried) {
                return Some(Ok(Library::at(hit)));
            }
        } else {
            tried.push(path);
        }
        Some(Err(tried))
    }

    /// `libopenvino_c.so*`: `XNPU_OPENVINO_LIB`, the `openvino` wheel, an OpenVINO archive
    /// (`INTEL_OPENVINO_DIR`, `OPENVINO_INSTALL_DIR`, `/opt/intel/openvino*`), system dirs.
    pub(crate) fn find_openvino(&self) -> Found {
        const LIB: &str = "libopenvino_c.so";
        if let Some(found) = self.search_override("XNPU_OPENVINO_LIB", LIB) {
            return found.map(|l| l.versioned(openvino_version_from_name));
        }
        let mut tried = Vec::new();
        for site in self.site_packages("openvino/libs/libopenvino_c.so*", &mut tried) {
            if let Some(hit) = find_in(&site.join("openvino/libs"), LIB, &mut tried) {
                let version = wheel_version(&site, "openvino");
                return Ok(Library {
                    version: version.or_else(|| openvino_version_from_name(&hit)),
                    path: hit,
                });
            }
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for key in ["INTEL_OPENVINO_DIR", "OPENVINO_INSTALL_DIR"] {
            if let Some(v) = self.var(key) {
                dirs.push(Path::new(v).join("runtime/lib/intel64"));
            }
        }
        let mut archives: Vec<PathBuf> = fs::read_dir(self.rooted("/opt/intel"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("openvino"))
            .map(|e| e.path().join("runtime/lib/intel64"))
            .collect();
        archives.sort();
        if archives.is_empty() {
            tried.push(self.rooted("/opt/intel/openvino*/runtime/lib/intel64"));
        }
        dirs.extend(archives);
        dirs.extend(self.system_lib_dirs(&[]));
        self.first_in(&dirs, LIB, tried, openvino_version_from_name)
    }

    /// The Level Zero loader and Intel's NPU user-mode driver, which OpenVINO's NPU plugin
    /// needs next to the kernel driver. `ov_dir` is where libopenvino_c was found.
    pub(crate) fn find_level_zero(&self, ov_dir: Option<&Path>) -> Result<(), Vec<PathBuf>> {
        let mut tried = Vec::new();
        let mut dirs: Vec<PathBuf> = ov_dir.into_iter().map(Path::to_path_buf).collect();
        dirs.extend(self.system_lib_dirs(&[]));
        let mut ok = true;
        for lib in ["libze_loader.so", "libze_intel_npu.so"] {
            let mut t = Vec::new();
            if !dirs.iter().any(|d| find_in(d, lib, &mut t).is_some()) {
                ok = false;
                tried.extend(t);
            }
        }
        if ok {
            Ok(())
        } else {
            Err(tried)
        }
    }

    /// `libQnnHtp.so` for the real Hexagon (`sim == false`: an Arm build from the QAIRT SDK or
    /// the system) or for the x86_64 HTP simulator (`sim == true`: the `onnxruntime-qnn` wheel or
    /// the SDK's `x86_64-linux-clang` folder).
    pub(crate) fn find_qnn_htp(&self, sim: bool) -> Found {
        const LIB: &str = "libQnnHtp.so";
        if let Some(found) = self.search_override("XNPU_QNN_LIB_DIR", LIB) {
            return found;
        }
        let mut tried = Vec::new();
        if sim || self.arch != "x86_64" {
            // The wheel's libraries are built for the machine it was installed on.
            for site in self.site_packages("onnxruntime_qnn/libQnnHtp.so*", &mut tried) {
                let dir = site.join("onnxruntime_qnn");
                if let Some(hit) = find_in(&dir, LIB, &mut tried) {
                    return Ok(Library {
                        path: hit,
                        version: qnn_wheel_version(&site, &dir),
                    });
                }
            }
        }
        let mut dirs = Vec::new();
        if let Some(sdk) = self.var("QNN_SDK_ROOT") {
            let lib = Path::new(sdk).join("lib");
            if sim {
                dirs.push(lib.join("x86_64-linux-clang"));
            } else {
                let mut arm: Vec<PathBuf> = fs::read_dir(&lib)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("aarch64"))
                    .map(|e| e.path())
                    .collect();
                arm.sort();
                if arm.is_empty() {
                    tried.push(lib.join("aarch64-*"));
                }
                dirs.extend(arm);
            }
        }
        if !sim {
            dirs.extend(self.system_lib_dirs(&[]));
        }
        self.first_in(&dirs, LIB, tried, |_| None)
    }

    /// XRT's core library (`libxrt_coreutil.so*`): `XNPU_XRT_LIB`, `XILINX_XRT`,
    /// `/opt/xilinx/xrt/lib`, system dirs.
    pub(crate) fn find_xrt(&self) -> Found {
        const LIB: &str = "libxrt_coreutil.so";
        if let Some(found) = self.search_override("XNPU_XRT_LIB", LIB) {
            return found.map(|l| l.versioned(soname_version));
        }
        let mut dirs = Vec::new();
        if let Some(x) = self.var("XILINX_XRT") {
            dirs.push(Path::new(x).join("lib"));
        }
        dirs.extend(self.system_lib_dirs(&["/opt/xilinx/xrt/lib"]));
        self.first_in(&dirs, LIB, Vec::new(), soname_version)
    }

    fn first_in(
        &self,
        dirs: &[PathBuf],
        prefix: &str,
        mut tried: Vec<PathBuf>,
        version: fn(&Path) -> Option<String>,
    ) -> Found {
        for d in dirs {
            if let Some(hit) = find_in(d, prefix, &mut tried) {
                return Ok(Library {
                    version: version(&hit),
                    path: hit,
                });
            }
        }
        Err(tried)
    }
}

/// `onnxruntime-qnn 2.7.0 (QNN 2.51.0)`, from the dist-info and `build_and_package_info.py`.
fn qnn_wheel_version(site: &Path, pkg: &Path) -> Option<String> {
    let wheel = wheel_version(site, "onnxruntime_qnn")?;
    let qnn = fs::read_to_string(pkg.join("build_and_package_info.py"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.trim().strip_prefix("qnn_version"))
                .map(|v| {
                    v.trim_start_matches([' ', '='])
                        .trim()
                        .trim_matches(['\'', '"'])
                        .to_string()
                })
        });
    Some(match qnn {
        Some(q) => format!("onnxruntime-qnn {wheel}, QNN {q}"),
        None => format!("onnxruntime-qnn {wheel}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(matches("libopenvino_c.so.2641", "libopenvino_c.so"));
        assert!(matches("libopenvino_c.so", "libopenvino_c.so"));
        assert!(!matches("libopenvino_c.so_x", "libopenvino_c.so"));
        assert_eq!(
            openvino_version_from_name(Path::new("/x/libopenvino_c.so.2641")).as_deref(),
            Some("2026.4.1")
        );
        assert_eq!(
            soname_version(Path::new("libxrt_coreutil.so.2.13.0")).as_deref(),
            Some("2.13.0")
        );
        assert_eq!(soname_version(Path::new("libxrt_coreutil.so")), None);
    }
}
