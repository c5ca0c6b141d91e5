//! Ops that only change the dims of a tensor, never its elements or their order.

use xnpu_core::shape::normalize_axes;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{const_ints, dtype, out, product, shape, unknown, unknown_dims};
use crate::{InferInput, OpDef};

/// Reshape (ONNX opsets 1, 5, 13, 14, 19, 21, 23, 24, 25): the elements of input 0, in order,
/// with the dims given by input 1 (an i64 tensor; opset 1 reads them from the `shape`
/// attribute, kept in `shape`). A 0 copies the input's dim at the same position unless
/// `allowzero` (then it is a real 0); one -1 is inferred from the element count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reshape {
    pub allowzero: bool,
    /// The target dims given as an attribute (opset 1); from opset 5 on they are input 1.
    pub shape: Option<Vec<i64>>,
}

impl Reshape {
    /// The output dims for an input of dims `input` and requested dims `spec`.
    pub fn output_dims(&self, input: &[usize], spec: &[i64]) -> Result<Vec<usize>> {
        let mut out = Vec::with_capacity(spec.len());
        let mut infer_at = None;
        for (i, &s) in spec.iter().enumerate() {
            out.push(match s {
                0 if !self.allowzero => *input.get(i).ok_or_else(|| {
                    Error::compute(format!(
                        "Reshape: shape {spec:?} copies dim {i} (value 0) but the input has rank {}",
                        input.len()
                    ))
                })?,
                -1 => {
                    if infer_at.replace(i).is_some() {
                        return Err(Error::compute(format!(
                            "Reshape: shape {spec:?} has more than one -1"
                        )));
                    }
                    1
                }
                s if s < 0 => {
                    return Err(Error::compute(format!(
                        "Reshape: shape {spec:?} has the invalid dim {s}"
                    )))
                }
                s => usize::try_from(s)
                    .map_err(|_| Error::compute(format!("Reshape: dim {s} is too large")))?,
            });
        }
        let n_in = xnpu_core::shape::checked_numel(input)?;
        if let Some(i) = infer_at {
            if self.allowzero && out.contains(&0) {
                return Err(Error::compute(format!(
                    "Reshape: shape {spec:?} has both -1 and 0 with allowzero=1"
                )));
            }
            let known = xnpu_core::shape::checked_numel(&out)?;
            if known == 0 || n_in % known != 0 {
                return Err(Error::compute(format!(
                    "Reshape: cannot infer the -1 in {spec:?} for an input of dims {input:?} ({n_in} elements)"
                )));
            }
            out[i] = n_in / known;
        }
        let n_out = xnpu_core::shape::checked_numel(&out)?;
        if n_out != n_in {
            return Err(Error::compute(format!(
                "Reshape: cannot reshape dims {input:?} ({n_in} elements) to {out:?} ({n_out} elements, from {spec:?})"
            )));
        }
        Ok(out)
    }

    fn infer_dims(&self, input: Option<&Shape>, spec: &[i64]) -> Result<Shape> {
        if let Some(known) = input.and_then(Shape::as_known) {
            return Ok(Shape::known(&self.output_dims(&known, spec)?));
        }
        let mut dims = Vec::with_capacity(spec.len());
        let mut infer_at = None;
        for (i, &s) in spec.iter().enumerate() {
            dims.push(match s {
                0 if !self.allowzero => match input {
                    Some(sh) => sh.0.get(i).cloned().ok_or_else(|| {
                        Error::model(format!(
                            "Reshape: shape {spec:?} copies dim {i} but the input has rank {}",
                            sh.rank()
                        ))
                    })?,
                    None => unknown(format!("Reshape?{i}")),
                },
                -1 => {
                    infer_at = Some(i);
                    Dim::Known(1)
                }
                s if s < 0 => {
                    return Err(Error::model(format!(
                        "Reshape: shape {spec:?} has the invalid dim {s}"
                    )))
                }
                s => Dim::Known(s as usize),
            });
        }
        if let Some(i) = infer_at {
            dims[i] = match input {
                Some(sh) => quotient(&sh.0, &dims),
                None => unknown(format!("Reshape?{i}")),
            };
        }
        Ok(Shape(dims))
    }
}

impl OpDef for Reshape {
    const NAMES: &'static [&'static str] = &["Reshape"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let spec = self.shape.clone().or_else(|| const_ints(inputs, 1));
        let dims = match spec {
            Some(spec) => Some(self.infer_dims(shape(inputs, 0), &spec)?),
            None => shape(inputs, 1)
                .and_then(|s| s.0.first())
                .and_then(Dim::known)
                .map(|n| unknown_dims("Reshape", n))
                .transpose()?,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}

/// `product(total) / product(part)`, cancelling the symbols the two have in common.
fn quotient(total: &[Dim], part: &[Dim]) -> Dim {
    let mut syms: Vec<&Dim> = total.iter().filter(|d| d.known().is_none()).collect();
    let mut part_syms = Vec::new();
    for d in part.iter().filter(|d| d.known().is_none()) {
        match syms.iter().position(|s| *s == d) {
            Some(p) => {
                syms.remove(p);
            }
            None => part_syms.push(d),
        }
    }
    let known = |v: &[Dim]| {
        v.iter()
            .filter_map(Dim::known)
            .try_fold(1usize, |a, d| a.checked_mul(d))
    };
    match (known(total), known(part)) {
        (Some(t), Some(p)) if part_syms.is_empty() && p != 0 && t % p == 0 => {
            let mut rest: Vec<Dim> = syms.into_iter().cloned().collect();
            rest.push(Dim::Known(t / p));
            product(&rest)
        }
        _ => unknown(format!("{}/{}", product(total), product(part))),
    }
}

/// Flatten (ONNX opsets 1, 9, 11, 13, 21, 23, 24, 25): the input as a matrix of dims
/// `[d0*…*d(axis-1), d(axis)*…*d(r-1)]`; `axis` may be negative (counted from the rank) and
/// lies in `[-r, r]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flatten {
    pub axis: i64,
}

impl Flatten {
    /// The split point for a given rank.
    pub fn split_at(&self, rank: usize) -> Result<usize> {
        let r = rank as i64;
        let a = if self.axis < 0 {
            self.axis + r
        } else {
            self.axis
        };
        if !(0..=r).contains(&a) {
            return Err(Error::compute(format!(
                "Flatten: axis {} is out of range for an input of rank {rank}",
                self.axis
            )));
        }
        Ok(a as usize)
    }
}

impl OpDef for Flatten {
    const NAMES: &'static [&'static str] = &["Flatten"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match shape(inputs, 0) {
            Some(s) => {
                let a = self.split_at(s.rank())?;
                Shape(vec![product(&s.0[..a]), product(&s.0[a..])])
            }
            None => unknown_dims("Flatten", 2)?,
        };
        Ok(vec![out(dtype(inputs, 0), Some(dims))])
    }
}

/// Squeeze (ONNX opsets 1, 11, 13, 21, 23, 24, 25): removes the listed axes, each of which
/// must have dim 1; with no axes, removes every dim equal to 1. Axes come from the `axes`
/// attribute (opsets < 13, kept in `axes`) or from the optional i64 input 1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Squeeze {
    pub axes: Option<Vec<i64>>,
}

impl Squeeze {
    /// The output dims for input dims `input` and the axes in effect (`None`: all 1-dims).
    pub fn output_dims(input: &[usize], axes_: Option<&[i64]>) -> Result<Vec<usize>> {
        match axes_ {
            None => Ok(input.iter().copied().filter(|&d| d != 1).collect()),
            Some(ax) => {
                let ax = normalize_axes(ax, input.len())?;
                for &a in &ax {
                    if input[a] != 1 {
                        return Err(Error::compute(format!(
                            "Squeeze: axis {a} has dim {}, expected 1 (input dims {input:?})",
                            input[a]
                        )));
                    }
                }
                Ok(input
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !ax.contains(i))
                    .map(|(_, &d)| d)
                    .collect())
            }
        }
    }
}

impl OpDef for Squeeze {
    const NAMES: &'static [&'static str] = &["Squeeze"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let has_axes_input = crate::infer::input(inputs, 1).is_some();
        let ax = self.axes.clone().or_else(|| const_ints(inputs, 1));
        let dims = match (shape(inputs, 0), ax) {
            (Some(s), Some(ax)) => {
                let ax = normalize_axes(&ax, s.rank())?;
                for &a in &ax {
                    if let Dim::Known(d) = s.0[a] {
                        if d != 1 {
                            return Err(Error::model(format!(
                                "Squeeze: axis {a} has dim {d}, expected 1 (input shape {s})"
                            )));
                        }
                    }
                }
                Some(Shape(
                    s.0.iter()
                        .enumerate()
                        .filter(|(i, _)| !ax.contains(i))
                        .map(|(_, d)| d.clone())
                        .collect(),
                ))
            }
            (Some(s), None) if !has_axes_input => s
                .as_known()
                .map(|k| Shape::known(&k.into_iter().filter(|&d| d != 1).collect::<Vec<_>>())),
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}

/// Unsqueeze (ONNX opsets 1, 11, 13, 21, 23, 24, 25): inserts dims of 1 at the listed axes
/// of the output (negative axes count from the output rank). Axes come from the `axes`
/// attribute (opsets < 13, kept in `axes`) or from the required i64 input 1.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unsqueeze {
    pub axes: Option<Vec<i64>>,
}

impl Unsqueeze {
    /// Which output positions are the new 1-dims, for an input of rank `rank`.
    pub fn new_axes(rank: usize, ax: &[i64]) -> Result<Vec<usize>> {
        normalize_axes(ax, rank + ax.len())
    }

    /// Inserts `one` at the new axes among `dims`.
    pub fn insert<T: Clone>(dims: &[T], new_axes: &[usize], one: T) -> Vec<T> {
        let mut it = dims.iter();
        (0..dims.len() + new_axes.len())
            .map(|i| {
                if new_axes.contains(&i) {
                    one.clone()
                } else {
                    it.next().cloned().unwrap_or_else(|| one.clone())
                }
            })
            .collect()
    }
}

impl OpDef for Unsqueeze {
    const NAMES: &'static [&'static str] = &["Unsqueeze"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let ax = self.axes.clone().or_else(|| const_ints(inputs, 1));
        let dims = match (shape(inputs, 0), ax) {
            (Some(s), Some(ax)) => {
                let new = Self::new_axes(s.rank(), &ax)?;
                Some(Shape(Self::insert(&s.0, &new, Dim::Known(1))))
            }
            (Some(s), None) => shape(inputs, 1)
                .and_then(|a| a.0.first())
                .and_then(Dim::known)
                .map(|n| unknown_dims("Unsqueeze", s.rank().saturating_add(n)))
                .transpose()?,
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_copies_zero_and_infers_minus_one() {
        let r = Reshape::default();
        assert_eq!(r.output_dims(&[2, 3, 4], &[0, -1]).unwrap(), vec![2, 12]);
        assert_eq!(
            r.output_dims(&[2, 3, 4], &[4, 0, 2]).unwrap(),
            vec![4, 3, 2]
        );
        assert!(r.output_dims(&[2, 3, 4], &[5, -1]).is_err());
        assert!(r.output_dims(&[2, 3], &[-1, -1]).is_err());
        let z = Reshape {
            allowzero: true,
            shape: None,
        };
        assert_eq!(z.output_dims(&[0, 3], &[3, 0]).unwrap(), vec![3, 0]);
    }

    #[test]
    fn reshape_infers_symbolic_minus_one() {
        let r = Reshape::default();
        let s = Shape(vec![Dim::Sym("b".into()), Dim::Known(3), Dim::Known(4)]);
        let d = r.infer_dims(Some(&s), &[0, -1]).unwrap();
        assert_eq!(d, Shape(vec![Dim::Sym("b".into()), Dim::Known(12)]));
    }

    #[test]
    fn squeeze_checks_the_dims_it_removes() {
        assert_eq!(Squeeze::output_dims(&[1, 3, 1], None).unwrap(), vec![3]);
        assert_eq!(
            Squeeze::output_dims(&[1, 3, 1], Some(&[-1])).unwrap(),
            vec![1, 3]
        );
        assert!(Squeeze::output_dims(&[1, 3, 1], Some(&[1])).is_err());
    }

    #[test]
    fn unsqueeze_inserts_at_output_positions() {
        let new = Unsqueeze::new_axes(2, &[0, -1]).unwrap();
        assert_eq!(Unsqueeze::insert(&[3, 4], &new, 1), vec![1, 3, 4, 1]);
    }
}
