//! Hann, Hamming and Blackman windows.

use std::f64::consts::PI;

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::signal::{Window, WindowKind};

use super::{f64_tensor, scalar_int};

pub fn run(op: &Window, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let size = scalar_int(inputs, 0, "size")?;
    let size = usize::try_from(size)
        .map_err(|_| Error::compute(format!("window size must be non-negative, got {size}")))?;
    xnpu_core::shape::checked_nbytes(op.dtype, &[size])?;
    let m = if op.periodic {
        size
    } else {
        size.saturating_sub(1)
    } as f64;
    let values = xnpu_linalg::buf::collected(
        (0..size).map(|n| {
            if m == 0.0 {
                return 1.0;
            }
            let t = 2.0 * PI * n as f64 / m;
            match op.kind {
                WindowKind::Hann => (PI * n as f64 / m).sin().powi(2),
                WindowKind::Hamming => 25.0 / 46.0 - 21.0 / 46.0 * t.cos(),
                WindowKind::Blackman => 0.42 - 0.5 * t.cos() + 0.08 * (2.0 * t).cos(),
            }
        }),
        "the window",
    )?;
    f64_tensor(op.dtype, vec![size], values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::DType;

    #[test]
    fn symmetric_hann_ends_at_zero_and_peaks_in_the_middle() {
        let size = Value::Tensor(Tensor::scalar(5i64));
        let op = Window {
            kind: WindowKind::Hann,
            periodic: false,
            dtype: DType::F64,
        };
        let v = run(&op, &[Some(&size)]).unwrap().to_vec::<f64>().unwrap();
        assert!(v[0].abs() < 1e-12 && v[4].abs() < 1e-12);
        assert!((v[2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn negative_size_is_an_error() {
        let size = Value::Tensor(Tensor::scalar(-1i64));
        let op = Window {
            kind: WindowKind::Hamming,
            periodic: true,
            dtype: DType::F32,
        };
        assert!(run(&op, &[Some(&size)]).is_err());
    }
}
