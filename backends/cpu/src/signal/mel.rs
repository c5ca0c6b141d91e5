//! MelWeightMatrix: triangular mel filter banks.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::signal::MelWeightMatrix;

use xnpu_linalg::buf;

use super::{f64_tensor, scalar_int};
use crate::args::tensor;

/// The single value of a scalar float input.
fn scalar_f64(inputs: &[Option<&Value>], i: usize, name: &str) -> Result<f64> {
    let v = tensor(inputs, i)?.to_f64_vec()?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(Error::compute(format!(
            "{name} must hold one value, got {}",
            v.len()
        ))),
    }
}

pub fn run(op: &MelWeightMatrix, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let mel_bins = scalar_int(inputs, 0, "num_mel_bins")?;
    let dft_length = scalar_int(inputs, 1, "dft_length")?;
    let sample_rate = scalar_int(inputs, 2, "sample_rate")?;
    let lower = scalar_f64(inputs, 3, "lower_edge_hertz")?;
    let upper = scalar_f64(inputs, 4, "upper_edge_hertz")?;
    if mel_bins <= 0 || dft_length <= 0 || sample_rate <= 0 {
        return Err(Error::compute(format!(
            "num_mel_bins ({mel_bins}), dft_length ({dft_length}) and sample_rate ({sample_rate}) must be positive"
        )));
    }
    let (mel_bins, dft_length) = (mel_bins as usize, dft_length as usize);
    let spec_bins = dft_length / 2 + 1;
    let out_shape = vec![spec_bins, mel_bins];
    let total = xnpu_core::shape::checked_numel(&out_shape)?;

    let to_mel = |hz: f64| 2595.0 * (hz / 700.0).ln_1p() / 10f64.ln();
    let (low_mel, high_mel) = (to_mel(lower), to_mel(upper));
    let step = (high_mel - low_mel) / (mel_bins + 2) as f64;
    // The spectrum bin of each of the mel_bins + 2 points.
    let points = buf::try_collected(
        mel_bins + 2,
        (0..mel_bins + 2).map(|i| {
            let hz = 700.0 * ((i as f64 * step + low_mel) / 2595.0 * 10f64.ln()).exp_m1();
            let bin = ((dft_length as f64 + 1.0) * hz / sample_rate as f64).floor();
            if !(0.0..spec_bins as f64).contains(&bin) {
                return Err(Error::compute(format!(
                    "mel point {i} ({hz} Hz) falls outside the {spec_bins} spectrum bins"
                )));
            }
            Ok(bin as usize)
        }),
        "the mel points",
    )?;
    let mut out = buf::zeroed::<f64>(total, "MelWeightMatrix's output")?;
    for i in 0..mel_bins {
        let (lo, mid, hi) = (points[i], points[i + 1], points[i + 2]);
        if mid == lo {
            out[mid * mel_bins + i] = 1.0;
        } else {
            for j in lo..=mid {
                out[j * mel_bins + i] = j.saturating_sub(lo) as f64 / (mid as f64 - lo as f64);
            }
        }
        if hi > mid {
            for j in mid..hi {
                out[j * mel_bins + i] = (hi - j) as f64 / (hi - mid) as f64;
            }
        }
    }
    f64_tensor(op.dtype, out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::DType;

    #[test]
    fn upper_edge_beyond_nyquist_is_an_error() {
        let v = [
            Tensor::scalar(2i32),
            Tensor::scalar(8i32),
            Tensor::scalar(100i32),
            Tensor::scalar(0.0f32),
            Tensor::scalar(1000.0f32),
        ]
        .map(Value::Tensor);
        let op = MelWeightMatrix { dtype: DType::F32 };
        let inputs: Vec<Option<&Value>> = v.iter().map(Some).collect();
        assert!(run(&op, &inputs).is_err());
    }
}
