//! Reference kernels of the `sequence` family: sequences of tensors and optionals.

mod split_concat;

use xnpu_core::{DType, Error, Result, Tensor, TensorType, Value, ValueType};
use xnpu_ops::sequence::*;

use crate::args::{input, opt_tensor, tensor};

kernel!(SequenceConstruct, |_, inputs, _| Ok(vec![
    sequence_construct(inputs)?
]));
kernel!(SequenceEmpty, |o, _, _| Ok(vec![Value::Sequence {
    elem: tensor_elem(o.dtype),
    items: vec![],
}]));
kernel!(SequenceInsert, |_, inputs, _| Ok(vec![sequence_insert(
    inputs
)?]));
kernel!(SequenceAt, |_, inputs, _| Ok(vec![{
    let items = sequence(inputs, 0)?;
    let pos = position(tensor(inputs, 1)?, items.len(), false)?;
    Value::Tensor(items[pos].clone())
}]));
kernel!(SequenceErase, |_, inputs, _| Ok(vec![{
    let (elem, items) = sequence_parts(inputs, 0)?;
    let pos = match opt_tensor(inputs, 1)? {
        Some(p) => position(p, items.len(), false)?,
        None if items.is_empty() => {
            return Err(Error::compute("cannot erase from an empty sequence"))
        }
        None => items.len() - 1,
    };
    let mut items = items.to_vec();
    items.remove(pos);
    Value::Sequence {
        elem: elem.clone(),
        items,
    }
}]));
kernel!(SequenceLength, |_, inputs, _| Ok(vec![{
    let n = sequence(inputs, 0)?.len();
    Value::Tensor(Tensor::scalar(n as i64))
}]));
kernel!(SplitToSequence, |o, inputs, _| Ok(vec![
    split_concat::split_to_sequence(o, inputs)?
]));
kernel!(ConcatFromSequence, |o, inputs, _| Ok(vec![
    split_concat::concat_from_sequence(o, inputs)?
]));
kernel!(Optional, |o, inputs, _| Ok(vec![
    match inputs.first().copied().flatten() {
        Some(v) => Value::Optional {
            elem: o.elem.clone().unwrap_or_else(|| type_of(v)),
            value: Some(Box::new(v.clone())),
        },
        None => Value::Optional {
            elem: o.elem.clone().unwrap_or(ValueType::Unknown),
            value: None,
        },
    }
]));
kernel!(OptionalHasElement, |_, inputs, _| Ok(vec![{
    let has = match inputs.first().copied().flatten() {
        None => false,
        Some(Value::Optional { value, .. }) => value.is_some(),
        Some(_) => true,
    };
    Value::Tensor(Tensor::scalar(has))
}]));
kernel!(OptionalGetElement, |_, inputs, _| Ok(vec![
    match input(inputs, 0)? {
        Value::Optional { value: Some(v), .. } => (**v).clone(),
        Value::Optional { value: None, elem } => {
            return Err(Error::compute(format!(
                "the optional<{elem}> input is empty; there is no element to get"
            )));
        }
        v => v.clone(),
    }
]));

/// The element type recorded for a sequence of `dtype` tensors.
fn tensor_elem(dtype: DType) -> ValueType {
    ValueType::Tensor(TensorType::unranked(dtype))
}

/// The type of a run-time value, as far as it tells (shapes of tensors are left out).
fn type_of(v: &Value) -> ValueType {
    match v {
        Value::Tensor(t) => tensor_elem(t.dtype()),
        Value::Sequence { elem, .. } => ValueType::Sequence(Box::new(elem.clone())),
        Value::Optional { elem, .. } => ValueType::Optional(Box::new(elem.clone())),
    }
}

fn sequence_parts<'a>(
    inputs: &[Option<&'a Value>],
    i: usize,
) -> Result<(&'a ValueType, &'a [Tensor])> {
    match input(inputs, i)? {
        Value::Sequence { elem, items } => Ok((elem, items)),
        v => Err(Error::compute(format!(
            "input {i} must be a sequence, got {}",
            v.describe()
        ))),
    }
}

fn sequence<'a>(inputs: &[Option<&'a Value>], i: usize) -> Result<&'a [Tensor]> {
    sequence_parts(inputs, i).map(|(_, items)| items)
}

/// The dtype of the tensors of a sequence: from its recorded element type, else its first item.
fn sequence_dtype(elem: &ValueType, items: &[Tensor]) -> Option<DType> {
    elem.tensor()
        .map(|t| t.dtype)
        .or_else(|| items.first().map(Tensor::dtype))
}

/// Reads a position input (a scalar int32/int64) and resolves it against a sequence of `n`
/// items: `[-n, n-1]`, or `[-n, n]` when `allow_end` (an insert position).
fn position(t: &Tensor, n: usize, allow_end: bool) -> Result<usize> {
    if !matches!(t.dtype(), DType::I32 | DType::I64) || t.len() != 1 {
        return Err(Error::compute(format!(
            "the position must be an int32 or int64 scalar, got {}{:?}",
            t.dtype(),
            t.shape()
        )));
    }
    let p = t.to_i64_vec()?[0];
    let len = n as i64;
    let hi = if allow_end { len } else { len - 1 };
    if p < -len || p > hi {
        return Err(Error::compute(format!(
            "position {p} is out of range for a sequence of length {n} (expected [{}, {hi}])",
            -len
        )));
    }
    Ok(if p < 0 {
        (p + len) as usize
    } else {
        p as usize
    })
}

fn sequence_construct(inputs: &[Option<&Value>]) -> Result<Value> {
    let mut items = Vec::with_capacity(inputs.len());
    for (i, v) in inputs.iter().enumerate() {
        let Some(v) = v else { continue };
        let t = v.as_tensor().map_err(|e| e.context(format!("input {i}")))?;
        if let Some(first) = items.first().map(Tensor::dtype) {
            if t.dtype() != first {
                return Err(Error::compute(format!(
                    "all inputs must have one dtype: the first is {first}, input {i} is {}",
                    t.dtype()
                )));
            }
        }
        items.push(t.clone());
    }
    let Some(dtype) = items.first().map(Tensor::dtype) else {
        return Err(Error::compute("SequenceConstruct needs at least one input"));
    };
    Ok(Value::Sequence {
        elem: tensor_elem(dtype),
        items,
    })
}

fn sequence_insert(inputs: &[Option<&Value>]) -> Result<Value> {
    let (elem, items) = sequence_parts(inputs, 0)?;
    let t = tensor(inputs, 1)?;
    if let Some(d) = sequence_dtype(elem, items) {
        if d != t.dtype() {
            return Err(Error::compute(format!(
                "the tensor to insert is {}, the sequence holds {d}",
                t.dtype()
            )));
        }
    }
    let pos = match opt_tensor(inputs, 2)? {
        Some(p) => position(p, items.len(), true)?,
        None => items.len(),
    };
    let mut items = items.to_vec();
    items.insert(pos, t.clone());
    let elem = match elem {
        ValueType::Unknown => tensor_elem(t.dtype()),
        e => e.clone(),
    };
    Ok(Value::Sequence { elem, items })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kernel;
    use xnpu_ops::sequence::{
        OptionalGetElement, OptionalHasElement, SequenceAt, SequenceErase, SequenceInsert,
    };

    fn seq(items: Vec<Tensor>) -> Value {
        Value::Sequence {
            elem: tensor_elem(DType::I64),
            items,
        }
    }

    fn items(v: &Value) -> Vec<Vec<i64>> {
        v.as_sequence()
            .unwrap()
            .iter()
            .map(|t| t.to_i64_vec().unwrap())
            .collect()
    }

    #[test]
    fn insert_and_erase_take_negative_positions() {
        let s = seq(vec![Tensor::scalar(1i64), Tensor::scalar(2i64)]);
        let x = Value::Tensor(Tensor::scalar(9i64));
        let p = Value::Tensor(Tensor::scalar(-1i64));
        let out = Kernel::run(
            &Op::SequenceInsert(SequenceInsert),
            &[Some(&s), Some(&x), Some(&p)],
            1,
        )
        .unwrap();
        assert_eq!(items(&out[0]), vec![vec![1], vec![9], vec![2]]);
        let out = Kernel::run(&Op::SequenceErase(SequenceErase), &[Some(&out[0])], 1).unwrap();
        assert_eq!(items(&out[0]), vec![vec![1], vec![9]]);
        let out = Kernel::run(
            &Op::SequenceErase(SequenceErase),
            &[Some(&out[0]), Some(&p)],
            1,
        )
        .unwrap();
        assert_eq!(items(&out[0]), vec![vec![1]]);
    }

    #[test]
    fn out_of_range_positions_are_errors() {
        let s = seq(vec![Tensor::scalar(1i64)]);
        let p = Value::Tensor(Tensor::scalar(1i64));
        let err = Kernel::run(&Op::SequenceAt(SequenceAt), &[Some(&s), Some(&p)], 1).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let empty = seq(vec![]);
        assert!(Kernel::run(&Op::SequenceErase(SequenceErase), &[Some(&empty)], 1).is_err());
        let f = Value::Tensor(Tensor::scalar(1.0f32));
        assert!(Kernel::run(
            &Op::SequenceInsert(SequenceInsert),
            &[Some(&s), Some(&f)],
            1
        )
        .is_err());
    }

    #[test]
    fn optionals_report_and_give_their_element() {
        let empty = Value::Optional {
            elem: tensor_elem(DType::F32),
            value: None,
        };
        let t = Value::Tensor(Tensor::scalar(1.0f32));
        let has = |v: Option<&Value>| {
            Kernel::run(&Op::OptionalHasElement(OptionalHasElement), &[v], 1).unwrap()[0]
                .as_tensor()
                .unwrap()
                .to_vec::<bool>()
                .unwrap()[0]
        };
        assert!(!has(Some(&empty)));
        assert!(!has(None));
        assert!(has(Some(&t)));
        let get = Op::OptionalGetElement(OptionalGetElement);
        assert!(Kernel::run(&get, &[Some(&empty)], 1).is_err());
        assert_eq!(Kernel::run(&get, &[Some(&t)], 1).unwrap()[0], t);
    }
}
