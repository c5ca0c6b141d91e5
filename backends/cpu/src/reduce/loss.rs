//! NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::reduce::{Loss, LossKind, LossReduction};

use super::from_f64;
use crate::args::{opt_tensor, tensor};

pub fn loss(op: &Loss, inputs: &[Option<&Value>]) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let target = tensor(inputs, 1)?;
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::compute(format!(
            "the input must be [N, C, ...], got {s:?}"
        )));
    }
    let (n, c, inner) = (s[0], s[1], s[2..].iter().product::<usize>());
    let mut expect = vec![n];
    expect.extend_from_slice(&s[2..]);
    if target.shape() != expect.as_slice() {
        return Err(Error::compute(format!(
            "target has shape {:?}, the input {s:?} needs {expect:?}",
            target.shape()
        )));
    }
    let mut logp = x.to_f64_vec()?;
    if op.kind == LossKind::SoftmaxCrossEntropy {
        for b in 0..n {
            for k in 0..inner {
                let at = |j: usize| (b * c + j) * inner + k;
                let m = (0..c)
                    .map(|j| logp[at(j)])
                    .fold(f64::NEG_INFINITY, f64::max);
                let lse = m + (0..c).map(|j| (logp[at(j)] - m).exp()).sum::<f64>().ln();
                for j in 0..c {
                    logp[at(j)] -= lse;
                }
            }
        }
    }
    let labels = target.to_i64_vec()?;
    let weights = match opt_tensor(inputs, 2)? {
        Some(w) => {
            let w = w.to_f64_vec()?;
            if w.len() != c {
                return Err(Error::compute(format!(
                    "weight has {} elements for {c} classes",
                    w.len()
                )));
            }
            Some(w)
        }
        None => None,
    };
    let mut losses = vec![0.0; n * inner];
    let mut wsum = 0.0;
    for b in 0..n {
        for k in 0..inner {
            let t = labels[b * inner + k];
            if Some(t) == op.ignore_index {
                continue;
            }
            if t < 0 || t as usize >= c {
                return Err(Error::compute(format!(
                    "target {t} is outside the {c} classes"
                )));
            }
            let w = weights.as_ref().map_or(1.0, |w| w[t as usize]);
            losses[b * inner + k] = -logp[(b * c + t as usize) * inner + k] * w;
            wsum += w;
        }
    }
    let loss = match op.reduction {
        LossReduction::None => from_f64(x.dtype(), expect, &losses)?,
        LossReduction::Sum => from_f64(x.dtype(), vec![], &[losses.iter().sum()])?,
        LossReduction::Mean => {
            let total: f64 = losses.iter().sum();
            let v = if wsum == 0.0 { 0.0 } else { total / wsum };
            from_f64(x.dtype(), vec![], &[v])?
        }
    };
    let mut out = vec![loss];
    if op.kind == LossKind::SoftmaxCrossEntropy {
        out.push(from_f64(x.dtype(), s.to_vec(), &logp)?);
    }
    Ok(out)
}
