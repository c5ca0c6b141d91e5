use xnpu_core::{Error, Result, ValueType};

use crate::infer::{input, known, tensor_type};
use crate::{InferInput, OpDef};

/// STFT (ONNX opset 17): the short-time Fourier transform.
///
/// Inputs: `signal` `[batch, len, 1]` (real) or `[batch, len, 2]` (complex), `frame_step`
/// (scalar int), optional `window` `[frame_length]`, optional `frame_length` (scalar int;
/// default the window's length). Frame `f` is `signal[:, f*step .. f*step + frame_length]`
/// times the window (default all ones), transformed by the DFT; there are
/// `1 + (len - frame_length) / frame_step` frames. The output is
/// `[batch, frames, bins, 2]` with `bins = frame_length / 2 + 1` when `onesided` (real input
/// only), `frame_length` otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Stft {
    pub onesided: bool,
}

impl OpDef for Stft {
    const NAMES: &'static [&'static str] = &["STFT"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input signal is required"))?;
        let dtype = x.dtype();
        if let Some(d) = dtype {
            if !d.is_float() {
                return Err(Error::model(format!("STFT needs float input, got {d}")));
            }
        }
        let shape = (|| {
            let s = x.shape()?.as_known()?;
            if s.len() != 3 {
                return None;
            }
            let step = *input(inputs, 1)?.value?.to_i64_vec().ok()?.first()?;
            let frame = match input(inputs, 3) {
                Some(l) => *l.value?.to_i64_vec().ok()?.first()?,
                None => *input(inputs, 2)?.shape()?.as_known()?.first()? as i64,
            };
            if step <= 0 || frame <= 0 || frame as usize > s[1] {
                return None;
            }
            let frames = 1 + (s[1] - frame as usize) / step as usize;
            let bins = if self.onesided {
                frame as usize / 2 + 1
            } else {
                frame as usize
            };
            Some(vec![s[0], frames, bins, 2])
        })();
        Ok(vec![tensor_type(dtype, shape.map(|s| known(&s)))])
    }
}
