use std::collections::BTreeMap;

use xnpu_core::{Shape, TensorType};
use xnpu_ops::elementwise::{self as el, Activation, ActivationKind, Unary, UnaryKind};
use xnpu_ops::nn::{self as nnops, FusedActivation, MatMulBias};

use super::*;
use crate::ir::{Capture, If};
use crate::onnx::load_bytes;

fn f32_type(dims: &[usize]) -> ValueType {
    ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)))
}

fn unary(name: &str, kind: UnaryKind, x: ValueId, y: ValueId) -> Node {
    Node {
        name: name.into(),
        op: Op::Elementwise(el::Op::Unary(Unary { kind })),
        inputs: vec![Some(x)],
        outputs: vec![Some(y)],
    }
}

/// A body that reads the outer value `x` (bound to input 1 of the If) and applies `kind`.
fn branch(name: &str, out: &str, kind: UnaryKind) -> Graph {
    let mut g = Graph {
        name: name.into(),
        ..Graph::default()
    };
    let x = g.add_value("x", f32_type(&[2]));
    let y = g.add_value(out, f32_type(&[2]));
    g.captures.push(Capture {
        name: "x".into(),
        inner: x,
        outer_input: 1,
    });
    g.nodes.push(unary(out, kind, x, y));
    g.outputs.push(y);
    g
}

fn model_with_if() -> Model {
    let mut g = Graph {
        name: "main".into(),
        ..Graph::default()
    };
    let cond = g.add_value(
        "cond",
        ValueType::Tensor(TensorType::new(DType::Bool, Shape::known(&[]))),
    );
    let x = g.add_value("x", f32_type(&[2]));
    let y = g.add_value("y", f32_type(&[2]));
    g.inputs = vec![cond, x];
    g.outputs = vec![y];
    g.nodes.push(Node {
        name: "y".into(),
        op: Op::If(Box::new(If {
            then_branch: branch("then", "t", UnaryKind::Neg),
            else_branch: branch("else", "e", UnaryKind::Abs),
        })),
        inputs: vec![Some(cond), Some(x)],
        outputs: vec![Some(y)],
    });
    Model {
        name: "if.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 16)]),
        ir_version: 8,
        producer: "xnpu test".into(),
        metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
    }
}

fn round_trip(m: &Model) -> Model {
    let bytes = to_bytes(m).expect("export");
    load_bytes(Bytes::from(bytes), &m.name, None).expect("re-import")
}

#[test]
fn if_with_captured_outer_value_round_trips_equal() {
    let m = model_with_if();
    let back = round_trip(&m);
    assert_eq!(back, m);
    // The If node lists only its condition; the bodies read "x" by name.
    let proto = to_model_proto(&m).unwrap();
    let node = &proto.graph.as_ref().unwrap().node[0];
    assert_eq!(node.op_type, "If");
    assert_eq!(node.input, vec!["cond".to_string()]);
    let then_g = node.attribute[0].g.as_ref().unwrap();
    assert_eq!(then_g.node[0].input, vec!["x".to_string()]);
    assert!(then_g.input.is_empty());
}

#[test]
fn names_are_made_unique_and_io_names_kept() {
    let mut g = Graph::default();
    let x = g.add_value("x", f32_type(&[2]));
    let a = g.add_value("", f32_type(&[2]));
    let b = g.add_value("x", f32_type(&[2]));
    let y = g.add_value("y", f32_type(&[2]));
    g.inputs = vec![x];
    g.outputs = vec![y];
    g.nodes.push(unary("", UnaryKind::Neg, x, a));
    g.nodes.push(unary("", UnaryKind::Abs, a, b));
    g.nodes.push(unary("", UnaryKind::Exp, b, y));
    let m = Model {
        name: "names.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 13)]),
        ..Model::default()
    };
    let proto = to_model_proto(&m).unwrap();
    let gp = proto.graph.unwrap();
    assert_eq!(gp.input[0].name, "x");
    assert_eq!(gp.output[0].name, "y");
    let outs: Vec<&str> = gp.node.iter().map(|n| n.output[0].as_str()).collect();
    assert_eq!(outs.len(), 3);
    assert!(outs[0] != "x" && outs[1] != "x" && outs[0] != outs[1]);
    assert_eq!(outs[2], "y");
    let back = round_trip(&m);
    assert_eq!(back.graph.nodes.len(), 3);
}

#[test]
fn fused_ops_are_decomposed() {
    let mut g = Graph::default();
    let a = g.add_value("a", f32_type(&[2, 3]));
    let b = g.add_value("b", f32_type(&[3, 4]));
    let c = g.add_value("c", f32_type(&[4]));
    let y = g.add_value("y", f32_type(&[2, 4]));
    g.values[b].constant = Some(Tensor::from_vec(vec![3, 4], vec![0.5f32; 12]).unwrap());
    g.values[c].constant = Some(Tensor::from_vec(vec![4], vec![1f32; 4]).unwrap());
    g.inputs = vec![a];
    g.outputs = vec![y];
    g.nodes.push(Node {
        name: "mm".into(),
        op: Op::Nn(nnops::Op::MatMulBias(MatMulBias {
            activation: Some(FusedActivation::Clip { min: 0.0, max: 6.0 }),
        })),
        inputs: vec![Some(a), Some(b), Some(c)],
        outputs: vec![Some(y)],
    });
    let m = Model {
        name: "fused.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 13)]),
        ..Model::default()
    };
    let proto = to_model_proto(&m).unwrap();
    let ops: Vec<&str> = proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.as_str())
        .collect();
    assert_eq!(ops, ["MatMul", "Add", "Clip"]);
    let back = round_trip(&m);
    assert_eq!(back.graph.nodes.len(), 3);
}

#[test]
fn ops_needing_a_newer_opset_raise_it() {
    // Gelu exists from opset 20; a model at 13 is exported at 20.
    let mut g = Graph::default();
    let x = g.add_value("x", f32_type(&[2]));
    let y = g.add_value("y", f32_type(&[2]));
    g.inputs = vec![x];
    g.outputs = vec![y];
    g.nodes.push(Node {
        name: "g".into(),
        op: Op::Elementwise(el::Op::Activation(Activation {
            kind: ActivationKind::Gelu { tanh: false },
        })),
        inputs: vec![Some(x)],
        outputs: vec![Some(y)],
    });
    let m = Model {
        name: "gelu.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 13)]),
        ..Model::default()
    };
    let proto = to_model_proto(&m).unwrap();
    let v = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty())
        .unwrap()
        .version;
    assert_eq!(v, 20);
    assert_eq!(round_trip(&m).graph.nodes[0].op, m.graph.nodes[0].op);
}

#[test]
fn constant_and_repeated_outputs_are_produced() {
    // Output "c" is a constant also read by a node; "y" is listed twice; "x" is an input
    // returned as is.
    let mut g = Graph::default();
    let x = g.add_value("x", f32_type(&[2]));
    let c = g.add_value("c", f32_type(&[2]));
    let y = g.add_value("y", f32_type(&[2]));
    g.values[c].constant = Some(Tensor::from_vec(vec![2], vec![1f32, 2.0]).unwrap());
    g.inputs = vec![x];
    g.outputs = vec![c, y, y, x];
    g.nodes.push(Node {
        name: "add".into(),
        op: Op::Elementwise(el::Op::Binary(el::Binary::new(el::BinaryKind::Add))),
        inputs: vec![Some(x), Some(c)],
        outputs: vec![Some(y)],
    });
    let m = Model {
        name: "outs.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 17)]),
        ..Model::default()
    };
    let gp = to_model_proto(&m).unwrap().graph.unwrap();
    let outs: Vec<&str> = gp.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outs, ["c", "y", "y", "x"]);
    // The Identity producing "c" comes before the Add that reads it.
    assert_eq!(gp.node[0].op_type, "Identity");
    assert_eq!(gp.node[0].output, vec!["c".to_string()]);
    assert!(gp.initializer.iter().all(|t| t.name != "c"));
    let back = round_trip(&m);
    assert_eq!(back.graph.outputs.len(), 4);
}

#[test]
fn unexportable_ops_are_refused_with_the_node_named() {
    use xnpu_ops::image::{self as im, AspectPolicy, CoordMode, Resize, ResizeInputs, ResizeMode};
    let mut g = Graph::default();
    let x = g.add_value("x", f32_type(&[1, 1, 2, 2]));
    let y = g.add_value("y", ValueType::Unknown);
    g.inputs = vec![x];
    g.outputs = vec![y];
    g.nodes.push(Node {
        name: "up".into(),
        op: Op::Image(im::Op::Resize(Resize {
            mode: ResizeMode::Cubic { a: -0.5 },
            coord: CoordMode::AlignCorners,
            antialias: false,
            exclude_outside: false,
            extrapolation_value: 0.0,
            axes: None,
            keep_aspect_ratio: AspectPolicy::Stretch,
            inputs: ResizeInputs::Fixed(vec![1.0, 1.0, 2.0, 2.0]),
        })),
        inputs: vec![Some(x)],
        outputs: vec![Some(y)],
    });
    let m = Model {
        name: "bad.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 13)]),
        ..Model::default()
    };
    let err = to_model_proto(&m).unwrap_err();
    assert_eq!(err.kind(), xnpu_core::error::ErrorKind::Unsupported);
    let msg = err.to_string();
    assert!(msg.contains("node \"up\" (Resize)"), "{msg}");
}

#[test]
fn attributes_become_inputs_at_a_raised_opset() {
    use xnpu_ops::reduce::{self as rd, Reduce, ReduceKind};
    // ReduceMean with an axes attribute (opset 13) next to Gelu (opset 20): written at 20
    // with the axes as a constant input.
    let mut g = Graph::default();
    let x = g.add_value("x", f32_type(&[2, 3]));
    let t = g.add_value("t", f32_type(&[2, 3]));
    let y = g.add_value("y", f32_type(&[2, 1]));
    g.inputs = vec![x];
    g.outputs = vec![y];
    g.nodes.push(Node {
        name: "gelu".into(),
        op: Op::Elementwise(el::Op::Activation(Activation {
            kind: ActivationKind::Gelu { tanh: true },
        })),
        inputs: vec![Some(x)],
        outputs: vec![Some(t)],
    });
    g.nodes.push(Node {
        name: "mean".into(),
        op: Op::Reduce(rd::Op::Reduce(Reduce {
            kind: ReduceKind::Mean,
            axes: Some(vec![1]),
            keepdims: true,
            noop_with_empty_axes: false,
        })),
        inputs: vec![Some(t)],
        outputs: vec![Some(y)],
    });
    let m = Model {
        name: "mean.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 13)]),
        ..Model::default()
    };
    let proto = to_model_proto(&m).unwrap();
    let gp = proto.graph.as_ref().unwrap();
    assert_eq!(gp.node[1].op_type, "ReduceMean");
    assert_eq!(gp.node[1].input.len(), 2);
    assert!(gp.node[1].attribute.iter().all(|a| a.name != "axes"));
    let back = round_trip(&m);
    let rd::Op::Reduce(r) = (match &back.graph.nodes[1].op {
        Op::Reduce(r) => r.clone(),
        other => panic!("{other:?}"),
    }) else {
        panic!("not a Reduce")
    };
    assert_eq!(r.axes, None);
    assert!(back.graph.values[back.graph.nodes[1].inputs[1].unwrap()]
        .constant
        .is_some());
}

#[test]
fn save_writes_a_loadable_file() {
    let m = model_with_if();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("if.onnx");
    save(&m, &path).unwrap();
    let back = crate::onnx::load(&path).unwrap();
    assert_eq!(back.graph, m.graph);
    // Sequences of unknown elements are written without a type rather than a broken one.
    let vi = value_info("s", &ValueType::Sequence(Box::new(ValueType::Unknown)));
    assert!(vi.r#type.is_none());
}

#[test]
fn the_exact_form_writes_one_node_per_ir_node_and_reads_back_equal() {
    use xnpu_ops::reduce::{self as rd, Softmax, SoftmaxKind};
    let acts = [
        Some(FusedActivation::Clip { min: 0.0, max: 6.0 }),
        Some(FusedActivation::Tanh),
        Some(FusedActivation::Activation(ActivationKind::LeakyRelu {
            alpha: 0.25,
        })),
        Some(FusedActivation::Activation(ActivationKind::Gelu {
            tanh: true,
        })),
        None,
    ];
    let mut g = Graph::default();
    let a = g.add_value("a", f32_type(&[2, 3]));
    let b = g.add_value("b", f32_type(&[3, 4]));
    let c = g.add_value("c", f32_type(&[4]));
    g.values[b].constant = Some(Tensor::from_vec(vec![3, 4], vec![0.5f32; 12]).unwrap());
    g.values[c].constant = Some(Tensor::from_vec(vec![4], vec![1f32; 4]).unwrap());
    g.inputs = vec![a];
    for (i, act) in acts.iter().enumerate() {
        let y = g.add_value(format!("mm{i}"), f32_type(&[2, 4]));
        g.nodes.push(Node {
            name: format!("mm{i}"),
            op: Op::Nn(nnops::Op::MatMulBias(MatMulBias { activation: *act })),
            inputs: vec![Some(a), Some(b), Some(c)],
            outputs: vec![Some(y)],
        });
        // Opsets 1-12's coerced LogSoftmax over the first axis, at opset 13 where it has no
        // one-node standard form.
        let s = g.add_value(format!("s{i}"), f32_type(&[2, 4]));
        g.nodes.push(Node {
            name: format!("s{i}"),
            op: Op::Reduce(rd::Op::Softmax(Softmax {
                kind: SoftmaxKind::LogSoftmax,
                axis: 0,
                coerce_2d: true,
            })),
            inputs: vec![Some(y)],
            outputs: vec![Some(s)],
        });
        g.outputs.push(s);
    }
    let m = Model {
        name: "exact.onnx".into(),
        graph: g,
        opsets: BTreeMap::from([(String::new(), 13)]),
        ..Model::default()
    };
    assert!(to_model_proto(&m).unwrap().graph.unwrap().node.len() > m.graph.nodes.len());
    let exact = to_exact(&m).unwrap();
    let gp = exact.proto.graph.as_ref().unwrap();
    assert_eq!(gp.node.len(), m.graph.nodes.len());
    let names: Vec<&str> = gp.node.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(exact.node_names, names);
    let back = crate::onnx::load_sent_bytes(Bytes::from(exact.to_bytes()), "exact.onnx").unwrap();
    // A model file may not use xnpu's own domain: read as one, it is refused.
    let e = load_bytes(Bytes::from(exact.to_bytes()), "exact.onnx", None).unwrap_err();
    assert!(e.to_string().contains("a model file cannot use it"), "{e}");
    let ops = |g: &Graph| g.nodes.iter().map(|n| n.op.clone()).collect::<Vec<_>>();
    assert_eq!(ops(&back.graph), ops(&m.graph));
    // Every value's type is written, intermediate ones included.
    assert!(gp.value_info.iter().any(|v| v.name == "mm0"));
    let mm0 = back.graph.values.iter().find(|v| v.name == "mm0").unwrap();
    assert_eq!(mm0.ty, f32_type(&[2, 4]));
}
