//! The `xnpu partition` and `xnpu optimize` commands: the explain table, the summary, the memory line, the
//! Graphviz file, the exported optimised model; bad options are one-line errors. And a smoke
//! run of `xnpu bench` (the benchmarks themselves do not run in CI).

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
fn partition_explains_as_json_with_a_stable_code_per_refusal() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tables/matmul_add.json");
    let devices = format!("table:{},cpu", table.display());
    let (ok, out, err) = xnpu(&[
        "partition",
        "models/tinycnn.onnx",
        "--explain",
        "--json",
        "--level",
        "none",
        "--devices",
        &devices,
    ]);
    assert!(ok, "{err}");
    // The whole of stdout is the document (docs/explain.md).
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema"], "xnpu.explain/1");
    assert_eq!(v["devices"], serde_json::json!(["npu-matmul-add", "cpu"]));
    let nodes = v["nodes"].as_array().unwrap();
    let conv = nodes.iter().find(|n| n["op"] == "Conv").unwrap();
    assert_eq!(conv["domain"], "");
    assert_eq!(conv["device"], "cpu");
    let r = &conv["refusals"][0];
    assert_eq!(r["device"], "npu-matmul-add");
    assert_eq!(r["code"], "op_not_supported");
    assert_eq!(r["vendor_code"], serde_json::Value::Null);
    assert_eq!(r["message"], "Conv is not in npu-matmul-add's op table");
    // Every node is in the partition that lists it.
    let parts = v["partitions"].as_array().unwrap();
    let total: u64 = parts.iter().map(|p| p["nodes"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, nodes.len());
    // --json without --explain is a usage error.
    let (ok, _, err) = xnpu(&["partition", "models/tinycnn.onnx", "--json"]);
    assert!(!ok && err.contains("--explain"), "{err}");
}

#[test]
fn partition_rejects_unknown_levels_and_devices() {
    let (ok, _, err) = xnpu(&["partition", "models/tinycnn.onnx", "--level", "max"]);
    assert!(
        !ok && err.contains("unknown optimisation level \"max\""),
        "{err}"
    );
    let (ok, _, err) = xnpu(&["partition", "models/tinycnn.onnx", "--devices", "tpu"]);
    assert!(
        !ok && err.contains("unknown device \"tpu\"") && err.contains("(this machine has: cpu"),
        "{err}"
    );
}

#[test]
fn optimize_writes_an_onnx_model_that_computes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tinycnn.opt.onnx");
    let (ok, stdout, err) = xnpu(&[
        "optimize",
        "models/tinycnn.onnx",
        out.to_str().unwrap(),
        "--level",
        "all",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("conv-bn-folding"), "{stdout}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let as_is = |p: &Path| {
        xnpu::Session::load_with(
            p,
            xnpu::SessionOptions::new().level(xnpu::graph::passes::Level::None),
        )
        .unwrap()
    };
    let original = as_is(&root.join("models/tinycnn.onnx"));
    let optimized = as_is(&out);
    // Folded BatchNormalization: fewer nodes, no BatchNormalization left.
    let hist = optimized.model().op_histogram();
    assert!(!hist.contains_key("BatchNormalization"), "{hist:?}");
    assert!(optimized.model().graph.nodes.len() < original.model().graph.nodes.len());
    let image = xnpu::npy::read(&root.join("models/tinycnn.image.npy")).unwrap();
    let a = original.run(vec![("image", image.clone().into())]).unwrap();
    let b = optimized.run(vec![("image", image.into())]).unwrap();
    let (a, b) = (
        a[0].1.as_tensor().unwrap().to_vec::<f32>().unwrap(),
        b[0].1.as_tensor().unwrap().to_vec::<f32>().unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs(), "{a:?} vs {b:?}");
    }
}

#[test]
fn devices_lists_every_family_and_what_this_build_can_drive() {
    let (ok, out, err) = xnpu(&["devices"]);
    assert!(ok, "{err}");
    for id in ["cpu", "openvino:npu", "xdna:npu", "qnn:htp"] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} missing:\n{out}"
        );
    }
    // One line per backend this build can drive: id, kind, details.
    let (_, usable) = out
        .split_once("backends this xnpu can run on:\n")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        usable.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[0] == "cpu" && f[1] == "cpu"
        }),
        "{out}"
    );
}

#[test]
fn run_takes_compile_hints_for_openvino() {
    // Needs OpenVINO from .venv (scripts/test.sh installs it).
    let (ok, out, err) = xnpu(&[
        "run",
        "models/tinycnn.onnx",
        "--random",
        "--devices",
        "openvino:cpu",
        "--threads",
        "1",
        "--precision",
        "f32",
        "--performance",
        "latency",
        "--no-cache",
        "--iterations",
        "2",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("(median of 2 on openvino:cpu)"), "{out}");
    let cache = tempfile::tempdir().unwrap();
    let (ok, out, err) = xnpu(&[
        "run",
        "models/tinycnn.onnx",
        "--random",
        "--devices",
        "openvino:cpu",
        "--performance",
        "throughput",
        "--cache-dir",
        cache.path().to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("on openvino:cpu)"), "{out}");
}

#[test]
fn bad_compile_hints_are_one_line_errors() {
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "models/tinycnn.onnx", "--random"];
        args.extend_from_slice(extra);
        xnpu(&args)
    };
    let (ok, _, err) = run(&["--precision", "x"]);
    assert!(
        !ok && err.contains("unknown precision \"x\" (f32, f16 or bf16)"),
        "{err}"
    );
    let (ok, _, err) = run(&["--performance", "fast"]);
    assert!(
        !ok && err.contains("unknown performance hint \"fast\" (latency or throughput)"),
        "{err}"
    );
    let (ok, _, err) = run(&["--threads", "0"]);
    assert!(!ok && err.contains("--threads"), "{err}");
    let (ok, _, err) = run(&["--no-cache", "--cache-dir", "/tmp"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    let (ok, _, err) = xnpu(&["partition", "models/tinycnn.onnx", "--precision", "f8"]);
    assert!(!ok && err.contains("unknown precision \"f8\""), "{err}");
}

/// `xnpu bench` on one small model: the fast and the reference CPU kernels, and ONNX Runtime
/// where the test environment has its Python (XNPU_PYTHON, as scripts/test.sh sets it). Every
/// contender reports timings, the ratio to ONNX Runtime is computed, the JSON and the SVG are
/// written; a model that does not exist is a one-line error.
#[test]
fn bench_runs_every_contender_and_writes_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let peers = if std::env::var_os("XNPU_PYTHON").is_some() {
        "onnxruntime"
    } else {
        "none"
    };
    let (ok, stdout, err) = xnpu(&[
        "bench",
        "models/tinycnn.onnx",
        "--devices",
        "cpu,cpu:reference",
        "--against",
        peers,
        "--rounds",
        "2",
        "--iterations",
        "3",
        "--out",
        out,
        "--json",
    ]);
    assert!(ok, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("JSON rows");
    let rows = rows.as_array().expect("a list of rows");
    let expected = if peers == "none" { 2 } else { 3 };
    assert_eq!(rows.len(), expected, "{stdout}");
    for r in rows {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["rounds"], 2, "{r}");
        let median = r["median_ms"].as_f64().unwrap();
        assert!(
            median > 0.0 && median <= r["p90_ms"].as_f64().unwrap(),
            "{r}"
        );
        let spread = r["spread_ms"].as_array().unwrap();
        assert!(spread[0].as_f64() <= spread[1].as_f64(), "{r}");
        if peers != "none" {
            assert!(r["vs_onnxruntime"].as_f64().is_some_and(|v| v > 0.0), "{r}");
        }
    }
    assert!(
        rows[0]["runtime"].as_str().unwrap().contains("cpu"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(dir.path().join("bench.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("tinycnn"), "{svg}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bench.json")).unwrap())
            .unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), expected);

    let (ok, _, err) = xnpu(&[
        "bench",
        "no/such/model.onnx",
        "--against",
        "none",
        "--out",
        out,
    ]);
    assert!(
        !ok && err.starts_with("error:") && err.trim().lines().count() == 1,
        "{err}"
    );
}
