//! The `sequence` op family: ops that build, read and take apart sequences of tensors, and the
//! optional-value ops (`Optional`, `OptionalHasElement`, `OptionalGetElement`).

mod at;
mod concat_from_sequence;
mod construct;
mod empty;
mod erase;
mod insert;
mod length;
mod optional;
mod split_to_sequence;

pub use at::SequenceAt;
pub use concat_from_sequence::ConcatFromSequence;
pub use construct::SequenceConstruct;
pub use empty::SequenceEmpty;
pub use erase::SequenceErase;
pub use insert::SequenceInsert;
pub use length::SequenceLength;
pub use optional::{Optional, OptionalGetElement, OptionalHasElement};
pub use split_to_sequence::SplitToSequence;

use xnpu_core::{DType, TensorType, ValueType};

/// The `sequence` family's ops, declared once: `sequence_ops!(cb!(args))` calls
/// `cb!(args sequence: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! sequence_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* sequence:
            SequenceConstruct SequenceEmpty SequenceInsert SequenceAt SequenceErase
            SequenceLength SplitToSequence ConcatFromSequence Optional OptionalHasElement
            OptionalGetElement
        );
    };
}

sequence_ops!(family!());

/// The dtype of the tensors in a sequence type, when known.
pub(crate) fn seq_elem_dtype(ty: &ValueType) -> Option<DType> {
    match ty {
        ValueType::Sequence(e) => e.tensor().map(|t| t.dtype),
        _ => None,
    }
}

/// The element type of a sequence type (`Unknown` when the input is not known to be one).
pub(crate) fn seq_elem(ty: &ValueType) -> ValueType {
    match ty {
        ValueType::Sequence(e) => (**e).clone(),
        _ => ValueType::Unknown,
    }
}

/// The most specific type that covers both `a` and `b` (tensor types of one dtype but different
/// shapes become that dtype with an unknown shape).
pub(crate) fn join(a: &ValueType, b: &ValueType) -> ValueType {
    match (a, b) {
        _ if a == b => a.clone(),
        (ValueType::Tensor(x), ValueType::Tensor(y)) if x.dtype == y.dtype => {
            let shape = match (&x.shape, &y.shape) {
                (Some(p), Some(q)) if p.rank() == q.rank() => {
                    if p.0.iter().zip(&q.0).all(|(d, e)| d == e) {
                        Some(p.clone())
                    } else {
                        None
                    }
                }
                _ => None,
            };
            ValueType::Tensor(TensorType {
                dtype: x.dtype,
                shape,
            })
        }
        _ => ValueType::Unknown,
    }
}

/// A sequence of tensors of `dtype` (shape unknown), or `Unknown` without a dtype.
pub(crate) fn seq_of(dtype: Option<DType>) -> ValueType {
    match dtype {
        Some(d) => ValueType::Sequence(Box::new(ValueType::Tensor(TensorType::unranked(d)))),
        None => ValueType::Sequence(Box::new(ValueType::Unknown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::Shape;

    #[test]
    fn join_keeps_the_dtype_and_forgets_disagreeing_shapes() {
        let a = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[2])));
        let b = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[3])));
        assert_eq!(join(&a, &a), a);
        assert_eq!(
            join(&a, &b),
            ValueType::Tensor(TensorType::unranked(DType::F32))
        );
        assert_eq!(join(&a, &ValueType::Unknown), ValueType::Unknown);
    }
}
