//! LabelEncoder: a hash map from key to position in `values`.

use std::collections::HashMap;

use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::ml::LabelEncoder;

const KEYS: &str = "LabelEncoder's keys";
const OUTPUT: &str = "LabelEncoder's output";

/// A key as the map compares it: integers by value, floats by value with one NaN and one zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Float(u64),
    Str(String),
}

fn float_key(v: f64) -> Key {
    if v.is_nan() {
        Key::Float(f64::NAN.to_bits())
    } else if v == 0.0 {
        Key::Float(0f64.to_bits())
    } else {
        Key::Float(v.to_bits())
    }
}

/// The elements of a keys or input tensor as map keys.
fn keys_of(t: &Tensor) -> Result<Vec<Key>> {
    match t.dtype() {
        DType::String => buf::collected(t.strings()?.iter().cloned().map(Key::Str), KEYS),
        DType::F32 | DType::F64 => buf::collected(t.to_f64_vec()?.into_iter().map(float_key), KEYS),
        d if d.is_int() => buf::collected(t.to_i64_vec()?.into_iter().map(Key::Int), KEYS),
        d => Err(Error::compute(format!(
            "LabelEncoder keys of dtype {d} are not supported"
        ))),
    }
}

/// Gathers `values[i]` for `Some(i)` and the default for `None`.
fn gather(
    values: &Tensor,
    default: &Tensor,
    picks: &[Option<usize>],
    shape: Vec<usize>,
) -> Result<Tensor> {
    if values.dtype() == DType::String {
        let v = values.strings()?;
        let d = default.strings()?.first().cloned().unwrap_or_default();
        let out = buf::collected(
            picks
                .iter()
                .map(|p| p.map_or_else(|| d.clone(), |i| v[i].clone())),
            OUTPUT,
        )?;
        return Tensor::from_strings(shape, out);
    }
    xnpu_core::with_pod_type!(values.dtype(), T => {
        let v = values.as_slice::<T>()?;
        let d = default.as_slice::<T>()?.first().copied().unwrap_or_default();
        Tensor::from_vec(shape, buf::collected(picks.iter().map(|p| p.map_or(d, |i| v[i])), OUTPUT)?)
    }, _ => Err(Error::compute(format!("LabelEncoder values of dtype {} are not supported", values.dtype()))))
}

pub(super) fn run(op: &LabelEncoder, x: &Tensor) -> Result<Tensor> {
    if x.dtype() != op.keys.dtype() {
        return Err(Error::compute(format!(
            "the input is {}, the keys are {}",
            x.dtype(),
            op.keys.dtype()
        )));
    }
    if op.keys.len() != op.values.len() {
        return Err(Error::compute(format!(
            "there are {} keys and {} values",
            op.keys.len(),
            op.values.len()
        )));
    }
    // Later pairs replace earlier ones with the same key.
    let map: HashMap<Key, usize> = keys_of(&op.keys)?
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, i))
        .collect();
    let picks = buf::collected(
        keys_of(x)?.iter().map(|k| map.get(k).copied()),
        "LabelEncoder's lookups",
    )?;
    gather(&op.values, &op.default, &picks, x.shape().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_keys_match_nan_and_signed_zero() {
        let op = LabelEncoder {
            keys: Tensor::from_vec(vec![3], vec![f32::NAN, 0.0, 1.0]).unwrap(),
            values: Tensor::from_vec(vec![3], vec![10i64, 20, 30]).unwrap(),
            default: Tensor::scalar(-1i64),
        };
        let x = Tensor::from_vec(vec![4], vec![-f32::NAN, -0.0, 2.0, 1.0]).unwrap();
        assert_eq!(
            run(&op, &x).unwrap().to_i64_vec().unwrap(),
            vec![10, 20, -1, 30]
        );
        let wrong = Tensor::from_vec(vec![1], vec![1i64]).unwrap();
        assert!(run(&op, &wrong).is_err());
    }
}
