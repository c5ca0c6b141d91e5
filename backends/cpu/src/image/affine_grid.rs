//! AffineGrid: affine sampling grids for GridSample.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::image::AffineGrid;

use super::f64_tensor;
use crate::args::tensor;

/// Normalized coordinates of the `d` positions of an axis.
fn axis_coords(d: usize, align_corners: bool) -> Result<Vec<f64>> {
    const WHAT: &str = "AffineGrid's coordinates";
    if d <= 1 {
        return buf::zeroed(d, WHAT);
    }
    let d_f = d as f64;
    buf::collected(
        (0..d).map(|i| {
            if align_corners {
                -1.0 + i as f64 * (2.0 / (d_f - 1.0))
            } else {
                let step = 2.0 / d_f;
                -1.0 + step / 2.0 + i as f64 * step
            }
        }),
        WHAT,
    )
}

pub fn run(op: &AffineGrid, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let theta = tensor(inputs, 0)?;
    let size = tensor(inputs, 1)?.to_i64_vec()?;
    if !theta.dtype().is_float() {
        return Err(Error::compute(format!(
            "theta must be a float tensor, got {}",
            theta.dtype()
        )));
    }
    if !(size.len() == 4 || size.len() == 5) || size.iter().any(|&d| d < 0) {
        return Err(Error::compute(format!(
            "size must be [N, C, H, W] or [N, C, D, H, W] with non-negative values, got {size:?}"
        )));
    }
    let r = size.len() - 2;
    let n = size[0] as usize;
    let ts = theta.shape();
    if ts != [n, r, r + 1] {
        return Err(Error::compute(format!(
            "theta must be [{n}, {r}, {}] for size {size:?}, got {ts:?}",
            r + 1
        )));
    }
    let spatial: Vec<usize> = size[2..].iter().map(|&d| d as usize).collect();
    let mut out_shape = vec![n];
    out_shape.extend_from_slice(&spatial);
    out_shape.push(r);
    let total = xnpu_core::shape::checked_numel(&out_shape)?;
    if total == 0 {
        return f64_tensor(theta.dtype(), out_shape, Vec::new());
    }
    // Coordinates per spatial axis, outermost first (D or H, ..., W).
    let coords: Vec<Vec<f64>> = spatial
        .iter()
        .map(|&d| axis_coords(d, op.align_corners))
        .collect::<Result<_>>()?;
    let th = theta.to_f64_vec()?;
    // Divides `total`: no overflow.
    let n_points: usize = spatial.iter().product();
    let mut out = buf::reserved(total, "AffineGrid's output")?;
    for b in 0..n {
        let t = &th[b * r * (r + 1)..(b + 1) * r * (r + 1)];
        for p in 0..n_points {
            // Homogeneous point [x, y, (z,) 1] with x along the innermost axis.
            let mut rest = p;
            let mut point = vec![1.0; r + 1];
            for axis in (0..r).rev() {
                let i = rest % spatial[axis];
                rest /= spatial[axis];
                point[r - 1 - axis] = coords[axis][i];
            }
            for row in 0..r {
                let m = &t[row * (r + 1)..(row + 1) * (r + 1)];
                out.push(m.iter().zip(&point).map(|(a, b)| a * b).sum());
            }
        }
    }
    f64_tensor(theta.dtype(), out_shape, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_theta_gives_the_base_grid() {
        let theta = Tensor::from_vec(vec![1, 2, 3], vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        let size = Tensor::from_vec(vec![4], vec![1i64, 1, 1, 2]).unwrap();
        let v = [theta, size].map(Value::Tensor);
        let op = AffineGrid {
            align_corners: true,
        };
        let out = run(&op, &[Some(&v[0]), Some(&v[1])]).unwrap();
        assert_eq!(out.shape(), &[1, 1, 2, 2]);
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![-1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn a_size_of_2_62_is_an_error_not_an_abort() {
        let theta = Tensor::from_vec(vec![1, 2, 3], vec![1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        let size = Tensor::from_vec(vec![4], vec![1i64, 1, 1 << 62, 1]).unwrap();
        let v = [theta, size].map(Value::Tensor);
        let op = AffineGrid {
            align_corners: false,
        };
        let err = run(&op, &[Some(&v[0]), Some(&v[1])]).unwrap_err();
        assert!(err.to_string().contains("cannot allocate"), "{err}");
    }
}
