use xnpu_core::shape::normalize_axis;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{const_ints, dtype, out, shape, unknown};
use crate::{InferInput, OpDef};

/// Split (ONNX opsets 1, 2, 11, 13, 18): cuts input 0 along `axis` into consecutive parts,
/// one per output. Part lengths come from the `split` attribute (opsets < 13, kept in
/// `split`) or the optional i64 input 1; without them the dim is cut into `num_outputs`
/// (opset 18) or as many parts as outputs, of `ceil(dim / n)` each with a smaller last part.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    pub axis: i64,
    pub split: Option<Vec<i64>>,
    pub num_outputs: Option<usize>,
}

impl Split {
    /// The part lengths for a dim of `dim`, the lengths given (attribute or input) and the
    /// node's number of outputs.
    pub fn sizes(&self, dim: usize, given: Option<&[i64]>, n_outputs: usize) -> Result<Vec<usize>> {
        if let Some(given) = given.or(self.split.as_deref()) {
            let sizes = given
                .iter()
                .map(|&s| {
                    usize::try_from(s).map_err(|_| {
                        Error::compute(format!("Split: split {given:?} has a negative length"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let total = sizes
                .iter()
                .try_fold(0usize, |a, &s| a.checked_add(s))
                .unwrap_or(usize::MAX);
            if total != dim || sizes.len() != n_outputs {
                return Err(Error::compute(format!(
                    "Split: split {given:?} must have {n_outputs} lengths summing to the dim {dim}"
                )));
            }
            return Ok(sizes);
        }
        let n = self.num_outputs.unwrap_or(n_outputs);
        if n == 0 || n != n_outputs {
            return Err(Error::compute(format!(
                "Split: num_outputs is {n} but the node has {n_outputs} outputs"
            )));
        }
        let chunk = dim.div_ceil(n);
        let last = dim.checked_sub(chunk * (n - 1)).ok_or_else(|| {
            Error::compute(format!(
                "Split: a dim of {dim} cannot be cut into {n} parts of {chunk}"
            ))
        })?;
        let mut sizes = vec![chunk; n - 1];
        sizes.push(last);
        Ok(sizes)
    }
}

impl OpDef for Split {
    const NAMES: &'static [&'static str] = &["Split"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let dt = dtype(inputs, 0);
        let Some(s) = shape(inputs, 0) else {
            return Ok(vec![out(dt, None); n_outputs]);
        };
        let a = normalize_axis(self.axis, s.rank())?;
        let given = const_ints(inputs, 1);
        let has_input = crate::infer::input(inputs, 1).is_some();
        let sizes = match (&s.0[a], has_input && given.is_none()) {
            (Dim::Known(d), false) => Some(self.sizes(*d, given.as_deref(), n_outputs)?),
            _ => None,
        };
        Ok((0..n_outputs)
            .map(|i| {
                let mut dims = s.0.clone();
                dims[a] = match &sizes {
                    Some(v) => Dim::Known(v[i]),
                    None => unknown(format!("Split?{i}")),
                };
                out(dt, Some(Shape(dims)))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uneven_split_makes_the_last_part_smaller() {
        let s = Split {
            num_outputs: Some(3),
            ..Split::default()
        };
        assert_eq!(s.sizes(7, None, 3).unwrap(), vec![3, 3, 1]);
        assert_eq!(s.sizes(6, None, 3).unwrap(), vec![2, 2, 2]);
        assert!(s.sizes(7, Some(&[3, 3]), 3).is_err());
        assert_eq!(s.sizes(7, Some(&[3, 0, 4]), 3).unwrap(), vec![3, 0, 4]);
    }
}
