use xnpu_core::{Error, Result, Shape, ValueType};

use super::util::{dtype, out, shape, unknown_dims};
use crate::{InferInput, OpDef};

/// How depth is laid out against the block positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DepthMode {
    /// depth-column-row: the block offset is the outer part of the channel.
    #[default]
    Dcr,
    /// column-row-depth: the channel is the outer part.
    Crd,
}

/// SpaceToDepth (ONNX opsets 1, 13, 28) and DepthToSpace (opsets 1, 11, 13, 28) on NCHW
/// input with block size `b`. SpaceToDepth moves each `b × b` block of the spatial dims into
/// channels: `[N, C, H, W]` → `[N, C·b², H/b, W/b]`; DepthToSpace is its inverse. In DCR
/// mode the output channel of SpaceToDepth is `(by·b + bx)·C + c`; in CRD mode
/// `c·b² + by·b + bx` (SpaceToDepth had only DCR before opset 28; DepthToSpace's
/// default is DCR).
#[derive(Clone, Debug, PartialEq)]
pub struct DepthSpace {
    /// True for SpaceToDepth, false for DepthToSpace.
    pub to_depth: bool,
    pub blocksize: usize,
    pub mode: DepthMode,
}

impl DepthSpace {
    /// The output dims for input dims `d` (rank 4).
    pub fn output_dims(&self, d: &[usize]) -> Result<[usize; 4]> {
        let name = if self.to_depth {
            "SpaceToDepth"
        } else {
            "DepthToSpace"
        };
        let &[n, c, h, w] = d else {
            return Err(Error::compute(format!(
                "{name}: the input must have rank 4 (NCHW), got dims {d:?}"
            )));
        };
        let b = self.blocksize;
        if b == 0 {
            return Err(Error::compute(format!(
                "{name}: blocksize must be at least 1"
            )));
        }
        let bb = b
            .checked_mul(b)
            .ok_or_else(|| Error::compute(format!("{name}: blocksize {b} is too large")))?;
        if self.to_depth {
            if h % b != 0 || w % b != 0 {
                return Err(Error::compute(format!(
                    "{name}: H and W of {d:?} must be multiples of the blocksize {b}"
                )));
            }
            let c2 = c
                .checked_mul(bb)
                .ok_or_else(|| Error::compute(format!("{name}: the channel count overflows")))?;
            Ok([n, c2, h / b, w / b])
        } else {
            if c % bb != 0 {
                return Err(Error::compute(format!(
                    "{name}: C of {d:?} must be a multiple of blocksize² = {bb}"
                )));
            }
            let (h2, w2) = h
                .checked_mul(b)
                .zip(w.checked_mul(b))
                .ok_or_else(|| Error::compute(format!("{name}: the spatial dims overflow")))?;
            Ok([n, c / bb, h2, w2])
        }
    }
}

impl OpDef for DepthSpace {
    const NAMES: &'static [&'static str] = &["DepthToSpace", "SpaceToDepth"];

    fn name(&self) -> &'static str {
        if self.to_depth {
            "SpaceToDepth"
        } else {
            "DepthToSpace"
        }
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match shape(inputs, 0) {
            Some(s) if s.rank() != 4 => {
                return Err(Error::model(format!(
                    "the input must have rank 4 (NCHW), got {s}"
                )))
            }
            Some(s) => Some(match s.as_known() {
                Some(k) => Shape::known(&self.output_dims(&k)?),
                None => {
                    let mut u = unknown_dims(
                        if self.to_depth {
                            "SpaceToDepth"
                        } else {
                            "DepthToSpace"
                        },
                        4,
                    )?;
                    u.0[0] = s.0[0].clone();
                    u
                }
            }),
            None => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}
