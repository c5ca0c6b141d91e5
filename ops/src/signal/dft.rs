use xnpu_core::shape::normalize_axis;
use xnpu_core::{Error, Result, ValueType};

use crate::infer::{input, known, tensor_type};
use crate::{InferInput, OpDef};

/// DFT (ONNX opsets 17, 20): the discrete Fourier transform along one axis.
///
/// The input is `[..., n, 1]` (real) or `[..., n, 2]` (complex: real, imaginary), the
/// signal running along `axis` (counted without the last dim; negative counts from the back
/// of the full rank). The signal is cut or zero-padded to `dft_length` (input 1; default the
/// length along `axis`) and transformed: `X[k] = sum_n x[n] e^(-2 pi i k n / N)`, or with
/// `inverse`, `x[n] = 1/N sum_k X[k] e^(2 pi i k n / N)`. The output is complex
/// `[..., N, 2]`, except:
/// - forward `onesided` keeps only the first `N/2 + 1` frequencies;
/// - inverse `onesided` reads the input as the first half of a Hermitian spectrum
///   (`dft_length` defaults to `2 * (n - 1)`) and gives the real signal `[..., N, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dft {
    pub inverse: bool,
    pub onesided: bool,
    /// The axis when fixed at import (opset 17's attribute, or a constant input); `None`
    /// reads input 2 at run time (default -2).
    pub axis: Option<i64>,
}

impl Dft {
    /// The signal axis for an input of rank `rank`.
    pub fn resolve_axis(axis: i64, rank: usize) -> Result<usize> {
        if rank < 2 {
            return Err(Error::compute(format!(
                "DFT input must have rank >= 2, got {rank}"
            )));
        }
        let a = normalize_axis(axis, rank)?;
        if a == rank - 1 {
            return Err(Error::compute(format!(
                "DFT axis {axis} is the real/imaginary dim of a rank-{rank} input"
            )));
        }
        Ok(a)
    }

    /// The output shape for an input shape, a DFT length (when given) and an axis.
    pub fn output_shape(
        &self,
        in_shape: &[usize],
        dft_length: Option<usize>,
        axis: usize,
    ) -> Result<Vec<usize>> {
        let rank = in_shape.len();
        let last = in_shape[rank - 1];
        if !(last == 1 || last == 2) {
            return Err(Error::compute(format!(
                "the last dim of a DFT input must be 1 (real) or 2 (complex), got {last}"
            )));
        }
        let n_in = in_shape[axis];
        let n = match dft_length {
            Some(n) => n,
            None if self.inverse && self.onesided => {
                n_in.saturating_sub(1).checked_mul(2).ok_or_else(|| {
                    Error::compute(format!(
                        "the inverse one-sided DFT of a signal of {n_in} has more than usize::MAX points"
                    ))
                })?
            }
            None => n_in,
        };
        if n == 0 {
            return Err(Error::compute(
                "the DFT length must be positive (check dft_length and the signal length)",
            ));
        }
        let mut out = in_shape.to_vec();
        if self.inverse && self.onesided {
            out[axis] = n;
            out[rank - 1] = 1;
        } else {
            out[axis] = if self.onesided { n / 2 + 1 } else { n };
            out[rank - 1] = 2;
        }
        Ok(out)
    }
}

impl OpDef for Dft {
    const NAMES: &'static [&'static str] = &["DFT"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input is required"))?;
        let dtype = x.dtype();
        if let Some(d) = dtype {
            if !d.is_float() {
                return Err(Error::model(format!("DFT needs float input, got {d}")));
            }
        }
        let shape = (|| {
            let s = x.shape()?.as_known()?;
            let len = match input(inputs, 1) {
                None => None,
                Some(l) => Some(usize::try_from(*l.value?.to_i64_vec().ok()?.first()?).ok()?),
            };
            let axis = match self.axis {
                Some(a) => a,
                None => match input(inputs, 2) {
                    None => -2,
                    Some(a) => *a.value?.to_i64_vec().ok()?.first()?,
                },
            };
            let axis = Dft::resolve_axis(axis, s.len()).ok()?;
            self.output_shape(&s, len, axis).ok()
        })();
        Ok(vec![tensor_type(dtype, shape.map(|s| known(&s)))])
    }
}
