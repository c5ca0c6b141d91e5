//! SkipLayerNormalization and SkipSimplifiedLayerNormalization (see the op's doc), in f64.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::reduce::SkipNormalization;

use super::float_tensor;
use crate::args::{floats, opt_tensor, tensor};

/// A `[H]` parameter's values, checked against the hidden size.
fn param(t: Option<&Tensor>, h: usize, what: &str) -> Result<Option<Vec<f64>>> {
    let Some(t) = t else { return Ok(None) };
    let v = floats(t, what)?;
    if v.len() != h {
        return Err(Error::compute(format!(
            "{what} must hold the hidden size {h} values, got shape {:?}",
            t.shape()
        )));
    }
    Ok(Some(v))
}

pub(super) fn run(
    op: &SkipNormalization,
    inputs: &[Option<&Value>],
    n_outputs: usize,
) -> Result<Vec<Tensor>> {
    let name = op.op_name();
    let x = tensor(inputs, 0)?;
    let skip = tensor(inputs, 1)?;
    let shape = x.shape().to_vec();
    let Some(&h) = shape.last() else {
        return Err(Error::compute(format!("{name} input must have rank >= 1")));
    };
    let xv = floats(x, "input")?;
    let sv = floats(skip, "skip")?;
    // skip is input's shape, or its trailing dims ([S, H] or [1, S, H]) repeated.
    let core: &[usize] = {
        let s = skip.shape();
        let lead = s
            .iter()
            .take_while(|&&d| d == 1)
            .count()
            .min(s.len().saturating_sub(1));
        &s[lead..]
    };
    let trailing = xnpu_core::shape::checked_numel(core)?;
    let skip_ok = core.len() <= shape.len() && shape.ends_with(core) && trailing > 0;
    if !skip_ok {
        return Err(Error::compute(format!(
            "{name} skip of shape {:?} does not match input of shape {shape:?}",
            skip.shape()
        )));
    }
    let gamma = param(Some(tensor(inputs, 2)?), h, "gamma")?.unwrap_or_default();
    let beta = param(opt_tensor(inputs, 3)?, h, "beta")?;
    let bias = param(opt_tensor(inputs, 4)?, h, "bias")?;
    if op.simplified && beta.is_some() {
        return Err(Error::compute(format!("{name} has no beta input")));
    }
    let rows = xv.len().checked_div(h).unwrap_or(0);
    let eps = op.epsilon as f64;
    let mut sum = buf::zeroed::<f64>(xv.len(), "the input plus skip")?;
    let mut y = buf::zeroed::<f64>(xv.len(), "the normalised output")?;
    let (mut means, mut inv_stds) = (
        buf::reserved(rows, "the means")?,
        buf::reserved(rows, "the inverse deviations")?,
    );
    for r in 0..rows {
        let s = &mut sum[r * h..(r + 1) * h];
        for (c, v) in s.iter_mut().enumerate() {
            let i = r * h + c;
            *v = xv[i] + sv[i % trailing] + bias.as_ref().map_or(0.0, |b| b[c]);
        }
        let mean = if op.simplified {
            0.0
        } else {
            s.iter().sum::<f64>() / h as f64
        };
        let var = s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for c in 0..h {
            let norm = (s[c] - mean) * inv * gamma[c];
            y[r * h + c] = norm + beta.as_ref().map_or(0.0, |b| b[c]);
        }
        means.push(mean);
        inv_stds.push(inv);
    }
    let mut stat_shape = shape.clone();
    if let Some(l) = stat_shape.last_mut() {
        *l = 1;
    }
    let mut out = vec![float_tensor(x.dtype(), shape.clone(), &y)?];
    if n_outputs > 1 {
        out.push(float_tensor(DType::F32, stat_shape.clone(), &means)?);
    }
    if n_outputs > 2 {
        out.push(float_tensor(DType::F32, stat_shape, &inv_stds)?);
    }
    if n_outputs > 3 {
        out.push(float_tensor(x.dtype(), shape, &sum)?);
    }
    Ok(out)
}
