//! Grouping elements by their coordinates outside a set of axes, and f64 → dtype conversion.

use num_traits::{Bounded, NumCast};
use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_ops::infer::normalize_axis;

/// Normalizes axes and refuses repeats.
pub fn normalize_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let a = normalize_axis(a, rank)?;
        if out.contains(&a) {
            return Err(Error::compute(format!("axis {a} is given twice")));
        }
        out.push(a);
    }
    Ok(out)
}

/// For `shape` reduced over `axes`: the shape with those axes set to 1, and for each element of
/// that shape (row-major) the flat indices of the input elements in its group, in row-major
/// order (so along a single axis, position k in a group is coordinate k on that axis).
pub fn groups(shape: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let kept: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let n_out: usize = kept.iter().product();
    let mut out_strides = vec![0usize; shape.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        out_strides[i] = if axes.contains(&i) { 0 } else { s };
        s *= kept[i];
    }
    let mut groups = vec![Vec::new(); n_out];
    let n: usize = shape.iter().product();
    let mut coord = vec![0usize; shape.len()];
    for i in 0..n {
        let o: usize = coord.iter().zip(&out_strides).map(|(c, s)| c * s).sum();
        groups[o].push(i);
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    (kept, groups)
}

fn cast<T: NumCast + Bounded>(v: f64) -> T {
    NumCast::from(v).unwrap_or_else(|| {
        if v > 0.0 {
            T::max_value()
        } else {
            T::min_value()
        }
    })
}

/// Rounds f64 results to a tensor of `dtype` (integers saturate; bool is `v != 0`).
pub fn from_f64(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor> {
    if dtype == DType::Bool {
        return Tensor::from_vec(shape, v.iter().map(|&x| x != 0.0).collect());
    }
    xnpu_core::with_numeric_type!(dtype, T => {
        Tensor::from_vec(shape, v.iter().map(|&x| cast::<T>(x)).collect::<Vec<T>>())
    }, _ => Err(Error::compute(format!("{dtype} results are not supported here"))))
}
