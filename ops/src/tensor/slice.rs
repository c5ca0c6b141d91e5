use xnpu_core::shape::normalize_axes;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{const_ints, dtype, out, shape, unknown};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// The attribute form of Slice (opsets 1–9).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SliceAttrs {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Option<Vec<i64>>,
}

/// Slice (ONNX opsets 1, 10, 11, 13): for each listed axis (default `0..len(starts)`),
/// takes `start, start+step, …` up to but excluding `end`, like a Python slice: negative
/// start/end count from the dim, then they are clamped (to `[0, dim]` for a positive step,
/// `[-1, dim-1]` for a negative one). Steps default to 1 and must not be 0. Starts, ends,
/// axes and steps are i32/i64 inputs 1–4 (opset ≥ 10) or the attributes kept in `attrs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slice {
    pub attrs: Option<SliceAttrs>,
}

/// What a Slice takes along one axis: the first index, the step and the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisSlice {
    pub start: usize,
    pub step: i64,
    pub len: usize,
}

impl AxisSlice {
    pub fn full(dim: usize) -> Self {
        AxisSlice {
            start: 0,
            step: 1,
            len: dim,
        }
    }

    /// The clamped slice of `start:end:step` over a dim of `dim`.
    pub fn new(dim: usize, start: i64, end: i64, step: i64) -> Result<Self> {
        if step == 0 {
            return Err(Error::compute("Slice: a step must not be 0"));
        }
        let d = i64::try_from(dim).map_err(|_| Error::compute("Slice: dim too large"))?;
        let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        // ONNX's clamping (not numpy's): a start is clamped into [0, d - 1] for negative
        // steps, an end into [-1, d - 1].
        let (s, e) = if step > 0 {
            (norm(start).clamp(0, d), norm(end).clamp(0, d))
        } else if d == 0 {
            (0, 0)
        } else {
            (norm(start).clamp(0, d - 1), norm(end).clamp(-1, d - 1))
        };
        let step_abs = i128::from(step).abs();
        let span = if step > 0 { e - s } else { s - e };
        let len = if span > 0 {
            (i128::from(span) - 1) / step_abs + 1
        } else {
            0
        };
        Ok(AxisSlice {
            start: if len > 0 { s as usize } else { 0 },
            step,
            len: len as usize,
        })
    }
}

impl Slice {
    /// The slice along every axis of an input of dims `dims`.
    pub fn plan(
        dims: &[usize],
        starts: &[i64],
        ends: &[i64],
        axes_: Option<&[i64]>,
        steps: Option<&[i64]>,
    ) -> Result<Vec<AxisSlice>> {
        let n = starts.len();
        let default_axes: Vec<i64> = (0..n as i64).collect();
        let ax = axes_.unwrap_or(&default_axes);
        if ends.len() != n || ax.len() != n || steps.is_some_and(|s| s.len() != n) {
            return Err(Error::compute(format!(
                "Slice: starts {starts:?}, ends {ends:?}, axes {ax:?} and steps {steps:?} must have the same length"
            )));
        }
        let ax = normalize_axes(ax, dims.len())?;
        let mut plan: Vec<AxisSlice> = dims.iter().map(|&d| AxisSlice::full(d)).collect();
        for (i, &a) in ax.iter().enumerate() {
            let step = steps.map_or(1, |s| s[i]);
            plan[a] = AxisSlice::new(dims[a], starts[i], ends[i], step)?;
        }
        Ok(plan)
    }
}

impl OpDef for Slice {
    const NAMES: &'static [&'static str] = &["Slice"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dt = dtype(inputs, 0);
        let Some(s) = shape(inputs, 0) else {
            return Ok(vec![out(dt, None)]);
        };
        let (starts, ends, ax, steps) = match &self.attrs {
            Some(a) => (
                Some(a.starts.clone()),
                Some(a.ends.clone()),
                a.axes.clone(),
                None,
            ),
            None => (
                const_ints(inputs, 1),
                const_ints(inputs, 2),
                const_ints(inputs, 3),
                const_ints(inputs, 4),
            ),
        };
        let axes_given = self.attrs.is_none() && input(inputs, 3).is_some();
        let steps_given = self.attrs.is_none() && input(inputs, 4).is_some();
        let (Some(starts), Some(ends)) = (starts, ends) else {
            // Which axes are sliced is known only when the axes are.
            let dims = match (&ax, axes_given) {
                (Some(ax), _) => {
                    let ax = normalize_axes(ax, s.rank())?;
                    s.0.iter()
                        .enumerate()
                        .map(|(i, d)| {
                            if ax.contains(&i) {
                                unknown(format!("Slice?{i}"))
                            } else {
                                d.clone()
                            }
                        })
                        .collect()
                }
                _ => (0..s.rank())
                    .map(|i| unknown(format!("Slice?{i}")))
                    .collect(),
            };
            return Ok(vec![out(dt, Some(Shape(dims)))]);
        };
        if (axes_given && ax.is_none()) || (steps_given && steps.is_none()) {
            return Ok(vec![out(
                dt,
                Some(super::util::unknown_dims("Slice", s.rank())?),
            )]);
        }
        let n = starts.len();
        let default_axes: Vec<i64> = (0..n as i64).collect();
        let ax_list = ax.clone().unwrap_or(default_axes);
        let ax_norm = normalize_axes(&ax_list, s.rank())?;
        let mut dims = s.0.clone();
        for (i, &a) in ax_norm.iter().enumerate() {
            let (Some(&st), Some(&en)) = (starts.get(i), ends.get(i)) else {
                return Err(Error::model(format!(
                    "Slice: starts {starts:?} and ends {ends:?} are shorter than axes {ax_list:?}"
                )));
            };
            let step = steps.as_ref().and_then(|v| v.get(i).copied()).unwrap_or(1);
            dims[a] = match &s.0[a] {
                Dim::Known(d) => Dim::Known(AxisSlice::new(*d, st, en, step)?.len),
                Dim::Sym(name) => {
                    if st == 0 && step == 1 && en >= i64::from(i32::MAX) {
                        Dim::Sym(name.clone())
                    } else {
                        unknown(format!("{name}[{st}:{en}:{step}]"))
                    }
                }
            };
        }
        Ok(vec![out(dt, Some(Shape(dims)))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(dim: usize, s: i64, e: i64, step: i64) -> (usize, usize) {
        let a = AxisSlice::new(dim, s, e, step).unwrap();
        (a.start, a.len)
    }

    #[test]
    fn a_negative_step_clamps_the_start_into_the_dim_as_onnx_says() {
        // numpy would clamp the start to -1 and take nothing; ONNX clamps it to 0.
        assert_eq!(len(1, i64::MIN, i64::MIN, -1), (0, 1));
        assert_eq!(len(4, -9, -9, -1), (0, 1));
        assert_eq!(len(0, 0, -1, -1), (0, 0));
    }

    #[test]
    fn slices_clamp_like_numpy_otherwise() {
        assert_eq!(len(10, 0, 3, 1), (0, 3));
        assert_eq!(len(10, -3, i64::MAX, 1), (7, 3));
        assert_eq!(len(10, 20, 30, 1), (0, 0));
        assert_eq!(len(10, -1, i64::MIN, -1), (9, 10));
        assert_eq!(len(10, 20, -100, -3), (9, 4));
        assert_eq!(len(10, 1, 8, 3), (1, 3));
        assert!(AxisSlice::new(3, 0, 1, 0).is_err());
    }
}
