//! onnx's light models through [qnn:htp-sim, cpu] with the simulator in exact fp32 mode (no
//! SoC; its own process, as the HTP library keeps one SoC per process), against the
//! reference CPU backend. In fp16 (the device's precision) these models cannot run: their
//! constant weights drive activations to ~1e10, past fp16's 65504.
//!
//! Most of them end in a Softmax over such logits, where a relative difference of 1e-7 turns
//! uniform into one-hot: there the Softmax's input is compared instead of its output.

use std::path::PathBuf;
use std::sync::Arc;

use xnpu::graph::backend::{Backend, CompileCache};
use xnpu::{Session, SessionOptions, Tensor, Value, ValueType};
use xnpu_backend_qnn::{find_library, Qnn, QnnBackend, QnnLibrary};

fn light_models() -> Vec<PathBuf> {
    let dir = std::env::var_os("XNPU_ONNX_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/onnx-cases")
        })
        .join("light");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "no light models at {} ({e}); run scripts/test.sh",
                dir.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    v.sort();
    v
}

fn input(ty: &ValueType) -> Value {
    let ValueType::Tensor(t) = ty else {
        panic!("{ty}")
    };
    let dims: Vec<usize> = t
        .shape
        .as_ref()
        .map(|s| s.0.iter().map(|d| d.known().unwrap_or(1)).collect())
        .unwrap_or_default();
    let n: usize = dims.iter().product();
    Value::Tensor(Tensor::from_vec(dims, (0..n).map(|i| i as f32 / n as f32).collect()).unwrap())
}

fn max_abs(v: &Value) -> f32 {
    v.as_tensor()
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .fold(0f32, |m, x| m.max(x.abs()))
}

#[test]
fn light_models_run_through_qnn_like_the_reference() {
    let lib = Arc::new(QnnLibrary::open(&find_library("libQnnHtp.so").unwrap()).unwrap());
    let qnn: Arc<dyn Backend> = Arc::new(QnnBackend::new(Arc::new(Qnn::new(lib, 0).unwrap())));
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::new());
    for path in light_models() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut model = xnpu::graph::onnx::load(&path).unwrap();
        // Softmax inputs become outputs too, to compare the logits.
        let g = &mut model.graph;
        let softmax: Vec<(usize, String)> = g
            .nodes
            .iter()
            .filter(|n| n.op.name() == "Softmax")
            .filter_map(|n| Some((n.inputs[0]?, g.values[n.outputs[0]?].name.clone())))
            .collect();
        let n_out = g.outputs.len();
        for (x, _) in &softmax {
            g.outputs.push(*x);
        }
        // The oracle is the reference CPU backend on the same optimised graph: these
        // models' BatchNormalizations over near-constant activations cancel badly, so
        // folding them into the Convs alone moves outputs by up to 1e-3 (relative).
        let reference =
            Session::new(model.clone(), SessionOptions::new().backend(cpu.clone())).unwrap();
        let s = Session::new(
            model,
            SessionOptions::new()
                .compile_cache(CompileCache::Off)
                .backend(qnn.clone())
                .backend(cpu.clone()),
        )
        .unwrap();
        let plan = s.plan();
        let on_qnn = plan
            .decisions
            .iter()
            .filter(|d| plan.backends[d.backend] == "qnn:htp-sim")
            .count();
        println!(
            "{name}: {on_qnn} of {} nodes on qnn:htp-sim",
            plan.decisions.len()
        );
        // Measured: 11 of 16 (alexnet, zfnet512: their first Gemm's weights come from a
        // ConstantOfShape too large to fold) up to every node (densenet121, inception,
        // resnet50, shufflenet).
        assert!(
            on_qnn * 2 > plan.decisions.len(),
            "{name}: only {on_qnn} of {} nodes on qnn:htp-sim",
            plan.decisions.len()
        );
        let inputs: Vec<Option<Value>> = s
            .inputs()
            .iter()
            .map(|i| (!i.has_default).then(|| input(&i.ty)))
            .collect();
        let got = s.run_positional(inputs.clone()).unwrap();
        let want = reference.run_positional(inputs).unwrap();
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            let out_name = &reference.outputs()[k].name;
            let ill = k < n_out
                && softmax
                    .iter()
                    .position(|(_, y)| y == out_name)
                    .is_some_and(|i| max_abs(&want[n_out + i]) > 1e4);
            if ill {
                continue;
            }
            let scale = max_abs(b) as f64;
            let (x, y) = (
                a.as_tensor().unwrap().to_vec::<f32>().unwrap(),
                b.as_tensor().unwrap().to_vec::<f32>().unwrap(),
            );
            let bad = x
                .iter()
                .zip(&y)
                .filter(|(p, q)| {
                    ((**p - **q).abs() as f64) > 1e-5 + 1e-4 * scale + 1e-3 * (q.abs() as f64)
                })
                .count();
            let rel = x.iter().zip(&y).fold(0f64, |m, (p, q)| {
                m.max(((p - q).abs() as f64) / scale.max(1e-30))
            });
            println!("{name} output {k}: max error {rel:e} of the largest magnitude {scale:e}");
            assert_eq!(bad, 0, "{name} output {k}: {bad} values differ");
        }
    }
}
