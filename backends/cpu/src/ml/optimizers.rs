//! Adagrad, Adam and Momentum: element-wise update rules computed in f64.

use num_traits::{Float, ToPrimitive};
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::ml::{Adagrad, Adam, Momentum};

use crate::args::tensor;

/// The inputs of an optimizer: the learning rate, the update count, and `groups` groups of
/// `n` tensors (`groups[g][i]` is input `2 + g*n + i`), as f64 values.
struct Args<'a> {
    r: f64,
    t: i64,
    /// Per group, per tensor: the tensor and its values.
    groups: Vec<Vec<(&'a Tensor, Vec<f64>)>>,
}

fn scalar(t: &Tensor, what: &str) -> Result<()> {
    if t.len() != 1 {
        return Err(Error::compute(format!(
            "{what} must be a scalar, got shape {:?}",
            t.shape()
        )));
    }
    Ok(())
}

fn args<'a>(inputs: &[Option<&'a Value>], n_groups: usize) -> Result<Args<'a>> {
    let r = tensor(inputs, 0)?;
    let t = tensor(inputs, 1)?;
    scalar(r, "the learning rate R")?;
    scalar(t, "the update count T")?;
    if !r.dtype().is_float() {
        return Err(Error::compute(format!(
            "the learning rate R must be float or double, got {}",
            r.dtype()
        )));
    }
    if t.dtype() != DType::I64 {
        return Err(Error::compute(format!(
            "the update count T must be int64, got {}",
            t.dtype()
        )));
    }
    let rest = inputs.len().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(n_groups) {
        return Err(Error::compute(format!(
            "expected R, T and {n_groups} groups of tensors of one length, got {} inputs",
            inputs.len()
        )));
    }
    let n = rest / n_groups;
    let mut groups = Vec::with_capacity(n_groups);
    for g in 0..n_groups {
        let mut group = Vec::with_capacity(n);
        for i in 0..n {
            let k = 2 + g * n + i;
            let x = tensor(inputs, k)?;
            if !x.dtype().is_float() {
                return Err(Error::compute(format!(
                    "input {k} must be float or double, got {}",
                    x.dtype()
                )));
            }
            let first = tensor(inputs, 2 + i)?;
            if x.shape() != first.shape() {
                return Err(Error::compute(format!(
                    "input {k} has shape {:?}, the tensor it updates (input {}) has {:?}",
                    x.shape(),
                    2 + i,
                    first.shape()
                )));
            }
            group.push((x, x.to_f64_vec()?));
        }
        groups.push(group);
    }
    Ok(Args {
        r: r.to_f64_vec()?[0],
        t: t.to_i64_vec()?[0],
        groups,
    })
}

/// `values` as a tensor shaped and typed like `like`.
fn like(like: &Tensor, values: Vec<f64>) -> Result<Value> {
    xnpu_core::with_float_type!(like.dtype(), T => {
        let v = buf::collected(
            values
                .into_iter()
                .map(|x| <T as num_traits::NumCast>::from(x).unwrap_or(T::nan())),
            "an optimizer's output",
        )?;
        Ok(Tensor::from_vec(like.shape().to_vec(), v)?.into())
    }, _ => Err(Error::compute(format!("expected a float tensor, got {}", like.dtype()))))
}

/// Runs `update` on each element of each tensor to optimize; it gets the elements of the
/// groups at one position and returns the new values of the output groups.
fn apply<const G: usize, const O: usize>(
    a: &Args<'_>,
    outputs_like: [usize; O],
    update: impl Fn([f64; G]) -> [f64; O],
) -> Result<Vec<Value>> {
    let n = a.groups[0].len();
    let mut outs: Vec<Vec<Value>> = vec![Vec::with_capacity(n); O];
    for i in 0..n {
        let len = a.groups[0][i].1.len();
        let mut new = (0..O)
            .map(|_| buf::reserved(len, "an optimizer's output"))
            .collect::<Result<Vec<_>>>()?;
        for e in 0..len {
            let vals: [f64; G] = std::array::from_fn(|g| a.groups[g][i].1[e]);
            for (o, v) in update(vals).into_iter().enumerate() {
                new[o].push(v);
            }
        }
        for (o, values) in new.into_iter().enumerate() {
            outs[o].push(like(a.groups[outputs_like[o]][i].0, values)?);
        }
    }
    Ok(outs.into_iter().flatten().collect())
}

pub(super) fn adagrad(op: &Adagrad, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = args(inputs, 3)?;
    let (decay, eps, norm) = (
        f64::from(op.decay_factor),
        f64::from(op.epsilon),
        f64::from(op.norm_coefficient),
    );
    let r = a.r / (1.0 + a.t as f64 * decay);
    apply(&a, [0, 2], |[x, g, h]: [f64; 3]| {
        let g = norm * x + g;
        let h = h + g * g;
        [x - r * g / (h.sqrt() + eps), h]
    })
}

pub(super) fn adam(op: &Adam, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = args(inputs, 4)?;
    let (alpha, beta, eps) = (
        f64::from(op.alpha),
        f64::from(op.beta),
        f64::from(op.epsilon),
    );
    let (norm, post) = (
        f64::from(op.norm_coefficient),
        f64::from(op.norm_coefficient_post),
    );
    let r = if a.t > 0 {
        let t = a.t.to_i32().map_or(f64::INFINITY, f64::from);
        a.r * (1.0 - beta.powf(t)).sqrt() / (1.0 - alpha.powf(t))
    } else {
        a.r
    };
    apply(&a, [0, 2, 3], |[x, g, v, h]: [f64; 4]| {
        let g = norm * x + g;
        let v = alpha * v + (1.0 - alpha) * g;
        let h = beta * h + (1.0 - beta) * g * g;
        let x = x - r * v / (h.sqrt() + eps);
        [(1.0 - post) * x, v, h]
    })
}

pub(super) fn momentum(op: &Momentum, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = args(inputs, 3)?;
    let (alpha, norm) = (f64::from(op.alpha), f64::from(op.norm_coefficient));
    let beta = if a.t > 0 { f64::from(op.beta) } else { 1.0 };
    let r = a.r;
    let nesterov = op.nesterov;
    apply(&a, [0, 2], |[x, g, v]: [f64; 3]| {
        let g = norm * x + g;
        let v = alpha * v + beta * g;
        let x = if nesterov {
            x - r * (g + alpha * v)
        } else {
            x - r * v
        };
        [x, v]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>) -> Value {
        Tensor::from_vec(vec![v.len()], v).unwrap().into()
    }

    #[test]
    fn momentum_first_step_uses_the_whole_gradient() {
        let r: Value = Tensor::scalar(0.5f32).into();
        let step: Value = Tensor::scalar(0i64).into();
        let (x, g, v) = (t(vec![1.0]), t(vec![2.0]), t(vec![4.0]));
        let op = Momentum {
            alpha: 0.5,
            beta: 0.1,
            norm_coefficient: 0.0,
            nesterov: false,
        };
        let out = momentum(&op, &[Some(&r), Some(&step), Some(&x), Some(&g), Some(&v)]).unwrap();
        // v = 0.5 * 4 + 1 * 2 = 4; x = 1 - 0.5 * 4 = -1
        let vals: Vec<f32> = out
            .iter()
            .map(|o| o.as_tensor().unwrap().to_vec::<f32>().unwrap()[0])
            .collect();
        assert_eq!(vals, vec![-1.0, 4.0]);
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let r: Value = Tensor::scalar(0.5f32).into();
        let step: Value = Tensor::scalar(0i64).into();
        let (x, g, h) = (t(vec![1.0]), t(vec![2.0, 3.0]), t(vec![4.0]));
        let op = Adagrad {
            decay_factor: 0.0,
            epsilon: 1e-6,
            norm_coefficient: 0.0,
        };
        let err = adagrad(&op, &[Some(&r), Some(&step), Some(&x), Some(&g), Some(&h)]).unwrap_err();
        assert!(err.to_string().contains("shape"), "{err}");
    }
}
