//! Run-time values: tensors, sequences of tensors, and optionals.

use crate::{Error, Result, Tensor, ValueType};

/// What flows along an edge of a graph at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Tensor(Tensor),
    /// An ONNX sequence. `elem` is the element type, kept so that an empty sequence is typed.
    Sequence {
        elem: ValueType,
        items: Vec<Tensor>,
    },
    /// An ONNX optional: `None` when empty.
    Optional {
        elem: ValueType,
        value: Option<Box<Value>>,
    },
}

impl Value {
    pub fn as_tensor(&self) -> Result<&Tensor> {
        match self {
            Value::Tensor(t) => Ok(t),
            Value::Sequence { .. } => Err(Error::compute("expected a tensor, got a sequence")),
            Value::Optional { .. } => Err(Error::compute("expected a tensor, got an optional")),
        }
    }

    pub fn into_tensor(self) -> Result<Tensor> {
        match self {
            Value::Tensor(t) => Ok(t),
            Value::Sequence { .. } => Err(Error::compute("expected a tensor, got a sequence")),
            Value::Optional { .. } => Err(Error::compute("expected a tensor, got an optional")),
        }
    }

    pub fn as_sequence(&self) -> Result<&[Tensor]> {
        match self {
            Value::Sequence { items, .. } => Ok(items),
            _ => Err(Error::compute("expected a sequence")),
        }
    }

    /// One line describing the value (kind, dtype, shape).
    pub fn describe(&self) -> String {
        match self {
            Value::Tensor(t) => format!("{}{:?}", t.dtype(), t.shape()),
            Value::Sequence { items, elem } => format!("seq<{elem}> of {}", items.len()),
            Value::Optional { value: None, elem } => format!("optional<{elem}> (empty)"),
            Value::Optional { value: Some(v), .. } => format!("optional({})", v.describe()),
        }
    }
}

impl From<Tensor> for Value {
    fn from(t: Tensor) -> Self {
        Value::Tensor(t)
    }
}
