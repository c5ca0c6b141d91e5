//! Shape helpers shared by the family's shape functions.

use xnpu_core::{Dim, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::InferInput;

/// The type of input `i` as a tensor of the same dtype and shape (e.g. Softmax's output), or
/// `Unknown` when the input type is not known.
pub fn same_as_input(inputs: &[Option<InferInput<'_>>], i: usize) -> ValueType {
    match input(inputs, i).and_then(|x| x.tensor()) {
        Some(t) => ValueType::Tensor(t.clone()),
        None => ValueType::Unknown,
    }
}

/// The shape left after reducing `axes` (already normalized): reduced dims become 1 with
/// `keepdims`, and are dropped without.
pub fn reduced_shape(shape: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    Shape(
        shape
            .0
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
                (false, _) => Some(d.clone()),
                (true, true) => Some(Dim::Known(1)),
                (true, false) => None,
            })
            .collect(),
    )
}

/// A tensor type with the dtype of input `i` (when known) and the given shape.
pub fn like_input(inputs: &[Option<InferInput<'_>>], i: usize, shape: Option<Shape>) -> ValueType {
    tensor_type(input(inputs, i).and_then(|x| x.dtype()), shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_shape_keeps_or_drops_axes() {
        let s = Shape::known(&[2, 3, 4]);
        assert_eq!(reduced_shape(&s, &[1], true), Shape::known(&[2, 1, 4]));
        assert_eq!(reduced_shape(&s, &[0, 2], false), Shape::known(&[3]));
    }
}
