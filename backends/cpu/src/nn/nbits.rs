//! MatMulNBits (see the op's doc for the contract): the reference kernel dequantises one row
//! of W at a time and accumulates in f64.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::MatMulNBits;

use std::borrow::Cow;

use crate::args::{opt_tensor, tensor};
use crate::nn::nbits_fast::{matmul_nbits_f32, NBitsWeights, ZeroPoints as FastZeroPoints};

/// The zero points of the weight blocks.
pub enum ZeroPoints {
    /// `2^(bits-1)`.
    Default,
    /// uint8, `bits` per block, row by row (low bits first).
    Packed(Vec<u8>),
    /// One float per block.
    Float(Vec<f64>),
}

/// The `bits`-bit value at element `i` of `bytes` (low bits first).
fn unpack(bytes: &[u8], i: usize, bits: usize) -> u8 {
    let bit = i * bits;
    (bytes[bit / 8] >> (bit % 8)) & ((1u16 << bits) - 1) as u8
}

/// The op's weight inputs, checked against its attributes.
pub struct Weights<'a> {
    pub op: &'a MatMulNBits,
    pub b: &'a [u8],
    pub scales: Vec<f64>,
    pub zero_points: ZeroPoints,
    /// The block of each k (`g_idx`), when not `k / block_size`.
    pub g_idx: Option<Vec<usize>>,
}

impl<'a> Weights<'a> {
    pub fn from_inputs(op: &'a MatMulNBits, inputs: &[Option<&'a Value>]) -> Result<Self> {
        check_op(op)?;
        let (nb, n, k) = (op.n_blocks(), op.n, op.k);
        let n_nb = buf::count(&[n, nb], "MatMulNBits scales")?;
        let b_t = tensor(inputs, 1)?;
        if b_t.dtype() != DType::U8 {
            return Err(Error::compute(format!(
                "MatMulNBits B must be uint8, got {}",
                b_t.dtype()
            )));
        }
        let b = b_t.raw_bytes();
        if Some(b.len()) != n_nb.checked_mul(op.blob_size()) {
            return Err(Error::compute(format!(
                "MatMulNBits B holds {} bytes, N={n} x {nb} blocks x {} bytes expected",
                b.len(),
                op.blob_size()
            )));
        }
        let s_t = tensor(inputs, 2)?;
        if !s_t.dtype().is_float() || s_t.len() != n_nb {
            return Err(Error::compute(format!(
                "MatMulNBits scales must be {} floats (N={n} x {nb} blocks), got {} of {}",
                n_nb,
                s_t.len(),
                s_t.dtype()
            )));
        }
        let scales = s_t.to_f64_vec()?;
        let zero_points = match opt_tensor(inputs, 3)? {
            None => ZeroPoints::Default,
            Some(z) if z.dtype() == DType::U8 => {
                // nb * bits <= 8 * B's bytes per row: no overflow.
                let per_row = (nb * op.bits as usize).div_ceil(8);
                if Some(z.len()) != n.checked_mul(per_row) {
                    return Err(Error::compute(format!(
                        "MatMulNBits packed zero_points must hold N={n} x {per_row} bytes, got {}",
                        z.len()
                    )));
                }
                ZeroPoints::Packed(z.raw_bytes().to_vec())
            }
            Some(z) if z.dtype().is_float() => {
                if z.len() != n_nb {
                    return Err(Error::compute(format!(
                        "MatMulNBits float zero_points must hold N={n} x {nb} values, got {}",
                        z.len()
                    )));
                }
                ZeroPoints::Float(z.to_f64_vec()?)
            }
            Some(z) => {
                return Err(Error::compute(format!(
                    "MatMulNBits zero_points must be uint8 or float, got {}",
                    z.dtype()
                )))
            }
        };
        let g_idx = match opt_tensor(inputs, 4)? {
            None => None,
            Some(g) => {
                let v = g.to_i64_vec()?;
                if v.len() != k {
                    return Err(Error::compute(format!(
                        "MatMulNBits g_idx must hold K={k} values, got {}",
                        v.len()
                    )));
                }
                Some(
                    v.iter()
                        .map(|&x| {
                            usize::try_from(x).ok().filter(|&x| x < nb).ok_or_else(|| {
                                Error::compute(format!(
                                    "MatMulNBits g_idx value {x} is not a block index (0..{nb})"
                                ))
                            })
                        })
                        .collect::<Result<_>>()?,
                )
            }
        };
        Ok(Weights {
            op,
            b,
            scales,
            zero_points,
            g_idx,
        })
    }

    /// Row `row` of the dequantised W (`K` values).
    pub fn row(&self, row: usize, out: &mut [f64]) {
        let op = self.op;
        let (nb, bits, bs) = (op.n_blocks(), op.bits as usize, op.block_size);
        let blob = op.blob_size();
        let default_zp = (1u32 << (bits - 1)) as f64;
        let zp_row = (nb * bits).div_ceil(8);
        for (k, w) in out.iter_mut().enumerate().take(op.k) {
            let blk = self.g_idx.as_ref().map_or(k / bs, |g| g[k]);
            let at = (row * nb + k / bs) * blob;
            let q = unpack(&self.b[at..at + blob], k % bs, bits) as f64;
            let zp = match &self.zero_points {
                ZeroPoints::Default => default_zp,
                ZeroPoints::Packed(z) => {
                    unpack(&z[row * zp_row..(row + 1) * zp_row], blk, bits) as f64
                }
                ZeroPoints::Float(z) => z[row * nb + blk],
            };
            *w = (q - zp) * self.scales[row * nb + blk];
        }
    }
}

/// The reference kernel: `Y = A · Wᵀ + bias` in f64, rounded once to A's dtype.
pub fn reference(op: &MatMulNBits, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let a_t = tensor(inputs, 0)?;
    let (k, n) = (op.k, op.n);
    let (m, out_shape) = check_a(op, a_t)?;
    let a = a_t.to_f64_vec()?;
    let w = Weights::from_inputs(op, inputs)?;
    let bias = bias_of(op, inputs)?;
    let mut y = buf::zeroed::<f64>(
        buf::count(&[m, n], "MatMulNBits' output")?,
        "MatMulNBits' output",
    )?;
    let mut row = buf::zeroed::<f64>(k, "a dequantised row of W")?;
    for col in 0..n {
        w.row(col, &mut row);
        let b = bias.as_ref().map_or(0.0, |b| b[col] as f64);
        for r in 0..m {
            let dot: f64 = a[r * k..(r + 1) * k]
                .iter()
                .zip(&row)
                .map(|(x, w)| x * w)
                .sum();
            y[r * n + col] = dot + b;
        }
    }
    store(a_t.dtype(), out_shape, &y)
}

/// Rows of A (all dims but the last) and the output shape.
pub fn check_a(op: &MatMulNBits, a: &Tensor) -> Result<(usize, Vec<usize>)> {
    if !a.dtype().is_float() {
        return Err(Error::compute(format!(
            "MatMulNBits A must be a float tensor, got {}",
            a.dtype()
        )));
    }
    let shape = a.shape();
    if shape.last() != Some(&op.k) {
        return Err(Error::compute(format!(
            "MatMulNBits A of shape {shape:?} must end in K={}",
            op.k
        )));
    }
    let m = buf::count(&shape[..shape.len() - 1], "MatMulNBits' rows of A")?;
    let mut out = shape.to_vec();
    if let Some(l) = out.last_mut() {
        *l = op.n;
    }
    Ok((m, out))
}

/// The optional bias as f32 values, checked against N.
pub fn bias_of(op: &MatMulNBits, inputs: &[Option<&Value>]) -> Result<Option<Vec<f32>>> {
    match opt_tensor(inputs, 5)? {
        None => Ok(None),
        Some(b) if b.dtype().is_float() && b.len() == op.n => Ok(Some(
            b.to_f64_vec()?.into_iter().map(|v| v as f32).collect(),
        )),
        Some(b) => Err(Error::compute(format!(
            "MatMulNBits bias must be N={} floats, got shape {:?} of {}",
            op.n,
            b.shape(),
            b.dtype()
        ))),
    }
}

fn store(dtype: DType, shape: Vec<usize>, y: &[f64]) -> Result<Tensor> {
    crate::reduce::float_tensor(dtype, shape, y)
}

/// Runs the op: 4-bit weights with f32 activations (the form of language models) on the
/// fast kernel (`nbits_fast`), int8 activations at accuracy_level 4 as ONNX Runtime does;
/// everything else (other bit widths, `g_idx`, other dtypes) on the reference kernel.
/// Checks the attributes the kernels divide and shift by (import checks them too; an op
/// built another way must not panic here).
fn check_op(op: &MatMulNBits) -> Result<()> {
    let bits = op.bits as usize;
    if !(1..=8).contains(&bits)
        || op.block_size == 0
        || op.block_size.checked_mul(bits).is_none_or(|b| b % 8 != 0)
    {
        return Err(Error::compute(format!(
            "MatMulNBits bits={} and block_size={} do not make whole bytes per block",
            op.bits, op.block_size
        )));
    }
    Ok(())
}

pub fn run(op: &MatMulNBits, inputs: &[Option<&Value>]) -> Result<Tensor> {
    check_op(op)?;
    let a_t = tensor(inputs, 0)?;
    if op.bits != 4 || a_t.dtype() != DType::F32 || opt_tensor(inputs, 4)?.is_some() {
        return reference(op, inputs);
    }
    let (m, out_shape) = check_a(op, a_t)?;
    let (n, nb) = (op.n, op.n_blocks());
    let b_t = tensor(inputs, 1)?;
    let n_nb = n.checked_mul(nb);
    if b_t.dtype() != DType::U8
        || n_nb.and_then(|v| v.checked_mul(op.blob_size())) != Some(b_t.len())
    {
        // The reference kernel words the error.
        return reference(op, inputs);
    }
    let s_t = tensor(inputs, 2)?;
    if !s_t.dtype().is_float() || Some(s_t.len()) != n_nb {
        return reference(op, inputs);
    }
    let scales: Cow<'_, [f32]> = match s_t.dtype() {
        DType::F32 => s_t.as_slice::<f32>()?,
        _ => Cow::Owned(s_t.to_f64_vec()?.into_iter().map(|v| v as f32).collect()),
    };
    let zp_t = opt_tensor(inputs, 3)?;
    let zp_float: Option<Cow<'_, [f32]>> = match zp_t {
        Some(z) if z.dtype() == DType::F32 => Some(z.as_slice::<f32>()?),
        Some(z) if z.dtype().is_float() => Some(Cow::Owned(
            z.to_f64_vec()?.into_iter().map(|v| v as f32).collect(),
        )),
        _ => None,
    };
    let zero_points = match (zp_t, &zp_float) {
        (None, _) => FastZeroPoints::Default,
        (Some(_), Some(f)) => FastZeroPoints::Float(f),
        (Some(z), None) if z.dtype() == DType::U8 => FastZeroPoints::Packed(z.raw_bytes()),
        (Some(_), None) => return reference(op, inputs),
    };
    let w = NBitsWeights {
        b: b_t.raw_bytes(),
        scales: &scales,
        zero_points,
        n,
        k: op.k,
        block_size: op.block_size,
    };
    let bias = bias_of(op, inputs)?;
    let a = a_t.as_slice::<f32>()?;
    let mut y = buf::zeroed::<f32>(
        buf::count(&[m, n], "MatMulNBits' output")?,
        "MatMulNBits' output",
    )?;
    matmul_nbits_f32(&a, m, &w, bias.as_deref(), op.accuracy_level == 4, &mut y)?;
    Tensor::from_vec(out_shape, y)
}
