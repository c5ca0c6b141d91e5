//! MatMul, MatMulInteger, QLinearMatMul and Gemm.

use xnpu_core::broadcast::{broadcast_shapes, BroadcastIndex};
use xnpu_core::num::{load_floats, round_to, store_floats};
use xnpu_core::Num;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::Gemm;

use super::num::{
    int_range, ints_from_f64, ints_i32, matmul_acc, matmul_bt, numel, transpose, with_real,
};
use crate::args::{opt_tensor, tensor};

/// The shapes of `numpy.matmul` of operands shaped `ash` and `bsh`: a 1-D A is a row, a 1-D
/// B a column (and that dim is left out of the result); the batch dims broadcast.
pub(crate) struct MatMulShapes {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub abatch: Vec<usize>,
    pub bbatch: Vec<usize>,
    /// The broadcast batch.
    pub batch: Vec<usize>,
    /// The result's shape.
    pub out: Vec<usize>,
}

impl MatMulShapes {
    pub fn new(ash: &[usize], bsh: &[usize]) -> Result<MatMulShapes> {
        if ash.is_empty() || bsh.is_empty() {
            return Err(Error::compute(format!(
                "matmul operands must have rank >= 1, got shapes {ash:?} and {bsh:?}"
            )));
        }
        let a2: Vec<usize> = if ash.len() == 1 {
            vec![1, ash[0]]
        } else {
            ash.to_vec()
        };
        let b2: Vec<usize> = if bsh.len() == 1 {
            vec![bsh[0], 1]
        } else {
            bsh.to_vec()
        };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != kb {
            return Err(Error::compute(format!(
                "matmul inner dims differ: {ash:?} @ {bsh:?} ({k} vs {kb})"
            )));
        }
        let abatch = a2[..a2.len() - 2].to_vec();
        let bbatch = b2[..b2.len() - 2].to_vec();
        let batch = broadcast_shapes(&[&abatch, &bbatch])?;
        let mut out = batch.clone();
        if ash.len() > 1 {
            out.push(m);
        }
        if bsh.len() > 1 {
            out.push(n);
        }
        Ok(MatMulShapes {
            m,
            k,
            n,
            abatch,
            bbatch,
            batch,
            out,
        })
    }
}

/// `numpy.matmul` of row-major `a` (shape `ash`) and `b` (shape `bsh`): the result and its
/// shape.
pub fn batched_matmul<T: Num>(
    a: &[T],
    ash: &[usize],
    b: &[T],
    bsh: &[usize],
) -> Result<(Vec<T>, Vec<usize>)> {
    let MatMulShapes {
        m,
        k,
        n,
        abatch,
        bbatch,
        batch,
        out: out_shape,
    } = MatMulShapes::new(ash, bsh)?;
    let total = numel(&out_shape)?;
    let mut out = buf::filled(total, T::default(), "the matmul's output")?;
    let aoff = BroadcastIndex::new(&abatch, &batch)?;
    let boff = BroadcastIndex::new(&bbatch, &batch)?;
    for (bi, (ai, bj)) in aoff.zip(boff).enumerate() {
        let am = &a[ai * m * k..(ai + 1) * m * k];
        let bm = &b[bj * k * n..(bj + 1) * k * n];
        matmul_acc(am, bm, &mut out[bi * m * n..(bi + 1) * m * n], m, k, n);
    }
    Ok((out, out_shape))
}

pub fn matmul(inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = tensor(inputs, 0)?;
    let b = tensor(inputs, 1)?;
    if a.dtype() != b.dtype() {
        return Err(Error::compute(format!(
            "MatMul operands must have one dtype, got {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    let dtype = a.dtype();
    let out = with_real!(dtype, R => {
        let (v, shape) = batched_matmul(&load_floats::<R>(a)?, a.shape(), &load_floats::<R>(b)?, b.shape())?;
        store_floats(dtype, shape, v)?
    }, _ => xnpu_core::with_int_type!(dtype, T => {
        let (v, shape) = batched_matmul(&a.as_slice::<T>()?, a.shape(), &b.as_slice::<T>()?, b.shape())?;
        Tensor::from_vec(shape, v)?
    }, _ => return Err(Error::compute(format!("MatMul does not support {dtype}")))));
    Ok(vec![out.into()])
}

/// Reads a zero point for a matmul operand of shape `shape` as i32 values broadcast to that
/// shape. A 1-D zero point is per row (`rows = true`, length M) or per column (length N);
/// higher ranks broadcast numpy-style.
fn zero_point_full(zp: Option<&Tensor>, shape: &[usize], rows: bool) -> Result<Vec<i32>> {
    let n = numel(shape)?;
    let Some(zp) = zp else {
        return buf::zeroed(n, "a zero point broadcast over its operand");
    };
    let v = ints_i32(zp)?;
    param_full(&v, zp.shape(), shape, rows)
}

/// Broadcasts parameter values `v` (shape `psh`) of a matmul operand of shape `shape`.
fn param_full<T: Copy>(v: &[T], psh: &[usize], shape: &[usize], rows: bool) -> Result<Vec<T>> {
    let n = numel(shape)?;
    const WHAT: &str = "a scale or zero point broadcast over its operand";
    if v.len() == 1 {
        return buf::filled(n, v[0], WHAT);
    }
    let psh: Vec<usize> = if psh.len() == 1 && rows && shape.len() >= 2 {
        vec![psh[0], 1]
    } else {
        psh.to_vec()
    };
    let unfit = || {
        Error::compute(format!(
            "a scale or zero point of shape {psh:?} does not fit an operand of shape {shape:?}"
        ))
    };
    if v.len() != numel(&psh)? {
        return Err(unfit());
    }
    let idx = BroadcastIndex::new(&psh, shape).map_err(|_| unfit())?;
    buf::try_collected(n, idx.map(|i| Ok(v[i])), WHAT)
}

pub fn matmul_integer(inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = tensor(inputs, 0)?;
    let b = tensor(inputs, 1)?;
    let az = zero_point_full(opt_tensor(inputs, 2)?, a.shape(), true)?;
    let bz = zero_point_full(opt_tensor(inputs, 3)?, b.shape(), false)?;
    let av = shifted(ints_i32(a)?, &az);
    let bv = shifted(ints_i32(b)?, &bz);
    let (v, shape) = batched_matmul(&av, a.shape(), &bv, b.shape())?;
    Ok(vec![Tensor::from_vec(shape, v)?.into()])
}

/// `x - zero_point` element by element, in place (wrapping, as i32 products do).
fn shifted(mut x: Vec<i32>, zp: &[i32]) -> Vec<i32> {
    x.iter_mut()
        .zip(zp)
        .for_each(|(x, z)| *x = x.wrapping_sub(*z));
    x
}

/// Multiplies `a * b` then divides by `c` with each step rounded to float dtype `dtype`.
fn scale_factor(dtype: DType, a: f64, b: f64, c: f64) -> f64 {
    let p = round_to(dtype, a * b);
    round_to(dtype, p / c)
}

/// A scale tensor's values as f64 (f32, f16 or bf16).
fn scales(t: &Tensor) -> Result<Vec<f64>> {
    if !t.dtype().is_float() {
        return Err(Error::compute(format!(
            "a scale must be a float tensor, got {}",
            t.dtype()
        )));
    }
    t.to_f64_vec()
}

pub fn qlinear_matmul(inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = tensor(inputs, 0)?;
    let a_scale = tensor(inputs, 1)?;
    let b = tensor(inputs, 3)?;
    let b_scale = tensor(inputs, 4)?;
    let y_scale = tensor(inputs, 6)?;
    let y_zp = opt_tensor(inputs, 7)?;
    let out_dtype = y_zp.map_or(a.dtype(), |z| z.dtype());
    let (lo, hi) = int_range(out_dtype)?;
    let sdtype = a_scale.dtype();
    let az = zero_point_full(opt_tensor(inputs, 2)?, a.shape(), true)?;
    let bz = zero_point_full(opt_tensor(inputs, 5)?, b.shape(), false)?;
    let av = shifted(ints_i32(a)?, &az);
    let bv = shifted(ints_i32(b)?, &bz);
    let (c, shape) = batched_matmul(&av, a.shape(), &bv, b.shape())?;

    // Per-element scale factors and output zero point over the output shape.
    let (asv, bsv, ysv) = (scales(a_scale)?, scales(b_scale)?, scales(y_scale)?);
    let yzv: Vec<f64> = match y_zp {
        Some(z) => ints_i32(z)?.iter().map(|&v| v as f64).collect(),
        None => vec![0.0],
    };
    let vectors = a.rank() < 2 || b.rank() < 2;
    let per_tensor = [asv.len(), bsv.len(), ysv.len(), yzv.len()]
        .iter()
        .all(|&l| l == 1);
    if vectors && !per_tensor {
        return Err(Error::compute(
            "QLinearMatMul with a 1-D operand needs per-tensor scales and zero points",
        ));
    }
    let out = if per_tensor {
        let f = scale_factor(sdtype, asv[0], bsv[0], ysv[0]);
        buf::collected(
            c.iter()
                .map(|&acc| (acc as f64 * f + yzv[0]).round_ties_even().clamp(lo, hi)),
            "QLinearMatMul's output",
        )?
    } else {
        // Row parameters broadcast as [..., M, 1], column parameters as [..., 1, N].
        let r = shape.len();
        let mut rows_shape = shape.clone();
        rows_shape[r - 1] = 1;
        let as_rows = param_full(&asv, a_scale.shape(), &rows_shape, true)?;
        let mut as_full = buf::reserved(c.len(), "QLinearMatMul's scales")?;
        for row in as_rows {
            as_full.extend(std::iter::repeat_n(row, shape[r - 1]));
        }
        let bs_full = param_full(&bsv, b_scale.shape(), &shape, false)?;
        let ys_full = param_full(&ysv, y_scale.shape(), &shape, false)?;
        let yz_shape = y_zp.map_or(vec![1], |z| z.shape().to_vec());
        let yz_full = param_full(&yzv, &yz_shape, &shape, false)?;
        buf::collected(
            c.iter().enumerate().map(|(i, &acc)| {
                let f = scale_factor(sdtype, as_full[i], bs_full[i], ys_full[i]);
                (acc as f64 * f + yz_full[i])
                    .round_ties_even()
                    .clamp(lo, hi)
            }),
            "QLinearMatMul's output",
        )?
    };
    Ok(vec![ints_from_f64(out_dtype, shape, &out)?.into()])
}

/// C broadcast unidirectionally to `[m, n]`, as `[m * n]` values.
fn gemm_bias<T: Copy>(c: &[T], csh: &[usize], m: usize, n: usize) -> Result<Vec<T>> {
    if csh.len() > 2 {
        return Err(Error::compute(format!(
            "Gemm C must have rank <= 2, got shape {csh:?}"
        )));
    }
    let unfit = || {
        Error::compute(format!(
            "Gemm C of shape {csh:?} does not broadcast to [{m}, {n}]"
        ))
    };
    let idx = BroadcastIndex::new(csh, &[m, n]).map_err(|_| unfit())?;
    buf::try_collected(
        numel(&[m, n])?,
        idx.map(|i| Ok(c[i])),
        "Gemm's C broadcast to the output",
    )
}

fn gemm_typed<T: Num>(
    op: &Gemm,
    a: &[T],
    ash: &[usize],
    b: &[T],
    bsh: &[usize],
    c: Option<(&[T], &[usize])>,
    float: bool,
) -> Result<(Vec<T>, Vec<usize>)> {
    if ash.len() != 2 || bsh.len() != 2 {
        return Err(Error::compute(format!(
            "Gemm needs 2-D A and B, got shapes {ash:?} and {bsh:?}"
        )));
    }
    let (m, k) = if op.trans_a {
        (ash[1], ash[0])
    } else {
        (ash[0], ash[1])
    };
    let (kb, n) = if op.trans_b {
        (bsh[1], bsh[0])
    } else {
        (bsh[0], bsh[1])
    };
    if k != kb {
        return Err(Error::compute(format!(
            "Gemm inner dims differ: A {ash:?} (transA={}) and B {bsh:?} (transB={})",
            op.trans_a, op.trans_b
        )));
    }
    let at;
    let a = if op.trans_a {
        at = transpose(a, ash[0], ash[1])?;
        &at[..]
    } else {
        a
    };
    let mut acc = buf::filled(numel(&[m, n])?, T::default(), "Gemm's output")?;
    if op.trans_b {
        // B is [N, K]: rows of A and B are both contiguous along K.
        matmul_bt(a, b, &mut acc, m, k, n);
    } else {
        matmul_acc(a, b, &mut acc, m, k, n);
    }
    let bias = match c {
        Some((c, csh)) if op.beta != 0.0 => Some(gemm_bias(c, csh, m, n)?),
        _ => None,
    };
    let (alpha, beta) = (op.alpha as f64, op.beta as f64);
    if float {
        let al = T::from_f64(alpha);
        let be = T::from_f64(beta);
        for (i, v) in acc.iter_mut().enumerate() {
            let mut y = v.times(al);
            if let Some(bias) = &bias {
                y = y.plus(bias[i].times(be));
            }
            *v = y;
        }
    } else if alpha != 1.0 || beta != 1.0 {
        for (i, v) in acc.iter_mut().enumerate() {
            let mut y = v.to_f64() * alpha;
            if let Some(bias) = &bias {
                y += bias[i].to_f64() * beta;
            }
            *v = T::from_f64(y);
        }
    } else if let Some(bias) = &bias {
        for (v, b) in acc.iter_mut().zip(bias) {
            *v = v.plus(*b);
        }
    }
    Ok((acc, vec![m, n]))
}

pub fn gemm(op: &Gemm, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let a = tensor(inputs, 0)?;
    let b = tensor(inputs, 1)?;
    let c = opt_tensor(inputs, 2)?;
    let dtype = a.dtype();
    for t in [Some(b), c].into_iter().flatten() {
        if t.dtype() != dtype {
            return Err(Error::compute(format!(
                "Gemm inputs must have one dtype, got {dtype} and {}",
                t.dtype()
            )));
        }
    }
    let out = with_real!(dtype, R => {
        let cv = c.map(load_floats::<R>).transpose()?;
        let cc = cv.as_deref().zip(c.map(|c| c.shape()));
        let (v, shape) = gemm_typed(op, &load_floats::<R>(a)?, a.shape(), &load_floats::<R>(b)?, b.shape(), cc, true)?;
        store_floats(dtype, shape, v)?
    }, _ => xnpu_core::with_int_type!(dtype, T => {
        let cv = c.map(|c| c.as_slice::<T>()).transpose()?;
        let cc = cv.as_deref().zip(c.map(|c| c.shape()));
        let (v, shape) = gemm_typed(op, &a.as_slice::<T>()?, a.shape(), &b.as_slice::<T>()?, b.shape(), cc, false)?;
        Tensor::from_vec(shape, v)?
    }, _ => return Err(Error::compute(format!("Gemm does not support {dtype}")))));
    Ok(vec![out.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_broadcast_and_vectors_squeeze() {
        // [2, 1, 1, 2] @ [3, 2, 1] -> [2, 3, 1, 1]
        let a: Vec<f32> = (0..4).map(|v| v as f32).collect();
        let b: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let (v, s) = batched_matmul(&a, &[2, 1, 1, 2], &b, &[3, 2, 1]).unwrap();
        assert_eq!(s, vec![2, 3, 1, 1]);
        // batch (0, 1): a = [0, 1], b = [2, 3] -> 3
        assert_eq!(v[1], 3.0);
        let (v, s) = batched_matmul(&[1.0f32, 2.0], &[2], &[3.0, 4.0], &[2]).unwrap();
        assert_eq!((v, s), (vec![11.0], vec![]));
    }

    #[test]
    fn mismatched_inner_dims_are_an_error() {
        let err = batched_matmul(&[0i32; 6], &[2, 3], &[0i32; 4], &[2, 2]).unwrap_err();
        assert!(err.to_string().contains("inner dims"), "{err}");
    }

    #[test]
    fn gemm_bias_broadcasts_rows_and_columns() {
        assert_eq!(gemm_bias(&[1, 2], &[2], 2, 2).unwrap(), vec![1, 2, 1, 2]);
        assert_eq!(gemm_bias(&[1, 2], &[2, 1], 2, 2).unwrap(), vec![1, 1, 2, 2]);
        assert!(gemm_bias(&[1, 2, 3], &[3], 2, 2).is_err());
    }
}
