//! STFT: windowed DFTs of overlapping frames.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::signal::Stft;

use xnpu_linalg::buf;

use super::fft::{Complex, ComplexFft};
use super::{f64_tensor, scalar_int};
use crate::args::{opt_tensor, tensor};

pub fn run(op: &Stft, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    if !x.dtype().is_float() {
        return Err(Error::compute(format!(
            "STFT needs float input, got {}",
            x.dtype()
        )));
    }
    let s = x.shape();
    if s.len() != 3 || !(s[2] == 1 || s[2] == 2) {
        return Err(Error::compute(format!(
            "signal must be [batch, length, 1 or 2], got {s:?}"
        )));
    }
    let (batch, len, comps) = (s[0], s[1], s[2]);
    if op.onesided && comps == 2 {
        return Err(Error::compute("onesided STFT needs a real signal"));
    }
    let step = scalar_int(inputs, 1, "frame_step")?;
    let window = opt_tensor(inputs, 2)?.map(|w| w.to_f64_vec()).transpose()?;
    let frame = match opt_tensor(inputs, 3)? {
        Some(_) => scalar_int(inputs, 3, "frame_length")?,
        None => match &window {
            Some(w) => w.len() as i64,
            None => {
                return Err(Error::compute(
                    "STFT needs a window or a frame_length, got neither",
                ))
            }
        },
    };
    if step <= 0 || frame <= 0 || frame as u64 > len as u64 {
        return Err(Error::compute(format!(
            "frame_step ({step}) and frame_length ({frame}) must be positive and the frame no longer than the signal ({len})"
        )));
    }
    let (step, frame) = (step as usize, frame as usize);
    if let Some(w) = &window {
        if w.len() != frame {
            return Err(Error::compute(format!(
                "the window has {} values but frame_length is {frame}",
                w.len()
            )));
        }
    }
    let frames = 1 + (len - frame) / step;
    let bins = if op.onesided { frame / 2 + 1 } else { frame };
    let out_shape = vec![batch, frames, bins, 2];
    let total = xnpu_core::shape::checked_numel(&out_shape)?;
    let data = x.to_f64_vec()?;
    let dtype = x.dtype();
    // As the ONNX reference: the window applied in the signal's type, then NumPy's forward
    // FFT, which computes in f64 and returns a complex64 for the narrower types (`dft.rs`).
    let windowed = |v: f64, w: f64| match dtype {
        DType::F64 => v * w,
        DType::F16 => half::f16::from_f64(v * w).to_f64(),
        DType::Bf16 => half::bf16::from_f64(v * w).to_f64(),
        _ => (v * w) as f32 as f64,
    };
    let plan = ComplexFft::<f64>::new(frame)?;
    let mut sig = buf::zeroed::<Complex<f64>>(frame, "an STFT frame")?;
    let mut out = buf::reserved(total, "STFT's output")?;
    for b in 0..batch {
        for f in 0..frames {
            // The frame is no longer than the signal.
            for (j, v) in sig.iter_mut().enumerate() {
                let w = window.as_ref().map_or(1.0, |w| w[j]);
                let at = (b * len + f * step + j) * comps;
                let im = if comps == 2 { data[at + 1] } else { 0.0 };
                *v = Complex::new(windowed(data[at], w), windowed(im, w));
            }
            plan.run(&mut sig, true, 1.0)?;
            for v in &sig[..bins] {
                out.push(v.re);
                out.push(v.im);
            }
        }
    }
    if dtype != DType::F64 {
        out.iter_mut().for_each(|v| *v = *v as f32 as f64);
    }
    f64_tensor(dtype, out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_overlap_by_the_step() {
        let x =
            Value::Tensor(Tensor::from_vec(vec![1, 4, 1], vec![1.0f32, 1.0, 1.0, 1.0]).unwrap());
        let step = Value::Tensor(Tensor::scalar(1i64));
        let len = Value::Tensor(Tensor::scalar(2i64));
        let op = Stft { onesided: true };
        let out = run(&op, &[Some(&x), Some(&step), None, Some(&len)]).unwrap();
        assert_eq!(out.shape(), &[1, 3, 2, 2]);
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn frame_longer_than_signal_is_an_error() {
        let x = Value::Tensor(Tensor::zeros(xnpu_core::DType::F32, vec![1, 4, 1]).unwrap());
        let step = Value::Tensor(Tensor::scalar(1i64));
        let len = Value::Tensor(Tensor::scalar(8i64));
        let op = Stft { onesided: true };
        assert!(run(&op, &[Some(&x), Some(&step), None, Some(&len)]).is_err());
    }
}
