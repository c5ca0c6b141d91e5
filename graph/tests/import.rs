//! Import behaviours that need whole models: zero-copy initializers, external data past
//! 2 GiB, sparse initializers, bodies that read outer values.

use bytes::Bytes;
use prost::Message;
use xnpu_core::{DType, ValueType};
use xnpu_graph::onnx::proto::{
    tensor_proto::DataLocation, type_proto, AttributeProto, AttributeType, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, SparseTensorProto, StringStringEntryProto, TensorProto,
    TypeProto, ValueInfoProto,
};
use xnpu_graph::onnx::{load, load_bytes};
use xnpu_graph::Op;

fn vi_of(name: &str, elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: None,
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

fn vi(name: &str) -> ValueInfoProto {
    vi_of(name, 1)
}

fn identity(input: &str, output: &str) -> NodeProto {
    NodeProto {
        op_type: "Identity".into(),
        input: vec![input.into()],
        output: vec![output.into()],
        ..Default::default()
    }
}

fn model(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(graph),
        ..Default::default()
    }
}

fn raw_f32(name: &str, values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: 1,
        raw_data: values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
        ..Default::default()
    }
}

#[test]
fn raw_data_initializers_are_slices_of_the_model_buffer() {
    let m = model(GraphProto {
        node: vec![identity("w", "y")],
        initializer: vec![raw_f32("w", &[1.0, 2.0, 3.0, 4.0])],
        output: vec![vi("y")],
        ..Default::default()
    });
    let buf = Bytes::from(m.encode_to_vec());
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let model = load_bytes(buf.clone(), "m.onnx", None).unwrap();
    let w = model.graph.values.iter().find(|v| v.name == "w").unwrap();
    let t = w.constant.as_ref().unwrap();
    assert!(
        range.contains(&(t.raw_bytes().as_ptr() as usize)),
        "initializer was copied"
    );
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn external_data_beyond_2_gib_is_read_from_a_sparse_file() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let offset: u64 = (5 << 30) / 2; // 2.5 GiB: past what a protobuf (and i32 offsets) can hold
    let file = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    file.set_len(offset + 16).unwrap(); // sparse: no disk used
    let vals: Vec<u8> = [1.5f32, 2.5, 3.5, 4.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    file.write_all_at(&vals, offset).unwrap();
    let entry = |k: &str, v: String| StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    let t = TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: 1,
        data_location: DataLocation::External as i32,
        external_data: vec![
            entry("location", "big.bin".into()),
            entry("offset", offset.to_string()),
            entry("length", "16".into()),
        ],
        ..Default::default()
    };
    let m = model(GraphProto {
        node: vec![identity("w", "y")],
        initializer: vec![t],
        output: vec![vi("y")],
        ..Default::default()
    });
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let model = load(&path).unwrap();
    let w = model.graph.values.iter().find(|v| v.name == "w").unwrap();
    assert_eq!(
        w.constant.as_ref().unwrap().to_vec::<f32>().unwrap(),
        vec![1.5, 2.5, 3.5, 4.5]
    );
}

#[test]
fn sparse_initializers_become_dense() {
    let sp = SparseTensorProto {
        values: Some(raw_f32("s", &[7.0, 9.0])),
        indices: Some(TensorProto {
            name: "s_idx".into(),
            dims: vec![2],
            data_type: 7,
            int64_data: vec![1, 4],
            ..Default::default()
        }),
        dims: vec![2, 3],
    };
    let m = model(GraphProto {
        node: vec![identity("s", "y")],
        sparse_initializer: vec![sp],
        output: vec![vi("y")],
        ..Default::default()
    });
    let model = load_bytes(m.encode_to_vec().into(), "m.onnx", None).unwrap();
    let s = model.graph.values.iter().find(|v| v.name == "s").unwrap();
    let t = s.constant.as_ref().unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(
        t.to_vec::<f32>().unwrap(),
        vec![0.0, 7.0, 0.0, 0.0, 9.0, 0.0]
    );
}

#[test]
fn bodies_capture_outer_values_as_extra_node_inputs() {
    let then_branch = GraphProto {
        name: "then".into(),
        node: vec![identity("x", "t_out")],
        output: vec![vi("t_out")],
        ..Default::default()
    };
    let else_branch = GraphProto {
        name: "else".into(),
        node: vec![identity("z", "e_out")],
        output: vec![vi("e_out")],
        ..Default::default()
    };
    let attr = |name: &str, g: GraphProto| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(Box::new(g)),
        ..Default::default()
    };
    let node = NodeProto {
        name: "branch".into(),
        op_type: "If".into(),
        input: vec!["c".into()],
        output: vec!["y".into()],
        attribute: vec![
            attr("then_branch", then_branch),
            attr("else_branch", else_branch),
        ],
        ..Default::default()
    };
    let m = model(GraphProto {
        node: vec![node],
        input: vec![vi_of("c", 9), vi("x"), vi("z")],
        output: vec![vi("y")],
        ..Default::default()
    });
    let model = load_bytes(m.encode_to_vec().into(), "m.onnx", None).unwrap();
    let n = &model.graph.nodes[0];
    assert_eq!(n.inputs.len(), 3, "condition + captured x + captured z");
    let Op::If(op) = &n.op else {
        panic!("not an If")
    };
    let cap = &op.then_branch.captures[0];
    assert_eq!(cap.name, "x");
    assert_eq!(
        model.graph.values[n.inputs[cap.outer_input].unwrap()].name,
        "x"
    );
    let cap = &op.else_branch.captures[0];
    assert_eq!(
        model.graph.values[n.inputs[cap.outer_input].unwrap()].name,
        "z"
    );
    assert!(matches!(&model.graph.values[0].ty, ValueType::Tensor(t) if t.dtype == DType::Bool));
}
