//! Where OpenVINO's C library is looked for: `XNPU_OPENVINO_LIB`, the `openvino` Python
//! package, an OpenVINO archive, the system library folders. Its file name carries a suffix
//! that changes with every release (`libopenvino_c.so.2641`), so any `libopenvino_c.so*` is
//! taken: the last by name in the first folder that holds one.

use std::path::PathBuf;

use xnpu_core::{Error, Result};

/// Where the library was looked for, in order.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for site in xnpu_core::locate::site_packages() {
        dirs.push(site.join("openvino/libs"));
    }
    for key in ["INTEL_OPENVINO_DIR", "OPENVINO_INSTALL_DIR"] {
        if let Some(d) = std::env::var_os(key) {
            dirs.push(PathBuf::from(d).join("runtime/lib/intel64"));
        }
    }
    for d in ["/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Finds `libopenvino_c.so*`: `XNPU_OPENVINO_LIB`, an installed `openvino` Python package
/// (the active or the project's virtual environment), an OpenVINO archive
/// (`INTEL_OPENVINO_DIR`), the system library folders. The error lists every place tried.
pub fn find_library() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("XNPU_OPENVINO_LIB") {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(Error::unsupported(format!(
                "XNPU_OPENVINO_LIB is {}, which does not exist",
                p.display()
            )))
        };
    }
    let dirs = candidates();
    for d in &dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libopenvino_c.so"))
                })
                .collect();
            found.sort();
            if let Some(p) = found.pop() {
                return Ok(p);
            }
        }
    }
    let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(Error::unsupported(format!(
        "OpenVINO's C library (libopenvino_c.so*) was not found (set XNPU_OPENVINO_LIB, or \
         pip install openvino); tried: {}",
        tried.join(", ")
    )))
}
