//! Reference kernels of the `ml` family.

mod label_encoder;
mod optimizers;
mod tree_ensemble;

use num_traits::{One, ToPrimitive, Zero};
use xnpu_core::shape::checked_numel;
use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::ml::*;

use crate::args::tensor;

kernel!(LabelEncoder, |o, inputs, _| Ok(vec![label_encoder::run(
    o,
    tensor(inputs, 0)?
)?
.into()]));
kernel!(TreeEnsemble, |o, inputs, _| Ok(vec![tree_ensemble::run(
    o,
    tensor(inputs, 0)?
)?
.into()]));
kernel!(ArrayFeatureExtractor, |_, inputs, _| Ok(vec![
    array_feature_extractor(tensor(inputs, 0)?, tensor(inputs, 1)?,)?.into()
]));
kernel!(Binarizer, |o, inputs, _| Ok(vec![binarizer(
    o.threshold,
    tensor(inputs, 0)?
)?
.into()]));
kernel!(Adagrad, |o, inputs, _| optimizers::adagrad(o, inputs));
kernel!(Adam, |o, inputs, _| optimizers::adam(o, inputs));
kernel!(Momentum, |o, inputs, _| optimizers::momentum(o, inputs));

fn array_feature_extractor(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let Some((&last, lead)) = x.shape().split_last() else {
        return Err(Error::compute(
            "the input X must have at least one dimension",
        ));
    };
    if y.dtype() != DType::I64 {
        return Err(Error::compute(format!(
            "the indices Y must be int64, got {}",
            y.dtype()
        )));
    }
    let indices = y.to_i64_vec()?;
    let picks = indices.iter().map(|&i| {
        usize::try_from(i)
            .ok()
            .filter(|&u| u < last)
            .ok_or_else(|| {
                Error::compute(format!(
                    "index {i} is out of range for the last axis of X, of size {last}"
                ))
            })
    });
    let picks = buf::try_collected(indices.len(), picks, "ArrayFeatureExtractor's indices")?;
    let rows = checked_numel(lead)?;
    let shape = if lead.is_empty() {
        vec![1, picks.len()]
    } else {
        let mut s = lead.to_vec();
        s.push(picks.len());
        s
    };
    // Rows times picks: far more than X holds (and an empty X has any number of rows).
    let n = checked_numel(&shape)?;
    fn pick<T: Clone>(
        data: &[T],
        n: usize,
        rows: usize,
        last: usize,
        picks: &[usize],
    ) -> Result<Vec<T>> {
        let mut out = buf::reserved(n, "ArrayFeatureExtractor's output")?;
        if n > 0 {
            for r in 0..rows {
                out.extend(picks.iter().map(|&p| data[r * last + p].clone()));
            }
        }
        Ok(out)
    }
    if x.dtype() == DType::String {
        return Tensor::from_strings(shape, pick(x.strings()?, n, rows, last, &picks)?);
    }
    xnpu_core::with_pod_type!(x.dtype(), T => {
        Tensor::from_vec(shape, pick(&x.as_slice::<T>()?, n, rows, last, &picks)?)
    }, _ => Err(Error::unsupported(format!("ArrayFeatureExtractor of {} tensors", x.dtype()))))
}

fn binarizer(threshold: f32, x: &Tensor) -> Result<Tensor> {
    let threshold = f64::from(threshold);
    if !matches!(x.dtype(), DType::F32 | DType::F64 | DType::I32 | DType::I64) {
        return Err(Error::compute(format!(
            "Binarizer takes float, double, int32 or int64 tensors, got {}",
            x.dtype()
        )));
    }
    xnpu_core::with_numeric_type!(x.dtype(), T => {
        let out = buf::collected(
            x.as_slice::<T>()?
                .iter()
                .map(|v| if v.to_f64().is_some_and(|v| v > threshold) { T::one() } else { T::zero() }),
            "Binarizer's output",
        )?;
        Tensor::from_vec(x.shape().to_vec(), out)
    }, _ => Err(Error::compute(format!("Binarizer of {} tensors", x.dtype()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_extractor_picks_along_the_last_axis() {
        let x = Tensor::from_vec(vec![2, 3], vec![0i64, 1, 2, 3, 4, 5]).unwrap();
        let y = Tensor::from_vec(vec![2], vec![2i64, 0]).unwrap();
        let z = array_feature_extractor(&x, &y).unwrap();
        assert_eq!(z.shape(), &[2, 2]);
        assert_eq!(z.to_i64_vec().unwrap(), vec![2, 0, 5, 3]);
        let v = Tensor::from_vec(vec![3], vec![7i64, 8, 9]).unwrap();
        assert_eq!(array_feature_extractor(&v, &y).unwrap().shape(), &[1, 2]);
        let bad = Tensor::from_vec(vec![1], vec![3i64]).unwrap();
        assert!(array_feature_extractor(&x, &bad).is_err());
    }

    #[test]
    fn binarizer_maps_above_threshold_to_one() {
        let x = Tensor::from_vec(vec![4], vec![0.5f32, 1.0, 1.5, f32::NAN]).unwrap();
        let y = binarizer(1.0, &x).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 0.0]);
    }

    /// Hostile sizes (issue 21): an empty X may have any number of rows; no loop walks them.
    #[test]
    fn feature_extractor_of_2_62_empty_rows_answers_at_once() {
        let x = Tensor::from_vec(vec![1 << 62, 0], Vec::<f32>::new()).unwrap();
        let y = Tensor::from_vec(vec![0], Vec::<i64>::new()).unwrap();
        let z = array_feature_extractor(&x, &y).unwrap();
        assert_eq!(z.shape(), &[1 << 62, 0]);
    }
}
