//! The OpenVINO backend against the real OpenVINO library from the pinned `openvino` wheel
//! (installed by scripts/test.sh into .venv), on OpenVINO's CPU device: devices are listed,
//! and the demo model compiled from ONNX bytes matches the reference CPU backend.

use std::path::Path;
use std::sync::Arc;

use xnpu_backend_openvino::{OpenVino, OpenVinoBackend};
use xnpu_core::{Tensor, Value};
use xnpu_graph::backend::Backend;

fn openvino() -> Arc<OpenVino> {
    Arc::new(OpenVino::open().unwrap_or_else(|e| {
        panic!("{e}\n(scripts/test.sh installs the openvino wheel into .venv)")
    }))
}

#[test]
fn lists_the_cpu_device_with_its_full_name() {
    let ov = openvino();
    assert!(ov.version().starts_with("20"), "{}", ov.version());
    let devices = ov.devices().unwrap();
    let cpu = devices
        .iter()
        .find(|d| d.name == "CPU")
        .expect("OpenVINO lists CPU");
    assert!(!cpu.full_name.is_empty());
    let e = OpenVinoBackend::new(ov.clone(), "TPU")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("has no device TPU (it lists: CPU"), "{e}");
}

#[test]
fn the_demo_model_on_openvino_cpu_matches_the_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = xnpu_graph::onnx::load(&root.join("models/tinycnn.onnx")).unwrap();
    let backend = OpenVinoBackend::new(openvino(), "CPU").unwrap();
    assert_eq!(backend.name(), "openvino:cpu");
    let exe = backend.compile(&model.graph).unwrap();
    for batch in [1usize, 3] {
        let n = batch * 3 * 32 * 32;
        let x = Tensor::from_vec(
            vec![batch, 3, 32, 32],
            (0..n).map(|i| ((i as f32) * 0.013).sin()).collect(),
        )
        .unwrap();
        let got = exe.run(&[Value::Tensor(x.clone())]).unwrap();
        let want =
            xnpu_backend_cpu::run_graph(&model.graph, &[Some(Value::Tensor(x))], &[]).unwrap();
        let (g, w) = (
            got[0].as_tensor().unwrap().to_vec::<f32>().unwrap(),
            want[0].as_tensor().unwrap().to_vec::<f32>().unwrap(),
        );
        assert_eq!(got[0].as_tensor().unwrap().shape(), &[batch, 10]);
        for (a, b) in g.iter().zip(&w) {
            assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{g:?} vs {w:?}");
        }
    }
}

#[test]
fn a_model_openvino_cannot_read_is_a_clear_error() {
    let ov = openvino();
    let backend = OpenVinoBackend::new(ov, "CPU").unwrap();
    // A graph with an op OpenVINO's ONNX frontend does not know (a string op).
    let mut g = xnpu_graph::Graph::default();
    let x = g.add_value(
        "x",
        xnpu_core::ValueType::Tensor(xnpu_core::TensorType::new(
            xnpu_core::DType::String,
            xnpu_core::Shape::known(&[2]),
        )),
    );
    g.inputs.push(x);
    let y = g.add_value("y", xnpu_core::ValueType::Unknown);
    g.outputs.push(y);
    g.nodes.push(xnpu_graph::Node {
        name: "upper".into(),
        op: xnpu_graph::Op::Text(xnpu_ops::text::Op::StringNormalizer(
            xnpu_ops::text::StringNormalizer {
                case_change: xnpu_ops::text::CaseChange::Upper,
                case_sensitive: true,
                stopwords: vec![],
                locale: String::new(),
            },
        )),
        inputs: vec![Some(x)],
        outputs: vec![Some(y)],
    });
    let e = backend.compile(&g).err().unwrap().to_string();
    assert!(e.contains("OpenVINO"), "{e}");
}
