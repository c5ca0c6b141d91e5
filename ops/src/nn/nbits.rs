use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// MatMulNBits (`com.microsoft`): `Y = A · Wᵀ (+ bias)` with `W` stored as `bits`-bit integers
/// in blocks along K, each block with its own scale and zero point — the int4 weight format
/// of on-device language models.
///
/// Inputs: `A` float `[..., K]`; `B` uint8 `[N, n_blocks, blob]` with
/// `n_blocks = ceil(K / block_size)` and `blob = block_size * bits / 8` (any shape holding
/// those bytes in that order); element `k` of row `n` is `q[n, k]`, packed low bits first
/// (for 4 bits: the low nibble of a byte is the even k). `scales` `[N * n_blocks]` of A's
/// dtype; optional `zero_points`: uint8 packed like B (`[N * ceil(n_blocks * bits / 8)]`,
/// row n's block zero points low bits first) or float like `scales`; absent means
/// `2^(bits-1)`. Optional `g_idx` int32 `[K]` (the block of each k; absent: `k / block_size`)
/// and `bias` `[N]`.
///
/// `W[n, k] = (q[n, k] - zp[n, blk]) * scale[n, blk]`,
/// `Y[..., n] = Σ_k A[..., k] W[n, k] + bias[n]`. Y is `[..., N]` of A's dtype. `accuracy_level` names the least precision
/// the computation may use for A (0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8); the reference
/// kernel computes exactly, a fast kernel may quantise A to int8 per block at level 4.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulNBits {
    pub k: usize,
    pub n: usize,
    pub bits: u8,
    pub block_size: usize,
    pub accuracy_level: u8,
}

impl MatMulNBits {
    /// Blocks per row of B (`ceil(K / block_size)`; import refuses a block_size of 0, read
    /// here as 1 so that no caller divides by it).
    pub fn n_blocks(&self) -> usize {
        self.k.div_ceil(self.block_size.max(1))
    }

    /// Bytes of B per block (saturating: a block too large to count holds more bytes than
    /// any B, and the kernels compare B's length to this).
    pub fn blob_size(&self) -> usize {
        self.block_size.saturating_mul(self.bits as usize) / 8
    }
}

impl OpDef for MatMulNBits {
    const NAMES: &'static [&'static str] = &["MatMulNBits"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let a = input(inputs, 0).ok_or_else(|| Error::model("input A is required"))?;
        if let Some(b) = input(inputs, 1) {
            if let Some(d) = b.dtype() {
                if d != DType::U8 {
                    return Err(Error::model(format!(
                        "MatMulNBits B must be uint8, got {d}"
                    )));
                }
            }
        }
        let shape = match a.shape() {
            Some(s) if s.rank() == 0 => {
                return Err(Error::model(
                    "MatMulNBits A must have rank >= 1, got a scalar",
                ))
            }
            Some(s) => {
                if let Some(Dim::Known(k)) = s.0.last() {
                    if *k != self.k {
                        return Err(Error::model(format!(
                            "MatMulNBits A's last dim is {k}, attribute K is {}",
                            self.k
                        )));
                    }
                }
                let mut d = s.0.clone();
                if let Some(l) = d.last_mut() {
                    *l = Dim::Known(self.n);
                }
                Some(Shape(d))
            }
            None => None,
        };
        Ok(vec![tensor_type(a.dtype(), shape)])
    }
}
