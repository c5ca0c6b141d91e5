//! Building and running C programs against the `libxnpu_ffi.so` cargo built for the test
//! (`c_examples.rs`, `log.rs`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The folder of the `libxnpu_ffi.so` this test was built with: `<target>/<profile>/deps`,
/// beside the test itself (cargo copies it up to `<profile>/` only for `cargo build`, so the
/// copy there may be stale).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .expect("the test lies in <target>/<profile>/deps");
    assert!(
        dir.join("libxnpu_ffi.so").exists(),
        "{} is missing: cargo test -p xnpu-ffi builds it",
        dir.join("libxnpu_ffi.so").display()
    );
    dir.to_path_buf()
}

/// A temporary folder outside the repository, for the programs and what they need.
pub fn build_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("xnpu-c-programs")
            .tempdir()
            .expect("a temporary folder")
    })
    .path()
}

/// Compiles `source` into `<build dir>/<out>`, C11, warnings as errors.
pub fn cc(source: &Path, out: &str) -> PathBuf {
    let lib = lib_dir();
    let exe = build_dir().join(out);
    let output = Command::new("cc")
        .args([
            "-std=c11",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .arg("-I")
        .arg(repo().join("ffi/include"))
        .arg(source)
        // By path: the library has no SONAME, so the program records this very file, which
        // no LD_LIBRARY_PATH (cargo's lists `<profile>/`, with `cargo build`'s copy) replaces.
        .arg(lib.join("libxnpu_ffi.so"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("running cc (the C compiler: apt-get install build-essential)");
    assert!(
        output.status.success(),
        "cc {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// A command for `program` in the repository, with discovery kept to xnpu's own devices: no
/// `VIRTUAL_ENV`, `XNPU_SITE_PACKAGES`, `XNPU_PLUGIN_PATH`, `XNPU_DEVICES`, `XNPU_LOG` or
/// `LD_LIBRARY_PATH` from the test's environment.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    c.current_dir(repo())
        .env_remove("VIRTUAL_ENV")
        .env_remove("XNPU_SITE_PACKAGES")
        .env_remove("XNPU_PLUGIN_PATH")
        .env_remove("XNPU_DEVICES")
        .env_remove("XNPU_LOG")
        .env_remove("LD_LIBRARY_PATH");
    c
}
