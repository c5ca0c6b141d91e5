//! FlexAttention (`ai.onnx.preview` 1) through import and export: its modifier graphs become
//! bodies (which may read outer values), bad graphs and attributes are refused naming the
//! node, the op and what is wrong, and the exported node imports back to the same op.

use prost::Message;
use xnpu_core::DType;
use xnpu_graph::onnx::proto::{
    type_proto, AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TypeProto, ValueInfoProto,
};
use xnpu_graph::onnx::{load_bytes, to_bytes, to_exact, Form};
use xnpu_graph::{Model, Op};

const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;

fn vi(name: &str, elem_type: i32, rank: usize) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(xnpu_graph::onnx::proto::TensorShapeProto {
                    dim: (0..rank)
                        .map(|i| xnpu_graph::onnx::proto::tensor_shape_proto::Dimension {
                            value: Some(
                                xnpu_graph::onnx::proto::tensor_shape_proto::dimension::Value::DimParam(
                                    format!("{name}_{i}"),
                                ),
                            ),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

fn node(op_type: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op_type.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A modifier `x ↦ x ⊙ other`, with `other` an initializer of the modifier when `init`.
fn modifier(op_type: &str, other: &str, init: Option<f32>, elem_type: i32) -> GraphProto {
    GraphProto {
        name: format!("{op_type}_mod"),
        node: vec![node(op_type, &["x", other], &["x_out"])],
        input: vec![vi("x", elem_type, 4)],
        output: vec![vi("x_out", elem_type, 4)],
        initializer: init
            .map(|v| TensorProto {
                name: other.into(),
                data_type: FLOAT,
                float_data: vec![v],
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(Box::new(g)),
        ..Default::default()
    }
}

/// A model of one FlexAttention node "fa" on Q, K, V (and an input "c" modifiers may read).
fn model(elem_type: i32, q_rank: usize, attribute: Vec<AttributeProto>) -> ModelProto {
    let mut fa = node("FlexAttention", &["Q", "K", "V"], &["Y"]);
    fa.name = "fa".into();
    fa.domain = "ai.onnx.preview".into();
    fa.attribute = attribute;
    ModelProto {
        ir_version: 13,
        opset_import: ["", "ai.onnx.preview"]
            .iter()
            .zip([26, 1])
            .map(|(d, v)| OperatorSetIdProto {
                domain: d.to_string(),
                version: v,
            })
            .collect(),
        graph: Some(GraphProto {
            name: "main".into(),
            node: vec![fa],
            input: vec![
                vi("Q", elem_type, q_rank),
                vi("K", elem_type, 4),
                vi("V", elem_type, 4),
                vi("c", FLOAT, 0),
            ],
            output: vec![vi("Y", elem_type, 4)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn load(m: &ModelProto) -> xnpu_core::Result<Model> {
    load_bytes(m.encode_to_vec().into(), "m.onnx", None)
}

fn err_of(m: &ModelProto) -> String {
    load(m)
        .expect_err("the model should be refused")
        .to_string()
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{p:?} missing from: {msg}");
    }
}

fn both_modifiers() -> Vec<AttributeProto> {
    vec![
        graph_attr("score_mod", modifier("Add", "bias", Some(0.5), FLOAT)),
        // Reads the main graph's input "c".
        graph_attr("prob_mod", modifier("Mul", "c", None, FLOAT)),
        AttributeProto {
            name: "scale".into(),
            r#type: AttributeType::Float as i32,
            f: 0.25,
            ..Default::default()
        },
    ]
}

fn flex(m: &Model) -> &xnpu_graph::ir::FlexAttention {
    match &m.graph.nodes[0].op {
        Op::FlexAttention(o) => o,
        other => panic!("not FlexAttention: {other:?}"),
    }
}

#[test]
fn modifiers_become_bodies_and_outer_values_they_read_extra_inputs() {
    let m = load(&model(FLOAT, 4, both_modifiers())).unwrap();
    let n = &m.graph.nodes[0];
    let o = flex(&m);
    assert_eq!(o.scale, Some(0.25));
    assert_eq!(o.softmax_precision, None);
    assert_eq!(n.op.subgraphs().len(), 2);
    assert_eq!(n.inputs.len(), 4, "Q, K, V and the captured c");
    let cap = &o.prob_mod.as_ref().unwrap().captures[0];
    assert_eq!(m.graph.values[n.inputs[cap.outer_input].unwrap()].name, "c");
    assert!(o.score_mod.as_ref().unwrap().captures.is_empty());
    let y = m.graph.values[m.graph.outputs[0]].ty.tensor().unwrap();
    assert_eq!(y.dtype, DType::F32);
    assert_eq!(y.shape.as_ref().unwrap().rank(), 4);
}

#[test]
fn export_writes_one_preview_node_that_imports_back_the_same() {
    let m = load(&model(FLOAT, 4, both_modifiers())).unwrap();
    for form in [Form::Portable, Form::Exact] {
        let bytes = match form {
            Form::Portable => to_bytes(&m).unwrap(),
            Form::Exact => to_exact(&m).unwrap().to_bytes(),
        };
        let proto = ModelProto::decode(bytes.as_slice()).unwrap();
        let g = proto.graph.as_ref().unwrap();
        assert_eq!(g.node.len(), 1, "{form:?}");
        assert_eq!(
            (g.node[0].op_type.as_str(), g.node[0].domain.as_str()),
            ("FlexAttention", "ai.onnx.preview")
        );
        assert_eq!(g.node[0].input, ["Q", "K", "V"], "captures are not inputs");
        assert!(proto
            .opset_import
            .iter()
            .any(|o| o.domain == "ai.onnx.preview" && o.version == 1));
        let back = load_bytes(bytes.into(), "back.onnx", None).unwrap();
        let (a, b) = (flex(&m), flex(&back));
        assert_eq!(
            (a.scale, a.softmax_precision),
            (b.scale, b.softmax_precision)
        );
        for (x, y) in [(&a.score_mod, &b.score_mod), (&a.prob_mod, &b.prob_mod)] {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            assert_eq!(x.nodes.len(), y.nodes.len());
            assert_eq!(x.captures.len(), y.captures.len());
        }
        assert_eq!(back.graph.nodes[0].inputs.len(), 4);
    }
}

#[test]
fn a_modifier_with_two_inputs_is_refused_naming_node_op_and_attribute() {
    let mut g = modifier("Add", "bias", Some(0.5), FLOAT);
    g.input.push(vi("extra", FLOAT, 4));
    let msg = err_of(&model(FLOAT, 4, vec![graph_attr("score_mod", g)]));
    assert_mentions(
        &msg,
        &[
            "\"fa\"",
            "FlexAttention",
            "score_mod",
            "2 inputs and 1 outputs",
            "exactly 1",
        ],
    );
}

#[test]
fn a_modifier_with_no_output_is_refused() {
    let mut g = modifier("Mul", "c", None, FLOAT);
    g.output.clear();
    let msg = err_of(&model(FLOAT, 4, vec![graph_attr("prob_mod", g)]));
    assert_mentions(&msg, &["\"fa\"", "prob_mod", "1 inputs and 0 outputs"]);
}

#[test]
fn a_modifier_typed_other_than_the_softmax_precision_is_refused() {
    // f16 inputs compute softmax (and the modifiers) in f32 by default.
    let g = modifier("Add", "bias", Some(0.5), FLOAT16);
    let msg = err_of(&model(FLOAT16, 4, vec![graph_attr("score_mod", g.clone())]));
    assert_mentions(
        &msg,
        &["\"fa\"", "score_mod", "input \"x\" is f16", "passes f32"],
    );
    // Unless softmax_precision says f16.
    let precision = AttributeProto {
        name: "softmax_precision".into(),
        r#type: AttributeType::Int as i32,
        i: FLOAT16 as i64,
        ..Default::default()
    };
    let m = load(&model(
        FLOAT16,
        4,
        vec![graph_attr("score_mod", g), precision],
    ))
    .unwrap();
    assert_eq!(flex(&m).softmax_precision, Some(DType::F16));
}

#[test]
fn bad_attributes_inputs_and_ranks_are_refused_saying_what() {
    let int = |name: &str, i: i64| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    };
    let msg = err_of(&model(FLOAT, 4, vec![int("softmax_precision", 6)]));
    assert_mentions(&msg, &["\"fa\"", "softmax_precision", "is i32"]);
    let msg = err_of(&model(FLOAT, 4, vec![int("softmax_precision", 9999)]));
    assert_mentions(&msg, &["\"fa\"", "softmax_precision"]);
    let msg = err_of(&model(FLOAT, 4, vec![int("mask_mod", 1)]));
    assert_mentions(&msg, &["\"fa\"", "\"mask_mod\"", "score_mod"]);
    let msg = err_of(&model(FLOAT, 3, vec![]));
    assert_mentions(&msg, &["\"fa\"", "FlexAttention Q must be 4-D, got rank 3"]);
    let mut m = model(FLOAT, 4, vec![]);
    m.graph.as_mut().unwrap().node[0].input.pop();
    assert_mentions(&err_of(&m), &["\"fa\"", "takes 3 inputs (Q, K, V)"]);
    let mut m = model(FLOAT, 4, vec![]);
    let g = m.graph.as_mut().unwrap();
    g.input[2] = vi("V", FLOAT16, 4);
    assert_mentions(&err_of(&m), &["FlexAttention V is f16, Q is f32"]);
}
