//! RNN, GRU and LSTM, step by step in f64.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::rnn::{Activation, Cell, Direction, Recurrent};

use crate::args::{opt_tensor, tensor};

fn activate(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Affine { alpha, beta } => alpha as f64 * x + beta as f64,
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha as f64 * x
            }
        }
        Activation::ThresholdedRelu { alpha } => {
            if x > alpha as f64 {
                x
            } else {
                0.0
            }
        }
        Activation::ScaledTanh { alpha, beta } => alpha as f64 * (beta as f64 * x).tanh(),
        Activation::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
        Activation::Elu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha as f64 * (x.exp() - 1.0)
            }
        }
        Activation::Softsign => x / (1.0 + x.abs()),
        Activation::Softplus => {
            // ln(1 + e^x) without overflow for large x.
            if x > 30.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
    }
}

/// An optional input as f64 values of an exact shape (zeros when absent).
fn values_or_zeros(
    inputs: &[Option<&Value>],
    i: usize,
    name: &str,
    dtype: DType,
    shape: &[usize],
) -> Result<Vec<f64>> {
    match opt_tensor(inputs, i)? {
        None => Ok(vec![0.0; shape.iter().product()]),
        Some(t) => {
            if t.dtype() != dtype || t.shape() != shape {
                return Err(Error::compute(format!(
                    "{name} must be {dtype}{shape:?}, got {}{:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            t.to_f64_vec()
        }
    }
}

/// `y[j] = sum_k m[j, k] * v[k]` for a row-major `m` with `v.len()` columns.
fn mat_vec(m: &[f64], v: &[f64], y: &mut [f64]) {
    let cols = v.len();
    for (j, yj) in y.iter_mut().enumerate() {
        *yj = m[j * cols..(j + 1) * cols]
            .iter()
            .zip(v)
            .map(|(a, b)| a * b)
            .sum();
    }
}

/// A float tensor from f64 values.
fn float_tensor(dtype: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor> {
    xnpu_core::with_float_type!(dtype, T => {
        Tensor::from_vec(shape, v.into_iter().map(|x| <T as num_traits::NumCast>::from(x).unwrap_or_else(<T as num_traits::Float>::nan)).collect())
    }, _ => Err(Error::compute(format!("expected a float dtype, got {dtype}"))))
}

/// Runs the layer; returns `Y`, `Y_h` and for LSTM `Y_c`.
pub fn run(op: &Recurrent, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let w = tensor(inputs, 1)?;
    let r = tensor(inputs, 2)?;
    let dtype = x.dtype();
    if !dtype.is_float() || w.dtype() != dtype || r.dtype() != dtype {
        return Err(Error::compute(format!(
            "X, W and R must have the same float dtype, got {}, {} and {}",
            dtype,
            w.dtype(),
            r.dtype()
        )));
    }
    let xs = x.shape();
    if xs.len() != 3 {
        return Err(Error::compute(format!("X must have rank 3, got {xs:?}")));
    }
    let (seq, batch, n_in) = if op.batch_first {
        (xs[1], xs[0], xs[2])
    } else {
        (xs[0], xs[1], xs[2])
    };
    let dirs = op.direction.count();
    let gates = op.cell.gates();
    let rs = r.shape();
    if rs.len() != 3 || rs[0] != dirs || rs[1] != gates * rs[2] {
        return Err(Error::compute(format!(
            "R must be [{dirs}, {gates}*hidden, hidden], got {rs:?}"
        )));
    }
    let hidden = rs[2];
    if let Some(h) = op.hidden_size {
        if h != hidden {
            return Err(Error::compute(format!(
                "hidden_size is {h} but R has hidden size {hidden}"
            )));
        }
    }
    let gh = gates * hidden;
    if w.shape() != [dirs, gh, n_in] {
        return Err(Error::compute(format!(
            "W must be [{dirs}, {gh}, {n_in}], got {:?}",
            w.shape()
        )));
    }
    let is_lstm = matches!(op.cell, Cell::Lstm { .. });
    let per_dir = op.cell.activations();
    if op.activations.len() != per_dir * dirs {
        return Err(Error::compute(format!(
            "expected {} activation functions, got {}",
            per_dir * dirs,
            op.activations.len()
        )));
    }
    let state_shape = if op.batch_first {
        [batch, dirs, hidden]
    } else {
        [dirs, batch, hidden]
    };
    let xv = x.to_f64_vec()?;
    let wv = w.to_f64_vec()?;
    let rv = r.to_f64_vec()?;
    let bv = values_or_zeros(inputs, 3, "B", dtype, &[dirs, 2 * gh])?;
    let lens = match opt_tensor(inputs, 4)? {
        None => vec![seq; batch],
        Some(t) => {
            let v = t.to_i64_vec()?;
            if v.len() != batch {
                return Err(Error::compute(format!(
                    "sequence_lens must have {batch} values, got {}",
                    v.len()
                )));
            }
            v.into_iter()
                .map(|l| {
                    usize::try_from(l)
                        .ok()
                        .filter(|&l| l <= seq)
                        .ok_or_else(|| {
                            Error::compute(format!(
                                "sequence length {l} is out of range for a sequence of {seq}"
                            ))
                        })
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    let h0 = values_or_zeros(inputs, 5, "initial_h", dtype, &state_shape)?;
    let (c0, pv) = if is_lstm {
        (
            values_or_zeros(inputs, 6, "initial_c", dtype, &state_shape)?,
            values_or_zeros(inputs, 7, "P", dtype, &[dirs, 3 * hidden])?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    // Index helpers for the layout-dependent tensors.
    let x_at = |t: usize, b: usize| {
        let row = if op.batch_first {
            b * seq + t
        } else {
            t * batch + b
        };
        &xv[row * n_in..(row + 1) * n_in]
    };
    let state_at = |d: usize, b: usize| {
        let row = if op.batch_first {
            b * dirs + d
        } else {
            d * batch + b
        };
        row * hidden
    };
    let y_at = |t: usize, d: usize, b: usize| {
        let row = if op.batch_first {
            (b * seq + t) * dirs + d
        } else {
            (t * dirs + d) * batch + b
        };
        row * hidden
    };

    let mut y = vec![0.0; seq * dirs * batch * hidden];
    let mut y_h = vec![0.0; dirs * batch * hidden];
    let mut y_c = vec![0.0; if is_lstm { dirs * batch * hidden } else { 0 }];
    let clip = |v: f64| match op.clip {
        Some(c) => v.clamp(-(c as f64), c as f64),
        None => v,
    };
    for d in 0..dirs {
        let reverse = op.direction == Direction::Reverse || d == 1;
        let wd = &wv[d * gh * n_in..(d + 1) * gh * n_in];
        let rd = &rv[d * gh * hidden..(d + 1) * gh * hidden];
        let (wb, rb) = bv[d * 2 * gh..(d + 1) * 2 * gh].split_at(gh);
        let acts = &op.activations[d * per_dir..(d + 1) * per_dir];
        let f = |v: f64| activate(acts[0], clip(v));
        // The second function (g) of GRU and LSTM; RNN has only f.
        let g_act = acts.get(1).copied().unwrap_or(acts[0]);
        let g = |v: f64| activate(g_act, clip(v));
        let mut xw = vec![0.0; gh];
        let mut hr = vec![0.0; gh];
        for (b, &len) in lens.iter().enumerate() {
            let s = state_at(d, b);
            let mut h = h0[s..s + hidden].to_vec();
            let mut c = if is_lstm {
                c0[s..s + hidden].to_vec()
            } else {
                Vec::new()
            };
            for step in 0..len {
                let t = if reverse { len - 1 - step } else { step };
                mat_vec(wd, x_at(t, b), &mut xw);
                mat_vec(rd, &h, &mut hr);
                match op.cell {
                    Cell::Rnn => {
                        for j in 0..hidden {
                            h[j] = f(xw[j] + hr[j] + wb[j] + rb[j]);
                        }
                    }
                    Cell::Gru {
                        linear_before_reset,
                    } => {
                        let (z_, r_, h_) = (0, hidden, 2 * hidden);
                        let z: Vec<f64> = (0..hidden)
                            .map(|j| f(xw[z_ + j] + hr[z_ + j] + wb[z_ + j] + rb[z_ + j]))
                            .collect();
                        let rg: Vec<f64> = (0..hidden)
                            .map(|j| f(xw[r_ + j] + hr[r_ + j] + wb[r_ + j] + rb[r_ + j]))
                            .collect();
                        let cand: Vec<f64> = if linear_before_reset {
                            (0..hidden)
                                .map(|j| {
                                    g(xw[h_ + j] + rg[j] * (hr[h_ + j] + rb[h_ + j]) + wb[h_ + j])
                                })
                                .collect()
                        } else {
                            // (r * H) Rh^T
                            let rh: Vec<f64> = rg.iter().zip(&h).map(|(a, b)| a * b).collect();
                            let mut rr = vec![0.0; hidden];
                            mat_vec(&rd[h_ * hidden..], &rh, &mut rr);
                            (0..hidden)
                                .map(|j| g(xw[h_ + j] + rr[j] + rb[h_ + j] + wb[h_ + j]))
                                .collect()
                        };
                        for j in 0..hidden {
                            h[j] = (1.0 - z[j]) * cand[j] + z[j] * h[j];
                        }
                    }
                    Cell::Lstm { input_forget } => {
                        let hh = |v: f64| activate(acts[2], v);
                        let (i_, o_, f_, c_) = (0, hidden, 2 * hidden, 3 * hidden);
                        let p = &pv[d * 3 * hidden..(d + 1) * 3 * hidden];
                        let pre = |k: usize| xw[k] + hr[k] + wb[k] + rb[k];
                        for j in 0..hidden {
                            let ig = f(pre(i_ + j) + p[j] * c[j]);
                            let fg = if input_forget {
                                1.0 - ig
                            } else {
                                f(pre(f_ + j) + p[2 * hidden + j] * c[j])
                            };
                            let cg = g(pre(c_ + j));
                            c[j] = fg * c[j] + ig * cg;
                            let og = f(pre(o_ + j) + p[hidden + j] * c[j]);
                            h[j] = og * hh(c[j]);
                        }
                    }
                }
                let o = y_at(t, d, b);
                y[o..o + hidden].copy_from_slice(&h);
            }
            y_h[s..s + hidden].copy_from_slice(&h);
            if is_lstm {
                y_c[s..s + hidden].copy_from_slice(&c);
            }
        }
    }
    let y_shape = if op.batch_first {
        vec![batch, seq, dirs, hidden]
    } else {
        vec![seq, dirs, batch, hidden]
    };
    let mut out = vec![
        Value::Tensor(float_tensor(dtype, y_shape, y)?),
        Value::Tensor(float_tensor(dtype, state_shape.to_vec(), y_h)?),
    ];
    if is_lstm {
        out.push(Value::Tensor(float_tensor(
            dtype,
            state_shape.to_vec(),
            y_c,
        )?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnn(direction: Direction) -> Recurrent {
        Recurrent {
            cell: Cell::Rnn,
            direction,
            hidden_size: Some(1),
            activations: vec![
                Activation::Affine {
                    alpha: 1.0,
                    beta: 0.0
                };
                direction.count()
            ],
            clip: None,
            batch_first: false,
        }
    }

    fn vals(shape: Vec<usize>, v: Vec<f32>) -> Value {
        Value::Tensor(Tensor::from_vec(shape, v).unwrap())
    }

    #[test]
    fn linear_rnn_accumulates_and_respects_sequence_lens() {
        // h_t = x_t + h_{t-1}; batch 0 has length 3, batch 1 length 1.
        let x = vals(vec![3, 2, 1], vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
        let w = vals(vec![1, 1, 1], vec![1.0]);
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let lens = Value::Tensor(Tensor::from_vec(vec![2], vec![3i32, 1]).unwrap());
        let out = run(
            &rnn(Direction::Forward),
            &[Some(&x), Some(&w), Some(&r), None, Some(&lens)],
        )
        .unwrap();
        let y = out[0].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![1.0, 10.0, 3.0, 0.0, 6.0, 0.0]);
        let y_h = out[1].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y_h, vec![6.0, 10.0]);
    }

    #[test]
    fn reverse_direction_starts_at_the_last_valid_step() {
        let x = vals(vec![3, 1, 1], vec![1.0, 2.0, 3.0]);
        let w = vals(vec![1, 1, 1], vec![1.0]);
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let out = run(&rnn(Direction::Reverse), &[Some(&x), Some(&w), Some(&r)]).unwrap();
        let y = out[0].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![6.0, 5.0, 3.0]);
    }

    #[test]
    fn wrong_weight_shape_is_an_error() {
        let x = vals(vec![1, 1, 2], vec![1.0, 2.0]);
        let w = vals(vec![1, 1, 1], vec![1.0]);
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let err = run(&rnn(Direction::Forward), &[Some(&x), Some(&w), Some(&r)]).unwrap_err();
        assert!(err.to_string().contains("W must be"));
    }
}
