use xnpu_core::{DType, Result, Shape, TensorType, ValueType};

use crate::infer::input;
use crate::{InferInput, OpDef};

/// Optional (ONNX opsets 15, 28): with an input, an optional holding it; without one, an empty
/// optional whose element type is `elem` (the `type` attribute; ONNX requires it then).
#[derive(Clone, Debug, PartialEq)]
pub struct Optional {
    /// The element type from the `type` attribute, when given.
    pub elem: Option<ValueType>,
}

impl OpDef for Optional {
    const NAMES: &'static [&'static str] = &["Optional"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let elem = match (input(inputs, 0), &self.elem) {
            (Some(x), _) if x.ty != &ValueType::Unknown => x.ty.clone(),
            (_, Some(t)) => t.clone(),
            _ => ValueType::Unknown,
        };
        Ok(vec![ValueType::Optional(Box::new(elem))])
    }
}

/// OptionalHasElement (ONNX opsets 15, 18, 28): a bool scalar, true when the input is an
/// optional that holds a value or (from opset 18) a plain tensor or sequence; false when it is
/// an empty optional or (from opset 18) absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionalHasElement;

impl OpDef for OptionalHasElement {
    const NAMES: &'static [&'static str] = &["OptionalHasElement"];

    fn infer(
        &self,
        _inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![ValueType::Tensor(TensorType::new(
            DType::Bool,
            Shape::known(&[]),
        ))])
    }
}

/// OptionalGetElement (ONNX opsets 15, 18, 28): the value an optional holds (an error when it
/// is empty); from opset 18 a plain tensor or sequence input is passed through unchanged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionalGetElement;

impl OpDef for OptionalGetElement {
    const NAMES: &'static [&'static str] = &["OptionalGetElement"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![match input(inputs, 0).map(|x| x.ty) {
            Some(ValueType::Optional(e)) => (**e).clone(),
            Some(t) => t.clone(),
            None => ValueType::Unknown,
        }])
    }
}
