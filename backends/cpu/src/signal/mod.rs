//! Reference kernels of the `signal` family.

mod dft;
mod fft;
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
        Tensor::from_vec(shape, xnpu_linalg::buf::collected(values.into_iter().map(cast::<T>), "an output")?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_values_truncate_into_integers() {
        let t = f64_tensor(DType::I32, vec![3], vec![0.9, -1.5, 1e12]).unwrap();
        assert_eq!(t.to_vec::<i32>().unwrap(), vec![0, -1, i32::MAX]);
    }

    #[test]
    fn lengths_of_2_62_are_an_error_not_an_abort() {
        use crate::Kernel;
        let run = |op: &dyn Kernel, inputs: Vec<Tensor>| {
            let vals: Vec<Value> = inputs.into_iter().map(Value::Tensor).collect();
            let refs: Vec<Option<&Value>> = vals.iter().map(Some).collect();
            op.run(&refs, 1).unwrap_err().to_string()
        };
        let x = Tensor::from_vec(vec![1, 2, 1], vec![1.0f32, 2.0]).unwrap();
        let len = Tensor::scalar(1i64 << 62);
        let dft = Dft {
            inverse: false,
            onesided: false,
            axis: Some(1),
        };
        let e = run(&dft, vec![x, len.clone()]);
        assert!(e.contains("cannot allocate"), "{e}");
        let hann = Window {
            kind: WindowKind::Hann,
            periodic: true,
            dtype: DType::F64,
        };
        let e = run(&hann, vec![len]);
        assert!(
            e.contains("overflows") || e.contains("cannot allocate"),
            "{e}"
        );
    }
}
