use xnpu_core::broadcast::broadcast_dims;
use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// The shape of `numpy.matmul(a, b)`: a 1-D `a` is a row vector `[1, K]` and a 1-D `b` a
/// column vector `[K, 1]`, the added dim being removed from the result; the leading (batch)
/// dims broadcast numpy-style.
pub fn matmul_shape(a: &Shape, b: &Shape) -> Result<Shape> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err(Error::model(format!(
            "matmul operands must have rank >= 1, got shapes {a} and {b}"
        )));
    }
    let a2 = if a.rank() == 1 {
        Shape(vec![Dim::Known(1), a.0[0].clone()])
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        Shape(vec![b.0[0].clone(), Dim::Known(1)])
    } else {
        b.clone()
    };
    let (ra, rb) = (a2.rank(), b2.rank());
    let (ka, kb) = (&a2.0[ra - 1], &b2.0[rb - 2]);
    if let (Dim::Known(x), Dim::Known(y)) = (ka, kb) {
        if x != y {
            return Err(Error::model(format!(
                "matmul inner dims differ: {a} @ {b} ({x} vs {y})"
            )));
        }
    }
    let batch = broadcast_dims(
        &Shape(a2.0[..ra - 2].to_vec()),
        &Shape(b2.0[..rb - 2].to_vec()),
    )?;
    let mut out = batch.0;
    if a.rank() > 1 {
        out.push(a2.0[ra - 2].clone());
    }
    if b.rank() > 1 {
        out.push(b2.0[rb - 1].clone());
    }
    Ok(Shape(out))
}

/// The output shape of a matmul-like op whose operands are inputs `ia` and `ib`.
fn infer_operands(
    inputs: &[Option<InferInput<'_>>],
    ia: usize,
    ib: usize,
) -> Result<Option<Shape>> {
    match (
        input(inputs, ia).and_then(|x| x.shape()),
        input(inputs, ib).and_then(|x| x.shape()),
    ) {
        (Some(a), Some(b)) => matmul_shape(a, b).map(Some),
        _ => Ok(None),
    }
}

/// MatMul (opsets 1, 9, 13): the matrix product with `numpy.matmul` semantics — batched over
/// broadcast leading dims, 1-D operands promoted to a row (A) or column (B) vector and the
/// added dim removed. Float products are accumulated in at least f32; integer products wrap.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatMul;

impl OpDef for MatMul {
    const NAMES: &'static [&'static str] = &["MatMul"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        Ok(vec![tensor_type(dtype, infer_operands(inputs, 0, 1)?)])
    }
}

/// MatMulInteger (opset 10): `(A - a_zero_point) @ (B - b_zero_point)` with `numpy.matmul`
/// shapes, computed in i32 (wrapping). A and B are i8 or u8. `a_zero_point` is a scalar or
/// a per-row vector (length M); `b_zero_point` a scalar or a per-column vector (length N).
/// The output is i32.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatMulInteger;

impl OpDef for MatMulInteger {
    const NAMES: &'static [&'static str] = &["MatMulInteger"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![tensor_type(
            Some(DType::I32),
            infer_operands(inputs, 0, 1)?,
        )])
    }
}

/// QLinearMatMul (opsets 10, 21): a quantized matmul. With `A' = A - a_zero_point`,
/// `B' = B - b_zero_point` (i32), `Y = saturate(round_half_even((A' @ B') * (a_scale *
/// b_scale / y_scale)) + y_zero_point)` in the dtype of `y_zero_point`. The scale factor is
/// computed in the scales' dtype, the rest in f64. Scales and zero points are scalars, or
/// per-row for A (a vector of length M, or an N-D `[..., M, 1]`) and per-column for B (a
/// vector of length N, or `[..., 1, N]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QLinearMatMul;

impl OpDef for QLinearMatMul {
    const NAMES: &'static [&'static str] = &["QLinearMatMul"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 7)
            .and_then(|x| x.dtype())
            .or_else(|| input(inputs, 0).and_then(|x| x.dtype()));
        Ok(vec![tensor_type(dtype, infer_operands(inputs, 0, 3)?)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_operands_drop_their_added_dim() {
        let s = |d: &[usize]| Shape::known(d);
        assert_eq!(matmul_shape(&s(&[3]), &s(&[3])).unwrap(), s(&[]));
        assert_eq!(matmul_shape(&s(&[3]), &s(&[2, 3, 4])).unwrap(), s(&[2, 4]));
        assert_eq!(
            matmul_shape(&s(&[1, 2, 5, 3]), &s(&[3])).unwrap(),
            s(&[1, 2, 5])
        );
        assert_eq!(
            matmul_shape(&s(&[2, 1, 5, 3]), &s(&[4, 3, 6])).unwrap(),
            s(&[2, 4, 5, 6])
        );
        assert!(matmul_shape(&s(&[2, 3]), &s(&[4, 5])).is_err());
    }
}
