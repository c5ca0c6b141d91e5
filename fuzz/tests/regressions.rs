//! Replays every kept input through its fuzz target's body, without libFuzzer: each crash
//! the fuzzers ever found (`regressions/<target>/`) and the committed seeds
//! (`seeds/<folder>/`). A panic fails the test and names the file; an abort or a stack
//! overflow ends the process, after the `replaying` line that names the file.
//!
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features` (add `--release` for
//! speed; `-- --nocapture` to see each file).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The committed seed folder of a target.
fn seed_folder(target: &str) -> &'static str {
    match target {
        "onnx_import" | "shape_inference" | "passes" | "session" => "onnx",
        "npy" => "npy",
        "genai_config" => "genai_config",
        "plugin_abi" => "plugin_abi",
        _ => panic!("target {target} has no seed folder: add it here and in scripts/fuzz.sh"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    out.sort();
    out
}

fn replay(target: &str) {
    let run = xnpu_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|&(_, f)| f)
        .expect("a target of xnpu_fuzz::TARGETS");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = files(&root.join("regressions").join(target));
    paths.extend(files(&root.join("seeds").join(seed_folder(target))));
    let mut failed = Vec::new();
    for path in &paths {
        eprintln!("replaying {}", path.display());
        let data = std::fs::read(path).expect("reading a kept input");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} kept inputs panic (messages above):\n  {}",
        failed.len(),
        paths.len(),
        failed.join("\n  ")
    );
}

#[test]
fn every_target_has_a_test_here() {
    let here = [
        "onnx_import",
        "shape_inference",
        "passes",
        "session",
        "npy",
        "genai_config",
        "plugin_abi",
    ];
    for (name, _) in xnpu_fuzz::TARGETS {
        assert!(here.contains(name), "no replay test for target {name}");
        seed_folder(name);
    }
}

#[test]
fn onnx_import() {
    replay("onnx_import");
}

#[test]
fn shape_inference() {
    replay("shape_inference");
}

#[test]
fn passes() {
    replay("passes");
}

#[test]
fn session() {
    replay("session");
}

#[test]
fn npy() {
    replay("npy");
}

#[test]
fn genai_config() {
    replay("genai_config");
}

#[test]
fn plugin_abi() {
    replay("plugin_abi");
}
