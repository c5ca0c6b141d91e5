//! Reference kernels of the `image` family.

mod affine_grid;
mod grid_sample;
mod image_decoder;
mod nms;
mod resize;
mod roi_align;

use crate::one;
use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_ops::image::*;

kernel!(Resize, |o, inputs, _| resize::run(o, inputs).map(one));
kernel!(GridSample, |o, inputs, _| grid_sample::run(o, inputs)
    .map(one));
kernel!(AffineGrid, |o, inputs, _| affine_grid::run(o, inputs)
    .map(one));
kernel!(RoiAlign, |o, inputs, _| roi_align::run(o, inputs).map(one));
kernel!(NonMaxSuppression, |o, inputs, _| nms::run(o, inputs)
    .map(one));
kernel!(ImageDecoder, |o, inputs, _| image_decoder::run(o, inputs)
    .map(one));

/// `(outer, len, inner)`: the sizes before, of, and after `axis` of `shape`, or an error
/// when one overflows (a shape with a 0 dim can have others of any size).
pub(crate) fn strided_axis(shape: &[usize], axis: usize) -> Result<(usize, usize, usize)> {
    let outer = xnpu_core::shape::checked_numel(&shape[..axis])?;
    let inner = xnpu_core::shape::checked_numel(&shape[axis + 1..])?;
    Ok((outer, shape[axis], inner))
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
        Tensor::from_vec(shape, xnpu_linalg::buf::collected(values.into_iter().map(|v| cast::<T>(v, is_float)), "an output")?)
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
