//! Where run-time vendor libraries installed as Python wheels are found: the folders of
//! `XNPU_SITE_PACKAGES` (the `xnpu` Python package sets it to its interpreter's `sys.path`
//! site folders, for itself and the plugins it loads), the `site-packages` folders of the
//! active virtual environment (`VIRTUAL_ENV`) and of a `.venv` above the running executable
//! (`target/<profile>/[deps/]exe` in a checkout), in that order. Backends
//! that open a vendor library at run time (OpenVINO, QNN) look below these.

use std::path::PathBuf;

/// The folders of `XNPU_SITE_PACKAGES`, then every `<venv>/lib/python*/site-packages` folder
/// of those environments that exists.
pub fn site_packages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var_os("XNPU_SITE_PACKAGES")
        .map(|p| std::env::split_paths(&p).filter(|d| d.is_dir()).collect())
        .unwrap_or_default();
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        venvs.push(PathBuf::from(v));
    }
    if let Ok(exe) = std::env::current_exe() {
        for a in exe.ancestors().skip(1).take(5) {
            venvs.push(a.join(".venv"));
        }
    }
    for v in venvs {
        if let Ok(rd) = std::fs::read_dir(v.join("lib")) {
            for e in rd.flatten() {
                out.push(e.path().join("site-packages"));
            }
        }
    }
    // `XNPU_SITE_PACKAGES` usually names the active venv's folder again.
    unique(out)
}

/// `dirs` without repeats, in first-seen order.
pub fn unique(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for d in dirs {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}
