//! The OpenVINO backend inside sessions, against the real OpenVINO from the pinned wheel
//! (scripts/test.sh installs it into .venv) on OpenVINO's CPU device: light models, a model
//! split between OpenVINO and the CPU backend, per-shape compiles, the compile cache, large
//! weights through a file, concurrent errors, and bad input.
#![cfg(feature = "openvino")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xnpu::graph::backend::{Backend, CompileCache, CompileOptions};
use xnpu::graph::partition::PartitionOptions;
use xnpu::graph::passes::Level;
use xnpu::openvino::{OpenVino, OpenVinoBackend, Source};
use xnpu::{Session, SessionOptions, Tensor, Value};

fn openvino() -> Arc<OpenVino> {
    Arc::new(OpenVino::open().unwrap_or_else(|e| {
        panic!("{e}\n(scripts/test.sh installs the openvino wheel into .venv)")
    }))
}

fn ov_cpu() -> OpenVinoBackend {
    OpenVinoBackend::new(openvino(), "CPU").unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn tinycnn() -> PathBuf {
    root().join("models/tinycnn.onnx")
}

fn image(batch: usize) -> Value {
    let n = batch * 3 * 32 * 32;
    Value::Tensor(
        Tensor::from_vec(
            vec![batch, 3, 32, 32],
            (0..n).map(|i| ((i as f32) * 0.37).sin()).collect(),
        )
        .unwrap(),
    )
}

/// Session options with these backends, then the CPU backend for what they refuse.
fn options(backends: Vec<Arc<dyn Backend>>) -> SessionOptions {
    let mut o = SessionOptions::new().compile_cache(CompileCache::Off);
    for b in backends {
        o = o.backend(b);
    }
    o.backend(Arc::new(xnpu_backend_cpu::CpuBackend::new()))
}

fn reference(model: &Path, inputs: Vec<Option<Value>>) -> Vec<Value> {
    Session::load_with(model, SessionOptions::new().level(Level::None))
        .unwrap()
        .run_positional(inputs)
        .unwrap()
}

fn assert_close(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        common::compare(g, w, 1e-4, 1e-5).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
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

/// The light models end in Softmax over logits of up to ~1e10 (their weights are
/// constants): an fp32 rounding difference of one part in 1e7 moves such logits by
/// thousands, and the softmax from uniform to one-hot. Where a Softmax's input is that large,
/// its input (the logits) is compared instead, and the softmax is not.
const SOFTMAX_CONDITION: f32 = 1e4;

#[test]
fn light_models_on_openvino_match_the_reference() {
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu());
    let mut logits_compared = Vec::new();
    let mut placements = Vec::new();
    for path in common::light_models() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Every Softmax input is made an output as well.
        let mut model = xnpu::graph::onnx::load(&path).unwrap();
        let g = &mut model.graph;
        let softmax_inputs: Vec<(usize, String)> = g
            .nodes
            .iter()
            .filter(|n| n.op.name() == "Softmax")
            .filter_map(|n| Some((n.inputs[0]?, g.values[n.outputs[0]?].name.clone())))
            .collect();
        let n_out = g.outputs.len();
        for &(x, _) in &softmax_inputs {
            g.outputs.push(x);
        }
        let reference =
            Session::new(model.clone(), SessionOptions::new().level(Level::None)).unwrap();
        let s = Session::new(model, options(vec![ov.clone()])).unwrap();
        let p = placement(&s);
        let on_ov = p.get("openvino:cpu").copied().unwrap_or(0);
        assert!(on_ov * 2 > p.values().sum::<usize>(), "{name}: {p:?}");
        placements.push(format!("{name} {p:?}"));
        let inputs = common::light_inputs(&s).unwrap();
        let got = s.run_positional(inputs.clone()).unwrap();
        let want = reference.run_positional(inputs).unwrap();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            // Output k as the model names it (passes keep graph outputs in order).
            let out_name = &reference.outputs()[k].name;
            let ill = k < n_out
                && softmax_inputs
                    .iter()
                    .position(|(_, y)| y == out_name)
                    .is_some_and(|i| {
                        let logits = want[n_out + i].as_tensor().unwrap();
                        let logits = logits.to_vec::<f32>().unwrap();
                        logits.iter().fold(0f32, |m, v| m.max(v.abs())) > SOFTMAX_CONDITION
                    });
            if ill {
                logits_compared.push(name.clone());
                continue;
            }
            // Relative to the output's largest magnitude: large activations accumulate
            // rounding like any fp32 sum.
            let scale = w
                .as_tensor()
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .fold(0f32, |m, v| m.max(v.abs())) as f64;
            common::compare(g, w, 1e-4, 1e-5 + 1e-6 * scale)
                .unwrap_or_else(|e| panic!("{name} output {k}: {e}"));
        }
    }
    println!("softmax compared through its logits (ill-conditioned): {logits_compared:?}");
    println!("nodes per backend: {placements:#?}");
}

#[test]
fn a_model_split_around_a_refused_op_matches_the_cpu_backend() {
    // OpenVINO's table refuses MaxPool here, so the CPU backend takes both MaxPools in
    // the middle of the model and OpenVINO the rest: partitions alternate.
    let mut table = ov_cpu().capabilities().unwrap().clone();
    table
        .refuse_ops
        .insert("MaxPool".into(), "refused for this test".into());
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu().with_table(table));
    let s = Session::load_with(
        tinycnn(),
        options(vec![ov])
            .level(Level::None)
            .partition_options(PartitionOptions {
                hop_cost: 0.0,
                ..Default::default()
            }),
    )
    .unwrap();
    let backends: Vec<&str> = s
        .plan()
        .partitions
        .iter()
        .map(|p| s.plan().backends[p.backend].as_str())
        .collect();
    assert_eq!(
        backends,
        ["openvino:cpu", "cpu", "openvino:cpu", "cpu", "openvino:cpu"],
        "{}",
        s.explain()
    );
    assert!(
        s.explain()
            .contains("refuses MaxPool: refused for this test"),
        "{}",
        s.explain()
    );
    for batch in [1, 4] {
        let got = s.run_positional(vec![Some(image(batch))]).unwrap();
        assert_close(
            &got,
            &reference(&tinycnn(), vec![Some(image(batch))]),
            "tinycnn split",
        );
    }
}

#[test]
fn a_static_shape_device_compiles_once_per_input_shape() {
    // An NPU needs static shapes: the session compiles per concrete input shape. OpenVINO's
    // CPU device stands in for it with a table that says so.
    let mut table = ov_cpu().capabilities().unwrap().clone();
    table.static_shapes = true;
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu().with_table(table));
    let s = Session::load_with(tinycnn(), options(vec![ov])).unwrap();
    assert_eq!(s.compiled_counts(), [0]);
    for batch in [1, 3, 1, 3, 2] {
        let got = s.run_positional(vec![Some(image(batch))]).unwrap();
        assert_close(
            &got,
            &reference(&tinycnn(), vec![Some(image(batch))]),
            "per shape",
        );
    }
    assert_eq!(s.compiled_counts(), [3]);
}

#[test]
fn outputs_of_fixed_shape_are_written_in_place() {
    let model = xnpu::graph::onnx::load(&tinycnn()).unwrap();
    let backend = ov_cpu();
    let o = CompileOptions {
        cache: CompileCache::Off,
        ..Default::default()
    };
    // Symbolic batch: OpenVINO learns the output shape only when it runs, so it is copied.
    let dynamic = backend.compile_partition(&model.graph, &o).unwrap();
    assert_eq!(dynamic.outputs_in_place(), 0);
    // Concrete batch: written straight into the output tensor's buffer.
    let mut fixed = model.graph.clone();
    let x = fixed.inputs[0];
    fixed.values[x].ty = xnpu::ValueType::Tensor(xnpu::TensorType::new(
        xnpu::DType::F32,
        xnpu::Shape::known(&[2, 3, 32, 32]),
    ));
    let fixed = backend.compile_partition(&fixed, &o).unwrap();
    assert_eq!(fixed.outputs_in_place(), 1);
    use xnpu::graph::backend::Executable;
    let a = dynamic.run(&[image(2)]).unwrap();
    let b = fixed.run(&[image(2)]).unwrap();
    assert_close(&b, &a, "in place vs copied");
    // Runs again: each run gets its own output buffer; an input bound by the previous run
    // (same buffer) is reused, a different one is rebound.
    let x = image(2);
    let c = fixed.run(std::slice::from_ref(&x)).unwrap();
    assert_close(&c, &b, "second run");
    let c2 = fixed.run(std::slice::from_ref(&x)).unwrap();
    assert_close(&c2, &b, "same input again");
    let other = Value::Tensor(
        Tensor::from_vec(vec![2, 3, 32, 32], vec![0.25f32; 2 * 3 * 32 * 32]).unwrap(),
    );
    let d = fixed.run(std::slice::from_ref(&other)).unwrap();
    let want = dynamic.run(std::slice::from_ref(&other)).unwrap();
    assert_close(&d, &want, "another input");
    let e = fixed.run(std::slice::from_ref(&x)).unwrap();
    assert_close(&e, &b, "the first input again");
}

#[test]
fn one_session_runs_on_many_threads() {
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu());
    let s = Session::load_with(tinycnn(), options(vec![ov])).unwrap();
    let want: Vec<Vec<Value>> = (1..=4)
        .map(|b| reference(&tinycnn(), vec![Some(image(b))]))
        .collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, want) = (&s, &want);
            scope.spawn(move || {
                for round in 0..20 {
                    let b = (t + round) % 4 + 1;
                    let got = s.run_positional(vec![Some(image(b))]).unwrap();
                    assert_close(&got, &want[b - 1], "threads");
                }
            });
        }
    });
}

#[test]
fn a_second_compile_comes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let o = CompileOptions {
        cache: CompileCache::Dir(dir.path().to_path_buf()),
        ..Default::default()
    };
    let model = xnpu::graph::onnx::load(&tinycnn()).unwrap();
    // Two cores, as two processes would have.
    let first = ov_cpu().compile_partition(&model.graph, &o).unwrap();
    let second = ov_cpu().compile_partition(&model.graph, &o).unwrap();
    assert!(!first.loaded_from_cache());
    assert!(second.loaded_from_cache());
    let blobs = std::fs::read_dir(dir.path().join("openvino_cpu"))
        .unwrap()
        .count();
    assert!(blobs >= 1);
    use xnpu::graph::backend::Executable;
    let (a, b) = (
        first.run(&[image(2)]).unwrap(),
        second.run(&[image(2)]).unwrap(),
    );
    assert_eq!(
        a[0].as_tensor().unwrap().raw_bytes(),
        b[0].as_tensor().unwrap().raw_bytes()
    );
    // OpenVINO's CPU device caches one blob per model and applies the precision when it
    // loads it (measured with 2026.4.1: a bf16 compile hits the f32 entry), so a cached
    // model still computes in the precision asked for.
    let o1 = CompileOptions {
        precision: Some(xnpu::graph::backend::Precision::Bf16),
        ..o.clone()
    };
    let third = ov_cpu().compile_partition(&model.graph, &o1).unwrap();
    // A CPU without bf16 arithmetic (no AVX-512 BF16 or AMX: OPTIMIZATION_CAPABILITIES has
    // no BF16) computes in f32 whatever the hint, and OpenVINO reports f32.
    let caps = OpenVino::open()
        .unwrap()
        .property("CPU", "OPTIMIZATION_CAPABILITIES")
        .unwrap();
    let bf16 = if caps.contains("BF16") { "bf16" } else { "f32" };
    assert_eq!(
        third
            .compiled()
            .property("INFERENCE_PRECISION_HINT")
            .unwrap(),
        bf16,
        "OPTIMIZATION_CAPABILITIES: {caps}"
    );
    assert_eq!(
        second
            .compiled()
            .property("INFERENCE_PRECISION_HINT")
            .unwrap(),
        "f32"
    );
}

#[test]
fn large_weights_go_through_a_file_with_external_data() {
    // Every partition with weights counts as large here.
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu().inline_limit(0));
    // The weights file sits in a temporary folder, not the working directory: OpenVINO
    // reads it by path (external data read from memory would resolve against the cwd).
    let s = Session::load_with(tinycnn(), options(vec![ov])).unwrap();
    let got = s.run_positional(vec![Some(image(2))]).unwrap();
    assert_close(
        &got,
        &reference(&tinycnn(), vec![Some(image(2))]),
        "external data",
    );
    let resnet = common::cases_dir().join("light/light_resnet50.onnx");
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu().inline_limit(1 << 20));
    let s = Session::load_with(&resnet, options(vec![ov])).unwrap();
    let inputs = common::light_inputs(&s).unwrap();
    let got = s.run_positional(inputs.clone()).unwrap();
    assert_close(&got, &reference(&resnet, inputs), "resnet50 external data");
}

#[test]
fn errors_on_many_threads_each_carry_their_own_message() {
    // OpenVINO keeps its last error in one process-wide string; each failing compile here
    // has a value only it uses, and its error must quote that value, not another thread's.
    let model = xnpu::graph::onnx::load(&tinycnn()).unwrap();
    let ov = openvino();
    std::thread::scope(|s| {
        for t in 0..6 {
            let (ov, g) = (ov.clone(), &model.graph);
            s.spawn(move || {
                for round in 0..4 {
                    let value = format!("bogus-{t}-{round}");
                    let b = OpenVinoBackend::new(ov.clone(), "CPU")
                        .unwrap()
                        .with_config(vec![("INFERENCE_PRECISION_HINT".into(), value.clone())]);
                    let o = CompileOptions {
                        cache: CompileCache::Off,
                        ..Default::default()
                    };
                    let e = b.compile_partition(g, &o).err().unwrap().to_string();
                    assert!(
                        e.contains(&format!("Wrong value {value} ")),
                        "thread {t}: {e}"
                    );
                    // A good compile and run in between, on the same core.
                    let ok = OpenVinoBackend::new(ov.clone(), "CPU").unwrap();
                    let exe = ok.compile_partition(g, &o).unwrap();
                    use xnpu::graph::backend::Executable;
                    exe.run(&[image(1)]).unwrap();
                }
            });
        }
    });
}

#[test]
fn a_missing_plugin_and_an_absent_device_quote_openvino() {
    let ov = openvino();
    let onnx = xnpu::graph::onnx::to_bytes(&xnpu::graph::onnx::load(&tinycnn()).unwrap()).unwrap();
    // GNA's plugin is not in the wheel.
    let e = ov
        .compile(Source::Onnx(&onnx), "GNA", &[])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("compiling for GNA") && e.contains("GNA"), "{e}");
    assert!(
        e.len() > "OpenVINO compiling for GNA: GENERAL_ERROR".len() + 10,
        "{e}"
    );
    // NPU's plugin is, but no NPU (nor its compiler) is on this machine.
    if !ov.devices().unwrap().iter().any(|d| d.name == "NPU") {
        let e = ov
            .compile(Source::Onnx(&onnx), "NPU", &[])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("compiling for NPU"), "{e}");
        let e = OpenVinoBackend::new(ov.clone(), "NPU")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("has no device NPU (it lists: CPU"), "{e}");
    }
    // Not OpenVINO at all.
    let libm = Path::new("/lib/x86_64-linux-gnu/libm.so.6");
    if libm.exists() {
        let e = OpenVino::open_at(libm).err().unwrap().to_string();
        assert!(e.contains("has no ov_get_openvino_version"), "{e}");
    }
    let e = OpenVino::open_at(Path::new("/nonexistent/libopenvino_c.so"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/libopenvino_c.so"), "{e}");
}

#[test]
fn a_compile_error_falls_back_or_fails_as_the_policy_says() {
    let bad = || -> Arc<dyn Backend> {
        Arc::new(ov_cpu().with_config(vec![("NO_SUCH_KEY".into(), "1".into())]))
    };
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::new());
    // Fallback on (the default for policies): the CPU backend takes the partition, and the
    // explanation quotes OpenVINO.
    let s = Session::load_with(tinycnn(), options(vec![bad(), cpu.clone()])).unwrap();
    let explain = s.explain();
    assert!(
        explain.contains("fell back from openvino:cpu") && explain.contains("NO_SUCH_KEY"),
        "{explain}"
    );
    let got = s.run_positional(vec![Some(image(1))]).unwrap();
    assert_close(
        &got,
        &reference(&tinycnn(), vec![Some(image(1))]),
        "fallback",
    );
    // Fallback off (an explicit device list): the session fails with OpenVINO's message.
    let mut o = options(vec![bad(), cpu]);
    o.fallback = false;
    let e = Session::load_with(tinycnn(), o).err().unwrap().to_string();
    assert!(
        e.contains("compiling partition 0 on openvino:cpu") && e.contains("NO_SUCH_KEY"),
        "{e}"
    );
}

#[test]
fn the_cli_runs_resnet50_and_a_symbolic_model_on_openvino() {
    let exe = env!("CARGO_BIN_EXE_xnpu");
    let resnet = common::cases_dir().join("light/light_resnet50.onnx");
    for (model, extra) in [
        (resnet.as_path(), &[][..]),
        (tinycnn().as_path(), &["--dim", "batch=3"][..]),
    ] {
        let out = std::process::Command::new(exe)
            .args(["run"])
            .arg(model)
            .args(["--random", "--devices", "openvino:cpu"])
            .args(extra)
            .env("XNPU_CACHE_DIR", "")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {text}", model.display());
        assert!(text.contains("on openvino:cpu"), "{text}");
    }
}

#[test]
fn the_openvino_plugin_runs_like_the_built_in_backend() {
    // cargo build --workspace writes libxnpu_plugin_openvino.so beside the test's deps/.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(xnpu::plugins::plugin_file_name("openvino"));
    let plugin = xnpu::plugins::Plugin::load(&path)
        .unwrap_or_else(|e| panic!("{e} (build it with cargo build --release --workspace)"));
    let b: Arc<dyn Backend> = Arc::new(plugin.create_backend("CPU").unwrap());
    assert_eq!(b.name(), "openvino:cpu");
    let s = Session::load_with(tinycnn(), options(vec![b])).unwrap();
    assert_eq!(placement(&s).keys().collect::<Vec<_>>(), ["openvino:cpu"]);
    let got = s.run_positional(vec![Some(image(2))]).unwrap();
    assert_close(&got, &reference(&tinycnn(), vec![Some(image(2))]), "plugin");
    let e = plugin.create_backend("TPU").err().unwrap().to_string();
    assert!(e.contains("has no device TPU"), "{e}");
    // Properties in the config reach OpenVINO, and its error comes back across the ABI.
    let bad: Arc<dyn Backend> = Arc::new(plugin.create_backend("CPU NO_SUCH_KEY=1").unwrap());
    let mut o = options(vec![bad]);
    o.fallback = false;
    let e = Session::load_with(tinycnn(), o).err().unwrap().to_string();
    assert!(e.contains("NO_SUCH_KEY"), "{e}");
}

#[test]
fn configurations_openvino_gets_wrong_run_on_the_cpu_with_the_reason() {
    let ov: Arc<dyn Backend> = Arc::new(ov_cpu());
    for (case, why) in [
        (
            "test_maxpool_2d_ceil_output_size_reduce_by_one",
            "ceil_mode=1",
        ),
        (
            "test_dynamicquantizelinear_expanded",
            "a scale computed by the model's nodes",
        ),
        // OpenVINO's ONNX frontend has no INT2 ("Unsupported data type INT2"): without the
        // refusal the partition failed to compile.
        ("test_dequantizelinear_int2", "has no element type for"),
        ("test_dequantizelinear_uint2", "has no element type for"),
    ] {
        let dir = common::cases_dir().join("node").join(case);
        let s = Session::load_with(dir.join("model.onnx"), options(vec![ov.clone()])).unwrap();
        assert!(s.explain().contains(why), "{case}: {}", s.explain());
        common::check_case(&s, &dir).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

#[test]
fn a_per_shape_compile_that_fails_at_run_time_falls_back_or_fails_as_the_policy_says() {
    // A static-shape device compiles when a run brings new shapes; that compile failing
    // (here: an OpenVINO property it refuses) runs the partition on the next backend with
    // fallback on, and is the run's error with fallback off.
    let bad = || -> Arc<dyn Backend> {
        let b = ov_cpu().with_config(vec![("NO_SUCH_KEY".into(), "1".into())]);
        let mut table = b.capabilities().unwrap().clone();
        table.static_shapes = true;
        Arc::new(b.with_table(table))
    };
    let s = Session::load_with(tinycnn(), options(vec![bad()])).unwrap();
    let got = s.run_positional(vec![Some(image(2))]).unwrap();
    assert_close(
        &got,
        &reference(&tinycnn(), vec![Some(image(2))]),
        "run-time fallback",
    );
    let mut o = options(vec![bad()]);
    o.fallback = false;
    let s = Session::load_with(tinycnn(), o).unwrap();
    let e = s
        .run_positional(vec![Some(image(2))])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("for input shapes") && e.contains("NO_SUCH_KEY"),
        "{e}"
    );
}
