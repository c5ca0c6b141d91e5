//! Shape inference helpers shared by the family: numpy-style multidirectional broadcasting of
//! input types.

use xnpu_core::{broadcast::broadcast_dims, DType, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::InferInput;

/// The shape that every present input broadcasts to (numpy rules), `None` when some input's
/// rank is unknown. An error when two known dims certainly disagree.
pub(crate) fn broadcast_all(inputs: &[Option<InferInput<'_>>]) -> Result<Option<Shape>> {
    let mut out = Shape::default();
    for x in inputs.iter().flatten() {
        match x.shape() {
            Some(s) => out = broadcast_dims(&out, s)?,
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A tensor of `dtype` (the first input's when `None`) with the broadcast shape of all inputs.
pub(crate) fn broadcast_type(
    inputs: &[Option<InferInput<'_>>],
    dtype: Option<DType>,
) -> Result<ValueType> {
    let dtype = dtype.or_else(|| input(inputs, 0).and_then(|x| x.dtype()));
    Ok(tensor_type(dtype, broadcast_all(inputs)?))
}

/// A tensor of `dtype` (the first input's when `None`) with the first input's shape.
pub(crate) fn like_first(inputs: &[Option<InferInput<'_>>], dtype: Option<DType>) -> ValueType {
    let x = input(inputs, 0);
    let dtype = dtype.or_else(|| x.and_then(|x| x.dtype()));
    tensor_type(dtype, x.and_then(|x| x.shape().cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{Dim, TensorType};

    fn ty(dims: &[usize]) -> ValueType {
        ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)))
    }

    #[test]
    fn shapes_of_all_inputs_broadcast() {
        let (a, b, c) = (ty(&[2, 1, 3]), ty(&[4, 1]), ty(&[]));
        let ins: Vec<_> = [&a, &b, &c]
            .iter()
            .map(|t| Some(InferInput { ty: t, value: None }))
            .collect();
        let out = broadcast_type(&ins, Some(DType::Bool)).unwrap();
        assert_eq!(
            out,
            ValueType::Tensor(TensorType::new(DType::Bool, Shape::known(&[2, 4, 3])))
        );
    }

    #[test]
    fn incompatible_known_dims_are_an_error() {
        let (a, b) = (ty(&[2, 3]), ty(&[4]));
        let ins = [
            Some(InferInput {
                ty: &a,
                value: None,
            }),
            Some(InferInput {
                ty: &b,
                value: None,
            }),
        ];
        assert!(broadcast_type(&ins, None).is_err());
        let s = ValueType::Tensor(TensorType::new(
            DType::F32,
            Shape(vec![Dim::Sym("n".into())]),
        ));
        let ins = [
            Some(InferInput {
                ty: &a,
                value: None,
            }),
            Some(InferInput {
                ty: &s,
                value: None,
            }),
        ];
        assert!(broadcast_type(&ins, None).is_ok());
    }
}
