use xnpu_core::{Error, Result, ValueType};

use super::join;
use crate::{InferInput, OpDef};

/// SequenceConstruct (ONNX opset 11): a sequence of the input tensors, in input order. All
/// inputs must be tensors of one dtype (shapes may differ); at least one input is required.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SequenceConstruct;

impl OpDef for SequenceConstruct {
    const NAMES: &'static [&'static str] = &["SequenceConstruct"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let given: Vec<&InferInput<'_>> = inputs.iter().flatten().collect();
        let Some(first) = given.first() else {
            return Err(Error::model("SequenceConstruct needs at least one input"));
        };
        let mut elem = first.ty.clone();
        for (i, x) in given.iter().enumerate().skip(1) {
            if let (Some(a), Some(b)) = (first.dtype(), x.dtype()) {
                if a != b {
                    return Err(Error::model(format!(
                        "all inputs must have one dtype: input 0 is {a}, input {i} is {b}"
                    )));
                }
            }
            elem = join(&elem, x.ty);
        }
        Ok(vec![ValueType::Sequence(Box::new(elem))])
    }
}
