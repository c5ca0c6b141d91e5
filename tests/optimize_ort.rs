//! Exports ONNX Runtime loads: every model `xnpu optimize` writes from the test models — each
//! ONNX conformance node case and each contrib-op case at level `all` (the default), and the
//! language-model test models at every level — loads in ONNX Runtime and computes what the
//! original does (`scripts/check_optimized.py`, run with `XNPU_PYTHON`, default
//! `.venv/bin/python`). The exports go to `target/optimize-check/`.
//!
//! A case xnpu cannot import or optimise is not exported (the conformance runner counts it);
//! an export ONNX Runtime refuses or computes differently fails the test unless the original
//! fails in ONNX Runtime the same way. The last line is the checker's summary
//! (`optimize → onnxruntime: N loaded, ...`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use rayon::prelude::*;
use xnpu::graph::passes::Level;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    std::env::var_os("XNPU_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"))
}

fn contrib_dir() -> PathBuf {
    std::env::var_os("XNPU_CONTRIB_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/contrib-cases"))
}

fn llm_dir() -> PathBuf {
    std::env::var_os("XNPU_LLM_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/llm"))
}

/// The case folders (each with a model.onnx) under `dir`, sorted.
fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/test.sh", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {}", dir.display());
    v
}

/// `xnpu optimize` of `original` at `level` into `out`: false when xnpu cannot import or
/// optimise it.
fn optimize(original: &Path, out: &Path, level: Level) -> bool {
    let Ok(mut model) = xnpu::graph::onnx::load(original) else {
        return false;
    };
    if xnpu::optimize(&mut model, level).is_err() {
        return false;
    }
    std::fs::create_dir_all(out.parent().expect("a folder")).expect("mkdir");
    xnpu::graph::onnx::save(&model, out)
        .unwrap_or_else(|e| panic!("{}: export failed: {e}", original.display()));
    true
}

fn main() {
    let out = root().join("target/optimize-check");
    let _ = std::fs::remove_dir_all(&out);
    let mut jobs: Vec<(PathBuf, PathBuf, &str, Level)> = Vec::new();
    for (dir, sub) in [
        (common::cases_dir().join("node"), "node"),
        (contrib_dir(), "contrib"),
    ] {
        for case in cases(&dir) {
            let name = case.file_name().unwrap().to_string_lossy().to_string();
            jobs.push((
                case,
                out.join(sub).join(format!("{name}.onnx")),
                "case",
                Level::All,
            ));
        }
    }
    let llm = llm_dir();
    for name in ["tiny-fp32", "tiny-int4", "tiny-int4-acc1", "tiny-int4-qdq"] {
        let dir = llm.join(name);
        assert!(
            dir.join("model.onnx").is_file(),
            "{}: missing; run scripts/test.sh",
            dir.display()
        );
        for level in [Level::None, Level::Basic, Level::All] {
            let file = out.join("llm").join(format!("{name}-{level}.onnx"));
            jobs.push((dir.clone(), file, "model", level));
        }
    }
    let entries: Vec<serde_json::Value> = jobs
        .par_iter()
        .filter_map(|(src, file, kind, level)| {
            let original = src.join("model.onnx");
            optimize(&original, file, *level).then(|| {
                serde_json::json!({
                    "exported": file,
                    "original": original,
                    "kind": kind,
                    "case": src,
                })
            })
        })
        .collect();
    let models = entries.iter().filter(|e| e["kind"] == "model").count();
    assert_eq!(models, 12, "every language model optimises at every level");
    println!(
        "optimize: {} of {} test models exported to {}",
        entries.len(),
        jobs.len(),
        out.display()
    );
    let manifest = out.join("manifest.json");
    std::fs::write(&manifest, serde_json::to_vec_pretty(&entries).unwrap()).unwrap();
    let run = Command::new(python())
        .arg(root().join("scripts/check_optimized.py"))
        .arg(&manifest)
        .output()
        .expect("run scripts/check_optimized.py");
    eprint!("{}", String::from_utf8_lossy(&run.stderr));
    print!("{}", String::from_utf8_lossy(&run.stdout));
    if !run.status.success() {
        println!("optimize: some optimised models do not load or match in ONNX Runtime (above)");
        std::process::exit(1);
    }
}
