//! RandomUniform(Like) and RandomNormal(Like): draws from NumPy's legacy `RandomState`
//! ([`crate::rng`]), cast to the dtype, then scaled and shifted in the dtype's arithmetic, as
//! ONNX's reference implementation computes them.

use xnpu_core::num::Num;
use xnpu_core::shape::checked_numel;
use xnpu_core::{Error, Result, Tensor};
use xnpu_ops::elementwise::{Distribution, Random};
use xnpu_ops::OpDef;

use crate::rng::RandomState;

/// The op's output; `like` is input 0 of the `Like` forms.
pub fn run(op: &Random, like: Option<&Tensor>) -> Result<Tensor> {
    let name = op.name();
    let (dims, dtype) = match (&op.shape, like) {
        (Some(dims), _) => {
            let dims = dims
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| {
                    Error::compute(format!("{name}: shape {dims:?} has a negative dim"))
                })?;
            (dims, op.dtype.unwrap_or(xnpu_core::DType::F32))
        }
        (None, Some(x)) => (x.shape().to_vec(), op.dtype.unwrap_or(x.dtype())),
        (None, None) => return Err(Error::compute(format!("{name}: input 0 is required"))),
    };
    let n = checked_numel(&dims)?;
    let mut rng = RandomState::from_float_seed(op.seed, name)?;
    // (multiplier, offset) as the reference's Python floats: `res *= high - low; res += low`.
    let (mul, add) = match op.dist {
        Distribution::Uniform { low, high } => (f64::from(high) - f64::from(low), f64::from(low)),
        Distribution::Normal { mean, scale } => (f64::from(scale), f64::from(mean)),
    };
    let normal = matches!(op.dist, Distribution::Normal { .. });
    xnpu_core::with_float_type!(dtype, T => {
        let (m, a) = (T::from_f64(mul), T::from_f64(add));
        let values = xnpu_linalg::buf::collected(
            (0..n).map(|_| {
                let draw = if normal { rng.gauss() } else { rng.double() };
                T::from_f64(draw).times(m).plus(a)
            }),
            "the random draws",
        )?;
        Tensor::from_vec(dims, values)
    }, _ => Err(Error::compute(format!(
        "{name} draws f16, bf16, f32 or f64, not {dtype}"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::DType;

    fn op(dist: Distribution, dtype: Option<DType>, seed: Option<f32>) -> Random {
        Random {
            dist,
            shape: Some(vec![2, 2]),
            dtype,
            seed,
        }
    }

    // onnx.reference.ReferenceEvaluator on RandomUniform(low=-1, high=3, seed=2, shape=[2,2])
    // and RandomNormal(mean=1, scale=2, seed=3, dtype=DOUBLE): numpy's RandomState draws.
    const UNIFORM_F32: [f32; 4] = [0.743_979_6, -0.896_295_1, 1.198_649_9, 0.741_289_6];
    const NORMAL_F64: [f64; 4] = [
        4.577256946860637,
        1.8730197010239789,
        1.1929949361440173,
        -2.7269854067289816,
    ];

    #[test]
    fn seeded_draws_equal_the_onnx_reference() {
        let u = run(
            &op(
                Distribution::Uniform {
                    low: -1.0,
                    high: 3.0,
                },
                None,
                Some(2.0),
            ),
            None,
        )
        .unwrap();
        assert_eq!(u.dtype(), DType::F32);
        assert_eq!(u.to_vec::<f32>().unwrap(), UNIFORM_F32);
        let g = run(
            &op(
                Distribution::Normal {
                    mean: 1.0,
                    scale: 2.0,
                },
                Some(DType::F64),
                Some(3.0),
            ),
            None,
        )
        .unwrap();
        assert_eq!(g.to_vec::<f64>().unwrap(), NORMAL_F64);
    }

    #[test]
    fn like_forms_take_the_input_dims_and_dtype_and_refuse_ints() {
        let x = Tensor::from_vec(vec![3, 1], vec![half::f16::ONE; 3]).unwrap();
        let mut like = op(
            Distribution::Uniform {
                low: 0.0,
                high: 1.0,
            },
            None,
            Some(0.0),
        );
        like.shape = None;
        let y = run(&like, Some(&x)).unwrap();
        assert_eq!((y.shape(), y.dtype()), (&[3usize, 1][..], DType::F16));
        let ints = Tensor::from_vec(vec![2], vec![1i32, 2]).unwrap();
        let e = run(&like, Some(&ints)).unwrap_err().to_string();
        assert!(
            e.contains("RandomUniformLike draws f16, bf16, f32 or f64, not i32"),
            "{e}"
        );
        // Unseeded: two runs differ (4 doubles alike by chance: never).
        let mut free = like.clone();
        free.seed = None;
        let y = Tensor::from_vec(vec![4], vec![0.0f64; 4]).unwrap();
        let a = run(&free, Some(&y)).unwrap().to_vec::<f64>().unwrap();
        let b = run(&free, Some(&y)).unwrap().to_vec::<f64>().unwrap();
        assert_ne!(a, b);
    }
}
