//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::reduce::{
    LossReduction, NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss, SoftmaxKind,
};

use xnpu_linalg::buf;

use super::softmax::apply;
use super::{check_len, float_tensor};
use crate::args::{floats, opt_tensor, tensor};

/// N, C and D (the product of the dims after C) of an input [N, C, D1, ...], after checking
/// that the target is [N, D1, ...].
fn ncd(x: &Tensor, target: &Tensor) -> Result<(usize, usize, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::compute(format!(
            "the input must have shape [N, C, ...] (rank at least 2), got {s:?}"
        )));
    }
    let want: Vec<usize> = std::iter::once(s[0])
        .chain(s[2..].iter().copied())
        .collect();
    if target.shape() != want.as_slice() {
        return Err(Error::compute(format!(
            "the target must have shape {want:?} for an input of shape {s:?}, got {:?}",
            target.shape()
        )));
    }
    // The target holds N x D values; when it is empty no (n, d) is looked at (and the
    // input's dims may multiply past usize).
    if target.is_empty() {
        return Ok((0, s[1], 0));
    }
    Ok((s[0], s[1], s[2..].iter().product()))
}

/// The loss of log-probabilities `logp` [N, C, D] against `target` [N, D] (see the op docs),
/// as a tensor of `x`'s dtype shaped like the target or a scalar.
#[allow(clippy::too_many_arguments)]
fn nll_loss(
    logp: &[f64],
    target: &Tensor,
    weight: Option<&Tensor>,
    (n, c, d): (usize, usize, usize),
    reduction: LossReduction,
    ignore_index: Option<i64>,
    x: &Tensor,
) -> Result<Tensor> {
    let t = target.to_i64_vec().map_err(|e| e.context("target"))?;
    let w = match weight {
        Some(w) => {
            let w = floats(w, "weight")?;
            check_len(&w, c, "weight")?;
            Some(w)
        }
        None => None,
    };
    let mut loss = buf::zeroed::<f64>(n * d, "the loss")?;
    let mut weight_sum = 0.0;
    for i in 0..n {
        for j in 0..d {
            let k = i * d + j;
            let class = t[k];
            if Some(class) == ignore_index {
                continue;
            }
            let cl = usize::try_from(class)
                .ok()
                .filter(|&cl| cl < c)
                .ok_or_else(|| {
                    Error::compute(format!(
                        "target value {class} is out of range for {c} classes"
                    ))
                })?;
            let wt = w.as_ref().map_or(1.0, |w| w[cl]);
            loss[k] = -logp[(i * c + cl) * d + j] * wt;
            weight_sum += wt;
        }
    }
    match reduction {
        LossReduction::None => float_tensor(x.dtype(), target.shape().to_vec(), &loss),
        LossReduction::Sum => float_tensor(x.dtype(), vec![], &[loss.iter().sum()]),
        LossReduction::Mean => {
            float_tensor(x.dtype(), vec![], &[loss.iter().sum::<f64>() / weight_sum])
        }
    }
}

pub(super) fn nll(op: &NegativeLogLikelihoodLoss, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let target = tensor(inputs, 1)?;
    let dims = ncd(x, target)?;
    let v = floats(x, "input")?;
    nll_loss(
        &v,
        target,
        opt_tensor(inputs, 2)?,
        dims,
        op.reduction,
        op.ignore_index,
        x,
    )
}

pub(super) fn sce(op: &SoftmaxCrossEntropyLoss, inputs: &[Option<&Value>]) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let target = tensor(inputs, 1)?;
    let (n, c, d) = ncd(x, target)?;
    let v = floats(x, "scores")?;
    // LogSoftmax over the classes of each (n, d).
    let mut logp = buf::zeroed::<f64>(v.len(), "the log-probabilities")?;
    for i in 0..n {
        for j in 0..d {
            let at = |k: usize| (i * c + k) * d + j;
            let slice: Vec<f64> = (0..c).map(|k| v[at(k)]).collect();
            for (k, y) in apply(SoftmaxKind::LogSoftmax, &slice)
                .into_iter()
                .enumerate()
            {
                logp[at(k)] = y;
            }
        }
    }
    let loss = nll_loss(
        &logp,
        target,
        opt_tensor(inputs, 2)?,
        (n, c, d),
        op.reduction,
        op.ignore_index,
        x,
    )?;
    Ok(vec![
        loss,
        float_tensor(x.dtype(), x.shape().to_vec(), &logp)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_nll(reduction: LossReduction, ignore: Option<i64>, target: Vec<i64>) -> Result<Tensor> {
        let x = Tensor::from_vec(vec![2, 2], vec![-1f32, -2., -3., -4.]).unwrap();
        let t = Tensor::from_vec(vec![2], target).unwrap();
        let op = NegativeLogLikelihoodLoss {
            reduction,
            ignore_index: ignore,
        };
        nll(&op, &[Some(&Value::Tensor(x)), Some(&Value::Tensor(t))])
    }

    #[test]
    fn mean_skips_ignored_targets() {
        let y = run_nll(LossReduction::Mean, Some(0), vec![1, 0]).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0]);
        let y = run_nll(LossReduction::None, None, vec![1, 0]).unwrap();
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 3.0]);
    }

    #[test]
    fn target_out_of_range_is_an_error() {
        assert!(run_nll(LossReduction::Sum, None, vec![2, 0]).is_err());
    }
}
