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
        self.hq.checked_div(self.hkv).unwrap_or(1)
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
    crate::reduce::softmax::rounded_rows(&mut scores, dims.s, compute);
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

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::ValueType;
    use xnpu_graph::ir::{Capture, Node, Op};
    use xnpu_ops::elementwise::{self as el, Binary, BinaryKind};

    fn op() -> FlexAttention {
        FlexAttention {
            scale: None,
            softmax_precision: None,
            score_mod: None,
            prob_mod: None,
        }
    }

    /// Values `0.1, 0.2, ...` wrapped below 1, shaped `dims`.
    fn f64s(dims: &[usize], seed: usize) -> Tensor {
        let n = dims.iter().product();
        let v = (0..n)
            .map(|i| ((i * 7 + seed * 13) % 17) as f64 / 17.0)
            .collect();
        Tensor::from_vec(dims.to_vec(), v).unwrap()
    }

    fn run_on(op: &FlexAttention, ts: &[Tensor]) -> Result<Tensor> {
        let vals: Vec<Value> = ts.iter().cloned().map(Value::Tensor).collect();
        let refs: Vec<Option<&Value>> = vals.iter().map(Some).collect();
        let mut outs = run(op, &refs)?;
        Ok(outs.remove(0).into_tensor().unwrap())
    }

    /// Attention in plain f64: `softmax(f(Q·s @ (K·s)^T)) @ V`, `g` applied to the
    /// probabilities, with query head `h` on K/V head `h / (hq / hkv)`.
    fn naive(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        f: impl Fn(f64) -> f64,
        g: impl Fn(f64) -> f64,
    ) -> Vec<f64> {
        let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
        let (q, k, v) = (
            q.to_f64_vec().unwrap(),
            k.to_f64_vec().unwrap(),
            v.to_f64_vec().unwrap(),
        );
        let [b, hq, l, e] = [qs[0], qs[1], qs[2], qs[3]];
        let [hkv, s, ev] = [ks[1], ks[2], vs[3]];
        let sc = ((1.0 / (e as f64).sqrt()) as f32).sqrt() as f64;
        let mut y = vec![];
        for bi in 0..b {
            for h in 0..hq {
                let kh = bi * hkv + h / (hq / hkv);
                for i in 0..l {
                    let qr = &q[((bi * hq + h) * l + i) * e..][..e];
                    let p: Vec<f64> = (0..s)
                        .map(|j| {
                            let kr = &k[(kh * s + j) * e..][..e];
                            f(qr.iter().zip(kr).map(|(a, b)| a * sc * (b * sc)).sum())
                        })
                        .collect();
                    let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = p.iter().map(|x| (x - m).exp()).sum();
                    let p: Vec<f64> = p.iter().map(|x| g((x - m).exp() / z)).collect();
                    for c in 0..ev {
                        y.push((0..s).map(|j| p[j] * v[(kh * s + j) * ev + c]).sum());
                    }
                }
            }
        }
        y
    }

    fn assert_close(got: &Tensor, want: &[f64]) {
        let got = got.to_f64_vec().unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-12, "at {i}: got {g}, want {w}");
        }
    }

    /// A modifier `x ↦ x ⊙ c`: `c` a constant, or (`capture`) the value the node reads
    /// through input 3.
    fn times(c: f64, capture: bool) -> Graph {
        let mut g = Graph {
            name: "times".into(),
            ..Graph::default()
        };
        let x = g.add_value("x", ValueType::Unknown);
        let c_id = g.add_value("c", ValueType::Unknown);
        let y = g.add_value("y", ValueType::Unknown);
        if capture {
            g.captures.push(Capture {
                name: "c".into(),
                inner: c_id,
                outer_input: 3,
            });
        } else {
            g.values[c_id].constant = Some(Tensor::scalar(c));
        }
        g.nodes.push(Node {
            name: "mul".into(),
            op: Op::Elementwise(el::Op::Binary(Binary::new(BinaryKind::Mul))),
            inputs: vec![Some(x), Some(c_id)],
            outputs: vec![Some(y)],
        });
        g.inputs.push(x);
        g.outputs.push(y);
        g
    }

    /// A modifier whose output is the constant `t`, whatever it is given.
    fn constant(t: Tensor) -> Graph {
        let mut g = Graph::default();
        let x = g.add_value("x", ValueType::Unknown);
        let y = g.add_value("y", ValueType::Unknown);
        g.values[y].constant = Some(t);
        g.inputs.push(x);
        g.outputs.push(y);
        g
    }

    #[test]
    fn gqa_with_a_wider_value_head_matches_plain_attention() {
        let (q, k, v) = (
            f64s(&[2, 4, 3, 5], 1),
            f64s(&[2, 2, 6, 5], 2),
            f64s(&[2, 2, 6, 7], 3),
        );
        let y = run_on(&op(), &[q.clone(), k.clone(), v.clone()]).unwrap();
        assert_eq!(y.shape(), &[2, 4, 3, 7]);
        assert_eq!(y.dtype(), DType::F64);
        assert_close(&y, &naive(&q, &k, &v, |x| x, |p| p));
    }

    #[test]
    fn score_mod_runs_before_softmax_and_prob_mod_after() {
        let (q, k, v) = (
            f64s(&[1, 2, 3, 4], 1),
            f64s(&[1, 2, 5, 4], 2),
            f64s(&[1, 2, 5, 4], 3),
        );
        let o = FlexAttention {
            score_mod: Some(times(3.0, false)),
            prob_mod: Some(times(0.5, false)),
            ..op()
        };
        let y = run_on(&o, &[q.clone(), k.clone(), v.clone()]).unwrap();
        assert_close(&y, &naive(&q, &k, &v, |x| 3.0 * x, |p| 0.5 * p));
    }

    #[test]
    fn a_modifier_reads_the_values_it_captures_from_the_nodes_extra_inputs() {
        let (q, k, v) = (
            f64s(&[1, 1, 2, 3], 1),
            f64s(&[1, 1, 4, 3], 2),
            f64s(&[1, 1, 4, 2], 3),
        );
        let o = FlexAttention {
            score_mod: Some(times(0.0, true)),
            ..op()
        };
        let c = Tensor::scalar(-2.0f64);
        let y = run_on(&o, &[q.clone(), k.clone(), v.clone(), c]).unwrap();
        assert_close(&y, &naive(&q, &k, &v, |x| -2.0 * x, |p| p));
        let err = run_on(&o, &[q, k, v]).unwrap_err().to_string();
        assert!(err.contains("captured value \"c\" is absent"), "{err}");
    }

    #[test]
    fn a_modifier_that_changes_the_shape_is_an_error_naming_it() {
        let ts = [
            f64s(&[1, 1, 2, 3], 1),
            f64s(&[1, 1, 4, 3], 2),
            f64s(&[1, 1, 4, 2], 3),
        ];
        let o = FlexAttention {
            prob_mod: Some(constant(Tensor::scalar(1.0f64))),
            ..op()
        };
        let err = run_on(&o, &ts).unwrap_err().to_string();
        assert!(
            err.contains("prob_mod") && err.contains("[1, 1, 2, 4]"),
            "{err}"
        );
    }

    #[test]
    fn a_row_masked_everywhere_is_nan_as_in_the_reference() {
        let ts = [
            f64s(&[1, 1, 2, 3], 1),
            f64s(&[1, 1, 4, 3], 2),
            f64s(&[1, 1, 4, 2], 3),
        ];
        let mask = Tensor::from_vec(vec![1, 1, 2, 4], vec![f64::NEG_INFINITY; 8]).unwrap();
        let o = FlexAttention {
            score_mod: Some(constant(mask)),
            ..op()
        };
        let y = run_on(&o, &ts).unwrap().to_f64_vec().unwrap();
        assert!(y.iter().all(|x| x.is_nan()), "{y:?}");
    }

    #[test]
    fn no_keys_give_zeros_and_no_queries_nothing() {
        let y = run_on(
            &op(),
            &[
                f64s(&[1, 2, 3, 4], 1),
                f64s(&[1, 1, 0, 4], 2),
                f64s(&[1, 1, 0, 5], 3),
            ],
        )
        .unwrap();
        assert_eq!(y.shape(), &[1, 2, 3, 5]);
        assert!(y.to_f64_vec().unwrap().iter().all(|&x| x == 0.0));
        let y = run_on(
            &op(),
            &[
                f64s(&[1, 2, 0, 4], 1),
                f64s(&[1, 1, 3, 4], 2),
                f64s(&[1, 1, 3, 5], 3),
            ],
        )
        .unwrap();
        assert_eq!(y.shape(), &[1, 2, 0, 5]);
    }

    #[test]
    fn shapes_that_disagree_are_errors_saying_which() {
        type Case<'a> = (&'a [usize], &'a [usize], &'a [usize], &'a str);
        let cases: [Case; 6] = [
            (&[1, 2, 3], &[1, 2, 3, 4], &[1, 2, 3, 4], "4-D"),
            (&[1, 2, 3, 4], &[2, 2, 3, 4], &[1, 2, 3, 4], "batch"),
            (
                &[1, 2, 3, 4],
                &[1, 2, 3, 4],
                &[1, 1, 3, 4],
                "number of heads",
            ),
            (
                &[1, 2, 3, 4],
                &[1, 2, 3, 4],
                &[1, 2, 5, 4],
                "sequence length",
            ),
            (&[1, 2, 3, 4], &[1, 2, 3, 5], &[1, 2, 3, 4], "head size"),
            (&[1, 3, 3, 4], &[1, 2, 3, 4], &[1, 2, 3, 4], "multiple"),
        ];
        for (q, k, v, what) in cases {
            let err = run_on(&op(), &[f64s(q, 0), f64s(k, 0), f64s(v, 0)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{q:?} {k:?} {v:?}: {err}");
        }
        let half = Tensor::from_vec(vec![1, 2, 3, 4], vec![half::f16::ONE; 24]).unwrap();
        let err = run_on(&op(), &[f64s(&[1, 2, 3, 4], 0), half.clone(), half])
            .unwrap_err()
            .to_string();
        assert!(err.contains("one dtype"), "{err}");
    }

    #[test]
    fn f16_scores_round_to_f16_and_softmax_runs_in_f32_or_as_asked() {
        // One key: every probability is 1 whatever the precision, so Y is V rounded.
        let h = |v: Vec<f32>, dims: Vec<usize>| {
            Tensor::from_vec(
                dims,
                v.into_iter().map(half::f16::from_f32).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let ts = [
            h(vec![0.3, 0.7], vec![1, 1, 1, 2]),
            h(vec![0.1, 0.9], vec![1, 1, 1, 2]),
            h(vec![0.123, 4.56], vec![1, 1, 1, 2]),
        ];
        for precision in [None, Some(DType::F16), Some(DType::Bf16), Some(DType::F64)] {
            let o = FlexAttention {
                softmax_precision: precision,
                ..op()
            };
            let y = run_on(&o, &ts).unwrap();
            assert_eq!(y.dtype(), DType::F16);
            let want = ts[2].to_f64_vec().unwrap();
            let c = o.compute_dtype(DType::F16);
            let want: Vec<f64> = want
                .iter()
                .map(|&x| round_to(DType::F16, round_to(c, x)))
                .collect();
            assert_eq!(y.to_f64_vec().unwrap(), want, "{precision:?}");
        }
    }
}
