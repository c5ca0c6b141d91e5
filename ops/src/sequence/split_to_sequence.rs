use xnpu_core::shape::normalize_axis;
use xnpu_core::{Dim, Result, Shape, TensorType, ValueType};

use super::seq_of;
use crate::infer::input;
use crate::{InferInput, OpDef};

/// SplitToSequence (ONNX opsets 11, 24): inputs `(input, split?)`. Splits `input` along `axis`
/// (in `[-rank, rank-1]`) into a sequence of tensors.
/// - `split` absent: pieces of size 1; with `keepdims == false` the split axis is removed.
/// - `split` a scalar `k > 0`: pieces of size `k`, the last one smaller when `k` does not
///   divide the axis.
/// - `split` 1-D: piece sizes (each >= 0), which must add up to the axis size.
///
/// `keepdims` is ignored when `split` is given.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitToSequence {
    pub axis: i64,
    pub keepdims: bool,
}

impl OpDef for SplitToSequence {
    const NAMES: &'static [&'static str] = &["SplitToSequence"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let Some(x) = input(inputs, 0) else {
            return Ok(vec![seq_of(None)]);
        };
        let Some(shape) = x.shape() else {
            return Ok(vec![seq_of(x.dtype())]);
        };
        let axis = normalize_axis(self.axis, shape.rank())?;
        let Some(dtype) = x.dtype() else {
            return Ok(vec![seq_of(None)]);
        };
        // Pieces of one known size along the axis, when that can be told at import.
        let piece = match input(inputs, 1) {
            None => Some(1),
            Some(s) => s.value.and_then(|v| {
                let sizes = v.to_i64_vec().ok()?;
                let first = *sizes.first()?;
                let n = shape.0[axis].known()?;
                let even = if v.rank() == 0 {
                    first > 0 && n as i64 % first == 0
                } else {
                    sizes.iter().all(|&s| s == first)
                };
                (even && first >= 0).then_some(first as usize)
            }),
        };
        let elem = match piece {
            None => TensorType::unranked(dtype),
            Some(p) => {
                let mut dims = shape.0.clone();
                if input(inputs, 1).is_none() && !self.keepdims {
                    dims.remove(axis);
                } else {
                    dims[axis] = Dim::Known(p);
                }
                TensorType::new(dtype, Shape(dims))
            }
        };
        Ok(vec![ValueType::Sequence(Box::new(ValueType::Tensor(elem)))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{DType, Tensor};

    #[test]
    fn pieces_of_one_size_are_inferred() {
        let ty = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[3, 6])));
        let split = Tensor::scalar(2i64);
        let split_ty = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[])));
        let op = SplitToSequence {
            axis: 1,
            keepdims: true,
        };
        let x = InferInput {
            ty: &ty,
            value: None,
        };
        let s = InferInput {
            ty: &split_ty,
            value: Some(&split),
        };
        let out = op.infer(&[Some(x), Some(s)], 1).unwrap();
        let want = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[3, 2])));
        assert_eq!(out[0], ValueType::Sequence(Box::new(want)));
        let op = SplitToSequence {
            axis: 1,
            keepdims: false,
        };
        let out = op.infer(&[Some(x)], 1).unwrap();
        let want = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[3])));
        assert_eq!(out[0], ValueType::Sequence(Box::new(want)));
        assert!(SplitToSequence {
            axis: 2,
            keepdims: true
        }
        .infer(&[Some(x)], 1)
        .is_err());
    }
}
