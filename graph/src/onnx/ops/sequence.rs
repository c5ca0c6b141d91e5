//! Import of the `sequence` family (sequence and optional ops).

use xnpu_core::{DType, Error, Result};
use xnpu_ops::sequence::{
    self as s, ConcatFromSequence, Optional, OptionalGetElement, OptionalHasElement, SequenceAt,
    SequenceConstruct, SequenceEmpty, SequenceErase, SequenceInsert, SequenceLength,
    SplitToSequence,
};

use super::{NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::sequence::SequenceConstruct {
    fn register(r: &mut Registry) {
        r.add("", "SequenceConstruct", 11, sequence_construct);
    }
}

impl OnnxImport for xnpu_ops::sequence::SequenceEmpty {
    fn register(r: &mut Registry) {
        r.add("", "SequenceEmpty", 11, sequence_empty);
    }
}

impl OnnxImport for xnpu_ops::sequence::SequenceInsert {
    fn register(r: &mut Registry) {
        r.add("", "SequenceInsert", 11, sequence_insert);
    }
}

impl OnnxImport for xnpu_ops::sequence::SequenceAt {
    fn register(r: &mut Registry) {
        r.add("", "SequenceAt", 11, sequence_at);
    }
}

impl OnnxImport for xnpu_ops::sequence::SequenceErase {
    fn register(r: &mut Registry) {
        r.add("", "SequenceErase", 11, sequence_erase);
    }
}

impl OnnxImport for xnpu_ops::sequence::SequenceLength {
    fn register(r: &mut Registry) {
        r.add("", "SequenceLength", 11, sequence_length);
    }
}

impl OnnxImport for xnpu_ops::sequence::SplitToSequence {
    fn register(r: &mut Registry) {
        r.add("", "SplitToSequence", 11, split_to_sequence);
    }
}

impl OnnxImport for xnpu_ops::sequence::ConcatFromSequence {
    fn register(r: &mut Registry) {
        r.add("", "ConcatFromSequence", 11, concat_from_sequence);
    }
}

impl OnnxImport for xnpu_ops::sequence::Optional {
    fn register(r: &mut Registry) {
        r.add("", "Optional", 15, optional);
    }
}

impl OnnxImport for xnpu_ops::sequence::OptionalHasElement {
    fn register(r: &mut Registry) {
        r.add("", "OptionalHasElement", 15, optional_has_element);
    }
}

impl OnnxImport for xnpu_ops::sequence::OptionalGetElement {
    fn register(r: &mut Registry) {
        r.add("", "OptionalGetElement", 15, optional_get_element);
    }
}

fn op(o: s::Op) -> Op {
    Op::Sequence(o)
}

fn sequence_construct(n: &mut NodeCtx<'_>) -> Result<Op> {
    if !(0..n.n_inputs()).any(|i| n.has_input(i)) {
        return Err(Error::model("SequenceConstruct needs at least one input"));
    }
    Ok(op(s::Op::SequenceConstruct(SequenceConstruct)))
}

fn sequence_empty(n: &mut NodeCtx<'_>) -> Result<Op> {
    let code = n.int("dtype", DType::F32.onnx_code() as i64)?;
    let dtype = DType::from_onnx_code(code).map_err(|e| e.context("attribute \"dtype\""))?;
    Ok(op(s::Op::SequenceEmpty(SequenceEmpty { dtype })))
}

fn sequence_insert(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(s::Op::SequenceInsert(SequenceInsert)))
}

fn sequence_at(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(s::Op::SequenceAt(SequenceAt)))
}

fn sequence_erase(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(s::Op::SequenceErase(SequenceErase)))
}

fn sequence_length(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(s::Op::SequenceLength(SequenceLength)))
}

fn split_to_sequence(n: &mut NodeCtx<'_>) -> Result<Op> {
    let keepdims = match n.int("keepdims", 1)? {
        0 => false,
        1 => true,
        k => {
            return Err(Error::model(format!(
                "attribute \"keepdims\" must be 0 or 1, got {k}"
            )))
        }
    };
    Ok(op(s::Op::SplitToSequence(SplitToSequence {
        axis: n.int("axis", 0)?,
        keepdims,
    })))
}

fn concat_from_sequence(n: &mut NodeCtx<'_>) -> Result<Op> {
    let new_axis = match n.int("new_axis", 0)? {
        0 => false,
        1 => true,
        k => {
            return Err(Error::model(format!(
                "attribute \"new_axis\" must be 0 or 1, got {k}"
            )))
        }
    };
    Ok(op(s::Op::ConcatFromSequence(ConcatFromSequence {
        axis: n.req_int("axis")?,
        new_axis,
    })))
}

fn optional(n: &mut NodeCtx<'_>) -> Result<Op> {
    let elem = n.type_attr("type")?;
    if elem.is_none() && !n.has_input(0) {
        return Err(Error::model(
            "an Optional without an input needs the \"type\" attribute",
        ));
    }
    Ok(op(s::Op::Optional(Optional { elem })))
}

fn optional_has_element(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(s::Op::OptionalHasElement(OptionalHasElement)))
}

fn optional_get_element(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(s::Op::OptionalGetElement(OptionalGetElement)))
}
