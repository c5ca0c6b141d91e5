//! What a shape function sees of an input: its type and, when it is a constant, its value.

use xnpu_core::{DType, Dim, Error, Result, Shape, Tensor, TensorType, ValueType};

/// One input of a node, as shape inference sees it.
#[derive(Clone, Copy, Debug)]
pub struct InferInput<'a> {
    pub ty: &'a ValueType,
    /// The value when it is known at import (an initializer or a folded constant).
    pub value: Option<&'a Tensor>,
}

impl<'a> InferInput<'a> {
    pub fn tensor(&self) -> Option<&'a TensorType> {
        self.ty.tensor()
    }
    pub fn dtype(&self) -> Option<DType> {
        self.tensor().map(|t| t.dtype)
    }
    pub fn shape(&self) -> Option<&'a Shape> {
        self.tensor().and_then(|t| t.shape.as_ref())
    }
    pub fn rank(&self) -> Option<usize> {
        self.shape().map(Shape::rank)
    }
}

/// The input at `i` when present (ONNX marks an absent optional input with an empty name).
pub fn input<'a, 'b>(inputs: &'b [Option<InferInput<'a>>], i: usize) -> Option<&'b InferInput<'a>> {
    inputs.get(i).and_then(|x| x.as_ref())
}

/// The dtype of input `i`, or an error that says the input is required.
pub fn dtype_of(inputs: &[Option<InferInput<'_>>], i: usize) -> Result<Option<DType>> {
    match input(inputs, i) {
        Some(x) => Ok(x.dtype()),
        None => Err(Error::model(format!("input {i} is required"))),
    }
}

/// A tensor type with the given dtype and shape (unknown shape when `None`).
pub fn tensor_type(dtype: Option<DType>, shape: Option<Shape>) -> ValueType {
    match dtype {
        Some(dtype) => ValueType::Tensor(TensorType { dtype, shape }),
        None => ValueType::Unknown,
    }
}

/// The most dims a shape function makes up for an output whose rank it reads from another
/// input's dim (the length of a shape input). No model needs more; a declared length past
/// it (`i64[2^62]`) is an error rather than a vector of 2^62 symbols.
pub const MAX_RANK: usize = 1024;

/// `rank` as the rank of an output of `what`, or an error when it is past [`MAX_RANK`].
pub fn checked_rank(rank: usize, what: &str) -> Result<usize> {
    if rank > MAX_RANK {
        return Err(Error::model(format!(
            "{what} would have rank {rank}, more than the {MAX_RANK} dims a tensor may have"
        )));
    }
    Ok(rank)
}

/// A shape of all-known dims.
pub fn known(dims: &[usize]) -> Shape {
    Shape(dims.iter().map(|&d| Dim::Known(d)).collect())
}
