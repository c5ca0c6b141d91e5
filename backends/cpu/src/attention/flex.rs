//! FlexAttention (`ai.onnx.preview` opset 1): attention whose scores and probabilities pass
//! through modifier graphs, run with the interpreter. Computed in f64, rounded where onnx's
//! reference implementation rounds (see [`FlexAttention`] for the steps).

use xnpu_core::num::round_to;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_graph::ir::{FlexAttention, Graph, FLEX_ATTENTION_DTYPES};
use xnpu_linalg::buf;

use super::store;
use crate::args::{floats, tensor};
use crate::control::captured;
use crate::exec::run_graph;

/// The sizes of one FlexAttention: Q `[b, hq, l, e]`, K `[b, hkv, s, e]`, V `[b, hkv, s, ev]`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dims {
    b: usize,
    hq: usize,
    hkv: usize,
    l: usize,
    s: usize,
    e: usize,
    ev: usize,
}

impl Dims {
    /// The sizes, or an error saying which shapes disagree.
    fn of(q: &[usize], k: &[usize], v: &[usize]) -> Result<Dims> {
        let (&[b, hq, l, e], &[bk, hkv, s, ek], &[bv, hv, sv, ev]) = (q, k, v) else {
            return Err(Error::compute(format!(
                "FlexAttention needs 4-D Q, K and V, got Q {q:?}, K {k:?}, V {v:?}"
            )));
        };
        let fail = |what: &str| {
            Err(Error::compute(format!(
                "FlexAttention {what}: Q {q:?}, K {k:?}, V {v:?}"
            )))
        };
        if bk != b || bv != b {
            return fail("Q, K and V must have one batch size");
        }
        if hv != hkv {
            return fail("K and V must have one number of heads");
        }
        if sv != s {
            return fail("K and V must have one sequence length");
        }
        if ek != e {
            return fail("Q and K must have one head size");
        }
        if hq != hkv && (hkv == 0 || hq % hkv != 0) {
            return fail("Q's number of heads must be a multiple of K's and V's");
        }
        Ok(Dims {
            b,
            hq,
            hkv,
            l,
            s,
            e,
            ev,
        })
    }

    /// Query heads per K/V head.
    fn group(&self) -> usize {
        if self.hkv == 0 {
            1
        } else {
            self.hq / self.hkv
        }
    }

    /// The shape of the scores and probabilities, `[b, hq, l, s]`.
    fn scores(&self) -> Vec<usize> {
        vec![self.b, self.hq, self.l, self.s]
    }
}

pub fn run(op: &FlexAttention, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let (q, k, v) = (tensor(inputs, 0)?, tensor(inputs, 1)?, tensor(inputs, 2)?);
    let dtype = q.dtype();
    if !FLEX_ATTENTION_DTYPES.contains(&dtype) {
        return Err(Error::compute(format!(
            "FlexAttention Q is {dtype}; it must be f16, bf16, f32 or f64"
        )));
    }
    for (name, t) in [("K", k), ("V", v)] {
        if t.dtype() != dtype {
            return Err(Error::compute(format!(
                "FlexAttention {name} is {}, Q is {dtype}: Q, K and V must have one dtype",
                t.dtype()
            )));
        }
    }
    let dims = Dims::of(q.shape(), k.shape(), v.shape())?;
    let compute = op.compute_dtype(dtype);
    let (qv, kv, vv) = (floats(q, "Q")?, floats(k, "K")?, floats(v, "V")?);

    let mut scores = scaled_scores(&dims, &qv, &kv, dtype, sqrt_scale(op.scale, &dims, dtype))?;
    for x in scores.iter_mut() {
        *x = round_to(compute, *x);
    }
    if let Some(g) = &op.score_mod {
        scores = modify(g, scores, compute, &dims, inputs).map_err(|e| e.context("score_mod"))?;
    }
    softmax_rows(&mut scores, dims.s, compute);
    if let Some(g) = &op.prob_mod {
        scores = modify(g, scores, compute, &dims, inputs).map_err(|e| e.context("prob_mod"))?;
    }
    let y = weigh_values(&dims, &scores, &vv, compute, dtype)?;
    Ok(vec![Value::Tensor(store(
        dtype,
        vec![dims.b, dims.hq, dims.l, dims.ev],
        &y,
    )?)])
}

/// `sqrt(scale)` as the reference takes it: the scale (default `1 / sqrt(e)`) as f32, its
/// square root in f32, rounded to the input dtype. It scales both Q and K.
fn sqrt_scale(scale: Option<f32>, dims: &Dims, dtype: DType) -> f64 {
    let scale = scale.unwrap_or((1.0 / (dims.e as f64).sqrt()) as f32);
    round_to(dtype, scale.sqrt() as f64)
}

/// A dot product the way NumPy's matmul computes it in `dtype`: float16 and bfloat16
/// accumulate in f32, one rounding per step; f32 (BLAS, whose order is its own) and f64
/// accumulate wide. The result is rounded to `dtype`.
fn dot(dtype: DType, pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let acc = if matches!(dtype, DType::F16 | DType::Bf16) {
        pairs.fold(0f32, |acc, (a, b)| acc + (a * b) as f32) as f64
    } else {
        pairs.map(|(a, b)| a * b).sum()
    };
    round_to(dtype, acc)
}

/// `(Q·s) @ (K·s)^T` per head, `[b, hq, l, s]`, in the input dtype.
fn scaled_scores(dims: &Dims, q: &[f64], k: &[f64], dtype: DType, s: f64) -> Result<Vec<f64>> {
    let scaled = |x: &[f64], what| buf::collected(x.iter().map(|&v| round_to(dtype, v * s)), what);
    let (q, k) = (
        scaled(q, "FlexAttention's scaled Q")?,
        scaled(k, "FlexAttention's scaled K")?,
    );
    let n = buf::count(&dims.scores(), "FlexAttention's scores")?;
    let mut out = buf::zeroed::<f64>(n, "FlexAttention's scores")?;
    let (e, group) = (dims.e, dims.group());
    for (row, o) in out.chunks_exact_mut(dims.s.max(1)).enumerate() {
        // row = (b * hq + h) * l + i
        let bh = row / dims.l;
        let (b, h) = (bh / dims.hq, bh % dims.hq);
        let kh = b * dims.hkv + h / group;
        let qrow = &q[row * e..(row + 1) * e];
        for (j, o) in o.iter_mut().enumerate() {
            let krow = &k[(kh * dims.s + j) * e..(kh * dims.s + j + 1) * e];
            *o = dot(dtype, qrow.iter().copied().zip(krow.iter().copied()));
        }
    }
    Ok(out)
}

/// Softmax over each row of `s` values, `exp(x - max) / sum`, each step rounded to `dtype`.
/// A row of all -inf is NaN, as in the reference. NumPy sums bfloat16 (ml_dtypes) one
/// element at a time, rounding each partial sum; float16 and wider in float, rounded once.
fn softmax_rows(scores: &mut [f64], s: usize, dtype: DType) {
    let r = |x: f64| round_to(dtype, x);
    let stepwise = dtype == DType::Bf16;
    for row in scores.chunks_exact_mut(s.max(1)) {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, |m, x| {
            if x.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(x)
            }
        });
        let mut sum = 0.0;
        for x in row.iter_mut() {
            *x = r(r(*x - m).exp());
            sum = if stepwise { r(sum + *x) } else { sum + *x };
        }
        let sum = r(sum);
        for x in row.iter_mut() {
            *x = r(*x / sum);
        }
    }
}

/// Runs a modifier graph on `values` (`[b, hq, l, s]` of `dtype`); its output, of that
/// shape, cast to `dtype`.
fn modify(
    g: &Graph,
    values: Vec<f64>,
    dtype: DType,
    dims: &Dims,
    inputs: &[Option<&Value>],
) -> Result<Vec<f64>> {
    let shape = dims.scores();
    let arg = store(dtype, shape.clone(), &values)?;
    drop(values);
    let outs = run_graph(g, &[Some(Value::Tensor(arg))], &captured(g, inputs)?)?;
    let [out] = outs.as_slice() else {
        return Err(Error::compute(format!(
            "the graph returned {} values; a modifier returns 1",
            outs.len()
        )));
    };
    let t: &Tensor = out.as_tensor().map_err(|e| e.context("its output"))?;
    if t.shape() != shape.as_slice() {
        return Err(Error::compute(format!(
            "the graph returned shape {:?}; a modifier keeps the shape {shape:?} it is given",
            t.shape()
        )));
    }
    if !t.dtype().is_numeric() {
        return Err(Error::compute(format!(
            "the graph returned a {} tensor; a modifier returns numbers",
            t.dtype()
        )));
    }
    Ok(t.to_f64_vec()?
        .into_iter()
        .map(|x| round_to(dtype, x))
        .collect())
}

/// `probs @ V` per head in the compute dtype (V cast to it), rounded to the input dtype:
/// `[b, hq, l, ev]`.
fn weigh_values(
    dims: &Dims,
    probs: &[f64],
    v: &[f64],
    compute: DType,
    dtype: DType,
) -> Result<Vec<f64>> {
    let v = buf::collected(v.iter().map(|&x| round_to(compute, x)), "FlexAttention's V")?;
    let n = buf::count(
        &[dims.b, dims.hq, dims.l, dims.ev],
        "FlexAttention's output",
    )?;
    let mut out = buf::zeroed::<f64>(n, "FlexAttention's output")?;
    let (s, ev, group) = (dims.s, dims.ev, dims.group());
    for (row, o) in out.chunks_exact_mut(ev.max(1)).enumerate() {
        let bh = row / dims.l;
        let (b, h) = (bh / dims.hq, bh % dims.hq);
        let kh = b * dims.hkv + h / group;
        let p = &probs[row * s..(row + 1) * s];
        for (c, o) in o.iter_mut().enumerate() {
            let column = (0..s).map(|j| v[(kh * s + j) * ev + c]);
            *o = round_to(dtype, dot(compute, p.iter().copied().zip(column)));
        }
    }
    Ok(out)
}
