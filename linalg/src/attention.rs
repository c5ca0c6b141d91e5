//! Scaled dot-product attention on 4-D `[batch, heads, seq, head]` fp32 tensors:
//! `Y = softmax(scale Q K^T + mask) V` per (batch, head), one GEMM for the scores, a
//! vectorised softmax over each row, one GEMM for the output. Heads run in parallel, each
//! with its own scores buffer; grouped-query attention maps query head `h` to key/value head
//! `h / (q_heads / kv_heads)`.

use rayon::prelude::*;
use xnpu_core::{Error, Result};

use crate::math::{softmax_row, SoftmaxOut};
use crate::sgemm::{sgemm_on, MatRef};

/// An additive mask broadcast to `[batch, q_heads, q_seq, kv_seq]`: element
/// `(b, h, i, j)` is `data[b * strides[0] + h * strides[1] + i * strides[2] + j]` (a stride
/// of 0 broadcasts that dim; the last dim is always dense and `kv_seq` long).
#[derive(Clone, Copy, Debug)]
pub struct Mask<'a> {
    pub data: &'a [f32],
    pub strides: [usize; 3],
}

/// The dims of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub q_heads: usize,
    pub kv_heads: usize,
    pub q_seq: usize,
    pub kv_seq: usize,
    /// Q and K's last dim.
    pub head: usize,
    /// V's (and Y's) last dim.
    pub v_head: usize,
}

impl Dims {
    fn check(&self, q: usize, k: usize, v: usize, y: usize) -> Result<()> {
        let n = |dims: &[usize]| {
            dims.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| Error::compute("attention sizes overflow"))
        };
        let d = self;
        let want = [
            n(&[d.batch, d.q_heads, d.q_seq, d.head])?,
            n(&[d.batch, d.kv_heads, d.kv_seq, d.head])?,
            n(&[d.batch, d.kv_heads, d.kv_seq, d.v_head])?,
            n(&[d.batch, d.q_heads, d.q_seq, d.v_head])?,
        ];
        if [q, k, v, y] != want {
            return Err(Error::compute(format!(
                "attention buffers of {:?} elements do not match {d:?}",
                [q, k, v, y]
            )));
        }
        if d.kv_heads == 0 || !d.q_heads.is_multiple_of(d.kv_heads) {
            return Err(Error::compute(format!(
                "{} query heads are not a multiple of {} key/value heads",
                d.q_heads, d.kv_heads
            )));
        }
        n(&[d.q_seq, d.kv_seq])?;
        Ok(())
    }
}

/// How the scores are formed: `scale Q K^T + mask`, with keys `j > i` hidden from query `i`
/// when `causal`.
#[derive(Clone, Copy, Debug)]
pub struct Scores<'a> {
    pub scale: f32,
    pub mask: Option<Mask<'a>>,
    pub causal: bool,
}

/// `Y = softmax(scores) V`. A query whose keys are all hidden (-inf) gets a zero row, as
/// ONNX's Attention defines it.
pub fn attention(
    d: Dims,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    scores: Scores<'_>,
    y: &mut [f32],
) -> Result<()> {
    let Scores {
        scale,
        mask,
        causal,
    } = scores;
    d.check(q.len(), k.len(), v.len(), y.len())?;
    let (qn, kn, vn, yn) = (
        d.q_seq * d.head,
        d.kv_seq * d.head,
        d.kv_seq * d.v_head,
        d.q_seq * d.v_head,
    );
    if y.is_empty() {
        return Ok(());
    }
    if let Some(m) = mask {
        // The last element the mask is read at, in checked arithmetic (the strides are the
        // caller's).
        let last = [
            (d.batch - 1, m.strides[0]),
            (d.q_heads - 1, m.strides[1]),
            (d.q_seq - 1, m.strides[2]),
        ]
        .iter()
        .try_fold(d.kv_seq, |acc, &(i, s)| {
            i.checked_mul(s).and_then(|v| v.checked_add(acc))
        });
        if d.kv_seq > 0 && last.is_none_or(|l| l > m.data.len()) {
            return Err(Error::compute(
                "the attention mask is smaller than its strides say",
            ));
        }
    }
    let group = d.q_heads / d.kv_heads;
    let heads = d.batch * d.q_heads;
    // Heads in parallel with serial products, or (one head) the products threaded.
    let parallel_heads = heads > 1 && rayon::current_num_threads() > 1;
    let threaded = !parallel_heads;
    let one = |(bh, out): (usize, &mut [f32])| -> Result<()> {
        let (b, h) = (bh / d.q_heads, bh % d.q_heads);
        let kvh = b * d.kv_heads + h / group;
        let qm = MatRef::row_major(&q[bh * qn..], d.q_seq, d.head)?;
        let km = MatRef::row_major(&k[kvh * kn..], d.kv_seq, d.head)?;
        let vm = MatRef::row_major(&v[kvh * vn..], d.kv_seq, d.v_head)?;
        let mut s = crate::buf::floats(d.q_seq * d.kv_seq, "attention scores")?;
        if d.kv_seq > 0 {
            sgemm_on(qm, km.t(), &mut s, d.kv_seq, scale, false, threaded)?;
            softmax_scores(&mut s, d.kv_seq, mask.map(|m| m.at(b, h)), causal);
        }
        let pm = MatRef::row_major(&s, d.q_seq, d.kv_seq)?;
        sgemm_on(pm, vm, out, d.v_head, 1.0, false, threaded)?;
        xnpu_core::recycle::give(s);
        Ok(())
    };
    if parallel_heads {
        y.par_chunks_mut(yn).enumerate().try_for_each(one)
    } else {
        y.chunks_mut(yn).enumerate().try_for_each(one)
    }
}

impl<'a> Mask<'a> {
    /// The rows of (batch `b`, head `h`): the data from its first row, and the row stride.
    fn at(self, b: usize, h: usize) -> (&'a [f32], usize) {
        (
            &self.data[b * self.strides[0] + h * self.strides[1]..],
            self.strides[2],
        )
    }
}

crate::math::vectorised_fn! {
    /// Softmax over each row of the scores `s` (rows of `n`), after adding the mask's rows
    /// (`(data, row stride)`) and hiding keys past the row's index when `causal`.
    fn softmax_scores(s: &mut [f32], n: usize, mask: Option<(&[f32], usize)>, causal: bool) {
        for (i, row) in s.chunks_mut(n).enumerate() {
            if let Some((m, stride)) = mask {
                for (x, &a) in row.iter_mut().zip(&m[i * stride..i * stride + n]) {
                    *x += a;
                }
            }
            if causal && i + 1 < n {
                row[i + 1..].fill(f32::NEG_INFINITY);
            }
            // A query that sees no key gets all-zero probabilities (a zero output row), as
            // ONNX's Attention defines it.
            if row.iter().all(|&x| x == f32::NEG_INFINITY) {
                row.fill(0.0);
                continue;
            }
            softmax_row(row, SoftmaxOut::Softmax);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values;

    /// The definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        d: Dims,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: Option<&[f32]>,
        causal: bool,
        scale: f32,
    ) -> Vec<f64> {
        let mut y = vec![0.0; d.batch * d.q_heads * d.q_seq * d.v_head];
        let group = d.q_heads / d.kv_heads;
        for b in 0..d.batch {
            for h in 0..d.q_heads {
                let kvh = b * d.kv_heads + h / group;
                let bh = b * d.q_heads + h;
                for i in 0..d.q_seq {
                    let mut s: Vec<f64> = (0..d.kv_seq)
                        .map(|j| {
                            let dot: f64 = (0..d.head)
                                .map(|c| {
                                    q[(bh * d.q_seq + i) * d.head + c] as f64
                                        * k[(kvh * d.kv_seq + j) * d.head + c] as f64
                                })
                                .sum();
                            let m =
                                mask.map_or(0.0, |m| m[(bh * d.q_seq + i) * d.kv_seq + j] as f64);
                            let c = if causal && j > i {
                                f64::NEG_INFINITY
                            } else {
                                0.0
                            };
                            dot * scale as f64 + m + c
                        })
                        .collect();
                    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    s.iter_mut().for_each(|x| *x = (*x - max).exp());
                    let sum: f64 = s.iter().sum();
                    for c in 0..d.v_head {
                        y[(bh * d.q_seq + i) * d.v_head + c] = (0..d.kv_seq)
                            .map(|j| s[j] / sum * v[(kvh * d.kv_seq + j) * d.v_head + c] as f64)
                            .sum();
                    }
                }
            }
        }
        y
    }

    #[test]
    fn matches_the_definition_with_masks_groups_and_causal() {
        for (i, &(batch, q_heads, kv_heads, q_seq, kv_seq, head, v_head, masked, causal)) in [
            (1, 1, 1, 1, 1, 1, 1, false, false),
            (2, 4, 2, 5, 7, 8, 3, true, false),
            (1, 3, 3, 9, 9, 16, 16, false, true),
            (2, 2, 1, 4, 6, 5, 5, true, true),
        ]
        .iter()
        .enumerate()
        {
            let d = Dims {
                batch,
                q_heads,
                kv_heads,
                q_seq,
                kv_seq,
                head,
                v_head,
            };
            let q = test_values(batch * q_heads * q_seq * head, 1 + i as u64);
            let k = test_values(batch * kv_heads * kv_seq * head, 11 + i as u64);
            let v = test_values(batch * kv_heads * kv_seq * v_head, 21 + i as u64);
            let m = test_values(batch * q_heads * q_seq * kv_seq, 31 + i as u64);
            let mask = masked.then(|| Mask {
                data: &m,
                strides: [q_heads * q_seq * kv_seq, q_seq * kv_seq, kv_seq],
            });
            let mut y = vec![0.0; batch * q_heads * q_seq * v_head];
            let scores = Scores {
                scale: 0.3,
                mask,
                causal,
            };
            attention(d, &q, &k, &v, scores, &mut y).unwrap();
            let want = naive(d, &q, &k, &v, masked.then_some(&m[..]), causal, 0.3);
            for (a, b) in y.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-5, "case {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn a_query_that_sees_no_key_gets_a_zero_row() {
        let d = Dims {
            batch: 1,
            q_heads: 1,
            kv_heads: 1,
            q_seq: 2,
            kv_seq: 2,
            head: 1,
            v_head: 1,
        };
        let m = [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
        let mask = Some(Mask {
            data: &m,
            strides: [0, 0, 2],
        });
        let mut y = [f32::NAN; 2];
        let scores = Scores {
            scale: 1.0,
            mask,
            causal: false,
        };
        attention(d, &[1.0, 1.0], &[1.0, 2.0], &[3.0, 5.0], scores, &mut y).unwrap();
        assert_eq!(y, [0.0, 3.0]);
        // Overflowing strides are an error, not a wrapped index.
        let mask = Some(Mask {
            data: &m,
            strides: [0, 0, usize::MAX],
        });
        let scores = Scores {
            scale: 1.0,
            mask,
            causal: false,
        };
        assert!(attention(d, &[1.0, 1.0], &[1.0, 2.0], &[3.0, 5.0], scores, &mut y).is_err());
    }

    #[test]
    fn mismatched_buffers_are_errors() {
        let d = Dims {
            batch: 1,
            q_heads: 2,
            kv_heads: 2,
            q_seq: 2,
            kv_seq: 2,
            head: 2,
            v_head: 2,
        };
        let mut y = vec![0.0; 8];
        let plain = Scores {
            scale: 1.0,
            mask: None,
            causal: false,
        };
        assert!(attention(d, &[0.0; 7], &[0.0; 8], &[0.0; 8], plain, &mut y).is_err());
        let m = [0.0; 3];
        let mask = Some(Mask {
            data: &m,
            strides: [0, 0, 2],
        });
        let masked = Scores { mask, ..plain };
        assert!(attention(d, &[0.0; 8], &[0.0; 8], &[0.0; 8], masked, &mut y).is_err());
    }
}
