//! DFT along one axis (naive O(N^2) per signal, in f64).

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::signal::Dft;

use xnpu_linalg::buf;

use super::{dft_1d, f64_tensor, scalar_int};
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
    let mut out = buf::zeroed::<f64>(total, "DFT's output")?;
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize, c: usize| data[((o * n_in + j) * inner + i) * comps + c];
            let imag = |j: usize| if comps == 2 { at(j, 1) } else { 0.0 };
            let (mut re, mut im) = (
                buf::zeroed::<f64>(n, "a DFT's signal")?,
                buf::zeroed::<f64>(n, "a DFT's signal")?,
            );
            if op.inverse && op.onesided {
                // Rebuild the full Hermitian spectrum from its first half.
                for k in 0..n {
                    let (src, conj) = if k <= n / 2 {
                        (k, false)
                    } else {
                        (n - k, true)
                    };
                    if src < n_in {
                        re[k] = at(src, 0);
                        im[k] = if conj { -imag(src) } else { imag(src) };
                    }
                }
            } else {
                for j in 0..n.min(n_in) {
                    re[j] = at(j, 0);
                    im[j] = imag(j);
                }
            }
            let (mut fr, mut fi) = dft_1d(&re, &im, op.inverse)?;
            if op.inverse {
                let scale = 1.0 / n as f64;
                fr.iter_mut().chain(fi.iter_mut()).for_each(|v| *v *= scale);
            }
            for k in 0..n_out {
                let base = ((o * n_out + k) * inner + i) * out_comps;
                out[base] = fr[k];
                if out_comps == 2 {
                    out[base + 1] = fi[k];
                }
            }
        }
    }
    f64_tensor(x.dtype(), out_shape, out)
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
}
