//! The QNN backend wired into xnpu, against Qualcomm's HTP simulator from the onnxruntime-qnn
//! wheel (scripts/test.sh installs it into .venv): the plugin, the device policy's `qnn:` ids,
//! `xnpu devices`, and QNN's library left closed by processes that only use the CPU.
#![cfg(all(feature = "qnn", target_arch = "x86_64"))]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use xnpu::graph::backend::{Backend, CompileCache};
use xnpu::graph::passes::Level;
use xnpu::{Policy, Session, SessionOptions, Tensor, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn mlp() -> PathBuf {
    root().join("tests/fixtures/qnn/mlp.onnx")
}

fn input() -> Value {
    let n = 4 * 64;
    Value::Tensor(
        Tensor::from_vec(
            vec![4, 64],
            (0..n)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect(),
        )
        .unwrap(),
    )
}

fn on_cpu() -> Vec<Value> {
    Session::load_with(mlp(), SessionOptions::new().level(Level::None))
        .unwrap()
        .run_positional(vec![Some(input())])
        .unwrap()
}

/// How many nodes each backend runs.
fn placement(s: &Session) -> BTreeMap<String, usize> {
    let plan = s.plan();
    let mut m = BTreeMap::new();
    for d in &plan.decisions {
        *m.entry(plan.backends[d.backend].clone()).or_insert(0) += 1;
    }
    m
}

/// fp32 computed as fp16 by the simulator's SoC model: compared at 1e-2.
fn assert_close_fp16(got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        common::compare(g, w, 1e-2, 1e-2).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_qnn_plugin_runs_the_mlp_like_the_cpu_backend() {
    // cargo build --workspace writes libxnpu_plugin_qnn.so beside the test's deps/.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(xnpu::plugins::plugin_file_name("qnn"));
    let plugin = xnpu::plugins::Plugin::load(&path)
        .unwrap_or_else(|e| panic!("{e} (build it with cargo build --release --workspace)"));
    assert_eq!(plugin.name(), "qnn");
    // One SoC per process (the HTP library keeps the first): the default, given or not.
    for config in ["", "soc=69"] {
        let b: Arc<dyn Backend> = Arc::new(
            plugin
                .create_backend(config)
                .unwrap_or_else(|e| panic!("{e}\n(scripts/test.sh installs onnxruntime-qnn)")),
        );
        assert_eq!(b.name(), "qnn:htp-sim");
        let o = SessionOptions::new()
            .level(Level::None)
            .compile_cache(CompileCache::Off)
            .backend(b)
            .backend(Arc::new(xnpu_backend_cpu::CpuBackend::new()));
        let s = Session::load_with(mlp(), o).unwrap();
        assert!(
            placement(&s).get("qnn:htp-sim").is_some_and(|&n| n > 0),
            "{:?}",
            placement(&s)
        );
        let got = s.run_positional(vec![Some(input())]).unwrap();
        assert_close_fp16(&got, &on_cpu());
    }
    for bad in ["soc=x", "fp16"] {
        let e = plugin.create_backend(bad).err().unwrap().to_string();
        assert!(e.contains(bad), "{e}");
    }
    let e = plugin.create_backend("soc=0").err().unwrap().to_string();
    assert!(e.contains("keeps one SoC model per process"), "{e}");
}

#[test]
fn prepare_compiles_the_per_shape_partitions_a_first_run_would() {
    let policy: Policy = "qnn:htp-sim,cpu".parse().unwrap();
    let s = Session::load_with(
        mlp(),
        SessionOptions::new()
            .level(Level::None)
            .compile_cache(CompileCache::Off)
            .devices(policy),
    )
    .unwrap();
    assert_eq!(
        s.compiled_counts().iter().sum::<usize>(),
        0,
        "QNN compiles per shape"
    );
    let dims = s.inputs()[0].ty.tensor().unwrap().shape.clone().unwrap();
    let dims = dims.as_known().unwrap_or_else(|| vec![4, 64]);
    let name = s.inputs()[0].name.clone();
    let n = s.prepare(&[(name.as_str(), &dims)]).unwrap();
    assert!(n >= 1, "{:?}", placement(&s));
    let compiled: usize = s.compiled_counts().iter().sum();
    // Again, and a run on those shapes: nothing more to compile.
    assert_eq!(s.prepare(&[(name.as_str(), &dims)]).unwrap(), 0);
    let got = s.run_positional(vec![Some(input())]).unwrap();
    assert_close_fp16(&got, &on_cpu());
    assert_eq!(s.compiled_counts().iter().sum::<usize>(), compiled);
    let e = s.prepare(&[("nope", &dims)]).unwrap_err().to_string();
    assert!(e.contains("has no input \"nope\""), "{e}");
}

#[test]
fn an_explicit_qnn_device_opens_the_simulator() {
    let policy: Policy = "qnn:htp-sim,cpu".parse().unwrap();
    let s = Session::load_with(
        mlp(),
        SessionOptions::new()
            .level(Level::None)
            .compile_cache(CompileCache::Off)
            .devices(policy),
    )
    .unwrap();
    assert!(
        placement(&s).contains_key("qnn:htp-sim"),
        "{:?}",
        placement(&s)
    );
    let got = s.run_positional(vec![Some(input())]).unwrap();
    assert_close_fp16(&got, &on_cpu());
    // The real HTP is not this machine's.
    let e = Session::load_with(
        mlp(),
        SessionOptions::new().devices("qnn:htp,cpu".parse().unwrap()),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("qnn:htp-sim"), "{e}");
}

fn xnpu(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xnpu"));
    c.args(args).current_dir(root());
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("run xnpu");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn xnpu_devices_shows_the_simulator_and_cpu_runs_leave_qnn_closed() {
    let (ok, out, err) = xnpu(&["devices"], &[]);
    assert!(ok, "{err}");
    let (_, usable) = out.split_once("backends this xnpu can run on:\n").unwrap();
    let row = usable
        .lines()
        .find(|l| l.trim_start().starts_with("qnn:htp-sim "))
        .unwrap_or_else(|| panic!("{out}"));
    for part in [
        "HTP_QTI_AISW",
        "core API 2.",
        "build v2.",
        "SoC model 69",
        "simulator",
        "not an NPU",
    ] {
        assert!(row.contains(part), "{part}: {row}");
    }
    let (ok, out, err) = xnpu(&["devices"], &[("XNPU_QNN_SOC", "0")]);
    assert!(ok, "{err}");
    assert!(out.contains("no SoC model"), "{out}");
    let (ok, out, _) = xnpu(&["devices"], &[("XNPU_QNN_SOC", "v79")]);
    assert!(ok);
    assert!(out.contains("note: qnn: XNPU_QNN_SOC=v79"), "{out}");
    // libQnnHtp.so prints a LIBNATIVE line when it loads: a CPU run (the default policy,
    // on x86_64 where the simulator is no NPU) must not load it, nor its plugin.
    for devices in ["cpu", "prefer-npu"] {
        let (ok, out, err) = xnpu(
            &[
                "partition",
                "tests/fixtures/qnn/mlp.onnx",
                "--devices",
                devices,
            ],
            &[],
        );
        assert!(ok, "{err}");
        assert!(!out.contains("LIBNATIVE"), "{out}");
        assert!(!out.contains("qnn:"), "{out}");
    }
    let (ok, out, err) = xnpu(
        &[
            "partition",
            "tests/fixtures/qnn/mlp.onnx",
            "--devices",
            "qnn:htp-sim,cpu",
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("qnn:htp-sim"), "{out}");
}
