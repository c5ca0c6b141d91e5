//! Sliding-window geometry shared by the convolutions and the pools: kernel, strides, pads,
//! dilations, `auto_pad` and `ceil_mode`, and the output size they give.

use xnpu_core::{Dim, Error, Result};

/// How pads are chosen (the ONNX `auto_pad` attribute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoPad {
    /// Pads are the explicit `pads` attribute.
    #[default]
    NotSet,
    /// Output size `ceil(in / stride)`; the odd pad goes at the end.
    SameUpper,
    /// Output size `ceil(in / stride)`; the odd pad goes at the beginning.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    /// Parses the ONNX attribute value.
    pub fn parse(s: &str) -> Result<AutoPad> {
        Ok(match s {
            "NOTSET" | "" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            _ => {
                return Err(Error::model(format!(
                    "auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got \"{s}\""
                )))
            }
        })
    }
}

/// The window attributes of a convolution or pool, as given. Empty `strides` / `dilations`
/// mean all 1, empty `pads` all 0. `pads` is `[begin_1, ..., begin_n, end_1, ..., end_n]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// The kernel's spatial shape; `None` when it is taken from the weight.
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub auto_pad: AutoPad,
    /// Pools only: round the output size up instead of down; a window that would start in
    /// the end padding is dropped.
    pub ceil_mode: bool,
}

/// The resolved geometry of one window op on one input: everything per spatial dim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    pub out: Vec<usize>,
}

impl Geometry {
    /// Number of spatial dims.
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// Extent of the dilated kernel along dim `i` ([`Window::geometry`] checked that it
    /// fits a usize; saturating for a geometry built some other way).
    pub fn extent(&self, i: usize) -> usize {
        self.kernel[i]
            .saturating_sub(1)
            .saturating_mul(self.dilations[i])
            .saturating_add(1)
    }
}

fn per_dim(v: &[usize], n: usize, default: usize, what: &str) -> Result<Vec<usize>> {
    if v.is_empty() {
        return Ok(vec![default; n]);
    }
    if v.len() != n {
        return Err(Error::compute(format!(
            "{what} has {} values, expected {n} (one per spatial dim)",
            v.len()
        )));
    }
    Ok(v.to_vec())
}

impl Window {
    /// Checks the attributes against each other (at import).
    pub fn validate(&self) -> Result<()> {
        if self.strides.contains(&0) {
            return Err(Error::model(format!(
                "strides must be positive, got {:?}",
                self.strides
            )));
        }
        if self.dilations.contains(&0) {
            return Err(Error::model(format!(
                "dilations must be positive, got {:?}",
                self.dilations
            )));
        }
        if let Some(k) = &self.kernel_shape {
            if k.contains(&0) {
                return Err(Error::model(format!(
                    "kernel_shape must be positive, got {k:?}"
                )));
            }
            let n = k.len();
            for (v, what, want) in [
                (&self.strides, "strides", n),
                (&self.dilations, "dilations", n),
                (&self.pads, "pads", 2 * n),
            ] {
                if !v.is_empty() && v.len() != want {
                    return Err(Error::model(format!(
                        "{what} has {} values, expected {want} for a {n}-d kernel",
                        v.len()
                    )));
                }
            }
        }
        if !self.pads.len().is_multiple_of(2) {
            return Err(Error::model(format!(
                "pads must have an even number of values, got {:?}",
                self.pads
            )));
        }
        Ok(())
    }

    /// The geometry for an input of spatial shape `input` and a kernel of spatial shape
    /// `kernel` (from `kernel_shape` or the weight). Errors when the window does not fit.
    pub fn geometry(&self, input: &[usize], kernel: &[usize]) -> Result<Geometry> {
        let n = input.len();
        if kernel.len() != n {
            return Err(Error::compute(format!(
                "the kernel has {} spatial dims, the input has {n}",
                kernel.len()
            )));
        }
        if let Some(k) = &self.kernel_shape {
            if k.as_slice() != kernel {
                return Err(Error::compute(format!(
                    "kernel_shape {k:?} does not match the weight's spatial shape {kernel:?}"
                )));
            }
        }
        if kernel.contains(&0) {
            return Err(Error::compute(format!(
                "the kernel shape {kernel:?} has a zero dim"
            )));
        }
        let strides = per_dim(&self.strides, n, 1, "strides")?;
        let dilations = per_dim(&self.dilations, n, 1, "dilations")?;
        let pads = per_dim(&self.pads, 2 * n, 0, "pads")?;
        let mut g = Geometry {
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pads_begin: vec![0; n],
            pads_end: vec![0; n],
            out: vec![0; n],
        };
        for i in 0..n {
            let s = g.strides[i];
            let ext = kernel[i]
                .checked_sub(1)
                .and_then(|k| k.checked_mul(g.dilations[i]))
                .and_then(|k| k.checked_add(1))
                .ok_or_else(|| {
                    Error::compute(format!(
                        "spatial dim {i}: the kernel size {} dilated by {} overflows",
                        kernel[i], g.dilations[i]
                    ))
                })?;
            match self.auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let out = input[i].div_ceil(s);
                    let total = ((out.max(1) - 1) * s)
                        .checked_add(ext)
                        .ok_or_else(|| {
                            Error::compute(format!(
                                "spatial dim {i}: the padded size for an input of {} with stride {s} and a dilated kernel of {ext} overflows",
                                input[i]
                            ))
                        })?
                        .saturating_sub(input[i]);
                    let small = total / 2;
                    let (b, e) = if self.auto_pad == AutoPad::SameUpper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    g.pads_begin[i] = b;
                    g.pads_end[i] = e;
                    g.out[i] = out;
                }
                AutoPad::NotSet | AutoPad::Valid => {
                    let (b, e) = if self.auto_pad == AutoPad::Valid {
                        (0, 0)
                    } else {
                        (pads[i], pads[n + i])
                    };
                    let padded = input[i]
                        .checked_add(b)
                        .and_then(|p| p.checked_add(e))
                        .ok_or_else(|| {
                            Error::compute(format!(
                                "spatial dim {i}: an input of {} with pads {b} and {e} overflows",
                                input[i]
                            ))
                        })?;
                    if padded < ext {
                        return Err(Error::compute(format!(
                            "spatial dim {i}: the padded input size {padded} is smaller than the dilated kernel size {ext}"
                        )));
                    }
                    let steps = if self.ceil_mode {
                        (padded - ext).div_ceil(s)
                    } else {
                        (padded - ext) / s
                    };
                    // steps <= padded - ext < usize::MAX (ext >= 1): no overflow.
                    let mut out = steps + 1;
                    // A window must start inside the input or the begin padding (input + b
                    // cannot overflow: it is at most `padded`; a product past usize::MAX
                    // starts past it).
                    if self.ceil_mode && (out - 1).saturating_mul(s) >= input[i] + b {
                        out -= 1;
                    }
                    g.pads_begin[i] = b;
                    g.pads_end[i] = e;
                    g.out[i] = out;
                }
            }
        }
        Ok(g)
    }

    /// The output spatial dims for inference: known when the input dim and the kernel are
    /// known, otherwise a symbol named after the computation.
    pub fn infer_dims(&self, input: &[Dim], kernel: Option<&[usize]>) -> Vec<Dim> {
        let known: Option<Vec<usize>> = input.iter().map(Dim::known).collect();
        let kernel = kernel.or(self.kernel_shape.as_deref());
        if let (Some(inp), Some(k)) = (&known, kernel) {
            if let Ok(g) = self.geometry(inp, k) {
                return g.out.into_iter().map(Dim::Known).collect();
            }
        }
        input
            .iter()
            .enumerate()
            .map(|(i, d)| {
                Dim::Sym(format!(
                    "window({d};k{:?},s{:?},p{:?},d{:?},{:?},{})",
                    kernel.and_then(|k| k.get(i)),
                    self.strides.get(i),
                    self.pads,
                    self.dilations.get(i),
                    self.auto_pad,
                    self.ceil_mode
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(strides: &[usize], pads: &[usize], auto_pad: AutoPad, ceil: bool) -> Window {
        Window {
            kernel_shape: None,
            strides: strides.to_vec(),
            pads: pads.to_vec(),
            dilations: vec![],
            auto_pad,
            ceil_mode: ceil,
        }
    }

    #[test]
    fn explicit_pads_floor_and_ceil() {
        let g = win(&[2], &[0, 0], AutoPad::NotSet, false)
            .geometry(&[5], &[2])
            .unwrap();
        assert_eq!(g.out, vec![2]);
        let g = win(&[2], &[0, 0], AutoPad::NotSet, true)
            .geometry(&[5], &[2])
            .unwrap();
        assert_eq!(g.out, vec![3]);
        // The last window would start in the end padding: dropped.
        let g = win(&[2], &[0, 0], AutoPad::NotSet, true)
            .geometry(&[4], &[1])
            .unwrap();
        assert_eq!(g.out, vec![2]);
    }

    #[test]
    fn same_pads_put_the_odd_one_by_mode() {
        let up = win(&[2], &[], AutoPad::SameUpper, false)
            .geometry(&[5], &[4])
            .unwrap();
        assert_eq!((up.out[0], up.pads_begin[0], up.pads_end[0]), (3, 1, 2));
        let low = win(&[2], &[], AutoPad::SameLower, false)
            .geometry(&[5], &[4])
            .unwrap();
        assert_eq!((low.pads_begin[0], low.pads_end[0]), (2, 1));
    }

    #[test]
    fn kernel_larger_than_input_is_an_error() {
        let err = win(&[], &[], AutoPad::Valid, false)
            .geometry(&[2], &[3])
            .unwrap_err();
        assert!(err.to_string().contains("smaller than"), "{err}");
    }

    #[test]
    fn pads_that_overflow_are_an_error_naming_them() {
        let big = i64::MAX as usize;
        let err = win(&[], &[big, big], AutoPad::NotSet, false)
            .geometry(&[5], &[3])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pads {big} and {big} overflows")),
            "{err}"
        );
        let dilated = Window {
            dilations: vec![usize::MAX / 2],
            ..win(&[], &[], AutoPad::SameUpper, false)
        };
        let err = dilated.geometry(&[5], &[4]).unwrap_err().to_string();
        assert!(err.contains("dilated by"), "{err}");
        let err = win(&[1], &[], AutoPad::SameLower, false)
            .geometry(&[usize::MAX], &[3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("padded size"), "{err}");
    }
}
