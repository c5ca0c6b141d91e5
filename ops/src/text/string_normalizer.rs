use xnpu_core::{DType, Error, Result, TensorType, ValueType};

use super::string_input;
use crate::{InferInput, OpDef};

/// How StringNormalizer changes the case of the strings it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseChange {
    None,
    Lower,
    Upper,
}

/// StringNormalizer (ONNX opset 10): the input is a string tensor of shape `[C]` or `[1, C]`.
/// Elements equal to one of `stopwords` are removed (compared case-insensitively unless
/// `case_sensitive`; the insensitive comparison uses Unicode lowercase, independent of any
/// system locale), then the kept elements are lowercased, uppercased or left as they are
/// (Unicode case mapping). The output has shape `[K]` or `[1, K]`; when every element is
/// removed it is `[""]` (shape `[1]` or `[1, 1]`). `locale` is recorded but does not change
/// the result.
#[derive(Clone, Debug, PartialEq)]
pub struct StringNormalizer {
    pub case_change: CaseChange,
    pub case_sensitive: bool,
    pub stopwords: Vec<String>,
    pub locale: String,
}

impl OpDef for StringNormalizer {
    const NAMES: &'static [&'static str] = &["StringNormalizer"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = string_input(inputs, 0)?;
        if let Some(shape) = x.shape() {
            let ok = shape.rank() == 1
                || shape.rank() == 2 && !matches!(shape.0[0].known(), Some(d) if d != 1);
            if !ok {
                return Err(Error::model(format!(
                    "the input must have shape [C] or [1, C], got {shape}"
                )));
            }
        }
        Ok(vec![ValueType::Tensor(TensorType::unranked(DType::String))])
    }
}
