use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::window::{AutoPad, Window};
use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// ConvTranspose (opsets 1, 11, 22): the transpose (gradient) of Conv. X is `[N, C, in...]`,
/// W is `[C, M / group, k...]`, the optional bias B is `[M]`; Y is `[N, M, out...]`. Each
/// input element `x[n, c, i]` adds `x * w[c, m', k]` to `y[n, g * M/group + m', i * stride +
/// k * dilation - pad_begin]` (g the group of c), positions outside the output dropped.
///
/// Output size and pads, per spatial dim, with `full = stride * (in - 1) + output_padding +
/// (k - 1) * dilation + 1`:
/// - `output_shape` given (pads ignored): out = output_shape and `total = full - out` is
///   split as `total / 2` at the begin for SAME_UPPER, `total - total / 2` otherwise
///   (floor division; a negative total extends the output with zeros);
/// - auto_pad SAME_UPPER / SAME_LOWER: out = in * stride, total split as above;
/// - otherwise: out = full - pad_begin - pad_end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvTranspose {
    pub window: Window,
    pub group: usize,
    /// Extra size added at the end of each spatial dim (empty = all 0).
    pub output_padding: Vec<usize>,
    /// The requested output spatial shape.
    pub output_shape: Option<Vec<usize>>,
}

/// The resolved geometry of a ConvTranspose on one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransposeGeometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// Signed: a negative begin pad shifts the result right.
    pub pads_begin: Vec<i64>,
    pub out: Vec<usize>,
}

fn per_dim(v: &[usize], n: usize, default: usize, what: &str) -> Result<Vec<usize>> {
    match v.len() {
        0 => Ok(vec![default; n]),
        l if l == n => Ok(v.to_vec()),
        l => Err(Error::compute(format!(
            "{what} has {l} values, expected {n} (one per spatial dim)"
        ))),
    }
}

impl ConvTranspose {
    /// The geometry for spatial input `input` and kernel `kernel` (from the weight).
    pub fn geometry(&self, input: &[usize], kernel: &[usize]) -> Result<TransposeGeometry> {
        let n = input.len();
        if kernel.len() != n {
            return Err(Error::compute(format!(
                "the kernel has {} spatial dims, the input has {n}",
                kernel.len()
            )));
        }
        if let Some(k) = &self.window.kernel_shape {
            if k.as_slice() != kernel {
                return Err(Error::compute(format!(
                    "kernel_shape {k:?} does not match the weight's spatial shape {kernel:?}"
                )));
            }
        }
        let w = &self.window;
        let strides = per_dim(&w.strides, n, 1, "strides")?;
        let dilations = per_dim(&w.dilations, n, 1, "dilations")?;
        let pads = per_dim(&w.pads, 2 * n, 0, "pads")?;
        let out_pad = per_dim(&self.output_padding, n, 0, "output_padding")?;
        let requested = match &self.output_shape {
            None => None,
            Some(s) if s.len() == n => Some(s.clone()),
            // Some exporters give the whole [N, C, spatial...] shape.
            Some(s) if s.len() == n + 2 => Some(s[2..].to_vec()),
            Some(s) => {
                return Err(Error::compute(format!(
                    "output_shape {s:?} does not have {n} spatial dims"
                )))
            }
        };
        let mut g = TransposeGeometry {
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pads_begin: vec![0; n],
            out: vec![0; n],
        };
        for i in 0..n {
            // In i128, checked: every operand is a usize attribute or dim, so a hostile one
            // (pads near 2^63, a dilation of 2^40) overflows i64 but is an error here.
            let overflow = || {
                Error::compute(format!(
                    "spatial dim {i}: the output size of an input of {} with kernel {}, stride {}, dilation {}, output_padding {} and pads {:?} overflows",
                    input[i], kernel[i], g.strides[i], g.dilations[i], out_pad[i], (pads[i], pads[n + i])
                ))
            };
            let wide = |v: usize| i128::try_from(v).map_err(|_| overflow());
            let ext = wide(kernel[i].max(1) - 1)?
                .checked_mul(wide(g.dilations[i])?)
                .and_then(|e| e.checked_add(1))
                .ok_or_else(overflow)?;
            let full = wide(g.strides[i])?
                .checked_mul(wide(input[i].max(1) - 1)?)
                .and_then(|f| f.checked_add(wide(out_pad[i]).ok()?))
                .and_then(|f| f.checked_add(ext))
                .ok_or_else(overflow)?;
            let same = matches!(w.auto_pad, AutoPad::SameUpper | AutoPad::SameLower);
            let target = match &requested {
                Some(r) => Some(wide(r[i])?),
                None if same => Some(
                    wide(input[i])?
                        .checked_mul(wide(g.strides[i])?)
                        .ok_or_else(overflow)?,
                ),
                None => None,
            };
            let (begin, out) = match target {
                Some(out) => {
                    let total = full - out;
                    let half = total.div_euclid(2);
                    let begin = if w.auto_pad == AutoPad::SameUpper {
                        half
                    } else {
                        total - half
                    };
                    (begin, out)
                }
                None => {
                    let out = full - wide(pads[i])? - wide(pads[n + i])?;
                    if out < 0 {
                        return Err(Error::compute(format!(
                            "spatial dim {i}: pads {} + {} are larger than the full output size {full}",
                            pads[i],
                            pads[n + i]
                        )));
                    }
                    (wide(pads[i])?, out)
                }
            };
            g.pads_begin[i] = i64::try_from(begin).map_err(|_| overflow())?;
            g.out[i] = usize::try_from(out).map_err(|_| overflow())?;
        }
        Ok(g)
    }
}

impl OpDef for ConvTranspose {
    const NAMES: &'static [&'static str] = &["ConvTranspose"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let x = input(inputs, 0).and_then(|x| x.shape());
        let w = input(inputs, 1).and_then(|x| x.shape());
        let shape = match (x, w) {
            (Some(x), Some(w)) => {
                if x.rank() < 3 || w.rank() != x.rank() {
                    return Err(Error::model(format!(
                        "ConvTranspose needs X [N, C, spatial...] and W of the same rank, got {x} and {w}"
                    )));
                }
                let m = match &w.0[1] {
                    Dim::Known(k) => Dim::Known(k.checked_mul(self.group).ok_or_else(|| {
                        Error::model(format!(
                            "the weight {w} with group {} has more output channels than a usize counts",
                            self.group
                        ))
                    })?),
                    d => Dim::Sym(format!("{d}*{}", self.group)),
                };
                let inp: Option<Vec<usize>> = x.0[2..].iter().map(Dim::known).collect();
                let ker: Option<Vec<usize>> = w.0[2..].iter().map(Dim::known).collect();
                let spatial: Vec<Dim> = match (inp, ker) {
                    (Some(i), Some(k)) => match self.geometry(&i, &k) {
                        Ok(g) => g.out.into_iter().map(Dim::Known).collect(),
                        Err(_) => return Ok(vec![tensor_type(dtype, None)]),
                    },
                    _ => return Ok(vec![tensor_type(dtype, None)]),
                };
                let mut out = vec![x.0[0].clone(), m];
                out.extend(spatial);
                Some(Shape(out))
            }
            _ => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shape_sets_the_pads() {
        let op = ConvTranspose {
            window: Window {
                strides: vec![3, 2],
                ..Window::default()
            },
            group: 1,
            output_padding: vec![],
            output_shape: Some(vec![10, 8]),
        };
        let g = op.geometry(&[3, 3], &[3, 3]).unwrap();
        assert_eq!(g.out, vec![10, 8]);
        assert_eq!(g.pads_begin, vec![0, 0]);
    }

    #[test]
    fn explicit_pads_shrink_the_output() {
        let op = ConvTranspose {
            window: Window {
                strides: vec![3, 2],
                pads: vec![1, 2, 1, 2],
                ..Window::default()
            },
            group: 1,
            ..ConvTranspose::default()
        };
        let g = op.geometry(&[3, 3], &[3, 3]).unwrap();
        assert_eq!(g.out, vec![7, 3]);
    }

    #[test]
    fn sizes_past_i64_are_an_error_not_a_wrap() {
        let big = i64::MAX as usize;
        let op = ConvTranspose {
            window: Window {
                strides: vec![big],
                dilations: vec![big],
                ..Window::default()
            },
            group: 1,
            output_padding: vec![big],
            ..ConvTranspose::default()
        };
        let err = op.geometry(&[3], &[3]).unwrap_err().to_string();
        assert!(err.contains("overflows"), "{err}");
        let pads = ConvTranspose {
            window: Window {
                pads: vec![big, big],
                ..Window::default()
            },
            group: 1,
            ..ConvTranspose::default()
        };
        let err = pads.geometry(&[3], &[3]).unwrap_err().to_string();
        assert!(
            err.contains("are larger than the full output size"),
            "{err}"
        );
    }
}
