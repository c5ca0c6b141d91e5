//! Blocked weight dequantization + MatMul → `MatMulNBits`: the QDQ form NPU quantisers write
//! for int4 language models (`DequantizeLinear(W_q, scale, zero_point)` with `block_size`
//! along K, then `MatMul(A, W)`) becomes the packed form ONNX Runtime's builders write, whose
//! kernels read the 4-bit weights directly instead of a dequantized copy.
//!
//! It matches `MatMul(A, DequantizeLinear(q, scale, zp?))` where
//! - `q` is a constant `[K, N]` of INT4/UINT4, INT2/UINT2 or INT8/UINT8, blocked along axis 0
//!   with a power-of-two `block_size` ≥ 16 (MatMulNBits' constraint), `scale` a constant
//!   `[ceil(K / block_size), N]` and `zp` (when given) a constant of that shape and q's dtype;
//! - the dequantized W is read only by this MatMul, and A, `scale` and the output share one
//!   float dtype (f32 or f16), A's last dim being K.
//!
//! The weights are exact: `(q - zp) * scale` is the same number for `q + 2^(bits-1)` and
//! `zp + 2^(bits-1)` (signed weights are stored biased, as MatMulNBits keeps them unsigned).
//! Signed weights without a zero point use MatMulNBits' default (`2^(bits-1)`, i.e. zero);
//! unsigned ones get an explicit zero point of 0. The product is made at
//! [`ACCURACY_LEVEL`] 4 (A quantised to int8 per block), as ONNX Runtime fuses the same
//! pattern by default, so that xnpu's tokens are ONNX Runtime's; at level 0 (A kept float)
//! it is DequantizeLinear + MatMul up to the order of the sums (tests/fusion.rs checks both).

use xnpu_core::narrow::code_at;
use xnpu_core::{DType, Result, Tensor};
use xnpu_ops::nn;

use super::pattern::{rewrite_all, single_output, Arg, Rewrite, View};
use super::{Options, Work};
use crate::ir::{Graph, Op};
use crate::onnx::tensor::{release_mapped_pages, weight_bytes};

/// The accuracy level of the MatMulNBits made: 4 (A quantised to int8 per block), what
/// ONNX Runtime's own DQ+MatMul→MatMulNBits fusion uses by default
/// (`session.qdq_matmulnbits_accuracy_level`), so that xnpu computes what ONNX Runtime (and
/// onnxruntime-genai) compute for the same QDQ model. The weights are exact at any level.
pub const ACCURACY_LEVEL: u8 = 4;

pub fn run(graph: &mut Graph, _options: &Options<'_>, work: &mut Work) -> Result<usize> {
    rewrite_all(graph, work, matcher)
}

/// The unsigned code (biased by `2^(bits-1)` for a signed dtype) of element `i` of an
/// integer weight tensor of 2, 4 or 8 bits.
fn unsigned_code(dtype: DType, bytes: &[u8], i: usize) -> u8 {
    let bits = dtype.bits();
    let code = code_at(dtype, bytes, i);
    if dtype.kind() == xnpu_core::dtype::Kind::Signed {
        // Adding the bias to the two's complement code flips its sign bit.
        let mask = ((1u16 << bits) - 1) as u8;
        code.wrapping_add(1 << (bits - 1)) & mask
    } else {
        code
    }
}

/// Packs `rows` rows of `len` codes of `bits` bits each, every row starting on a byte, low
/// bits first: MatMulNBits' layout of B and of its zero points.
/// `None` when the bytes cannot be allocated (the rewrite is then not made).
fn pack_rows(
    bits: usize,
    rows: usize,
    len: usize,
    code: impl Fn(usize, usize) -> u8,
) -> Option<Vec<u8>> {
    let per_byte = 8 / bits;
    let row_bytes = len.div_ceil(per_byte);
    let total = rows.checked_mul(row_bytes)?;
    let mut out = Vec::new();
    out.try_reserve_exact(total).ok()?;
    out.resize(total, 0u8);
    for r in 0..rows {
        for j in 0..len {
            out[r * row_bytes + j / per_byte] |= code(r, j) << ((j % per_byte) * bits);
        }
    }
    Some(out)
}

fn matcher(v: View<'_>, i: usize) -> Option<Rewrite> {
    let mm = &v.g.nodes[i];
    if !matches!(mm.op, Op::Nn(nn::Op::MatMul(_))) || !single_output(mm) {
        return None;
    }
    let a = mm.inputs.first().copied().flatten()?;
    let w = mm.inputs.get(1).copied().flatten()?;
    if !v.private(w, 1) {
        return None;
    }
    let dq = v.producer(w)?;
    let Op::Nn(nn::Op::DequantizeLinear(d)) = &dq.op else {
        return None;
    };
    let q = v.constant(dq.inputs.first().copied().flatten()?)?;
    let scale = v.constant(dq.inputs.get(1).copied().flatten()?)?;
    let zp = match dq.inputs.get(2).copied().flatten() {
        Some(z) => Some(v.constant(z)?),
        None => None,
    };
    let qd = q.dtype();
    let bits = qd.bits();
    let integer = matches!(
        qd.kind(),
        xnpu_core::dtype::Kind::Signed | xnpu_core::dtype::Kind::Unsigned
    );
    if !integer || !matches!(bits, 2 | 4 | 8) || q.rank() != 2 {
        return None;
    }
    let (k, n) = (q.shape()[0], q.shape()[1]);
    let bs = d.block_size;
    let axis_ok = d.axis == 0 || d.axis == -2;
    if bs < 16 || !bs.is_power_of_two() || !axis_ok || k == 0 || n == 0 {
        return None;
    }
    let blocks = k.div_ceil(bs);
    let float = scale.dtype();
    if !matches!(float, DType::F32 | DType::F16)
        || scale.shape() != [blocks, n]
        || d.output_dtype.is_some_and(|o| o != float)
        || v.dtype(a) != Some(float)
        || v.last_dim(a) != Some(k)
    {
        return None;
    }
    if let Some(z) = zp {
        if z.dtype() != qd || z.shape() != [blocks, n] {
            return None;
        }
    }

    // B [N, blocks, block_size * bits / 8]: row n holds q[.., n], padded with zeros past K.
    let qb = q.raw_bytes();
    let row_len = blocks * bs;
    let b = pack_rows(bits, n, row_len, |r, j| {
        if j < k {
            unsigned_code(qd, qb, j * n + r)
        } else {
            0
        }
    })?;
    let b = Tensor::from_bytes(DType::U8, vec![n, blocks, bs * bits / 8], weight_bytes(b)).ok()?;
    // The int4 weights were read once, here: take the file's pages they came from out of the
    // resident set (they stay in the page cache), so the model is resident once.
    release_mapped_pages(qb);
    // scales [N * blocks], row-major over (n, block): the transpose of [blocks, N].
    let size = float.elem_bytes()?;
    let sb = scale.raw_bytes();
    let mut scales = Vec::new();
    scales.try_reserve_exact(sb.len()).ok()?;
    for r in 0..n {
        for blk in 0..blocks {
            let at = (blk * n + r) * size;
            scales.extend_from_slice(&sb[at..at + size]);
        }
    }
    let scales = Tensor::from_bytes(float, vec![n * blocks], weight_bytes(scales)).ok()?;
    release_mapped_pages(sb);
    let signed = qd.kind() == xnpu_core::dtype::Kind::Signed;
    let zero_points = match (zp, signed) {
        // Signed without a zero point: MatMulNBits' default 2^(bits-1) is the biased zero.
        (None, true) => None,
        (None, false) => Some(pack_rows(bits, n, blocks, |_, _| 0)?),
        (Some(z), _) => {
            let zb = z.raw_bytes();
            Some(pack_rows(bits, n, blocks, |r, blk| {
                unsigned_code(qd, zb, blk * n + r)
            })?)
        }
    };
    let mut args = vec![
        Arg::Value(a),
        Arg::Const("B", b),
        Arg::Const("scales", scales),
    ];
    if let Some(z) = zero_points {
        let len = z.len();
        args.push(Arg::Const(
            "zero_points",
            Tensor::from_bytes(DType::U8, vec![len], z.into()).ok()?,
        ));
    }
    Some(Rewrite {
        at: i,
        op: Op::Nn(nn::Op::MatMulNBits(nn::MatMulNBits {
            k,
            n,
            bits: bits as u8,
            block_size: bs,
            accuracy_level: ACCURACY_LEVEL,
        })),
        args,
        tag: "nbits",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_codes_are_biased_into_unsigned_ones() {
        // int4 codes: -8 (0x8), -1 (0xf), 0, 7 -> 0, 7, 8, 15.
        let bytes = [0xf8u8, 0x70];
        let got: Vec<u8> = (0..4)
            .map(|i| unsigned_code(DType::I4, &bytes, i))
            .collect();
        assert_eq!(got, [0, 7, 8, 15]);
        assert_eq!(unsigned_code(DType::I8, &[0x80], 0), 0);
        assert_eq!(unsigned_code(DType::U4, &[0x21], 1), 2);
        assert_eq!(unsigned_code(DType::I2, &[0b10], 0), 0);
    }

    #[test]
    fn rows_start_on_a_byte() {
        // 2 rows of 3 four-bit codes: each row takes 2 bytes.
        let b = pack_rows(4, 2, 3, |r, j| (r * 3 + j) as u8).unwrap();
        assert_eq!(b, [0x10, 0x02, 0x43, 0x05]);
    }
}
