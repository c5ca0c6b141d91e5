//! Shape-function helpers shared by the ops of this family.

use xnpu_core::{DType, Dim, Result, Shape, ValueType};

use crate::infer::{checked_rank, input, tensor_type};
use crate::InferInput;

/// The value of input `i` as integers, when it is a constant integer tensor.
pub(crate) fn const_ints(inputs: &[Option<InferInput<'_>>], i: usize) -> Option<Vec<i64>> {
    input(inputs, i)
        .and_then(|x| x.value)
        .and_then(|t| t.to_i64_vec().ok())
}

/// The dtype of input `i` when known.
pub(crate) fn dtype(inputs: &[Option<InferInput<'_>>], i: usize) -> Option<DType> {
    input(inputs, i).and_then(|x| x.dtype())
}

/// The shape of input `i` when its rank is known.
pub(crate) fn shape<'a>(inputs: &[Option<InferInput<'a>>], i: usize) -> Option<&'a Shape> {
    input(inputs, i).and_then(|x| x.shape())
}

/// The type of input `i` unchanged (unknown when absent).
pub(crate) fn same_as(inputs: &[Option<InferInput<'_>>], i: usize) -> ValueType {
    input(inputs, i).map_or(ValueType::Unknown, |x| x.ty.clone())
}

/// A tensor type of the given dtype and shape.
pub(crate) fn out(dtype: Option<DType>, shape: Option<Shape>) -> ValueType {
    tensor_type(dtype, shape)
}

/// A dim not known before run time, named after what it is (`what`) so that the name says
/// where it comes from. Two such dims with the same name are the same quantity.
pub(crate) fn unknown(what: impl Into<String>) -> Dim {
    Dim::Sym(what.into())
}

/// The product of dims: a number when all are known, else a symbol spelled as the product.
pub(crate) fn product(dims: &[Dim]) -> Dim {
    match dims.iter().map(Dim::known).collect::<Option<Vec<_>>>() {
        Some(v) => match v.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
            Some(p) => Dim::Known(p),
            None => unknown("overflow"),
        },
        None => {
            if dims.iter().any(|d| d == &Dim::Known(0)) {
                return Dim::Known(0);
            }
            let parts: Vec<String> = dims
                .iter()
                .filter(|d| **d != Dim::Known(1))
                .map(ToString::to_string)
                .collect();
            if parts.len() == 1 {
                dims.iter()
                    .find(|d| **d != Dim::Known(1))
                    .cloned()
                    .unwrap_or(Dim::Known(1))
            } else {
                unknown(format!("({})", parts.join("*")))
            }
        }
    }
}

/// `n` dims not known before run time, named `{what}?{i}`; an error when `n` (often read
/// from another input's declared dims) is past [`crate::infer::MAX_RANK`].
pub(crate) fn unknown_dims(what: &str, n: usize) -> Result<Shape> {
    let n = checked_rank(n, what)?;
    Ok(Shape(
        (0..n).map(|i| unknown(format!("{what}?{i}"))).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_of_symbols_is_spelled_out() {
        assert_eq!(product(&[Dim::Known(2), Dim::Known(3)]), Dim::Known(6));
        let n = Dim::Sym("n".into());
        assert_eq!(product(&[n.clone(), Dim::Known(1)]), n);
        assert_eq!(
            product(&[n.clone(), Dim::Known(4)]),
            Dim::Sym("(n*4)".into())
        );
        assert_eq!(product(&[n, Dim::Known(0)]), Dim::Known(0));
    }
}
