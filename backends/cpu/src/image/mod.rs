//! Reference kernels of the `image` family.

mod affine_grid;
mod grid_sample;
mod image_decoder;
mod nms;
mod resize;
mod roi_align;

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::image::Op;

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, inputs: &[Option<&Value>], _n_outputs: usize) -> Result<Vec<Value>> {
    let t = match op {
        Op::Resize(o) => resize::run(o, inputs)?,
        Op::GridSample(o) => grid_sample::run(o, inputs)?,
        Op::AffineGrid(o) => affine_grid::run(o, inputs)?,
        Op::RoiAlign(o) => roi_align::run(o, inputs)?,
        Op::NonMaxSuppression(o) => nms::run(o, inputs)?,
        Op::ImageDecoder(o) => image_decoder::run(o, inputs)?,
    };
    Ok(vec![Value::Tensor(t)])
}

/// `(outer, len, inner)`: the sizes before, of, and after `axis` of `shape`.
pub(crate) fn strided_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// A tensor of `dtype` from values computed in f64: floats are rounded to the nearest
/// representable value; integers are rounded half to even and saturated (NaN becomes 0).
pub(crate) fn f64_tensor(dtype: DType, shape: Vec<usize>, values: Vec<f64>) -> Result<Tensor> {
    fn cast<T: num_traits::NumCast + num_traits::Bounded + num_traits::Zero>(
        x: f64,
        is_float: bool,
    ) -> T {
        let x = if is_float { x } else { x.round_ties_even() };
        T::from(x).unwrap_or_else(|| {
            if x.is_nan() {
                T::zero()
            } else if x < 0.0 {
                T::min_value()
            } else {
                T::max_value()
            }
        })
    }
    let is_float = dtype.is_float();
    xnpu_core::with_numeric_type!(dtype, T => {
        Tensor::from_vec(shape, values.into_iter().map(|v| cast::<T>(v, is_float)).collect())
    }, _ => Err(Error::compute(format!("expected a numeric dtype, got {dtype}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_values_saturate_into_integers() {
        let t = f64_tensor(DType::U8, vec![4], vec![-3.0, 2.5, 3.5, 300.0]).unwrap();
        assert_eq!(t.to_vec::<u8>().unwrap(), vec![0, 2, 4, 255]);
    }
}
