//! Reference kernels of the `signal` family.

mod dft;
mod mel;
mod stft;
mod window;

use crate::one;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::signal::*;

kernel!(Dft, |o, inputs, _| dft::run(o, inputs).map(one));
kernel!(Stft, |o, inputs, _| stft::run(o, inputs).map(one));
kernel!(Window, |o, inputs, _| window::run(o, inputs).map(one));
kernel!(MelWeightMatrix, |o, inputs, _| mel::run(o, inputs).map(one));

/// A tensor of numeric `dtype` from f64 values: floats are rounded to the nearest
/// representable value, integers truncated toward zero and saturated (NaN becomes 0).
pub(crate) fn f64_tensor(dtype: DType, shape: Vec<usize>, values: Vec<f64>) -> Result<Tensor> {
    fn cast<T: num_traits::NumCast + num_traits::Bounded + num_traits::Zero>(x: f64) -> T {
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
    xnpu_core::with_numeric_type!(dtype, T => {
        Tensor::from_vec(shape, values.into_iter().map(cast::<T>).collect())
    }, _ => Err(Error::compute(format!("expected a numeric dtype, got {dtype}"))))
}

/// The single value of a scalar (or one-element) integer input.
pub(crate) fn scalar_int(inputs: &[Option<&Value>], i: usize, name: &str) -> Result<i64> {
    let v = crate::args::tensor(inputs, i)?.to_i64_vec()?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(Error::compute(format!(
            "{name} must hold one value, got {}",
            v.len()
        ))),
    }
}

/// The discrete Fourier transform of the complex signal `(re, im)`:
/// `X[k] = sum_j x[j] e^(-+2 pi i k j / N)` (`+` when `inverse`, without the 1/N factor).
pub(crate) fn dft_1d(re: &[f64], im: &[f64], inverse: bool) -> (Vec<f64>, Vec<f64>) {
    let n = re.len();
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut out_re = vec![0.0; n];
    let mut out_im = vec![0.0; n];
    for k in 0..n {
        let (mut sr, mut si) = (0.0, 0.0);
        for j in 0..n {
            let (c, s) = unit_root((k * j) % n, n);
            let s = sign * s;
            sr += re[j] * c - im[j] * s;
            si += re[j] * s + im[j] * c;
        }
        out_re[k] = sr;
        out_im[k] = si;
    }
    (out_re, out_im)
}

/// `(cos, sin)` of `2 pi m / n` for `m < n`, exact at multiples of a quarter turn.
fn unit_root(m: usize, n: usize) -> (f64, f64) {
    if m == 0 {
        (1.0, 0.0)
    } else if 2 * m == n {
        (-1.0, 0.0)
    } else if 4 * m == n {
        (0.0, 1.0)
    } else if 4 * m == 3 * n {
        (0.0, -1.0)
    } else {
        let (s, c) = (2.0 * std::f64::consts::PI * m as f64 / n as f64).sin_cos();
        (c, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dft_of_an_impulse_is_flat() {
        let (re, im) = dft_1d(&[1.0, 0.0, 0.0, 0.0], &[0.0; 4], false);
        assert_eq!(re, vec![1.0; 4]);
        assert_eq!(im, vec![0.0; 4]);
    }

    #[test]
    fn float_values_truncate_into_integers() {
        let t = f64_tensor(DType::I32, vec![3], vec![0.9, -1.5, 1e12]).unwrap();
        assert_eq!(t.to_vec::<i32>().unwrap(), vec![0, -1, i32::MAX]);
    }
}
