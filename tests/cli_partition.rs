//! The `xnpu partition` command: the explain table, the summary, the memory line and the
//! Graphviz file; bad options are one-line errors.

use std::path::Path;
use std::process::Command;

fn xnpu(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xnpu"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run xnpu");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn partition_explains_where_each_node_runs_and_writes_a_dot_file() {
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("parts.dot");
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tables/matmul_add.json");
    let devices = format!("table:{},cpu", table.display());
    let (ok, out, err) = xnpu(&[
        "partition",
        "models/tinycnn.onnx",
        "--explain",
        "--level",
        "none",
        "--devices",
        &devices,
        "--hop-cost",
        "0",
        "--dot",
        dot.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("node") && out.contains("why not elsewhere"),
        "{out}"
    );
    assert!(
        out.contains("npu-matmul-add: Conv is not in npu-matmul-add's op table"),
        "{out}"
    );
    assert!(out.contains("partition(s); nodes per backend:"), "{out}");
    assert!(out.contains("memory: peak"), "{out}");
    let text = std::fs::read_to_string(&dot).unwrap();
    assert!(
        text.starts_with("digraph") && text.contains("subgraph cluster_0"),
        "{text}"
    );
}

#[test]
fn partition_rejects_unknown_levels_and_devices() {
    let (ok, _, err) = xnpu(&["partition", "models/tinycnn.onnx", "--level", "max"]);
    assert!(
        !ok && err.contains("unknown optimisation level \"max\""),
        "{err}"
    );
    let (ok, _, err) = xnpu(&["partition", "models/tinycnn.onnx", "--devices", "tpu"]);
    assert!(!ok && err.contains("unknown device \"tpu\""), "{err}");
}
