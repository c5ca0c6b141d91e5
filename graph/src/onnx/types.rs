//! TypeProto → IR types.

use xnpu_core::{DType, Dim, Error, Result, Shape, TensorType, ValueType};

use super::proto::{tensor_shape_proto::dimension, type_proto, TypeProto};

pub fn dtype(code: i32) -> Result<DType> {
    DType::from_onnx_code(code.into())
}

/// The IR type of a declared ONNX type. Dims without value or name become fresh symbols
/// named after `hint` so that they can still be bound at run time.
pub fn value_type(tp: &TypeProto) -> Result<ValueType> {
    named_value_type(tp, "")
}

/// Like [`value_type`], naming anonymous dims `hint?i`.
pub fn named_value_type(tp: &TypeProto, hint: &str) -> Result<ValueType> {
    Ok(match &tp.value {
        None => ValueType::Unknown,
        Some(type_proto::Value::TensorType(t)) => {
            if t.elem_type == 0 {
                return Ok(ValueType::Unknown);
            }
            let dtype = dtype(t.elem_type)?;
            let shape = match &t.shape {
                None => None,
                Some(s) => Some(Shape(
                    s.dim
                        .iter()
                        .enumerate()
                        .map(|(i, d)| match &d.value {
                            Some(dimension::Value::DimValue(v)) if *v >= 0 => {
                                Ok(Dim::Known(*v as usize))
                            }
                            Some(dimension::Value::DimValue(v)) => {
                                Err(Error::model(format!("dimension {i} is negative ({v})")))
                            }
                            Some(dimension::Value::DimParam(p)) if !p.is_empty() => {
                                Ok(Dim::Sym(p.clone()))
                            }
                            _ => Ok(Dim::Sym(format!("{hint}?{i}"))),
                        })
                        .collect::<Result<Vec<_>>>()?,
                )),
            };
            ValueType::Tensor(TensorType { dtype, shape })
        }
        Some(type_proto::Value::SequenceType(s)) => ValueType::Sequence(Box::new(
            s.elem_type
                .as_deref()
                .map(|t| named_value_type(t, hint))
                .transpose()?
                .unwrap_or(ValueType::Unknown),
        )),
        Some(type_proto::Value::OptionalType(o)) => ValueType::Optional(Box::new(
            o.elem_type
                .as_deref()
                .map(|t| named_value_type(t, hint))
                .transpose()?
                .unwrap_or(ValueType::Unknown),
        )),
        Some(type_proto::Value::MapType(_)) => {
            return Err(Error::unsupported("map types are not supported"))
        }
        Some(type_proto::Value::SparseTensorType(_)) => {
            return Err(Error::unsupported("sparse tensor values are not supported"))
        }
    })
}
