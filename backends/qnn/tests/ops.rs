//! Every op in the QNN mapping table on the HTP simulator with the device SoC (fp32
//! computed as fp16, as on hardware) against xnpu's CPU reference at fp16 tolerances; every
//! mapping has a case; QNN's own validation errors reach the caller. The cases and the
//! harness are in ops_common; tests/ops_fp32.rs runs them in exact fp32.

mod ops_common;

use std::collections::BTreeSet;

use ops_common::*;
use xnpu_backend_qnn::lower::{mappings, Lowering};
use xnpu_backend_qnn::DEFAULT_SIM_SOC;

#[test]
fn every_case_runs_in_fp16_like_the_reference() {
    // fp16 compute: about 1e-2 absolute plus 1e-2 relative to the largest output.
    run_all(DEFAULT_SIM_SOC, |_, big| Some(1e-2 + 1e-2 * big));
}

#[test]
fn every_mapping_has_a_case() {
    let names: BTreeSet<&str> = mappings().iter().map(|m| m.op).collect();
    let mut tested = BTreeSet::new();
    for case in CASES {
        assert!(fixture(case.file).exists(), "{}", case.file);
        let (_, m) = load(case);
        for n in &m.graph.nodes {
            // The capability table's names and the typed lowering agree on real nodes.
            assert_eq!(
                Lowering::of(&n.op).is_some(),
                names.contains(n.op.name()),
                "{}: {:?}",
                case.file,
                n.op
            );
        }
        tested.extend(ops_of(&m));
    }
    let missing: Vec<_> = names
        .into_iter()
        .filter(|op| !tested.contains(op))
        .collect();
    assert!(missing.is_empty(), "mapped ops with no case: {missing:?}");
}

#[test]
fn an_op_qnn_refuses_at_validation_gives_qnns_own_error() {
    // HTP's Relu has no int32 kernel. The capability table never offers it (f32/f16 only),
    // so only a direct build reaches QNN, which must say why in its own words.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/qnn/invalid_relu_i32.onnx");
    let m = xnpu_graph::onnx::load(&path).unwrap();
    let q = std::sync::Arc::new(xnpu_backend_qnn::Qnn::new(htp(), DEFAULT_SIM_SOC).unwrap());
    let e = xnpu_backend_qnn::graph::QnnGraph::build(q, &m.graph)
        .err()
        .expect("QNN accepted an int32 Relu")
        .to_string();
    for want in [
        "node \"relu_i32\" (Relu)",
        "validating Relu",
        "error 3110",
        "QNN_OP_PACKAGE_ERROR_VALIDATION_FAILURE",
        "Unsupported input/output datatypes requested for the HTP Op 'Relu'",
    ] {
        assert!(e.contains(want), "missing {want:?} in: {e}");
    }
}

#[test]
fn the_capability_check_refuses_what_the_lowerings_cannot_express() {
    use xnpu_graph::{Node, Op};
    use xnpu_ops::nn;
    let case = CASES.iter().find(|c| c.file == "conv").unwrap();
    let (_, mut m) = load(case);
    // The Conv's weight made a graph input: QNN needs it constant.
    let w = m.graph.nodes[0].inputs[1].unwrap();
    m.graph.values[w].constant = None;
    let why = xnpu_backend_qnn::lower::check(&m.graph.nodes[0], &m.graph).unwrap();
    assert!(why.contains("as a constant of the graph"), "{why}");
    // A tanh-form Gelu and a pool with an indices output are refused too.
    let gelu = load(CASES.iter().find(|c| c.file == "gelu").unwrap()).1;
    let mut node: Node = gelu.graph.nodes[0].clone();
    node.op = Op::Elementwise(xnpu_ops::elementwise::Op::Activation(
        xnpu_ops::elementwise::Activation {
            kind: xnpu_ops::elementwise::ActivationKind::Gelu { tanh: true },
        },
    ));
    let why = xnpu_backend_qnn::lower::check(&node, &gelu.graph).unwrap();
    assert!(why.contains("erf form"), "{why}");
    let pool = load(CASES.iter().find(|c| c.file == "maxpool").unwrap()).1;
    let mut node = pool.graph.nodes[0].clone();
    assert!(matches!(node.op, Op::Nn(nn::Op::Pool(_))));
    node.outputs.push(Some(0));
    let why = xnpu_backend_qnn::lower::check(&node, &pool.graph).unwrap();
    assert!(why.contains("no indices output"), "{why}");
    // What the fixtures hold passes.
    for case in CASES {
        let (_, m) = load(case);
        for n in &m.graph.nodes {
            assert_eq!(
                xnpu_backend_qnn::lower::check(n, &m.graph),
                None,
                "{}",
                case.file
            );
        }
    }
}
