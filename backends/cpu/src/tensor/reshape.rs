//! Kernels that make a tensor from attributes or dims, or change dims without moving data.

use crate::rng::RandomState;
use xnpu_core::num::Num;
use xnpu_core::shape::{checked_nbytes, checked_numel};
use xnpu_core::{Bytes, DType, Error, Result, Tensor, Value};
use xnpu_ops::tensor::{ConstantOfShape, Dropout, Flatten, Reshape, ShapeOf, Squeeze, Unsqueeze};

use super::elems::{dims_of, scalar_f64, try_vec};
use crate::args::{opt_tensor, tensor};

pub(crate) fn constant_of_shape(op: &ConstantOfShape, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let dims = dims_of(&tensor(inputs, 0)?.to_i64_vec()?, "ConstantOfShape")?;
    let v = &op.value;
    if v.len() != 1 {
        return Err(Error::compute(format!(
            "ConstantOfShape: value must hold one element, got dims {:?}",
            v.shape()
        )));
    }
    let n = checked_numel(&dims)?;
    if v.dtype() == DType::String {
        let mut s = try_vec(n, DType::String)?;
        s.resize(n, v.strings()?[0].clone());
        return Tensor::from_strings(dims, s);
    }
    let mut bytes = try_vec(checked_nbytes(v.dtype(), &dims)?, v.dtype())?;
    for _ in 0..n {
        bytes.extend_from_slice(v.raw_bytes());
    }
    Tensor::from_bytes(v.dtype(), dims, Bytes::from(bytes))
}

pub(crate) fn shape(op: &ShapeOf, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let d = tensor(inputs, 0)?.shape();
    let v: Vec<i64> = d[op.range(d.len())].iter().map(|&x| x as i64).collect();
    Tensor::from_vec(vec![v.len()], v)
}

pub(crate) fn size(inputs: &[Option<&Value>]) -> Result<Tensor> {
    Ok(Tensor::scalar(tensor(inputs, 0)?.len() as i64))
}

pub(crate) fn reshape(op: &Reshape, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let spec = match &op.shape {
        Some(s) => s.clone(),
        None => tensor(inputs, 1)?.to_i64_vec()?,
    };
    x.reshape(op.output_dims(x.shape(), &spec)?)
}

pub(crate) fn flatten(op: &Flatten, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let a = op.split_at(x.rank())?;
    let outer = checked_numel(&x.shape()[..a])?;
    let inner = checked_numel(&x.shape()[a..])?;
    x.reshape(vec![outer, inner])
}

pub(crate) fn squeeze(op: &Squeeze, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let axes = match &op.axes {
        Some(a) => Some(a.clone()),
        None => opt_tensor(inputs, 1)?.map(|t| t.to_i64_vec()).transpose()?,
    };
    x.reshape(Squeeze::output_dims(x.shape(), axes.as_deref())?)
}

pub(crate) fn unsqueeze(op: &Unsqueeze, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let axes = match &op.axes {
        Some(a) => a.clone(),
        None => tensor(inputs, 1)?.to_i64_vec()?,
    };
    let new = Unsqueeze::new_axes(x.rank(), &axes)?;
    x.reshape(Unsqueeze::insert(x.shape(), &new, 1))
}

pub(crate) fn dropout(
    op: &Dropout,
    inputs: &[Option<&Value>],
    n_outputs: usize,
) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let ratio = match (op.ratio, opt_tensor(inputs, 1)?) {
        (Some(r), _) => f64::from(r),
        (None, Some(t)) => scalar_f64(t, "Dropout: ratio")?,
        (None, None) => 0.5,
    };
    let training = match opt_tensor(inputs, 2)? {
        Some(t) => t
            .to_vec::<bool>()?
            .first()
            .copied()
            .ok_or_else(|| Error::compute("Dropout: training_mode is empty"))?,
        None => false,
    };
    let n_mask = usize::from(n_outputs > 1);
    if !training || ratio == 0.0 {
        let mut out = vec![Value::Tensor(x.clone())];
        if n_mask == 1 {
            let n = checked_numel(x.shape())?;
            let mut mask = try_vec(n, DType::Bool)?;
            mask.resize(n, true);
            out.push(Value::Tensor(Tensor::from_vec(x.shape().to_vec(), mask)?));
        }
        return Ok(out);
    }
    if !(0.0..1.0).contains(&ratio) {
        return Err(Error::compute(format!(
            "Dropout: ratio {ratio} is outside [0, 1)"
        )));
    }
    // The scale in the ratio's dtype (`1 / (1 - r)`, as the reference computes it).
    let ratio_dtype = opt_tensor(inputs, 1)?.map_or(DType::F32, Tensor::dtype);
    let scale = xnpu_core::with_float_type!(ratio_dtype, T => {
        T::ONE.divide(T::ONE.minus(T::from_f64(ratio)))?.to_f64()
    }, _ => 1.0 / (1.0 - ratio));
    let mut rng = match op.seed {
        Some(seed) => RandomState::seeded(seed),
        None => RandomState::from_os("Dropout")?,
    };
    let n = checked_numel(x.shape())?;
    let keep =
        xnpu_linalg::buf::collected((0..n).map(|_| rng.double() >= ratio), "Dropout's mask")?;
    let y = xnpu_core::with_float_type!(x.dtype(), T => {
        let s = T::from_f64(scale);
        let v = x.to_vec::<T>()?;
        let y = xnpu_linalg::buf::collected(
            // `x * mask * scale` in the reference's order: a dropped NaN or infinity stays
            // NaN and a dropped negative is -0, as there.
            v.iter()
                .zip(&keep)
                .map(|(&v, &k)| v.times(if k { T::ONE } else { T::ZERO }).times(s)),
            "Dropout's output",
        )?;
        Tensor::from_vec(x.shape().to_vec(), y)?
    }, _ => return Err(Error::compute(format!(
        "Dropout in training mode takes a float tensor, got {}", x.dtype()
    ))));
    let mut out = vec![Value::Tensor(y)];
    if n_mask == 1 {
        out.push(Value::Tensor(Tensor::from_vec(x.shape().to_vec(), keep)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::elems::run_test;
    use super::*;

    #[test]
    fn constant_of_shape_refuses_overflow_and_negative_dims() {
        let op = ConstantOfShape {
            value: Tensor::from_vec(vec![1], vec![7u16]).unwrap(),
        };
        let dims = |v: Vec<i64>| Some(Tensor::from_vec(vec![v.len()], v).unwrap());
        let y = run_test(|i| constant_of_shape(&op, i), vec![dims(vec![2, 1])]).unwrap();
        assert_eq!(y.to_vec::<u16>().unwrap(), vec![7, 7]);
        assert!(run_test(|i| constant_of_shape(&op, i), vec![dims(vec![i64::MAX, 4])]).is_err());
        assert!(run_test(|i| constant_of_shape(&op, i), vec![dims(vec![-1])]).is_err());
    }

    #[test]
    fn training_dropout_draws_as_numpys_random_state() {
        let op = Dropout {
            ratio: None,
            seed: Some(0),
        };
        let x = Some(Tensor::from_vec(vec![8], (1..=8).map(|v| v as f32).collect()).unwrap());
        let r = Some(Tensor::scalar(0.5f32));
        let on = Some(Tensor::scalar(true));
        let out = run_test(|i| dropout(&op, i, 2), vec![x.clone(), r, on.clone()]).unwrap();
        // RandomState(0).uniform(0, 1, 8) >= 0.5: the reference implementation's mask.
        let keep = [true, true, true, true, false, true, false, true];
        let y: Vec<f32> = (1..=8)
            .zip(keep)
            .map(|(v, k)| if k { 2.0 * v as f32 } else { 0.0 })
            .collect();
        assert_eq!(out[0].as_tensor().unwrap().to_vec::<f32>().unwrap(), y);
        assert_eq!(out[1].as_tensor().unwrap().to_vec::<bool>().unwrap(), keep);
        // Dropped elements are x * 0 * scale, as the reference computes them: a dropped
        // infinity is NaN, a dropped negative -0 (elements 4 and 6 are dropped, see above).
        let odd = [-1.0f32, -1.0, -1.0, -1.0, -2.0, 5.0, f32::INFINITY, 3.0];
        let odd = Some(Tensor::from_vec(vec![8], odd.to_vec()).unwrap());
        let r = Some(Tensor::scalar(0.5f32));
        let out = run_test(|i| dropout(&op, i, 1), vec![odd, r, on.clone()]).unwrap();
        let y = out[0].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y[4].to_bits(), (-0.0f32).to_bits(), "{y:?}");
        assert!(y[6].is_nan(), "{y:?}");
        assert_eq!((y[5], y[7]), (10.0, 6.0));
        // Ratio 0 keeps everything; a ratio of 1 or more is refused.
        let zero = Some(Tensor::scalar(0.0f32));
        let out = run_test(|i| dropout(&op, i, 2), vec![x.clone(), zero, on.clone()]).unwrap();
        assert!(out[1]
            .as_tensor()
            .unwrap()
            .to_vec::<bool>()
            .unwrap()
            .iter()
            .all(|&k| k));
        let one = Some(Tensor::scalar(1.0f32));
        let err = run_test(|i| dropout(&op, i, 1), vec![x, one, on]).unwrap_err();
        assert!(
            err.to_string().contains("ratio 1 is outside [0, 1)"),
            "{err}"
        );
    }
}
