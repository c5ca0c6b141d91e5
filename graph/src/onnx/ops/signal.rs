//! Import of the `signal` family.

use xnpu_core::{DType, Error, Result};
use xnpu_ops::signal::{self as sg, Dft, MelWeightMatrix, Stft, Window, WindowKind};

use super::{NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::signal::Dft {
    fn register(r: &mut Registry) {
        r.add("", "DFT", 17, dft);
    }
}

impl OnnxImport for xnpu_ops::signal::Stft {
    fn register(r: &mut Registry) {
        r.add("", "STFT", 17, stft);
    }
}

impl OnnxImport for xnpu_ops::signal::Window {
    fn register(r: &mut Registry) {
        r.add("", "HannWindow", 17, hann_window);
        r.add("", "HammingWindow", 17, hamming_window);
        r.add("", "BlackmanWindow", 17, blackman_window);
    }
}

impl OnnxImport for xnpu_ops::signal::MelWeightMatrix {
    fn register(r: &mut Registry) {
        r.add("", "MelWeightMatrix", 17, mel_weight_matrix);
    }
}

fn op(o: sg::Op) -> Op {
    Op::Signal(o)
}

/// A 0/1 INT attribute.
fn flag(n: &NodeCtx<'_>, name: &str, default: i64) -> Result<bool> {
    match n.int(name, default)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Error::model(format!(
            "attribute \"{name}\" must be 0 or 1, got {v}"
        ))),
    }
}

/// The `output_datatype` attribute as a dtype.
fn output_dtype(n: &NodeCtx<'_>) -> Result<DType> {
    let code = n.int("output_datatype", 1)?;
    let dtype = i32::try_from(code)
        .ok()
        .and_then(|c| DType::from_onnx(c).ok())
        .ok_or_else(|| {
            Error::unsupported(format!(
                "output_datatype {code} is not a supported data type"
            ))
        })?;
    if !dtype.is_numeric() {
        return Err(Error::model(format!(
            "output_datatype must be numeric, got {dtype}"
        )));
    }
    Ok(dtype)
}

fn dft(n: &mut NodeCtx<'_>) -> Result<Op> {
    let axis = if n.opset() < 20 {
        Some(n.int("axis", 1)?)
    } else if !n.has_input(2) {
        Some(-2)
    } else {
        match n.const_input(2) {
            Some(t) => Some(
                *t.to_i64_vec()?
                    .first()
                    .ok_or_else(|| Error::model("input axis is empty"))?,
            ),
            None => None,
        }
    };
    Ok(op(sg::Op::Dft(Dft {
        inverse: flag(n, "inverse", 0)?,
        onesided: flag(n, "onesided", 0)?,
        axis,
    })))
}

fn stft(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(sg::Op::Stft(Stft {
        onesided: flag(n, "onesided", 1)?,
    })))
}

fn window(n: &NodeCtx<'_>, kind: WindowKind) -> Result<Op> {
    Ok(op(sg::Op::Window(Window {
        kind,
        periodic: flag(n, "periodic", 1)?,
        dtype: output_dtype(n)?,
    })))
}

fn hann_window(n: &mut NodeCtx<'_>) -> Result<Op> {
    window(n, WindowKind::Hann)
}

fn hamming_window(n: &mut NodeCtx<'_>) -> Result<Op> {
    window(n, WindowKind::Hamming)
}

fn blackman_window(n: &mut NodeCtx<'_>) -> Result<Op> {
    window(n, WindowKind::Blackman)
}

fn mel_weight_matrix(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(sg::Op::MelWeightMatrix(MelWeightMatrix {
        dtype: output_dtype(n)?,
    })))
}
