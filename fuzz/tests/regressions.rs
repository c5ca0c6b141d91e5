//! Replays every kept input through its fuzz target's body, without libFuzzer: each crash
//! the fuzzers ever found (`regressions/<target>/`) and the committed seeds
//! (`seeds/<folder>/`). A panic fails the test and names the file; an abort or a stack
//! overflow ends the process, after the `replaying` line that names the file.
//!
//! A crash listed in `regressions/known_open.txt` is a bug not fixed yet: it must still
//! panic (a panic is caught and reported, not a failure), and once it no longer does the
//! test fails until its line is removed, so that the list never holds fixed bugs.
//!
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features --target-dir target`
//! from the repository's root (`-- --nocapture` shows each file). It builds in the dev
//! profile: debug assertions and overflow checks are on, as in the fuzz builds, so an
//! overflow a fuzz target found reproduces here.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

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
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md" && x != "txt"))
        .collect();
    out.sort();
    out
}

/// The known-open crashes (`<target>/<file>`, the first word of each line of
/// `regressions/known_open.txt` that is not blank or a `#` comment).
fn known_open() -> BTreeSet<String> {
    let path = root().join("regressions/known_open.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let file = words.next().unwrap_or_default().to_string();
            assert!(
                words.next().is_some(),
                "{}: `{l}` has no signature (`<target>/<file> <signature>`)",
                path.display()
            );
            file
        })
        .collect()
}

fn replay(target: &str) {
    let run = xnpu_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|&(_, f)| f)
        .expect("a target of xnpu_fuzz::TARGETS");
    let known: BTreeSet<String> = known_open()
        .into_iter()
        .filter(|k| k.starts_with(&format!("{target}/")))
        .collect();
    let regressions = root().join("regressions").join(target);
    for k in &known {
        assert!(
            root().join("regressions").join(k).is_file(),
            "regressions/known_open.txt lists {k}, which is not in fuzz/regressions/"
        );
    }
    let mut paths = files(&regressions);
    paths.extend(files(&root().join("seeds").join(seed_folder(target))));
    let mut failed = Vec::new();
    let mut fixed = Vec::new();
    let mut still_open = 0;
    for path in &paths {
        let name = format!(
            "{target}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let is_known = path.starts_with(&regressions) && known.contains(&name);
        eprintln!(
            "replaying {}{}",
            path.display(),
            if is_known { " (known open)" } else { "" }
        );
        let data = std::fs::read(path).expect("reading a kept input");
        let panicked = catch_unwind(AssertUnwindSafe(|| run(&data))).is_err();
        match (panicked, is_known) {
            (true, true) => still_open += 1,
            (true, false) => failed.push(path.display().to_string()),
            (false, true) => fixed.push(name),
            (false, false) => {}
        }
    }
    if still_open > 0 {
        eprintln!(
            "{target}: {still_open} known-open crash(es) still panic (regressions/known_open.txt)"
        );
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} kept inputs panic (messages above):\n  {}",
        failed.len(),
        paths.len(),
        failed.join("\n  ")
    );
    assert!(
        fixed.is_empty(),
        "{target}: fixed, no longer panic: remove from fuzz/regressions/known_open.txt:\n  {}",
        fixed.join("\n  ")
    );
}

/// Every target has a replay test below, a seed folder, a line in `scripts/fuzz.sh` and a
/// binary in `fuzz_targets/`.
#[test]
fn every_target_is_wired() {
    let here = [
        "onnx_import",
        "shape_inference",
        "passes",
        "session",
        "npy",
        "genai_config",
        "plugin_abi",
    ];
    let script = std::fs::read_to_string(root().join("../scripts/fuzz.sh"))
        .expect("reading scripts/fuzz.sh");
    for (name, _) in xnpu_fuzz::TARGETS {
        assert!(here.contains(name), "no replay test for target {name}");
        let folder = seed_folder(name);
        assert!(
            !files(&root().join("seeds").join(folder)).is_empty(),
            "target {name}: seeds/{folder}/ is empty"
        );
        assert!(
            script.contains(&format!("\"{name} {folder} ")),
            "target {name} is not in scripts/fuzz.sh's table"
        );
        assert!(
            root().join(format!("fuzz_targets/{name}.rs")).is_file(),
            "target {name} has no fuzz_targets/{name}.rs"
        );
    }
    for k in known_open() {
        let target = k.split('/').next().unwrap_or_default();
        assert!(
            xnpu_fuzz::TARGETS.iter().any(|(n, _)| *n == target),
            "regressions/known_open.txt: {k} is not of a target"
        );
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
