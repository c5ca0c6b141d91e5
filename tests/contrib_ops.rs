//! ONNX Runtime's `com.microsoft` language-model ops (and ONNX opset 23 Attention and
//! RotaryEmbedding) against ONNX Runtime's own CPU results: the cases of
//! `scripts/gen_contrib_cases.py` (one node each, random inputs, fixed seeds; expected
//! outputs computed by onnxruntime's CPU EP with optimisations off). `scripts/test.sh` makes
//! them in `target/contrib-cases` (`XNPU_CONTRIB_CASES` overrides).
//!
//! Every case runs on the reference CPU backend as imported (level none), after every pass
//! (level all), and through the CPU backend loaded as a plugin, which receives the partition
//! as ONNX bytes (so the export of each op to its ONNX form is checked too).

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;

use xnpu::graph::backend::{Backend, CompileCache};
use xnpu::graph::passes::Level;
use xnpu::{Session, SessionOptions};

fn cases() -> Vec<PathBuf> {
    let dir = std::env::var_os("XNPU_CONTRIB_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/contrib-cases"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; make the cases with scripts/test.sh (or .venv/bin/python scripts/gen_contrib_cases.py {})",
                dir.display(),
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    v.sort();
    assert!(
        v.len() >= 100,
        "only {} cases in {}",
        v.len(),
        dir.display()
    );
    v
}

fn run(case: &Path, level: Level, backend: Arc<dyn Backend>) -> Result<(), String> {
    let options = SessionOptions::new()
        .level(level)
        .compile_cache(CompileCache::Off)
        .backend(backend);
    let session =
        Session::load_with(case.join("model.onnx"), options).map_err(|e| format!("import: {e}"))?;
    common::check_case(&session, case)
}

#[test]
fn contrib_ops_match_onnx_runtime() {
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::default());
    let plugin = common::plugin_cpu();
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        for (label, level, b) in [
            ("none", Level::None, &cpu),
            ("all", Level::All, &cpu),
            ("plugin", Level::All, &plugin),
        ] {
            if let Err(e) = run(case, level, b.clone()) {
                failures.push(format!(
                    "{name} [{label}]: {}",
                    common::one_line(&e, 300, false)
                ));
            }
        }
    }
    println!("{} cases x 3 runs: {} failed", cases.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
