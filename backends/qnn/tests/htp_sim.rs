//! The QNN backend against the real QNN libraries of the pinned `onnxruntime-qnn` wheel
//! (scripts/test.sh installs it into .venv): on x86_64 its libQnnHtp.so is Qualcomm's HTP
//! simulator, which executes graphs on the CPU. A SoC model is set so that fp32 computes
//! as fp16, as on the device; results are compared at fp16 tolerances.

use std::path::Path;
use std::sync::Arc;

use xnpu_backend_qnn::graph::QnnGraph;
use xnpu_backend_qnn::lower::mappings;
use xnpu_backend_qnn::{check_core_version, ffi, find_library, Qnn, QnnLibrary, DEFAULT_SIM_SOC};
use xnpu_core::{Tensor, Value};

/// The largest absolute difference between two f32 tensors.
fn max_error(got: &Value, want: &Value) -> f32 {
    let (a, b) = (
        got.as_tensor().unwrap().to_vec::<f32>().unwrap(),
        want.as_tensor().unwrap().to_vec::<f32>().unwrap(),
    );
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn htp() -> Arc<QnnLibrary> {
    let path = find_library("libQnnHtp.so")
        .unwrap_or_else(|e| panic!("{e}\n(scripts/test.sh installs onnxruntime-qnn into .venv)"));
    Arc::new(QnnLibrary::open(&path).unwrap())
}

#[test]
fn the_htp_library_offers_a_core_api_2_provider() {
    let lib = htp();
    let p = &lib.providers()[0];
    assert_eq!(p.name, "HTP_QTI_AISW");
    assert_eq!(p.core.major, 2);
    assert_eq!(lib.backend_id(), 6);
    assert!(lib.build_id().unwrap().starts_with("v2."));
    let e = check_core_version(
        "X",
        ffi::Version {
            major: 3,
            minor: 0,
            patch: 0,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("core API 3.0.0; xnpu knows major 2 only"), "{e}");
}

#[test]
fn a_library_that_is_not_qnn_is_refused() {
    let libm = Path::new("/lib/x86_64-linux-gnu/libm.so.6");
    if libm.exists() {
        let e = QnnLibrary::open(libm).err().unwrap().to_string();
        assert!(e.contains("not a QNN backend library"), "{e}");
    }
    let e = QnnLibrary::open(Path::new("/nonexistent/libQnnHtp.so"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/libQnnHtp.so: no such file"), "{e}");
}

#[test]
fn the_simulator_lists_every_mapped_op() {
    let q = Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap();
    let ops = q.supported_operations().unwrap();
    assert!(ops.len() > 100, "{}", ops.len());
    for m in mappings() {
        assert!(
            ops.iter().any(|o| *o == format!("qti.aisw.{}", m.qnn)),
            "{}",
            m.qnn
        );
    }
}

#[test]
fn a_graph_of_mapped_ops_runs_on_the_simulator_like_the_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = xnpu_graph::onnx::load(&root.join("tests/fixtures/qnn/mlp.onnx")).unwrap();
    let q = Arc::new(Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let g = QnnGraph::build(q, &model.graph).unwrap();
    let x = Tensor::from_vec(
        vec![4, 64],
        (0..256).map(|i| ((i as f32) * 0.37).sin()).collect(),
    )
    .unwrap();
    let got = g.run(&[Value::Tensor(x.clone())]).unwrap();
    let want = xnpu_backend_cpu::run_graph(&model.graph, &[Some(Value::Tensor(x))], &[]).unwrap();
    assert_eq!(got[0].as_tensor().unwrap().shape(), &[4, 4, 8]);
    let err = max_error(&got[0], &want[0]);
    // fp16 compute: about 1e-3 relative on values of order 1.
    assert!(err < 1e-2, "max error {err}");
    println!("max error vs reference (fp16 compute): {err}");
}

#[test]
fn a_session_runs_mapped_ops_on_the_simulator_and_the_rest_on_the_cpu() {
    use xnpu::graph::backend::Backend;
    use xnpu::{Session, SessionOptions};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let q = Arc::new(Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let qnn: Arc<dyn Backend> = Arc::new(xnpu_backend_qnn::QnnBackend::new(q.clone()));
    assert_eq!(qnn.name(), "qnn:htp-sim");
    assert_eq!(qnn.kind(), xnpu::graph::backend::DeviceKind::Cpu);
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::new());
    // All of the MLP's ops are mapped: one partition on the simulator. (Level none: the
    // ops as imported; tests/ops.rs covers the fused ops the passes make.)
    let path = root.join("tests/fixtures/qnn/mlp.onnx");
    let level = xnpu::graph::passes::Level::None;
    let s = Session::load_with(
        &path,
        SessionOptions::new()
            .level(level)
            .backend(qnn.clone())
            .backend(cpu.clone()),
    )
    .unwrap();
    let plan = s.plan();
    assert!(
        plan.decisions
            .iter()
            .all(|d| plan.backends[d.backend] == "qnn:htp-sim"),
        "{}",
        s.explain()
    );
    let x = Value::Tensor(
        Tensor::from_vec(
            vec![4, 64],
            (0..256).map(|i| ((i as f32) * 0.11).cos()).collect(),
        )
        .unwrap(),
    );
    let got = s.run_positional(vec![Some(x.clone())]).unwrap();
    let reference = Session::load(&path)
        .unwrap()
        .run_positional(vec![Some(x)])
        .unwrap();
    let err = max_error(&got[0], &reference[0]);
    assert!(err < 1e-2, "max error {err}");
    assert_eq!(s.compiled_counts(), [1]);
    // The demo CNN at level all (Conv+BatchNormalization+Relu fused into FusedConv,
    // MaxPool, GlobalAveragePool, Flatten, Gemm, Softmax): every node on the simulator, one
    // graph per batch size, within fp16 tolerance of the CPU.
    let path = root.join("models/tinycnn.onnx");
    let s = Session::load_with(&path, SessionOptions::new().backend(qnn).backend(cpu)).unwrap();
    let plan = s.plan();
    assert!(
        plan.decisions
            .iter()
            .all(|d| plan.backends[d.backend] == "qnn:htp-sim"),
        "{}",
        s.explain()
    );
    let x = Value::Tensor(
        Tensor::from_vec(
            vec![2, 3, 32, 32],
            (0..6144).map(|i| ((i as f32) * 0.013).sin()).collect(),
        )
        .unwrap(),
    );
    let got = s.run_positional(vec![Some(x.clone())]).unwrap();
    let reference = Session::load(&path)
        .unwrap()
        .run_positional(vec![Some(x)])
        .unwrap();
    let err = max_error(&got[0], &reference[0]);
    assert!(err < 1e-2, "tinycnn max error {err}");
    println!("tinycnn on the simulator, max error vs the CPU (fp16 compute): {err}");
}

#[test]
fn a_context_binary_saved_and_reloaded_gives_identical_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = xnpu_graph::onnx::load(&root.join("tests/fixtures/qnn/mlp.onnx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let q = Arc::new(Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let first = QnnGraph::build_cached(q.clone(), &model.graph, Some(dir.path())).unwrap();
    assert!(!first.loaded_from_cache());
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one sealed .qnnctx file");
    let file = files[0].path();
    assert_eq!(file.extension().unwrap(), "qnnctx");
    // A new QNN instance, as a new process would have.
    let q2 = Arc::new(Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let second = QnnGraph::build_cached(q2.clone(), &model.graph, Some(dir.path())).unwrap();
    assert!(second.loaded_from_cache());
    // A file altered on disk is detected by its checksum and rebuilt, never loaded.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&file, &bytes).unwrap();
    let rebuilt = QnnGraph::build_cached(q2.clone(), &model.graph, Some(dir.path())).unwrap();
    assert!(!rebuilt.loaded_from_cache());
    let third = QnnGraph::build_cached(q2, &model.graph, Some(dir.path())).unwrap();
    assert!(
        third.loaded_from_cache(),
        "the rebuild replaced the altered file"
    );
    let x = Value::Tensor(
        Tensor::from_vec(
            vec![4, 64],
            (0..256).map(|i| (i as f32) * 0.01 - 1.0).collect(),
        )
        .unwrap(),
    );
    let (a, b) = (
        first.run(std::slice::from_ref(&x)).unwrap(),
        second.run(std::slice::from_ref(&x)).unwrap(),
    );
    assert_eq!(
        a[0].as_tensor().unwrap().raw_bytes(),
        b[0].as_tensor().unwrap().raw_bytes()
    );
    // Another SoC cannot be set in this process (the HTP library keeps the first one); it
    // would also be another cache key.
    let e = Qnn::new(htp(), 57).err().unwrap().to_string();
    assert!(e.contains("keeps one SoC model per process"), "{e}");
}

#[test]
fn a_model_quantised_from_calibration_inputs_runs_on_the_simulator() {
    use xnpu::graph::backend::Backend;
    use xnpu::{Session, SessionOptions};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = xnpu::graph::onnx::load(&root.join("models/tinycnn.onnx")).unwrap();
    let image = |k: usize| {
        Value::Tensor(
            Tensor::from_vec(
                vec![1, 3, 32, 32],
                (0..3 * 32 * 32)
                    .map(|i| (((i * 7 + k * 131) as f32) * 0.013).sin())
                    .collect(),
            )
            .unwrap(),
        )
    };
    let calibration: Vec<Vec<Option<Value>>> = (0..4).map(|k| vec![Some(image(k))]).collect();
    let qdq = xnpu::quantize::quantize_static(&model, &calibration).unwrap();
    let q = Arc::new(Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let qnn: Arc<dyn Backend> = Arc::new(xnpu_backend_qnn::QnnBackend::new(q.clone()));
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::new());
    let s = Session::new(qdq.clone(), SessionOptions::new().backend(qnn).backend(cpu)).unwrap();
    let plan = s.plan();
    let on_qnn = plan
        .decisions
        .iter()
        .filter(|d| plan.backends[d.backend] == "qnn:htp-sim")
        .count();
    let quantizers = plan
        .decisions
        .iter()
        .zip(&s.model().graph.nodes)
        .filter(|(d, n)| {
            n.op.name().contains("uantizeLinear") && plan.backends[d.backend] == "qnn:htp-sim"
        })
        .count();
    assert!(
        quantizers >= 8,
        "Q/DQ on QNN: {quantizers}\n{}",
        s.explain()
    );
    println!("{on_qnn} of {} nodes on qnn:htp-sim", plan.decisions.len());
    assert_eq!(on_qnn, plan.decisions.len(), "{}", s.explain());
    assert_integer_units(&q, s.model(), 1);
    let reference = Session::new(
        qdq,
        SessionOptions::new().backend(Arc::new(xnpu_backend_cpu::CpuBackend::new())),
    )
    .unwrap();
    for k in 10..13 {
        let got = s.run_positional(vec![Some(image(k))]).unwrap();
        let want = reference.run_positional(vec![Some(image(k))]).unwrap();
        let err = max_error(&got[0], &want[0]);
        // Probabilities of a uint8 model: a rounding flip moves an activation by one step.
        assert!(err < 0.03, "input {k}: max error {err}");
    }
}

/// The whole optimised graph as one QNN graph (input batch 1): its QDQ units run as
/// fixed-point ops, so the only float ↔ fixed-point conversions left are `converts`
/// Quantize and Dequantize nodes (at the graph's input and output).
fn assert_integer_units(q: &Arc<Qnn>, model: &xnpu::graph::Model, converts: usize) {
    let mut graph = model.graph.clone();
    let x = graph.inputs[0];
    graph.values[x].ty = xnpu_core::ValueType::Tensor(xnpu_core::TensorType::new(
        xnpu_core::DType::F32,
        xnpu_core::Shape::known(&[1, 3, 32, 32]),
    ));
    graph.infer_types_with(false).unwrap();
    let g = QnnGraph::build(q.clone(), &graph).unwrap();
    let ops = g.qnn_ops();
    println!("QNN ops: {ops:?}");
    let count = |t: &str| ops.iter().filter(|o| *o == t).count();
    assert_eq!(count("Quantize"), converts, "{ops:?}");
    assert_eq!(count("Dequantize"), converts, "{ops:?}");
    assert_eq!(count("Conv2d"), 2, "{ops:?}");
    assert_eq!(count("FullyConnected"), 1, "{ops:?}");
}

#[test]
fn a_qdq_model_from_onnx_runtimes_quantiser_runs_as_integer_ops() {
    use xnpu::graph::backend::Backend;
    use xnpu::{Session, SessionOptions};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model =
        xnpu::graph::onnx::load(&root.join("tests/fixtures/qnn/tinycnn_qdq_ort.onnx")).unwrap();
    let q = Arc::new(Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let qnn: Arc<dyn Backend> = Arc::new(xnpu_backend_qnn::QnnBackend::new(q.clone()));
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::new());
    let s = Session::new(
        model.clone(),
        SessionOptions::new().backend(qnn).backend(cpu.clone()),
    )
    .unwrap();
    let plan = s.plan();
    assert!(
        plan.decisions
            .iter()
            .all(|d| plan.backends[d.backend] == "qnn:htp-sim"),
        "{}",
        s.explain()
    );
    assert_integer_units(&q, s.model(), 1);
    let reference = Session::new(model, SessionOptions::new().backend(cpu)).unwrap();
    let image = |k: usize| {
        Value::Tensor(
            Tensor::from_vec(
                vec![1, 3, 32, 32],
                (0..3 * 32 * 32)
                    .map(|i| (((i * 5 + k * 97) as f32) * 0.011).cos())
                    .collect(),
            )
            .unwrap(),
        )
    };
    for k in 0..3 {
        let got = s.run_positional(vec![Some(image(k))]).unwrap();
        let want = reference.run_positional(vec![Some(image(k))]).unwrap();
        let err = max_error(&got[0], &want[0]);
        println!("input {k}: max error {err}");
        assert!(err < 0.03, "input {k}: max error {err}");
    }
}
