//! Static quantisation from calibration inputs (`xnpu::quantize::quantize_static`): the demo
//! CNN becomes a uint8 QDQ model that runs, exports as ONNX, and stays close to the float
//! model on inputs it was not calibrated on.

use std::path::Path;

use xnpu::graph::passes::Level;
use xnpu::quantize::{quantize_static, uint8_params};
use xnpu::{Session, SessionOptions, Tensor, Value};

fn image(seed: usize) -> Value {
    let n = 3 * 32 * 32;
    Value::Tensor(
        Tensor::from_vec(
            vec![1, 3, 32, 32],
            (0..n)
                .map(|i| (((i * 7 + seed * 131) as f32) * 0.013).sin())
                .collect(),
        )
        .unwrap(),
    )
}

#[test]
fn uint8_parameters_cover_the_range_and_zero() {
    let (s, z) = uint8_params(-1.0, 3.0);
    assert!((s - 4.0 / 255.0).abs() < 1e-7);
    assert_eq!(z, 64);
    // A range without 0 is widened to include it (zero must be exact for padding, ReLU).
    let (s, z) = uint8_params(2.0, 4.0);
    assert!((s - 4.0 / 255.0).abs() < 1e-7);
    assert_eq!(z, 0);
}

#[test]
fn the_demo_cnn_quantised_from_calibration_inputs_stays_close() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tinycnn.onnx");
    let model = xnpu::graph::onnx::load(&path).unwrap();
    let calibration: Vec<Vec<Option<Value>>> = (0..4).map(|k| vec![Some(image(k))]).collect();
    let qdq = quantize_static(&model, &calibration).unwrap();
    let count = |m: &xnpu::graph::Model, op: &str| {
        m.graph.nodes.iter().filter(|n| n.op.name() == op).count()
    };
    assert!(count(&qdq, "QuantizeLinear") >= 8, "activations quantised");
    assert!(count(&qdq, "DequantizeLinear") >= count(&qdq, "QuantizeLinear") + 3);
    // Error messages name the model when no calibration is given.
    let e = quantize_static(&model, &[]).unwrap_err().to_string();
    assert!(e.contains("calibration"), "{e}");
    // Runs (as written, and after the passes), and exports as ONNX that imports again.
    let float = Session::new(model.clone(), SessionOptions::new()).unwrap();
    let bytes = xnpu::graph::onnx::to_bytes(&qdq).unwrap();
    let reloaded = Session::from_bytes(bytes, "tinycnn_qdq.onnx").unwrap();
    let as_is = Session::new(qdq, SessionOptions::new().level(Level::None)).unwrap();
    for k in 10..14 {
        let want = float.run_positional(vec![Some(image(k))]).unwrap();
        for s in [&as_is, &reloaded] {
            let got = s.run_positional(vec![Some(image(k))]).unwrap();
            let (a, b) = (
                got[0].as_tensor().unwrap().to_vec::<f32>().unwrap(),
                want[0].as_tensor().unwrap().to_vec::<f32>().unwrap(),
            );
            let err = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            // Probabilities: uint8 activations and weights move them by a few hundredths.
            assert!(err < 0.05, "input {k}: max error {err}");
        }
    }
}
