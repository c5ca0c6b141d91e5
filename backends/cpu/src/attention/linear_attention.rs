//! LinearAttention (see the op's doc for the contract): the recurrence run token by token,
//! in f32, one (batch, key/value head) state at a time.

use xnpu_core::num::store_floats;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::attention::LinearAttention;

use super::gqa::f32s;
use crate::args::{opt_tensor, tensor};

/// An error unless `t` (`what`) is float16, bfloat16 or float32.
fn check_float(t: &Tensor, what: &str) -> Result<()> {
    match t.dtype() {
        DType::F16 | DType::Bf16 | DType::F32 => Ok(()),
        d => Err(Error::compute(format!(
            "LinearAttention {what} must be float16, bfloat16 or float32, got {d}"
        ))),
    }
}

/// The number of values of a tensor of shape `dims`: 0 when a dim is 0 (whatever the
/// others), else their product, an error when it overflows.
fn count(dims: &[usize], what: &str) -> Result<usize> {
    if dims.contains(&0) {
        return Ok(0);
    }
    buf::count(dims, what)
}

/// The sizes every input is checked against.
#[derive(Clone, Copy, Debug)]
struct Dims {
    b: usize,
    t: usize,
    hq: usize,
    hkv: usize,
    dk: usize,
    dv: usize,
    /// Query heads per key/value head.
    group: usize,
}

impl Dims {
    /// The sizes read from query and value (rank 3, last dims divisible by the head counts),
    /// with key checked against them.
    fn of(op: &LinearAttention, q: &[usize], k: &[usize], v: &[usize]) -> Result<Dims> {
        let group = op.group().map_err(|e| Error::compute(e.to_string()))?;
        let (hq, hkv) = (op.q_num_heads, op.kv_num_heads);
        for (name, s) in [("query", q), ("key", k), ("value", v)] {
            if s.len() != 3 {
                return Err(Error::compute(format!(
                    "LinearAttention {name} must be 3-D [batch, seq, heads * head_size], got shape {s:?}"
                )));
            }
        }
        let (b, t) = (q[0], q[1]);
        if !q[2].is_multiple_of(hq) {
            return Err(Error::compute(format!(
                "LinearAttention query last dim {} is not divisible by q_num_heads {hq}",
                q[2]
            )));
        }
        if !v[2].is_multiple_of(hkv) {
            return Err(Error::compute(format!(
                "LinearAttention value last dim {} is not divisible by kv_num_heads {hkv}",
                v[2]
            )));
        }
        let (dk, dv) = (q[2] / hq, v[2] / hkv);
        // hkv <= hq, so hkv * dk <= q[2] fits.
        let key_want = [b, t, hkv * dk];
        if k != key_want {
            return Err(Error::compute(format!(
                "LinearAttention key shape {k:?} does not match [batch, seq, kv_num_heads * d_k] = {key_want:?}"
            )));
        }
        if v[..2] != [b, t] {
            return Err(Error::compute(format!(
                "LinearAttention value shape {v:?} does not match query's batch and seq [{b}, {t}, _]"
            )));
        }
        Ok(Dims {
            b,
            t,
            hq,
            hkv,
            dk,
            dv,
            group,
        })
    }

    /// The state's shape `[B, H_kv, d_k, d_v]`.
    fn state(&self) -> [usize; 4] {
        [self.b, self.hkv, self.dk, self.dv]
    }
}

/// A `[B, T, n]` gate (decay or beta) whose last dim `n` is one of `per`: one value per
/// `(batch, token)` row, split in `n` columns.
struct Gate {
    v: Vec<f32>,
    n: usize,
}

impl Gate {
    /// Input `i` (`what`) when given, checked against `dims` and the allowed last dims
    /// `lasts` (each with what it means).
    fn read(
        inputs: &[Option<&Value>],
        i: usize,
        what: &str,
        dims: Dims,
        lasts: &[(usize, &str)],
        dtype: DType,
    ) -> Result<Option<Gate>> {
        let Some(t) = opt_tensor(inputs, i)? else {
            return Ok(None);
        };
        same_dtype(t, what, dtype)?;
        let s = t.shape();
        let ok =
            s.len() == 3 && s[..2] == [dims.b, dims.t] && lasts.iter().any(|&(n, _)| s[2] == n);
        if !ok {
            let want: Vec<String> = lasts
                .iter()
                .map(|(n, name)| format!("[{}, {}, {n}] ({name})", dims.b, dims.t))
                .collect();
            return Err(Error::compute(format!(
                "LinearAttention {what} shape {s:?} must be {}",
                want.join(" or ")
            )));
        }
        Ok(Some(Gate {
            v: f32s(t, what)?,
            n: s[2],
        }))
    }

    /// The values of `(batch, token)` row `row`.
    fn row(&self, row: usize) -> &[f32] {
        &self.v[row * self.n..(row + 1) * self.n]
    }
}

/// An error unless input `i` (`what`) is given exactly when the update rule `rule` uses it
/// (`used`).
fn check_presence(
    inputs: &[Option<&Value>],
    i: usize,
    what: &str,
    used: bool,
    rule: &str,
) -> Result<()> {
    match (inputs.get(i).copied().flatten().is_some(), used) {
        (false, true) => Err(Error::compute(format!(
            "LinearAttention update_rule \"{rule}\" requires the {what} input (input {i})"
        ))),
        (true, false) => Err(Error::compute(format!(
            "LinearAttention update_rule \"{rule}\" forbids the {what} input (input {i})"
        ))),
        _ => Ok(()),
    }
}

/// An error unless `t` (`what`) has the activations' dtype `dtype`.
fn same_dtype(t: &Tensor, what: &str, dtype: DType) -> Result<()> {
    if t.dtype() != dtype {
        return Err(Error::compute(format!(
            "LinearAttention {what} has dtype {}, not query's {dtype}",
            t.dtype()
        )));
    }
    Ok(())
}

pub fn run(op: &LinearAttention, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let (q_t, k_t, v_t) = (tensor(inputs, 0)?, tensor(inputs, 1)?, tensor(inputs, 2)?);
    let dtype = q_t.dtype();
    check_float(q_t, "query")?;
    same_dtype(k_t, "key", dtype)?;
    same_dtype(v_t, "value", dtype)?;
    let d = Dims::of(op, q_t.shape(), k_t.shape(), v_t.shape())?;
    let rule = op.update_rule;
    check_presence(inputs, 4, "decay", rule.gated(), rule.name())?;
    check_presence(inputs, 5, "beta", rule.delta(), rule.name())?;
    let per_dim = (d.hkv * d.dk, "per key dim");
    let decay = Gate::read(
        inputs,
        4,
        "decay",
        d,
        &[(d.hkv, "per head"), per_dim],
        dtype,
    )?;
    let one = (1, "one for all heads");
    let beta = Gate::read(inputs, 5, "beta", d, &[(d.hkv, "per head"), one], dtype)?;
    let past = opt_tensor(inputs, 3)?;
    if let Some(p) = past {
        check_float(p, "past_state")?;
    }
    let state_dtype = past.map_or(dtype, Tensor::dtype);
    let state_len = count(&d.state(), "LinearAttention's state")?;
    let mut state = match past {
        Some(p) if p.shape() != d.state() => {
            return Err(Error::compute(format!(
                "LinearAttention past_state shape {:?} does not match [batch, kv_num_heads, d_k, d_v] = {:?}",
                p.shape(),
                d.state()
            )))
        }
        Some(p) => f32s(p, "past_state")?,
        None => buf::zeroed(state_len, "LinearAttention's state")?,
    };
    let out_shape = vec![
        d.b,
        d.t,
        d.hq.checked_mul(d.dv).ok_or_else(|| {
            Error::compute(format!(
                "LinearAttention output of {} heads of {} values overflows",
                d.hq, d.dv
            ))
        })?,
    ];
    let mut out = buf::zeroed::<f32>(
        count(&out_shape, "LinearAttention's output")?,
        "LinearAttention's output",
    )?;
    // With no output and no state there is nothing to compute (and an empty tensor's other
    // dims may be anything); otherwise every loop below is bounded by one of them, or by an
    // input's size.
    if !out.is_empty() || !state.is_empty() {
        let q = f32s(q_t, "query")?;
        let k = f32s(k_t, "key")?;
        let v = f32s(v_t, "value")?;
        // With d_k = 0 every output is an empty sum: 0, whatever the scale.
        let scale = if op.scale != 0.0 {
            op.scale
        } else if d.dk == 0 {
            0.0
        } else {
            (1.0 / (d.dk as f64).sqrt()) as f32
        };
        let ins = Recurrence {
            d,
            q: &q,
            k: &k,
            v: &v,
            decay: decay.as_ref(),
            beta: beta.as_ref(),
            scale,
        };
        ins.run(&mut state, &mut out)?;
    }
    Ok(vec![
        store_floats(dtype, out_shape, out)?.into(),
        store_floats(state_dtype, d.state().to_vec(), state)?.into(),
    ])
}

/// The inputs of one evaluation, as f32 in their packed `[B, T, H * D]` layouts.
struct Recurrence<'a> {
    d: Dims,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    decay: Option<&'a Gate>,
    beta: Option<&'a Gate>,
    scale: f32,
}

impl Recurrence<'_> {
    /// Runs every `(batch, kv head)` state through the tokens: `state` (`[B, H_kv, d_k,
    /// d_v]`) from the past to the present, `out` (`[B, T, H_q * d_v]`) written.
    fn run(&self, state: &mut [f32], out: &mut [f32]) -> Result<()> {
        let d = self.d;
        let size = d.dk * d.dv;
        let mut u = buf::zeroed::<f32>(d.dv, "LinearAttention's update row")?;
        for b in 0..d.b {
            for h in 0..d.hkv {
                let at = (b * d.hkv + h) * size;
                let s = &mut state[at..at + size];
                for t in 0..d.t {
                    self.step(b * d.t + t, h, s, &mut u, out);
                }
            }
        }
        Ok(())
    }

    /// Token row `row` (`b * T + t`) for kv head `h`: updates its state `s` (`[d_k, d_v]`)
    /// and writes the outputs of the query heads that share it.
    fn step(&self, row: usize, h: usize, s: &mut [f32], u: &mut [f32], out: &mut [f32]) {
        let d = self.d;
        let (dk, dv) = (d.dk, d.dv);
        let k = &self.k[(row * d.hkv + h) * dk..][..dk];
        let v = &self.v[(row * d.hkv + h) * dv..][..dv];
        if let Some(g) = self.decay {
            let g = g.row(row);
            for (i, s_i) in s.chunks_exact_mut(dv).enumerate() {
                // One value per head, or one per key dim of each head.
                let gi = if g.len() == d.hkv && dk != 1 {
                    g[h]
                } else {
                    g[h * dk + i]
                };
                let f = gi.exp();
                s_i.iter_mut().for_each(|x| *x *= f);
            }
        }
        match self.beta {
            Some(beta) => {
                let beta = beta.row(row);
                let bh = if beta.len() == 1 { beta[0] } else { beta[h] };
                // u = β (v - Sᵀk), with the (decayed) state.
                for (j, uj) in u.iter_mut().enumerate() {
                    let mut r = 0.0f32;
                    for (i, &ki) in k.iter().enumerate() {
                        r += s[i * dv + j] * ki;
                    }
                    *uj = bh * (v[j] - r);
                }
            }
            None => u.copy_from_slice(v),
        }
        for (s_i, &ki) in s.chunks_exact_mut(dv).zip(k) {
            for (x, &uj) in s_i.iter_mut().zip(u.iter()) {
                *x += ki * uj;
            }
        }
        for hq in h * d.group..(h + 1) * d.group {
            let q = &self.q[(row * d.hq + hq) * dk..][..dk];
            let o = &mut out[(row * d.hq + hq) * dv..][..dv];
            for (j, oj) in o.iter_mut().enumerate() {
                let mut acc = 0.0f32;
                for (i, &qi) in q.iter().enumerate() {
                    acc += qi * s[i * dv + j];
                }
                *oj = self.scale * acc;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_ops::attention::LinearAttentionRule;

    fn op(rule: LinearAttentionRule, hq: usize, hkv: usize) -> LinearAttention {
        LinearAttention {
            q_num_heads: hq,
            kv_num_heads: hkv,
            scale: 0.0,
            update_rule: rule,
            chunk_size: 64,
        }
    }

    fn t(shape: &[usize], v: Vec<f32>) -> Option<Value> {
        Some(Tensor::from_vec(shape.to_vec(), v).unwrap().into())
    }

    fn go(op: &LinearAttention, ins: &[Option<Value>]) -> Result<(Vec<f32>, Vec<f32>)> {
        let refs: Vec<Option<&Value>> = ins.iter().map(Option::as_ref).collect();
        let outs = run(op, &refs)?;
        let f = |i: usize| outs[i].as_tensor().unwrap().to_vec::<f32>().unwrap();
        Ok((f(0), f(1)))
    }

    #[test]
    fn linear_rule_accumulates_outer_products_and_scales_by_root_d_k() {
        // One head, d_k = 4 (scale 1/2), d_v = 1, two tokens.
        let q = t(&[1, 2, 4], vec![1., 0., 0., 0., 1., 1., 0., 0.]);
        let k = t(&[1, 2, 4], vec![1., 0., 0., 0., 0., 1., 0., 0.]);
        let v = t(&[1, 2, 1], vec![2., 4.]);
        let (o, s) = go(&op(LinearAttentionRule::Linear, 1, 1), &[q, k, v]).unwrap();
        // S_0 = [2, 0, 0, 0]; o_0 = 0.5 * 2. S_1 = [2, 4, 0, 0]; o_1 = 0.5 * (2 + 4).
        assert_eq!(o, [1.0, 3.0]);
        assert_eq!(s, [2.0, 4.0, 0.0, 0.0]);
    }

    #[test]
    fn the_past_state_is_carried_into_the_first_step() {
        let op = LinearAttention {
            scale: 1.0,
            ..op(LinearAttentionRule::Linear, 1, 1)
        };
        let one = |x| t(&[1, 1, 1], vec![x]);
        let past = t(&[1, 1, 1, 1], vec![10.0]);
        let (o, s) = go(&op, &[one(1.0), one(1.0), one(3.0), past]).unwrap();
        assert_eq!((o, s), (vec![13.0], vec![13.0]));
        // Two steps at once equal one step after another.
        let two = |a, b| t(&[1, 2, 1], vec![a, b]);
        let (o2, s2) = go(&op, &[two(1.0, 2.0), two(1.0, 1.0), two(3.0, 5.0)]).unwrap();
        let (o1, s1) = go(&op, &[one(1.0), one(1.0), one(3.0)]).unwrap();
        let (o1b, s1b) = go(
            &op,
            &[one(2.0), one(1.0), one(5.0), t(&[1, 1, 1, 1], s1.clone())],
        )
        .unwrap();
        assert_eq!(o2, [o1[0], o1b[0]]);
        assert_eq!(s2, s1b);
        assert_eq!(o2, [3.0, 16.0]);
    }

    #[test]
    fn gated_delta_decays_then_corrects_by_what_the_key_retrieves() {
        // d_k = d_v = 1, scale 1: S = e^g S_prev; u = β (v - S k); S += k u; o = q S.
        let op = LinearAttention {
            scale: 1.0,
            ..op(LinearAttentionRule::GatedDelta, 1, 1)
        };
        let one = |x| t(&[1, 1, 1], vec![x]);
        let g = (0.5f32).ln();
        let (o, s) = go(
            &op,
            &[
                one(2.0),
                one(1.0),
                one(5.0),
                t(&[1, 1, 1, 1], vec![4.0]),
                one(g),
                one(0.5),
            ],
        )
        .unwrap();
        // S = 2; u = 0.5 (5 - 2) = 1.5; S = 3.5; o = 7.
        assert!((s[0] - 3.5).abs() < 1e-6, "{s:?}");
        assert!((o[0] - 7.0).abs() < 1e-6, "{o:?}");
    }

    #[test]
    fn query_heads_share_their_kv_head_state() {
        // 2 query heads on 1 kv head, d_k = d_v = 1, scale 1.
        let op = LinearAttention {
            scale: 1.0,
            ..op(LinearAttentionRule::Linear, 2, 1)
        };
        let q = t(&[1, 1, 2], vec![1.0, -2.0]);
        let kv = |x| t(&[1, 1, 1], vec![x]);
        let (o, s) = go(&op, &[q, kv(1.0), kv(3.0)]).unwrap();
        assert_eq!(o, [3.0, -6.0]);
        assert_eq!(s, [3.0]);
    }

    #[test]
    fn f16_inputs_give_f16_outputs_and_state() {
        let h = |shape: &[usize], v: Vec<f32>| -> Option<Value> {
            let v: Vec<xnpu_core::f16> = v.into_iter().map(xnpu_core::f16::from_f32).collect();
            Some(Tensor::from_vec(shape.to_vec(), v).unwrap().into())
        };
        let op = op(LinearAttentionRule::Linear, 1, 1);
        let ins = [
            h(&[1, 1, 1], vec![1.0]),
            h(&[1, 1, 1], vec![2.0]),
            h(&[1, 1, 1], vec![3.0]),
        ];
        let refs: Vec<Option<&Value>> = ins.iter().map(Option::as_ref).collect();
        let outs = run(&op, &refs).unwrap();
        for o in &outs {
            assert_eq!(o.as_tensor().unwrap().dtype(), DType::F16);
        }
        let o = outs[0].as_tensor().unwrap().to_f64_vec().unwrap();
        assert_eq!(o, [6.0]);
    }

    #[test]
    fn shapes_that_disagree_are_refused_with_a_message() {
        let o = op(LinearAttentionRule::Linear, 2, 2);
        let z = |s: &[usize]| t(s, vec![0.0; s.iter().product()]);
        let err = |ins: &[Option<Value>], o: &LinearAttention| go(o, ins).unwrap_err().to_string();
        let e = err(&[z(&[1, 2, 4]), z(&[1, 2, 6]), z(&[1, 2, 4])], &o);
        assert!(e.contains("key shape [1, 2, 6] does not match"), "{e}");
        let e = err(&[z(&[1, 2, 3]), z(&[1, 2, 4]), z(&[1, 2, 4])], &o);
        assert!(e.contains("not divisible by q_num_heads 2"), "{e}");
        let e = err(&[z(&[1, 2, 4]), z(&[1, 2, 4]), z(&[1, 3, 4])], &o);
        assert!(e.contains("value shape [1, 3, 4]"), "{e}");
        let e = err(
            &[
                z(&[1, 2, 4]),
                z(&[1, 2, 4]),
                z(&[1, 2, 4]),
                z(&[1, 2, 2, 3]),
            ],
            &o,
        );
        assert!(
            e.contains("past_state shape [1, 2, 2, 3] does not match"),
            "{e}"
        );
        let e = err(&[z(&[2, 4]), z(&[2, 4]), z(&[2, 4])], &o);
        assert!(e.contains("query must be 3-D"), "{e}");
        let ints = |s: &[usize]| {
            let n = s.iter().product();
            Some(Value::from(
                Tensor::from_vec(s.to_vec(), vec![0i32; n]).unwrap(),
            ))
        };
        let e = err(&[ints(&[1, 1, 2]), ints(&[1, 1, 2]), ints(&[1, 1, 2])], &o);
        assert!(
            e.contains("query must be float16, bfloat16 or float32, got"),
            "{e}"
        );
        let gd = op(LinearAttentionRule::GatedDelta, 2, 2);
        let qkv = [z(&[1, 2, 4]), z(&[1, 2, 4]), z(&[1, 2, 4]), None];
        let mut ins = qkv.to_vec();
        ins.extend([z(&[1, 2, 3]), z(&[1, 2, 1])]);
        let e = err(&ins, &gd);
        assert!(e.contains("decay shape [1, 2, 3] must be [1, 2, 2]"), "{e}");
        let mut ins = qkv.to_vec();
        ins.extend([z(&[1, 2, 2]), z(&[1, 2, 3])]);
        let e = err(&ins, &gd);
        assert!(e.contains("beta shape [1, 2, 3]"), "{e}");
    }

    #[test]
    fn gates_are_required_or_forbidden_by_the_rule() {
        let z = |s: &[usize]| t(s, vec![0.0; s.iter().product()]);
        let qkv = vec![z(&[1, 1, 2]), z(&[1, 1, 2]), z(&[1, 1, 2]), None];
        let e = go(&op(LinearAttentionRule::Gated, 1, 1), &qkv)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"gated\" requires the decay input"), "{e}");
        let mut ins = qkv.clone();
        ins.extend([None, z(&[1, 1, 1])]);
        let e = go(&op(LinearAttentionRule::Linear, 1, 1), &ins)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"linear\" forbids the beta input"), "{e}");
        let e = go(&op(LinearAttentionRule::Linear, 3, 2), &qkv)
            .unwrap_err()
            .to_string();
        assert!(e.contains("positive multiple of kv_num_heads"), "{e}");
    }

    #[test]
    fn huge_empty_inputs_are_answered_without_a_walk() {
        // Head size 0 everywhere: 2^31 batches of 2^31 tokens of nothing.
        let e = |s: &[usize]| t(s, vec![]);
        let half = 1usize << 31;
        let (o, s) = go(
            &op(LinearAttentionRule::Linear, 4, 4),
            &[
                e(&[half, half, 0]),
                e(&[half, half, 0]),
                e(&[half, half, 0]),
            ],
        )
        .unwrap();
        assert!(o.is_empty() && s.is_empty());
        // A state of 2^62 x 2^62 x 4 values is refused, not allocated.
        let big = 1usize << 62;
        let err = go(
            &op(LinearAttentionRule::Linear, 1, 1),
            &[e(&[big, 0, 4]), e(&[big, 0, 4]), e(&[big, 0, big])],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("LinearAttention's state"), "{err}");
    }
}
