//! The bundled demo model gives what ONNX Runtime gives on the same input (stored by
//! scripts/make_demo_model.py), and its symbolic batch binds per run.

use std::path::Path;

use xnpu::{Session, Value};

fn models() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
}

#[test]
fn tinycnn_matches_onnxruntime() {
    let session = Session::load(models().join("tinycnn.onnx")).unwrap();
    let image = xnpu::npy::read(&models().join("tinycnn.image.npy")).unwrap();
    let want = xnpu::npy::read(&models().join("tinycnn.probs.ort.npy")).unwrap();
    let out = session.run(vec![("image", Value::Tensor(image))]).unwrap();
    assert_eq!(out[0].0, "probs");
    let got = out[0].1.as_tensor().unwrap();
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
            "probs[{i}]: xnpu {a}, onnxruntime {b}"
        );
    }
}

#[test]
fn symbolic_batch_resolves_when_inputs_arrive() {
    let session = Session::load(models().join("tinycnn.onnx")).unwrap();
    let declared = &session.outputs()[0].ty;
    assert_eq!(declared.to_string(), "f32[batch, 10]");
    let resolved = session
        .output_types_for(&[("image", &[4, 3, 32, 32])])
        .unwrap();
    assert_eq!(resolved[0].to_string(), "f32[4, 10]");
    let err = session
        .output_types_for(&[("image", &[4, 3, 31, 32])])
        .unwrap_err();
    assert!(err.to_string().contains("dim 2 must be 32"), "{err}");
}
