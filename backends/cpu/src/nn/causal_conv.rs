//! CausalConvWithState: a causal depthwise 1-D convolution over `concat(past_state, input)`.

use num_traits::Float;
use xnpu_core::num::{load_floats, round_to, store_floats};
use xnpu_core::Num;
use xnpu_core::{DType, Error, Result, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::CausalConvWithState;

use super::num::with_real;
use crate::args::{opt_tensor, tensor};

/// The inputs of one CausalConvWithState in compute precision.
struct Inputs<'a, R> {
    x: &'a [R],
    /// `[B, C, L]`.
    dims: (usize, usize, usize),
    w: &'a [R],
    k: usize,
    bias: Option<&'a [R]>,
    past: Option<&'a [R]>,
}

fn typed<R: Num + Float>(
    op: &CausalConvWithState,
    dtype: DType,
    t: Inputs<'_, R>,
) -> Result<(Vec<R>, Vec<R>)> {
    let Inputs {
        x,
        dims: (b, c, l),
        w,
        k,
        bias,
        past,
    } = t;
    // The input holds b * c * l values and the weight c * k: these sums fit.
    let padded_len = l + k - 1;
    let mut out = buf::reserved(b * c * l, "CausalConvWithState's output")?;
    let mut state = buf::reserved(
        buf::count(&[b, c, k - 1], "CausalConvWithState's state")?,
        "CausalConvWithState's state",
    )?;
    let mut padded = buf::filled(padded_len, R::zero(), "a padded row")?;
    for bi in 0..b {
        for ci in 0..c {
            let plane = bi * c + ci;
            if let Some(p) = past {
                padded[..k - 1].copy_from_slice(&p[plane * (k - 1)..][..k - 1]);
            } else {
                padded[..k - 1].iter_mut().for_each(|v| *v = R::zero());
            }
            padded[k - 1..].copy_from_slice(&x[plane * l..][..l]);
            let wk = &w[ci * k..][..k];
            for t in 0..l {
                let mut acc = bias.map_or(R::zero(), |bv| bv[ci]);
                for j in 0..k {
                    acc = acc + wk[j] * padded[t + j];
                }
                // The convolution result is in the tensor's dtype before the activation.
                let y = R::from_f64(round_to(dtype, acc.to_f64()));
                out.push(if op.silu {
                    y / (R::one() + (-y).exp())
                } else {
                    y
                });
            }
            state.extend_from_slice(&padded[padded_len - (k - 1)..]);
        }
    }
    Ok((out, state))
}

pub fn run(op: &CausalConvWithState, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let w = tensor(inputs, 1)?;
    let bias = opt_tensor(inputs, 2)?;
    let past = opt_tensor(inputs, 3)?;
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() != 3 || ws.len() != 3 || ws[0] != xs[1] || ws[1] != 1 || ws[2] == 0 {
        return Err(Error::compute(format!(
            "CausalConvWithState needs input [B, C, L] and weight [C, 1, k] (k >= 1), got {xs:?} and {ws:?}"
        )));
    }
    let (b, c, l, k) = (xs[0], xs[1], xs[2], ws[2]);
    if let Some(bt) = bias {
        if bt.shape() != [c] {
            return Err(Error::compute(format!(
                "the bias has shape {:?}, expected [{c}]",
                bt.shape()
            )));
        }
    }
    if let Some(p) = past {
        if p.shape() != [b, c, k - 1] {
            return Err(Error::compute(format!(
                "past_state has shape {:?}, expected [{b}, {c}, {}]",
                p.shape(),
                k - 1
            )));
        }
    }
    let dtype = x.dtype();
    let (y, s) = with_real!(dtype, R => {
        let bv = bias.map(load_floats::<R>).transpose()?;
        let pv = past.map(load_floats::<R>).transpose()?;
        let (xv, wv) = (load_floats::<R>(x)?, load_floats::<R>(w)?);
        let t = Inputs { x: &xv, dims: (b, c, l), w: &wv, k, bias: bv.as_deref(), past: pv.as_deref() };
        let (y, s) = typed::<R>(op, dtype, t)?;
        (store_floats(dtype, vec![b, c, l], y)?, store_floats(dtype, vec![b, c, k - 1], s)?)
    }, _ => return Err(Error::compute(format!("CausalConvWithState does not support {dtype}"))));
    Ok(vec![y.into(), s.into()])
}
