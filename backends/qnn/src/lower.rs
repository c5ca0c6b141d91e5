//! How each xnpu op becomes QNN ops (package `qti.aisw`): the mapping table, written from
//! the reference (`../shared/reference/qnn.md` §6), and one lowering per kind. A lowering
//! may emit several QNN nodes (layout transposes around NHWC ops, for example) through the
//! [`Builder`].

use xnpu_core::{Error, Result};
use xnpu_graph::Node;

use crate::graph::{Builder, Param};

/// How an xnpu op becomes a QNN op (package `qti.aisw`), from the reference's mapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mapping {
    /// xnpu's op name.
    pub op: &'static str,
    /// QNN's type name.
    pub qnn: &'static str,
    pub lowering: Lowering,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lowering {
    /// Same inputs and outputs, no params.
    Direct,
    /// `MatMul` with `transpose_in0`/`transpose_in1` false.
    MatMul,
    /// `Reshape` of input 0; the output's dims give the shape (the shape input is dropped).
    Reshape,
}

/// Every op this backend lowers.
pub const MAPPINGS: &[Mapping] = &[
    m("Add", "ElementWiseAdd", Lowering::Direct),
    m("Sub", "ElementWiseSubtract", Lowering::Direct),
    m("Mul", "ElementWiseMultiply", Lowering::Direct),
    m("Div", "ElementWiseDivide", Lowering::Direct),
    m("Max", "ElementWiseMaximum", Lowering::Direct),
    m("Min", "ElementWiseMinimum", Lowering::Direct),
    m("Relu", "Relu", Lowering::Direct),
    m("Sigmoid", "Sigmoid", Lowering::Direct),
    m("Tanh", "Tanh", Lowering::Direct),
    m("Exp", "ElementWiseExp", Lowering::Direct),
    m("Sqrt", "ElementWiseSquareRoot", Lowering::Direct),
    m("Neg", "ElementWiseNeg", Lowering::Direct),
    m("Abs", "ElementWiseAbs", Lowering::Direct),
    m("MatMul", "MatMul", Lowering::MatMul),
    m("Reshape", "Reshape", Lowering::Reshape),
    m("Flatten", "Reshape", Lowering::Reshape),
    m("Squeeze", "Reshape", Lowering::Reshape),
    m("Unsqueeze", "Reshape", Lowering::Reshape),
];

const fn m(op: &'static str, qnn: &'static str, lowering: Lowering) -> Mapping {
    Mapping { op, qnn, lowering }
}

pub fn mapping(op: &str) -> Option<&'static Mapping> {
    MAPPINGS.iter().find(|m| m.op == op)
}

/// The xnpu values a node's QNN ops read as graph tensors.
pub fn reads(node: &Node) -> Vec<usize> {
    match mapping(node.op.name()).map(|m| m.lowering) {
        Some(Lowering::Reshape) => node.inputs.first().copied().flatten().into_iter().collect(),
        _ => node.inputs.iter().flatten().copied().collect(),
    }
}

/// Adds the QNN nodes for one xnpu node.
pub fn lower(b: &mut Builder<'_>, node: &Node) -> Result<()> {
    let op = node.op.name();
    let map =
        mapping(op).ok_or_else(|| Error::unsupported(format!("QNN has no lowering for {op}")))?;
    let mut ins = Vec::new();
    for id in reads(node) {
        ins.push(b.value(id)?);
    }
    let mut outs = Vec::new();
    for &o in node.outputs.iter().flatten() {
        outs.push(b.value(o)?);
    }
    let params = match map.lowering {
        Lowering::MatMul => vec![
            Param::Bool("transpose_in0", false),
            Param::Bool("transpose_in1", false),
        ],
        Lowering::Direct | Lowering::Reshape => Vec::new(),
    };
    b.add(&node.name, map.qnn, params, &ins, &outs)
}
