//! Import of FlexAttention (`ai.onnx.preview` opset 1). Its modifier graphs (score_mod,
//! prob_mod) are imported as bodies in the node's scope, like those of control flow, and
//! checked for the one input and one output a modifier has.

use xnpu_core::{DType, Error, Result, ValueType};

use super::{NodeCtx, Registry};
use crate::ir::{FlexAttention, Graph, Op, FLEX_ATTENTION_DTYPES};
use crate::onnx::quoted;
use crate::onnx::types::dtype;

pub fn register(r: &mut Registry) {
    r.add("ai.onnx.preview", "FlexAttention", 1, flex_attention);
}

/// The attributes FlexAttention-1 has.
const ATTRIBUTES: [&str; 4] = ["scale", "softmax_precision", "score_mod", "prob_mod"];

fn flex_attention(n: &mut NodeCtx<'_>) -> Result<Op> {
    if let Some(a) = n.attr_names().find(|a| !ATTRIBUTES.contains(a)) {
        return Err(Error::unsupported(format!(
            "attribute \"{a}\" is not one of FlexAttention-1's ({})",
            ATTRIBUTES.join(", ")
        )));
    }
    if n.n_inputs() != 3 || !(0..3).all(|i| n.has_input(i)) {
        return Err(Error::model(format!(
            "FlexAttention takes 3 inputs (Q, K, V), all required; the node has {} ({} given)",
            n.n_inputs(),
            (0..n.n_inputs()).filter(|&i| n.has_input(i)).count()
        )));
    }
    if n.n_outputs() != 1 {
        return Err(Error::model(format!(
            "FlexAttention has 1 output (Y); the node lists {}",
            n.n_outputs()
        )));
    }
    let softmax_precision = match n.opt_int("softmax_precision")? {
        None => None,
        Some(code) => Some(softmax_precision(code)?),
    };
    let op = FlexAttention {
        scale: n.opt_float("scale")?,
        softmax_precision,
        score_mod: n.opt_graph("score_mod")?,
        prob_mod: n.opt_graph("prob_mod")?,
    };
    let compute = n.input_dtype(0).map(|d| op.compute_dtype(d));
    for (name, g) in op.modifiers() {
        check_modifier(g, compute).map_err(|e| e.context(format!("attribute \"{name}\"")))?;
    }
    Ok(Op::FlexAttention(Box::new(op)))
}

/// `softmax_precision`: a `TensorProto.DataType` code of a float type FlexAttention computes
/// in.
fn softmax_precision(code: i64) -> Result<DType> {
    let d = i32::try_from(code)
        .map_err(|_| Error::model(format!("{code} is not a data type")))
        .and_then(dtype)
        .map_err(|e| e.context("attribute \"softmax_precision\""))?;
    if !FLEX_ATTENTION_DTYPES.contains(&d) {
        return Err(Error::unsupported(format!(
            "attribute \"softmax_precision\" is {d}; FlexAttention computes softmax in f16, bf16, \
             f32 or f64"
        )));
    }
    Ok(d)
}

/// A modifier graph takes one tensor and returns one; where their types are known, they are
/// rank-4 tensors, the input of the compute dtype (`compute`, when Q's dtype is known). The
/// output may be of another numeric dtype: it is cast to the compute dtype, as the reference
/// implementation does.
fn check_modifier(g: &Graph, compute: Option<DType>) -> Result<()> {
    if g.inputs.len() != 1 || g.outputs.len() != 1 {
        return Err(Error::model(format!(
            "the graph has {} inputs and {} outputs; a FlexAttention modifier has exactly 1 of \
             each (a [B, Hq, L, S] tensor in, one of the same shape and type out)",
            g.inputs.len(),
            g.outputs.len()
        )));
    }
    for (what, id) in [("input", g.inputs[0]), ("output", g.outputs[0])] {
        let v = &g.values[id];
        let t = match &v.ty {
            ValueType::Unknown => continue,
            ValueType::Tensor(t) => t,
            other => {
                return Err(Error::model(format!(
                    "the graph's {what} {} is a {other}, not a tensor",
                    quoted(&v.name)
                )))
            }
        };
        if let Some(c) = compute.filter(|&c| what == "input" && c != t.dtype) {
            return Err(Error::model(format!(
                "the graph's {what} {} is {}; FlexAttention passes {c} here (its softmax \
                 precision for these inputs)",
                quoted(&v.name),
                t.dtype
            )));
        }
        if let Some(rank) = t.shape.as_ref().map(|s| s.rank()).filter(|&r| r != 4) {
            return Err(Error::model(format!(
                "the graph's {what} {} has rank {rank}; FlexAttention passes a rank-4 \
                 [B, Hq, L, S] tensor",
                quoted(&v.name)
            )));
        }
    }
    Ok(())
}
