//! Shared by the ONNX test runners: reading onnx's test data (.pb) and comparing values
//! the way onnx's own backend runner does.
#![allow(dead_code)]

use std::path::Path;

use prost::Message;
use xnpu::graph::onnx::proto::{elem_kind, OptionalProto, SequenceProto, TensorProto};
use xnpu::graph::onnx::tensor::tensor_from_proto;
use xnpu::graph::onnx::DataDir;
use xnpu::{DType, Error, Result, Tensor, Value, ValueType};

pub fn read_value(path: &Path, ty: &ValueType, dir: &DataDir) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: prost::DecodeError| Error::model(format!("{}: {e}", path.display()));
    match ty {
        ValueType::Sequence(_) => {
            let sp = SequenceProto::decode(bytes.as_slice()).map_err(bad)?;
            sequence_value(&sp, dir)
        }
        ValueType::Optional(_) => {
            let op = OptionalProto::decode(bytes.as_slice()).map_err(bad)?;
            optional_value(&op, dir)
        }
        _ => {
            let tp = TensorProto::decode(bytes.as_slice()).map_err(bad)?;
            Ok(Value::Tensor(tensor_from_proto(&tp, dir)?))
        }
    }
}

fn sequence_value(sp: &SequenceProto, dir: &DataDir) -> Result<Value> {
    if sp.elem_type != elem_kind::TENSOR && !sp.tensor_values.is_empty() {
        return Err(Error::unsupported(
            "only sequences of tensors are supported",
        ));
    }
    let items = sp
        .tensor_values
        .iter()
        .map(|t| tensor_from_proto(t, dir))
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Sequence {
        elem: ValueType::Unknown,
        items,
    })
}

fn optional_value(op: &OptionalProto, dir: &DataDir) -> Result<Value> {
    let value = if let Some(t) = &op.tensor_value {
        Some(Box::new(Value::Tensor(tensor_from_proto(t, dir)?)))
    } else if let Some(s) = &op.sequence_value {
        Some(Box::new(sequence_value(s, dir)?))
    } else {
        None
    };
    Ok(Value::Optional {
        elem: ValueType::Unknown,
        value,
    })
}

/// Compares like `numpy.testing.assert_allclose` (NaN equals NaN) after checking dtype and
/// shape; integers, bools and strings must be equal.
pub fn compare_tensor(
    got: &Tensor,
    want: &Tensor,
    rtol: f64,
    atol: f64,
) -> std::result::Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} expected {}", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if want.dtype() == DType::String {
        return if got.strings().ok() == want.strings().ok() {
            Ok(())
        } else {
            Err(format!(
                "strings {:?} expected {:?}",
                got.preview(6),
                want.preview(6)
            ))
        };
    }
    let g = got.to_f64_vec().map_err(|e| e.to_string())?;
    let w = want.to_f64_vec().map_err(|e| e.to_string())?;
    let exact = !want.dtype().is_float();
    let mut bad = 0;
    let mut first = None;
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = if exact {
            a == b
        } else if a.is_nan() || b.is_nan() {
            a.is_nan() && b.is_nan()
        } else if a.is_infinite() || b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= atol + rtol * b.abs()
        };
        if !ok {
            bad += 1;
            first.get_or_insert((i, a, b));
        }
    }
    match first {
        None => Ok(()),
        Some((i, a, b)) => Err(format!(
            "{bad}/{} values differ; first at {i}: got {a}, expected {b}",
            w.len()
        )),
    }
}

pub fn compare(got: &Value, want: &Value, rtol: f64, atol: f64) -> std::result::Result<(), String> {
    match (got, want) {
        (Value::Tensor(g), Value::Tensor(w)) => compare_tensor(g, w, rtol, atol),
        (Value::Sequence { items: g, .. }, Value::Sequence { items: w, .. }) => {
            if g.len() != w.len() {
                return Err(format!("sequence of {} expected {}", g.len(), w.len()));
            }
            for (k, (a, b)) in g.iter().zip(w).enumerate() {
                compare_tensor(a, b, rtol, atol).map_err(|e| format!("item {k}: {e}"))?;
            }
            Ok(())
        }
        (Value::Optional { value: g, .. }, Value::Optional { value: w, .. }) => match (g, w) {
            (None, None) => Ok(()),
            (Some(a), Some(b)) => compare(a, b, rtol, atol),
            _ => Err(format!(
                "optional {} expected {}",
                got.describe(),
                want.describe()
            )),
        },
        // An optional holding a value compares with the bare value.
        (Value::Optional { value: Some(g), .. }, w) => compare(g, w, rtol, atol),
        (g, Value::Optional { value: Some(w), .. }) => compare(g, w, rtol, atol),
        _ => Err(format!("{} expected {}", got.describe(), want.describe())),
    }
}
