//! A real OpenVINO older than 2025.1 (the 2024.6.0 wheel, which scripts/setup_python.sh
//! installs into .venv/openvino-2024.6) is refused by name and version. Its element-type
//! numbering differs from the one xnpu is written against, so using it would mislabel tensors.
//!
//! This is its own test binary so that its process loads only the old library.

use std::path::{Path, PathBuf};

use xnpu_backend_openvino::OpenVino;

fn old_library() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/openvino-2024.6");
    let libs = root.join("openvino/libs");
    let found = std::fs::read_dir(&libs).ok().and_then(|dir| {
        let mut names: Vec<PathBuf> = dir
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("libopenvino_c.so")
            })
            .map(|e| e.path())
            .collect();
        names.sort();
        names.into_iter().next()
    });
    found.unwrap_or_else(|| {
        panic!(
            "no libopenvino_c.so* in {}: run scripts/setup_python.sh (it installs \
             openvino==2024.6.0 there)",
            libs.display()
        )
    })
}

#[test]
fn openvino_2024_6_is_refused_naming_its_version() {
    let lib = old_library();
    let e = match OpenVino::open_at(&lib) {
        Ok(ov) => panic!(
            "{} (OpenVINO {}) was accepted; xnpu needs 2025.1 or later",
            lib.display(),
            ov.version()
        ),
        Err(e) => e.to_string(),
    };
    println!("{e}");
    assert!(e.contains("OpenVINO 2024.6"), "{e}");
    assert!(e.contains("2025.1"), "{e}");
    assert!(e.contains("libopenvino_c.so"), "{e}");
}
