use xnpu_core::{Result, ValueType};

use super::broadcast::broadcast_type;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// Where (ONNX opsets 9, 16): `X` where `condition` is true, else `Y`, after numpy-style
/// broadcasting of the three inputs. `X` and `Y` have the same dtype (any, strings included).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Where;

impl OpDef for Where {
    const NAMES: &'static [&'static str] = &["Where"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 1).and_then(|x| x.dtype());
        Ok(vec![match dtype {
            Some(d) => broadcast_type(inputs, Some(d))?,
            None => ValueType::Unknown,
        }])
    }
}
