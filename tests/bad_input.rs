//! Bad input gives a clear error naming the model, the node (name and op) and what is wrong:
//! never a panic, never an allocation from an unchecked size.

use std::path::Path;

use prost::Message;
use xnpu::core::error::ErrorKind;
use xnpu::graph::onnx::proto::{
    tensor_proto::DataLocation, tensor_shape_proto::dimension, tensor_shape_proto::Dimension,
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use xnpu::{Session, Tensor, Value};

fn tensor_type(elem: i32, dims: &[i64]) -> TypeProto {
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: elem,
            shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(dimension::Value::DimValue(d)),
                        denotation: String::new(),
                    })
                    .collect(),
            }),
        })),
        denotation: String::new(),
    }
}

fn vi(name: &str, elem: i32, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(tensor_type(elem, dims)),
        doc_string: String::new(),
    }
}

fn node(name: &str, op: &str, domain: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        domain: domain.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// y = Identity(x) with x: f32[1, 3], plus the given initializers, at `opset`.
fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![vi("x", 1, &[1, 3])],
            output: vec![vi("y", 1, &[1, 3])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn identity_model() -> ModelProto {
    model(
        vec![node("id0", "Identity", "", &["x"], &["y"])],
        vec![],
        17,
    )
}

fn load(m: &ModelProto) -> Result<Session, xnpu::Error> {
    Session::from_bytes(m.encode_to_vec(), "bad.onnx")
}

fn err_of(m: &ModelProto) -> String {
    load(m).expect_err("the model must be refused").to_string()
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} does not mention {p:?}");
    }
}

#[test]
fn truncated_protobuf_is_refused() {
    let bytes =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tinycnn.onnx")).unwrap();
    for cut in [1, 100, bytes.len() / 2, bytes.len() - 3] {
        let e = Session::from_bytes(bytes[..cut].to_vec(), "tinycnn.onnx").unwrap_err();
        assert_mentions(&e.to_string(), &["tinycnn.onnx"]);
    }
}

#[test]
fn corrupt_protobuf_is_refused() {
    let e = Session::from_bytes(b"\xff\xff\xff\xff not a model".to_vec(), "junk.onnx").unwrap_err();
    assert_mentions(&e.to_string(), &["junk.onnx", "not a valid ONNX model"]);
    assert_eq!(e.kind(), ErrorKind::Model);
}

#[test]
fn unknown_op_names_node_op_domain_and_opset() {
    let m = model(
        vec![node("mystery", "Frobnicate", "", &["x"], &["y"])],
        vec![],
        17,
    );
    let e = err_of(&m);
    assert_mentions(
        &e,
        &[
            "bad.onnx",
            "node \"mystery\" (Frobnicate)",
            "ai.onnx",
            "opset 17",
            "not supported",
        ],
    );
}

#[test]
fn unknown_domain_is_named() {
    let mut m = model(
        vec![node("n1", "Thing", "com.example", &["x"], &["y"])],
        vec![],
        17,
    );
    m.opset_import.push(OperatorSetIdProto {
        domain: "com.example".into(),
        version: 1,
    });
    assert_mentions(
        &err_of(&m),
        &["node \"n1\" (Thing)", "com.example", "not supported"],
    );
    // A domain the model does not even import.
    let m = model(
        vec![node("n2", "Thing", "com.other", &["x"], &["y"])],
        vec![],
        17,
    );
    assert_mentions(
        &err_of(&m),
        &["node \"n2\" (Thing)", "com.other", "not imported"],
    );
}

#[test]
fn opset_newer_than_supported_is_refused() {
    let m = model(
        vec![node("id0", "Identity", "", &["x"], &["y"])],
        vec![],
        999,
    );
    let e = load(&m).unwrap_err();
    assert_mentions(&e.to_string(), &["bad.onnx", "opset 999", "newer"]);
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[test]
fn input_of_an_undefined_value_is_named() {
    let m = model(
        vec![node("id0", "Identity", "", &["nowhere"], &["y"])],
        vec![],
        17,
    );
    assert_mentions(&err_of(&m), &["node \"id0\" (Identity)", "\"nowhere\""]);
}

#[test]
fn missing_wrong_dtype_and_wrong_shape_inputs_are_named() {
    let s = load(&identity_model()).unwrap();
    let e = s.run(Vec::<(&str, Value)>::new()).unwrap_err();
    assert_mentions(&e.to_string(), &["bad.onnx", "input \"x\" is missing"]);
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    let f64_input = Tensor::from_vec(vec![1, 3], vec![1.0f64, 2.0, 3.0]).unwrap();
    let e = s
        .run(vec![("x", f64_input.into())])
        .unwrap_err()
        .to_string();
    assert_mentions(
        &e,
        &["bad.onnx", "input \"x\"", "expected dtype f32, got f64"],
    );

    let wrong_shape = Tensor::from_vec(vec![2, 3], vec![0.0f32; 6]).unwrap();
    let e = s
        .run(vec![("x", wrong_shape.into())])
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["bad.onnx", "input \"x\"", "dim 0 must be 1"]);

    let e = s
        .run(vec![("z", Tensor::scalar(1.0f32).into())])
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["no input \"z\""]);
}

fn raw_tensor(name: &str, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        raw_data: raw.into(),
        ..Default::default()
    }
}

fn with_init(t: TensorProto) -> ModelProto {
    let mut m = identity_model();
    m.graph.as_mut().unwrap().initializer.push(t);
    m
}

#[test]
fn declared_dims_larger_than_the_data_are_refused() {
    let e = err_of(&with_init(raw_tensor("w", &[1000, 1000], vec![0; 16])));
    assert_mentions(
        &e,
        &[
            "bad.onnx",
            "tensor \"w\"",
            "4000000 bytes",
            "holds 16 bytes",
        ],
    );
    // Typed fields: 4 values declared, 2 given.
    let mut t = raw_tensor("v", &[4], vec![]);
    t.float_data = vec![1.0, 2.0];
    assert_mentions(
        &err_of(&with_init(t)),
        &["tensor \"v\"", "4 elements", "holds 2 values"],
    );
}

#[test]
fn dimension_products_that_overflow_are_refused() {
    let e = err_of(&with_init(raw_tensor(
        "huge",
        &[1 << 40, 1 << 40, 1 << 40],
        vec![],
    )));
    assert_mentions(&e, &["tensor \"huge\"", "overflows"]);
    let e = err_of(&with_init(raw_tensor("neg", &[-5], vec![])));
    assert_mentions(&e, &["tensor \"neg\"", "negative"]);
}

fn external(name: &str, location: &str, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        data_location: DataLocation::External as i32,
        external_data: vec![StringStringEntryProto {
            key: "location".into(),
            value: location.into(),
        }],
        ..Default::default()
    }
}

fn save_in(dir: &Path, m: &ModelProto) -> std::path::PathBuf {
    let p = dir.join("model.onnx");
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

#[test]
fn external_data_inside_the_folder_loads_zero_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [1.0f32, 2.0, 3.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    std::fs::create_dir(dir.path().join("weights")).unwrap();
    std::fs::write(dir.path().join("weights/w.bin"), &data).unwrap();
    let p = save_in(dir.path(), &with_init(external("w", "weights/w.bin", &[3])));
    let model = xnpu::graph::onnx::load(&p).unwrap();
    let g = &model.graph;
    let w = g
        .values
        .iter()
        .find(|v| v.name == "w")
        .unwrap()
        .constant
        .as_ref()
        .unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
}

#[test]
fn external_data_that_escapes_the_model_folder_is_refused() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("secret.bin"), [0u8; 12]).unwrap();

    let p = save_in(&dir, &with_init(external("w", "../secret.bin", &[3])));
    assert_mentions(
        &Session::load(&p).unwrap_err().to_string(),
        &["model.onnx", "tensor \"w\"", "leaves the model's folder"],
    );

    let abs = outer.path().join("secret.bin");
    let p = save_in(&dir, &with_init(external("w", abs.to_str().unwrap(), &[3])));
    assert_mentions(
        &Session::load(&p).unwrap_err().to_string(),
        &["tensor \"w\"", "absolute"],
    );

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outer.path().join("secret.bin"), dir.join("link.bin")).unwrap();
        let p = save_in(&dir, &with_init(external("w", "link.bin", &[3])));
        assert_mentions(
            &Session::load(&p).unwrap_err().to_string(),
            &["tensor \"w\"", "outside the model's folder"],
        );
    }
}

#[test]
fn external_data_shorter_than_declared_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.bin"), [0u8; 8]).unwrap();
    let p = save_in(dir.path(), &with_init(external("w", "w.bin", &[1 << 20])));
    assert_mentions(
        &Session::load(&p).unwrap_err().to_string(),
        &["tensor \"w\"", "4194304 bytes", "holds 8 bytes"],
    );
    let mut t = external("w", "w.bin", &[2]);
    t.external_data.push(StringStringEntryProto {
        key: "offset".into(),
        value: "4".into(),
    });
    let p = save_in(dir.path(), &with_init(t));
    assert_mentions(
        &Session::load(&p).unwrap_err().to_string(),
        &["offset 4", "holds 8 bytes"],
    );
}

/// Scan of opset 8 (tests/fixtures/control/scan8.onnx: `s' = s + x; y = s' * x`, a batch of 3,
/// one reversed scan input of 4 steps): each batch entry scans its `sequence_lens` steps and
/// its scan output is zero past them, as ONNX Runtime 1.32 computes it (the expected values are
/// its outputs for these inputs); a length past the sequence is refused with the reason.
#[test]
fn scan_of_opset_8_scans_each_batch_entry_for_its_length() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/control/scan8.onnx");
    let s = Session::load(&path).expect("Scan-8 imports");
    let init: Vec<f32> = (0..6).map(|v| v as f32 - 2.0).collect();
    let xs: Vec<f32> = (0..24).map(|v| (v % 5) as f32 - 1.0).collect();
    let run = |lens: Vec<i64>| {
        s.run([
            (
                "lens",
                Value::from(Tensor::from_vec(vec![3], lens).unwrap()),
            ),
            (
                "init",
                Value::from(Tensor::from_vec(vec![3, 2], init.clone()).unwrap()),
            ),
            (
                "xs",
                Value::from(Tensor::from_vec(vec![3, 4, 2], xs.clone()).unwrap()),
            ),
        ])
    };
    let out = run(vec![4, 1, 2]).expect("Scan-8 runs");
    let get = |i: usize| out[i].1.as_tensor().unwrap().to_vec::<f32>().unwrap();
    assert_eq!(get(0), [1., 1., 2., 4., 4., 7.]);
    let ys = [
        0., 0., 3., 1., 2., 2., -1., 0., 4., 12., 0., 0., 0., 0., 0., 0., 8., 18., 0., 7., 0., 0.,
        0., 0.,
    ];
    assert_eq!(get(1), ys);
    let e = run(vec![4, 5, 2]).unwrap_err().to_string();
    assert_mentions(
        &e,
        &[
            "Scan",
            "sequence_lens holds 5",
            "from 0 to the sequence length 4",
        ],
    );
}
