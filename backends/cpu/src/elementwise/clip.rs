//! Clip.

use xnpu_core::{with_numeric_type, Error, Result, Tensor};
use xnpu_ops::elementwise::Clip;

use super::unary::{map, not_defined};
use xnpu_core::Num;

/// A bound: the single element of the bound input when given, else the attribute.
fn bound<T: Num>(input: Option<&Tensor>, attr: Option<f32>, which: &str) -> Result<Option<T>> {
    match input {
        Some(t) => {
            let v = t
                .as_slice::<T>()
                .map_err(|e| e.context(format!("Clip {which}")))?;
            match v.len() {
                1 => Ok(Some(v[0])),
                n => Err(Error::compute(format!(
                    "Clip {which} must be a scalar, got {n} values (shape {:?})",
                    t.shape()
                ))),
            }
        }
        None => Ok(attr.map(|a| T::from_f64(a as f64))),
    }
}

fn clip_as<T: Num>(
    op: &Clip,
    x: &Tensor,
    lo: Option<&Tensor>,
    hi: Option<&Tensor>,
) -> Result<Tensor> {
    let lo = bound::<T>(lo, op.min, "min")?;
    let hi = bound::<T>(hi, op.max, "max")?;
    map(x, |v: T| {
        let v = lo.map_or(v, |lo| v.max_nan(lo));
        hi.map_or(v, |hi| v.min_nan(hi))
    })
}

pub fn clip(op: &Clip, x: &Tensor, lo: Option<&Tensor>, hi: Option<&Tensor>) -> Result<Tensor> {
    let d = x.dtype();
    with_numeric_type!(d, T => clip_as::<T>(op, x, lo, hi), _ => Err(not_defined("Clip", d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_wins_when_bounds_cross() {
        let x = Tensor::from_vec(vec![3], vec![-2i8, 0, 5]).unwrap();
        let lo = Tensor::scalar(2i8);
        let hi = Tensor::scalar(1i8);
        let r = clip(&Clip::default(), &x, Some(&lo), Some(&hi)).unwrap();
        assert_eq!(r.to_vec::<i8>().unwrap(), vec![1, 1, 1]);
        let r = clip(
            &Clip {
                min: None,
                max: Some(1.0),
            },
            &x,
            None,
            None,
        )
        .unwrap();
        assert_eq!(r.to_vec::<i8>().unwrap(), vec![-2, 0, 1]);
        let bad = Tensor::from_vec(vec![2], vec![1i8, 2]).unwrap();
        assert!(clip(&Clip::default(), &x, Some(&bad), None).is_err());
    }
}
