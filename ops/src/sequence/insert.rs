use xnpu_core::{Error, Result, ValueType};

use super::{join, seq_elem, seq_elem_dtype};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// SequenceInsert (ONNX opset 11): inputs `(S, tensor, position?)`. The output is `S` with
/// `tensor` inserted before index `position` (a scalar int32/int64 in `[-n, n]` where `n` is
/// the length of `S`; negative counts from the back; absent means at the end). The tensor's
/// dtype must be the sequence's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceInsert;

impl OpDef for SequenceInsert {
    const NAMES: &'static [&'static str] = &["SequenceInsert"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let Some(seq) = input(inputs, 0) else {
            return Err(Error::model("input 0 (the sequence) is required"));
        };
        let Some(t) = input(inputs, 1) else {
            return Err(Error::model("input 1 (the tensor) is required"));
        };
        if let (Some(a), Some(b)) = (seq_elem_dtype(seq.ty), t.dtype()) {
            if a != b {
                return Err(Error::model(format!(
                    "the tensor is {b}, the sequence holds {a}"
                )));
            }
        }
        let elem = match seq_elem(seq.ty) {
            ValueType::Unknown => t.ty.clone(),
            e => join(&e, t.ty),
        };
        Ok(vec![ValueType::Sequence(Box::new(elem))])
    }
}
