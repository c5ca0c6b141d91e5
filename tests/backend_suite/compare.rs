//! Comparing a backend's outputs with the reference's: integers and bools exactly, floats
//! within a relative and an absolute tolerance that depend on the dtype, on the precision
//! the device computes in, and on how many terms each output sums. NaN equals NaN; an
//! infinity equals only itself.

use xnpu::{DType, Tensor, Value};

/// The precision a backend computes floating-point tensors in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compute {
    /// At least the tensor's own precision.
    Exact,
    /// fp16, whatever the tensor's dtype (QNN's HTP, and its simulator with a SoC model).
    F16,
}

#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub rtol: f64,
    pub atol: f64,
}

impl Tol {
    pub const EXACT: Tol = Tol {
        rtol: 0.0,
        atol: 0.0,
    };
}

/// The tolerance of an output of dtype `d`: `accum` terms per element, inputs of magnitude
/// up to `mag` (at least 1).
pub fn tolerance(d: DType, compute: Compute, accum: usize, mag: f64) -> Tol {
    if !d.is_float() {
        return Tol::EXACT;
    }
    let half = matches!(d, DType::F16 | DType::Bf16) || compute == Compute::F16;
    // f64 is checked at f32 tolerances: OpenVINO's CPU plugin computes f64 graphs in f32
    // (errors of 1e-8 relative), which is a precision choice, not a wrong result.
    let (rtol, atol) = match (half, d) {
        (true, DType::Bf16) => (3e-2, 2e-2),
        (true, _) => (4e-3, 2e-3),
        (false, _) => (1e-5, 1e-6),
    };
    let scale = (accum.max(1) as f64).sqrt() * mag * mag;
    Tol {
        rtol,
        atol: atol * scale,
    }
}

fn close(got: f64, want: f64, tol: Tol) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if got.is_infinite() || want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= tol.atol + tol.rtol * want.abs()
}

/// A flat index as a multi-index of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[k] = i % d;
            i /= d;
        }
    }
    idx
}

/// Compares `got` with values `want` of shape `shape` and dtype `dtype`. Equal: the largest
/// difference as a fraction of its tolerance (0 when exact). Different: how many values
/// differ and which differs most (relative to its tolerance).
pub fn compare_tensor(
    got: &Tensor,
    dtype: DType,
    shape: &[usize],
    want: &[f64],
    tol: Tol,
) -> Result<f64, String> {
    if got.dtype() != dtype {
        return Err(format!("dtype {}, want {dtype}", got.dtype()));
    }
    if got.shape() != shape {
        return Err(format!("shape {:?}, want {shape:?}", got.shape()));
    }
    let g = got.to_f64_vec().map_err(|e| e.to_string())?;
    let mut bad = 0;
    let mut closest = 0f64;
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &b)) in g.iter().zip(want).enumerate() {
        let ratio = if a.is_finite() && b.is_finite() {
            let d = (a - b).abs();
            if d == 0.0 {
                0.0
            } else {
                d / (tol.atol + tol.rtol * b.abs()).max(f64::MIN_POSITIVE)
            }
        } else {
            f64::INFINITY
        };
        if close(a, b, tol) {
            closest = closest.max(if ratio.is_finite() { ratio } else { 0.0 });
            continue;
        }
        bad += 1;
        if worst.is_none_or(|(_, w)| ratio > w) {
            worst = Some((i, ratio));
        }
    }
    match worst {
        None => Ok(closest),
        Some((i, _)) => Err(format!(
            "{bad}/{} values differ (rtol {:.1e}, atol {:.1e}); worst at {:?}: got {}, want {}",
            want.len(),
            tol.rtol,
            tol.atol,
            unravel(i, shape),
            g[i],
            want[i]
        )),
    }
}

/// Compares every output; `tol` gives the tolerance of an output's dtype. Equal: the largest
/// difference as a fraction of its tolerance.
pub fn compare_outputs(
    got: &[Value],
    want: &[Value],
    tol: impl Fn(DType) -> Tol,
) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, want {}", got.len(), want.len()));
    }
    let mut closest = 0f64;
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let (Ok(g), Ok(w)) = (g.as_tensor(), w.as_tensor()) else {
            return Err(format!("output {k}: not a tensor"));
        };
        let wv = w.to_f64_vec().map_err(|e| e.to_string())?;
        let r = compare_tensor(g, w.dtype(), w.shape(), &wv, tol(w.dtype()))
            .map_err(|e| format!("output {k}: {e}"))?;
        closest = closest.max(r);
    }
    Ok(closest)
}

/// The largest magnitude among a problem's float inputs, at least 1.
pub fn magnitude<'a>(tensors: impl Iterator<Item = &'a Tensor>) -> f64 {
    tensors
        .filter(|t| t.dtype().is_float())
        .filter_map(|t| t.to_f64_vec().ok())
        .flatten()
        .filter(|x| x.is_finite())
        .fold(1.0, |m, x| m.max(x.abs()))
}
