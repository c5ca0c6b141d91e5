//! PRelu and SwiGLU: one input modulated by a second.

use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::{with_float_type, with_numeric_type, Error, Result, Tensor};

use xnpu_linalg::buf;

use super::unary::{not_defined, sigmoid};
use xnpu_core::Num;

fn prelu_as<T: Num>(x: &Tensor, slope: &Tensor) -> Result<Tensor> {
    let (xv, sv) = (x.as_slice::<T>()?, slope.as_slice::<T>()?);
    let idx = BroadcastIndex::new(slope.shape(), x.shape())
        .map_err(|e| e.context("PRelu slope must broadcast to X"))?;
    let v = buf::collected(
        xv.iter()
            .zip(idx)
            .map(|(&x, j)| if x < T::ZERO { sv[j].times(x) } else { x }),
        "PRelu's output",
    )?;
    Tensor::from_vec(x.shape().to_vec(), v)
}

/// `x` where `x >= 0`, else `slope * x`; `slope` broadcasts to `x`'s shape.
pub fn prelu(x: &Tensor, slope: &Tensor) -> Result<Tensor> {
    let d = x.dtype();
    if slope.dtype() != d {
        return Err(Error::compute(format!(
            "PRelu needs X and slope of the same dtype, got {d} and {}",
            slope.dtype()
        )));
    }
    with_numeric_type!(d, T => prelu_as::<T>(x, slope), _ => Err(not_defined("PRelu", d)))
}

/// `a * sigmoid(alpha * a) * b` for `a` and `b` of the same shape.
pub fn swiglu(a: &Tensor, b: &Tensor, alpha: f32) -> Result<Tensor> {
    let d = a.dtype();
    if b.dtype() != d || a.shape() != b.shape() {
        return Err(Error::compute(format!(
            "SwiGLU needs A and B of the same dtype and shape, got {d}{:?} and {}{:?}",
            a.shape(),
            b.dtype(),
            b.shape()
        )));
    }
    let alpha = alpha as f64;
    with_float_type!(d, T => {
        let (av, bv) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
        let v = buf::collected(av.iter().zip(bv.iter()).map(|(&x, &y)| {
            let x = x.to_f64();
            T::from_f64(x * sigmoid(alpha * x) * y.to_f64())
        }), "SwiGLU's output")?;
        Tensor::from_vec(a.shape().to_vec(), v)
    }, _ => Err(not_defined("SwiGLU", d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelu_slope_broadcasts_one_way() {
        let x = Tensor::from_vec(vec![2, 2], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
        let s = Tensor::from_vec(vec![2], vec![0.5f32, 0.1]).unwrap();
        let r = prelu(&x, &s).unwrap();
        assert_eq!(r.to_vec::<f32>().unwrap(), vec![-0.5, 2.0, -1.5, 4.0]);
        let big = Tensor::from_vec(vec![3, 2, 2], vec![0.5f32; 12]).unwrap();
        assert!(prelu(&x, &big).is_err());
    }

    #[test]
    fn swiglu_needs_equal_shapes() {
        let a = Tensor::from_vec(vec![2], vec![0.0f32, 1.0]).unwrap();
        let b = Tensor::from_vec(vec![1], vec![2.0f32]).unwrap();
        assert!(swiglu(&a, &b, 1.0).is_err());
        let r = swiglu(&a, &a, 1.0).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(r[0], 0.0);
        assert!((r[1] - 0.731_058_6).abs() < 1e-6);
    }
}
