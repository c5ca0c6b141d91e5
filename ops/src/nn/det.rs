use xnpu_core::{Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// Det (opsets 11, 22): the determinant of each square matrix in the last two dims of X
/// `[*, M, M]`, giving `[*]`. Computed by LU decomposition with partial pivoting in f64.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Det;

impl OpDef for Det {
    const NAMES: &'static [&'static str] = &["Det"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let shape = match input(inputs, 0).and_then(|x| x.shape()) {
            Some(s) if s.rank() < 2 => {
                return Err(Error::model(format!(
                    "Det needs a [*, M, M] input, got shape {s}"
                )))
            }
            Some(s) => Some(Shape(s.0[..s.rank() - 2].to_vec())),
            None => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}
