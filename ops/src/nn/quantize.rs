use xnpu_core::{DType, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// QuantizeLinear (opsets 10, 13, 19, 21, 23, 24, 25, 28):
/// `y = saturate(round_half_even(x / y_scale) + y_zero_point)`.
///
/// The output dtype is the dtype of `y_zero_point` when given, else `output_dtype`, else u8;
/// integer outputs saturate to their range. The division is done in `precision` when set,
/// else in x's dtype when x and `y_scale` share a float dtype, else in f32 when both are
/// floats and in f64 otherwise. Granularity from the scale's shape: a scalar (or one
/// element) is per tensor, a 1-D scale per `axis` (its length is that dim), and with
/// `block_size > 0` the scale has x's shape except `ceil(d / block_size)` along `axis`,
/// element `i` along `axis` using scale `i / block_size`. `y_zero_point` has the scale's
/// shape.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeLinear {
    pub axis: i64,
    pub block_size: usize,
    /// Float output types only (not in xnpu); kept for the contract.
    pub saturate: bool,
    pub output_dtype: Option<DType>,
    pub precision: Option<DType>,
}

impl QuantizeLinear {
    /// The output dtype given the zero point's dtype.
    pub fn out_dtype(&self, zero_point: Option<DType>) -> DType {
        zero_point.or(self.output_dtype).unwrap_or(DType::U8)
    }
}

impl OpDef for QuantizeLinear {
    const NAMES: &'static [&'static str] = &["QuantizeLinear"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let zp = match input(inputs, 2) {
            Some(z) => match z.dtype() {
                Some(d) => Some(d),
                None => return Ok(vec![ValueType::Unknown]),
            },
            None => None,
        };
        let shape = input(inputs, 0).and_then(|x| x.shape()).cloned();
        Ok(vec![tensor_type(Some(self.out_dtype(zp)), shape)])
    }
}

/// DequantizeLinear (opsets 10, 13, 19, 21, 23, 24, 25, 28):
/// `y = (x - x_zero_point) * x_scale`, computed in f32 and cast to `output_dtype` when set,
/// else to the scale's dtype. x is an integer (i32 has no zero point); granularity as in
/// [`QuantizeLinear`].
#[derive(Clone, Debug, PartialEq)]
pub struct DequantizeLinear {
    pub axis: i64,
    pub block_size: usize,
    pub output_dtype: Option<DType>,
}

impl OpDef for DequantizeLinear {
    const NAMES: &'static [&'static str] = &["DequantizeLinear"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = self
            .output_dtype
            .or_else(|| input(inputs, 1).and_then(|x| x.dtype()));
        let shape = input(inputs, 0).and_then(|x| x.shape()).cloned();
        Ok(vec![tensor_type(dtype, shape)])
    }
}

/// DynamicQuantizeLinear (opset 11): quantizes f32 x to u8 with a scale and zero point
/// computed from its range (extended to include 0), all in f32:
/// `scale = (max(0, max x) - min(0, min x)) / 255` (1/255 when the range is empty),
/// `zero_point = round_half_even(clamp(-min(0, min x) / scale, 0, 255))`,
/// `y = clamp(round_half_even(x / scale) + zero_point, 0, 255)`.
/// Outputs y (u8, x's shape), the scale (f32 scalar) and the zero point (u8 scalar).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DynamicQuantizeLinear;

impl OpDef for DynamicQuantizeLinear {
    const NAMES: &'static [&'static str] = &["DynamicQuantizeLinear"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let shape = input(inputs, 0).and_then(|x| x.shape()).cloned();
        Ok(vec![
            tensor_type(Some(DType::U8), shape),
            tensor_type(Some(DType::F32), Some(Shape(vec![]))),
            tensor_type(Some(DType::U8), Some(Shape(vec![]))),
        ])
    }
}
