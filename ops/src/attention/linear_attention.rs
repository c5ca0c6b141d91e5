use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// How [`LinearAttention`]'s recurrent state is updated at each token (`update_rule`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LinearAttentionRule {
    /// `S_t = S_{t-1} + k_t ⊗ v_t`.
    Linear,
    /// `S_t = exp(g_t) * S_{t-1} + k_t ⊗ v_t`.
    Gated,
    /// `S_t = S_{t-1} + β_t * k_t ⊗ (v_t - S_{t-1}^T k_t)`.
    Delta,
    /// `S_t = exp(g_t) * S_{t-1} + β_t * k_t ⊗ (v_t - (exp(g_t) * S_{t-1})^T k_t)` (the
    /// ONNX default).
    #[default]
    GatedDelta,
}

impl LinearAttentionRule {
    /// The `update_rule` attribute's value for this rule.
    pub fn name(self) -> &'static str {
        match self {
            LinearAttentionRule::Linear => "linear",
            LinearAttentionRule::Gated => "gated",
            LinearAttentionRule::Delta => "delta",
            LinearAttentionRule::GatedDelta => "gated_delta",
        }
    }

    /// The rule named `s` (an `update_rule` value), if any.
    pub fn parse(s: &str) -> Option<LinearAttentionRule> {
        [
            LinearAttentionRule::Linear,
            LinearAttentionRule::Gated,
            LinearAttentionRule::Delta,
            LinearAttentionRule::GatedDelta,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }

    /// Whether the state decays by `exp(decay)` before each update (the `decay` input is
    /// required, and forbidden otherwise).
    pub fn gated(self) -> bool {
        matches!(
            self,
            LinearAttentionRule::Gated | LinearAttentionRule::GatedDelta
        )
    }

    /// Whether the update is the delta rule's correction scaled by `beta` (the `beta` input is
    /// required, and forbidden otherwise).
    pub fn delta(self) -> bool {
        matches!(
            self,
            LinearAttentionRule::Delta | LinearAttentionRule::GatedDelta
        )
    }
}

/// LinearAttention (opset 27): linear attention with a recurrent state, for prefill (T > 1)
/// and decoding (T = 1) alike.
///
/// Inputs: 0 `query` `[B, T, H_q * d_k]`; 1 `key` `[B, T, H_kv * d_k]`; 2 `value`
/// `[B, T, H_kv * d_v]`; 3 `past_state` `[B, H_kv, d_k, d_v]` (optional, zeros when absent);
/// 4 `decay` (log-space gate) `[B, T, H_kv * d_k]` (per key dim) or `[B, T, H_kv]` (per
/// head); 5 `beta` (update rate) `[B, T, H_kv]` or `[B, T, 1]` (one for all heads). Heads
/// are packed in the last dim: feature `d` of head `h` is at `h * D + d`. `d_k` is
/// `query.shape[2] / q_num_heads`, `d_v` is `value.shape[2] / kv_num_heads`; both
/// divisions must be exact, `q_num_heads` must be a positive multiple of `kv_num_heads`,
/// and every other shape must agree exactly with those named here.
///
/// `decay` is required by the gated rules (`gated`, `gated_delta`) and an error with the
/// others; `beta` is required by the delta rules (`delta`, `gated_delta`) and an error with
/// the others. For each batch `b` and key/value head `h`, the state `S` (`[d_k, d_v]`,
/// starting at `past_state[b, h]`) is updated token by token, `t = 0..T`:
/// 1. gated rules: `S[i, :] *= exp(g_t[i])` (`g_t[i]` is the head's one value when decay is
///    per head);
/// 2. delta rules: `u = β_t * (v_t - S^T k_t)` (with the decayed `S`), else `u = v_t`;
/// 3. `S += k_t ⊗ u` (`S[i, j] += k_t[i] * u[j]`);
/// 4. for each query head `hq` with `hq / (H_q / H_kv) == h`:
///    `output[b, t, hq * d_v + j] = scale * Σ_i q_t[i] * S[i, j]`.
///
/// `scale` 0 means `1 / sqrt(d_k)` (with `d_k` = 0 every output is an empty sum, 0).
/// Outputs: `output` `[B, T, H_q * d_v]` in query's dtype, and `present_state` (the final
/// `S`) `[B, H_kv, d_k, d_v]` in past_state's dtype, or query's when past_state is absent. Inputs are float16, bfloat16 or float32 (past_state's
/// dtype may differ from the others'); computation is in f32. `chunk_size` is a tuning hint
/// that does not change the result; it must be positive. Shapes that disagree, a gate
/// given to a rule that does not use it or missing from one that does, and head counts that
/// do not divide are errors (at import when the types say so, else when run).
#[derive(Clone, Debug, PartialEq)]
pub struct LinearAttention {
    pub q_num_heads: usize,
    pub kv_num_heads: usize,
    /// 0 means `1 / sqrt(d_k)`.
    pub scale: f32,
    pub update_rule: LinearAttentionRule,
    /// Kept to write the node back as it was read; positive, 64 by default.
    pub chunk_size: i64,
}

impl LinearAttention {
    /// Query heads per key/value head, or an error when the head counts do not allow it.
    pub fn group(&self) -> Result<usize> {
        let (hq, hkv) = (self.q_num_heads, self.kv_num_heads);
        if hq == 0 || hkv == 0 || hq % hkv != 0 {
            return Err(Error::model(format!(
                "LinearAttention q_num_heads ({hq}) must be a positive multiple of kv_num_heads ({hkv})"
            )));
        }
        Ok(hq / hkv)
    }
}

/// The per-head size of a packed last dim `d` of `heads` heads: a number when `d` is known
/// (an error when `heads` does not divide it), else a symbol.
fn head_size(d: &Dim, heads: usize, what: &str) -> Result<Dim> {
    match d {
        Dim::Known(n) if n % heads != 0 => Err(Error::model(format!(
            "LinearAttention {what} last dim {n} is not divisible by {heads} heads"
        ))),
        Dim::Known(n) => Ok(Dim::Known(n / heads)),
        d => Ok(Dim::Sym(format!("{d}/{heads}"))),
    }
}

/// `heads` times the head size `d`.
fn packed(d: &Dim, heads: usize, what: &str) -> Result<Dim> {
    match d {
        Dim::Known(n) => n.checked_mul(heads).map(Dim::Known).ok_or_else(|| {
            Error::model(format!(
                "LinearAttention {what} of {heads} heads of {n} overflows"
            ))
        }),
        d => Ok(Dim::Sym(format!("{d}*{heads}"))),
    }
}

impl OpDef for LinearAttention {
    const NAMES: &'static [&'static str] = &["LinearAttention"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        self.group()?;
        let dtype = dtype_of(inputs, 0)?;
        let state_dtype = match input(inputs, 3) {
            Some(p) => p.dtype(),
            None => dtype,
        };
        let rank3 = |i: usize, what: &str| -> Result<Option<&Shape>> {
            match input(inputs, i).and_then(|x| x.shape()) {
                Some(s) if s.rank() != 3 => Err(Error::model(format!(
                    "LinearAttention {what} must be 3-D [batch, seq, heads * head_size], got {s}"
                ))),
                s => Ok(s),
            }
        };
        for (i, what, used) in [
            (4, "decay", self.update_rule.gated()),
            (5, "beta", self.update_rule.delta()),
        ] {
            let verb = match (input(inputs, i).is_some(), used) {
                (false, true) => "requires",
                (true, false) => "forbids",
                _ => continue,
            };
            return Err(Error::model(format!(
                "LinearAttention update_rule \"{}\" {verb} the {what} input (input {i})",
                self.update_rule.name()
            )));
        }
        let q = rank3(0, "query")?;
        let k = rank3(1, "key")?;
        let v = rank3(2, "value")?;
        let d_v = match v {
            Some(v) => Some(head_size(&v.0[2], self.kv_num_heads, "value")?),
            None => None,
        };
        let d_k = match q {
            Some(q) => Some(head_size(&q.0[2], self.q_num_heads, "query")?),
            None => None,
        };
        if let (Some(Dim::Known(dk)), Some(Dim::Known(kw))) = (&d_k, k.map(|k| &k.0[2])) {
            // kv_num_heads <= q_num_heads, so this does not overflow.
            if *kw != dk * self.kv_num_heads {
                return Err(Error::model(format!(
                    "LinearAttention key last dim {kw} is not kv_num_heads {} x d_k {dk}",
                    self.kv_num_heads
                )));
            }
        }
        let output = match (q, &d_v) {
            (Some(q), Some(d_v)) => Some(Shape(vec![
                q.0[0].clone(),
                q.0[1].clone(),
                packed(d_v, self.q_num_heads, "output")?,
            ])),
            _ => None,
        };
        let state = match (q, d_k, d_v) {
            (Some(q), Some(d_k), Some(d_v)) => Some(Shape(vec![
                q.0[0].clone(),
                Dim::Known(self.kv_num_heads),
                d_k,
                d_v,
            ])),
            _ => None,
        };
        let mut out = vec![tensor_type(dtype, output), tensor_type(state_dtype, state)];
        out.truncate(n_outputs.clamp(1, 2));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{DType, TensorType};

    fn op(q_num_heads: usize, kv_num_heads: usize) -> LinearAttention {
        LinearAttention {
            q_num_heads,
            kv_num_heads,
            scale: 0.0,
            update_rule: LinearAttentionRule::Linear,
            chunk_size: 64,
        }
    }

    fn ty(dtype: DType, dims: Vec<Dim>) -> ValueType {
        ValueType::Tensor(TensorType::new(dtype, Shape(dims)))
    }

    #[test]
    fn infers_packed_output_and_state_with_symbols_kept() {
        let b = Dim::Sym("batch".into());
        let t = Dim::Sym("seq".into());
        let q = ty(DType::F16, vec![b.clone(), t.clone(), Dim::Known(64)]);
        let kv = ty(DType::F16, vec![b.clone(), t.clone(), Dim::Known(32)]);
        let past = ty(DType::F32, vec![b.clone(), 4.into(), 8.into(), 8.into()]);
        let i = |ty| Some(InferInput { ty, value: None });
        let out = op(8, 4)
            .infer(&[i(&q), i(&kv), i(&kv), i(&past)], 2)
            .unwrap();
        assert_eq!(
            out[0],
            ty(DType::F16, vec![b.clone(), t, Dim::Known(64)]),
            "output"
        );
        assert_eq!(
            out[1],
            ty(DType::F32, vec![b, 4.into(), 8.into(), 8.into()]),
            "present_state takes past_state's dtype"
        );
    }

    #[test]
    fn head_counts_that_do_not_divide_are_an_error() {
        let q = ty(DType::F32, vec![1.into(), 1.into(), 8.into()]);
        let i = Some(InferInput {
            ty: &q,
            value: None,
        });
        for (hq, hkv) in [(0, 1), (3, 2), (2, 0)] {
            let err = op(hq, hkv).infer(&[i, i, i], 2).unwrap_err().to_string();
            assert!(err.contains("positive multiple of kv_num_heads"), "{err}");
        }
        let err = op(3, 3).infer(&[i, i, i], 2).unwrap_err().to_string();
        assert!(err.contains("not divisible by 3 heads"), "{err}");
    }

    #[test]
    fn a_key_of_another_head_size_or_a_gate_the_rule_does_not_use_is_an_error() {
        let q = ty(DType::F32, vec![1.into(), 1.into(), 8.into()]);
        let k = ty(DType::F32, vec![1.into(), 1.into(), 6.into()]);
        let g = ty(DType::F32, vec![1.into(), 1.into(), 2.into()]);
        let i = |ty| Some(InferInput { ty, value: None });
        let err = op(2, 2)
            .infer(&[i(&q), i(&k), i(&q)], 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key last dim 6 is not kv_num_heads 2 x d_k 4"),
            "{err}"
        );
        let err = op(2, 2)
            .infer(&[i(&q), i(&q), i(&q), None, i(&g)], 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"linear\" forbids the decay input"), "{err}");
        let gated_delta = LinearAttention {
            update_rule: LinearAttentionRule::GatedDelta,
            ..op(2, 2)
        };
        let err = gated_delta
            .infer(&[i(&q), i(&q), i(&q), None, i(&g)], 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"gated_delta\" requires the beta input"),
            "{err}"
        );
    }
}
