//! DFT along one axis, by FFTs that round as NumPy's do (`fft.rs`).

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::signal::Dft;

use xnpu_linalg::buf;

use super::fft::{Complex, ComplexFft, Real, RealBackwardFft};
use super::{f64_tensor, scalar_int};
use crate::args::{opt_tensor, tensor};

pub fn run(op: &Dft, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    if !x.dtype().is_float() {
        return Err(Error::compute(format!(
            "DFT needs float input, got {}",
            x.dtype()
        )));
    }
    let shape = x.shape();
    let axis = match op.axis {
        Some(a) => a,
        None => match opt_tensor(inputs, 2)? {
            None => -2,
            Some(_) => scalar_int(inputs, 2, "axis")?,
        },
    };
    let axis = Dft::resolve_axis(axis, shape.len())?;
    let dft_length =
        match opt_tensor(inputs, 1)? {
            None => None,
            Some(_) => {
                let n = scalar_int(inputs, 1, "dft_length")?;
                Some(usize::try_from(n).map_err(|_| {
                    Error::compute(format!("dft_length must be non-negative, got {n}"))
                })?)
            }
        };
    let out_shape = op.output_shape(shape, dft_length, axis)?;
    let total = xnpu_core::shape::checked_numel(&out_shape)?;
    let rank = shape.len();
    let comps = shape[rank - 1];
    let out_comps = out_shape[rank - 1];
    let n = if op.inverse && op.onesided {
        out_shape[axis]
    } else {
        dft_length.unwrap_or(shape[axis])
    };
    let n_in = shape[axis];
    let n_out = out_shape[axis];
    let outer = xnpu_core::shape::checked_numel(&shape[..axis])?;
    let inner = xnpu_core::shape::checked_numel(&shape[axis + 1..rank - 1])?;
    if total == 0 {
        return f64_tensor(x.dtype(), out_shape, Vec::new());
    }
    let data = x.to_f64_vec()?;
    let signals = Signals {
        data: &data,
        outer,
        inner,
        n_in,
        comps,
    };
    let route = Route::of(x.dtype(), op.inverse, op.onesided, comps, n);
    let mut out = if route.single {
        transform::<f32>(op, &signals, n, n_out, out_comps, route.fct as f32)?
    } else {
        transform::<f64>(op, &signals, n, n_out, out_comps, route.fct)?
    };
    if route.via_f32 {
        out.iter_mut().for_each(|v| *v = *v as f32 as f64);
    }
    f64_tensor(x.dtype(), out_shape, out)
}

/// How NumPy 2 computes the ONNX reference of a DFT (`numpy.fft.fft`, `ifft`, `irfft`),
/// measured with NumPy 2.4: its ufunc loop is picked by the types of the data and of the
/// scale factor it is passed, so the precision is not always the data's.
struct Route {
    /// The single-precision loop runs (else the double-precision one).
    single: bool,
    /// The factor the transform is scaled by: 1, or 1/n as NumPy rounds it.
    fct: f64,
    /// The result is rounded to f32 before the output type (a complex64 result).
    via_f32: bool,
}

impl Route {
    fn of(dtype: DType, inverse: bool, onesided: bool, comps: usize, n: usize) -> Route {
        let wide = dtype == DType::F64;
        if !inverse {
            // `fft` passes the integer 1 as its scale, which no single-precision loop takes:
            // f64 for every float type, the complex64 result then cast.
            return Route {
                single: false,
                fct: 1.0,
                via_f32: !wide,
            };
        }
        if comps == 2 && !wide {
            // Complex data is complex64, scaled by 1/n in f32: the single loop.
            return Route {
                single: true,
                fct: reciprocal(DType::F32, n),
                via_f32: false,
            };
        }
        // Real data of a narrow type and its 1/n (rounded to that type) match no loop of
        // their own: the double loop. `irfft` writes the data's real type directly, `ifft`
        // a complex64.
        Route {
            single: false,
            fct: reciprocal(dtype, n),
            via_f32: !wide && !onesided,
        }
    }
}

/// `1/n` as NumPy's `reciprocal(n, dtype=…)` gives it: `n` in that type, its reciprocal
/// rounded to it (a half-precision type divides in f32).
fn reciprocal(dtype: DType, n: usize) -> f64 {
    match dtype {
        DType::F64 => 1.0 / n as f64,
        DType::F16 => {
            let d = half::f16::from_f64(n as f64).to_f32();
            half::f16::from_f32(1.0 / d).to_f64()
        }
        DType::Bf16 => {
            let d = half::bf16::from_f64(n as f64).to_f32();
            half::bf16::from_f32(1.0 / d).to_f64()
        }
        _ => (1.0 / n as f32) as f64,
    }
}

/// The input's signals: `outer` x `inner` of them, `n_in` values apart by `inner * comps`.
struct Signals<'a> {
    data: &'a [f64],
    outer: usize,
    inner: usize,
    n_in: usize,
    comps: usize,
}

impl Signals<'_> {
    /// Value `j` of signal (o, i) as (re, im); zero past its end.
    fn at(&self, o: usize, i: usize, j: usize) -> (f64, f64) {
        if j >= self.n_in {
            return (0.0, 0.0);
        }
        let base = ((o * self.n_in + j) * self.inner + i) * self.comps;
        let im = if self.comps == 2 {
            self.data[base + 1]
        } else {
            0.0
        };
        (self.data[base], im)
    }
}

/// Each signal's transform of length `n`, computed in `T` and scaled by `fct`, its first
/// `n_out` values laid out as the output (`out_comps` of them each).
fn transform<T: Real>(
    op: &Dft,
    s: &Signals,
    n: usize,
    n_out: usize,
    out_comps: usize,
    fct: T,
) -> Result<Vec<f64>> {
    let total = buf::count(&[s.outer, n_out, s.inner, out_comps], "DFT's output")?;
    let mut out = buf::zeroed::<f64>(total, "DFT's output")?;
    let mut put = |o: usize, i: usize, k: usize, re: T, im: T| {
        let base = ((o * n_out + k) * s.inner + i) * out_comps;
        out[base] = re.to_f64();
        if out_comps == 2 {
            out[base + 1] = im.to_f64();
        }
    };
    if op.inverse && op.onesided {
        // NumPy's irfft: the half spectrum in FFTPACK's order (the imaginary parts of the
        // first bin, and of the middle one for an even n, unused), a real backward FFT.
        let plan = RealBackwardFft::<T>::new(n)?;
        let mut sig = buf::zeroed::<T>(n, "a DFT's signal")?;
        for o in 0..s.outer {
            for i in 0..s.inner {
                sig[0] = T::from_f64(s.at(o, i, 0).0);
                for k in 1..=(n - 1) / 2 {
                    let (re, im) = s.at(o, i, k);
                    sig[2 * k - 1] = T::from_f64(re);
                    sig[2 * k] = T::from_f64(im);
                }
                if n.is_multiple_of(2) {
                    sig[n - 1] = T::from_f64(s.at(o, i, n / 2).0);
                }
                plan.run(&mut sig, fct)?;
                for (k, &v) in sig.iter().enumerate().take(n_out) {
                    put(o, i, k, v, T::default());
                }
            }
        }
    } else {
        let plan = ComplexFft::<T>::new(n)?;
        let mut sig = buf::zeroed::<Complex<T>>(n, "a DFT's signal")?;
        for o in 0..s.outer {
            for i in 0..s.inner {
                for (j, v) in sig.iter_mut().enumerate() {
                    let (re, im) = s.at(o, i, j);
                    *v = Complex::new(T::from_f64(re), T::from_f64(im));
                }
                plan.run(&mut sig, !op.inverse, fct)?;
                for (k, v) in sig.iter().enumerate().take(n_out) {
                    put(o, i, k, v.re, v.im);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_onesided_restores_a_real_signal() {
        // rfft of [1, 2, 3, 4] is [10, -2+2i, -2].
        let spec = Tensor::from_vec(vec![3, 2], vec![10.0f64, 0.0, -2.0, 2.0, -2.0, 0.0]).unwrap();
        let v = Value::Tensor(spec);
        let op = Dft {
            inverse: true,
            onesided: true,
            axis: Some(0),
        };
        let out = run(&op, &[Some(&v)]).unwrap();
        assert_eq!(out.shape(), &[4, 1]);
        let got = out.to_vec::<f64>().unwrap();
        for (g, w) in got.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn axis_on_the_complex_dim_is_an_error() {
        let v = Value::Tensor(Tensor::zeros(xnpu_core::DType::F32, vec![4, 2]).unwrap());
        let op = Dft {
            inverse: false,
            onesided: false,
            axis: Some(-1),
        };
        assert!(run(&op, &[Some(&v)]).is_err());
    }

    /// The DFT of `x` along axis 1, with `dft_length` when given.
    fn dft(inverse: bool, onesided: bool, x: Tensor, dft_length: Option<i64>) -> Tensor {
        let op = Dft {
            inverse,
            onesided,
            axis: Some(1),
        };
        let x = Value::Tensor(x);
        let len = dft_length.map(|n| Value::Tensor(Tensor::scalar(n)));
        run(&op, &[Some(&x), len.as_ref()]).unwrap()
    }

    fn real_signal() -> Tensor {
        Tensor::from_vec(vec![1, 5, 1], vec![1.5f32, -2.25, 3.0, 0.5, -1.0]).unwrap()
    }

    fn f16_signal() -> Tensor {
        let v = [1.5f32, -2.25, 3.0, 0.5, -1.0].map(half::f16::from_f32);
        Tensor::from_vec(vec![1, 5, 1], v.to_vec()).unwrap()
    }

    fn f16_bits(t: &Tensor) -> Vec<u16> {
        let v = t.to_vec::<half::f16>().unwrap();
        v.iter().map(|x| x.to_bits()).collect()
    }

    // The expected values below are the ONNX reference's (onnx 1.23, NumPy 2.4), bit for bit.

    #[test]
    fn dft_length_pads_the_signal_with_zeros() {
        let y = dft(false, false, real_signal(), Some(7));
        assert_eq!(y.shape(), &[1, 7, 2]);
        #[rustfmt::skip]
        let want = [
            1.75f32, 0.0, -0.119930424, -1.8164885, -1.0139794, 4.6679864, 5.5089097, 1.859341,
            5.5089097, -1.859341, -1.0139794, -4.6679864, -0.119930424, 1.8164885,
        ];
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
    }

    #[test]
    fn dft_length_truncates_the_signal() {
        let y = dft(false, false, real_signal(), Some(3));
        let want = [2.25f32, 0.0, 1.125, 4.5466332, 1.125, -4.5466332];
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
    }

    #[test]
    fn inverse_onesided_of_odd_length_rounds_as_numpys_irfft() {
        let spec = [10.0f32, 0.0, -2.5, 1.25, 0.75, -3.0];
        let x = Tensor::from_vec(vec![1, 3, 2], spec.to_vec()).unwrap();
        let y = dft(true, true, x, Some(5));
        assert_eq!(y.shape(), &[1, 5, 1]);
        let want = [1.3000001f32, 1.6780919, 1.4665617, 4.336883, 1.2184639];
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
    }

    #[test]
    fn inverse_of_a_real_signal_scales_by_one_over_n_in_its_type() {
        // NumPy's ifft of a real array runs its f64 loop, scaled by 1/n rounded to the
        // array's type: f16(1/5) leaves the first value below f16(0.35) = 0x359a.
        let y = dft(true, false, f16_signal(), None);
        let want = [
            0x3599, 0x0, 0xb779, 0x2b2f, 0x3c2b, 0xb8fb, 0x3c2b, 0x38fb, 0xb779, 0xab2f,
        ];
        assert_eq!(f16_bits(&y), want);
        let y = dft(true, false, real_signal(), None);
        #[rustfmt::skip]
        let want = [
            0.35f32, 0.0, -0.46717295, 0.0561285, 1.0421729, -0.62247455, 1.0421729, 0.62247455,
            -0.46717295, -0.0561285,
        ];
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
    }

    #[test]
    fn inverse_onesided_of_a_real_f16_signal_rounds_as_numpys_irfft() {
        let x = f16_signal();
        let v = x.to_vec::<half::f16>().unwrap();
        let x = Tensor::from_vec(vec![1, 3, 1], v[..3].to_vec()).unwrap();
        let y = dft(true, true, x, Some(5));
        assert_eq!(f16_bits(&y), [0x38cc, 0xbb97, 0x3d98, 0x3d98, 0xbb97]);
    }
}
