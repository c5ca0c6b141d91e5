//! Bernoulli: one `binomial(1, p)` draw per element from NumPy's legacy `RandomState`
//! ([`crate::rng`]), seeded by the op's `seed` (the same draws every run, equal to ONNX's
//! reference implementation's) or by the operating system (new draws every run).

use xnpu_core::{Error, Result, Tensor};
use xnpu_ops::elementwise::Bernoulli;

use super::cast::cast;
use crate::rng::RandomState;

/// Samples `x`'s probabilities into a tensor of `op.dtype` (or `x`'s dtype).
pub fn run(op: &Bernoulli, x: &Tensor) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(Error::compute(format!(
            "Bernoulli takes float probabilities, got {}",
            x.dtype()
        )));
    }
    let p = x.to_f64_vec()?;
    if let Some((i, bad)) = p
        .iter()
        .enumerate()
        .find(|(_, p)| !(0.0..=1.0).contains(*p))
    {
        return Err(Error::compute(format!(
            "Bernoulli: probability {bad} at element {i} is outside [0, 1]"
        )));
    }
    let mut rng = RandomState::from_float_seed(op.seed, "Bernoulli")?;
    let draws = xnpu_linalg::buf::collected(
        p.iter().map(|&p| u8::from(rng.bernoulli(p))),
        "Bernoulli's draws",
    )?;
    let ones = Tensor::from_vec(x.shape().to_vec(), draws)?;
    cast(&ones, op.dtype.unwrap_or(x.dtype()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::DType;

    fn probs(p: f32, n: usize) -> Tensor {
        Tensor::from_vec(vec![n], vec![p; n]).unwrap()
    }

    fn seeded(seed: f32) -> Bernoulli {
        Bernoulli {
            dtype: None,
            seed: Some(seed),
        }
    }

    #[test]
    fn certain_probabilities_give_certain_outcomes() {
        let op = Bernoulli::default();
        assert!(run(&op, &probs(0.0, 1000))
            .unwrap()
            .to_f64_vec()
            .unwrap()
            .iter()
            .all(|&v| v == 0.0));
        assert!(run(&op, &probs(1.0, 1000))
            .unwrap()
            .to_f64_vec()
            .unwrap()
            .iter()
            .all(|&v| v == 1.0));
    }

    #[test]
    fn draws_follow_the_probability() {
        // 200,000 draws at p = 0.3: the mean's standard deviation is about 0.001.
        let y = run(&seeded(7.0), &probs(0.3, 200_000)).unwrap();
        let v = y.to_f64_vec().unwrap();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.3).abs() < 0.006, "mean {mean}");
        assert!(v.iter().all(|&x| x == 0.0 || x == 1.0));
    }

    #[test]
    fn seeded_draws_equal_the_onnx_reference() {
        // onnx.reference.ReferenceEvaluator, Bernoulli(seed=5) on these f32 probabilities.
        let p = [
            0.1f32, 0.5, 0.9, 0.3, 0.7, 0.2, 0.8, 0.5, 0.0, 1.0, 0.0, 0.4,
        ];
        let x = Tensor::from_vec(vec![12], p.to_vec()).unwrap();
        let y = run(&seeded(5.0), &x).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y, [0., 1., 1., 1., 1., 0., 1., 1., 0., 1., 0., 1.]);
    }

    #[test]
    fn bernoulli_with_a_seed_draws_the_same_values() {
        let x = probs(0.5, 256);
        let a = run(&seeded(3.0), &x).unwrap();
        assert_eq!(a, run(&seeded(3.0), &x).unwrap());
        assert_ne!(a, run(&seeded(4.0), &x).unwrap());
    }

    #[test]
    fn bernoulli_without_a_seed_draws_anew_each_run() {
        // Two equal runs of 1024 fair draws: probability 2^-1024.
        let x = probs(0.5, 1024);
        let op = Bernoulli::default();
        assert_ne!(run(&op, &x).unwrap(), run(&op, &x).unwrap());
    }

    #[test]
    fn the_output_dtype_is_the_attribute_or_the_inputs() {
        let x = Tensor::from_vec(vec![2], vec![1.0f64, 0.0]).unwrap();
        assert_eq!(run(&seeded(1.0), &x).unwrap().dtype(), DType::F64);
        for d in [DType::I64, DType::Bool, DType::F16, DType::U8] {
            let op = Bernoulli {
                dtype: Some(d),
                seed: Some(1.0),
            };
            let y = run(&op, &x).unwrap();
            assert_eq!(y.dtype(), d);
            assert_eq!(y.to_f64_vec().unwrap(), vec![1.0, 0.0]);
        }
    }

    #[test]
    fn a_probability_outside_zero_to_one_is_an_error() {
        let x = Tensor::from_vec(vec![3], vec![0.5f32, 1.5, 0.2]).unwrap();
        let e = run(&Bernoulli::default(), &x).unwrap_err().to_string();
        assert_eq!(
            e,
            "Bernoulli: probability 1.5 at element 1 is outside [0, 1]"
        );
        let x = Tensor::from_vec(vec![1], vec![f32::NAN]).unwrap();
        assert!(run(&Bernoulli::default(), &x).is_err());
        let x = Tensor::from_vec(vec![1], vec![1i64]).unwrap();
        assert!(run(&Bernoulli::default(), &x).is_err());
    }
}
