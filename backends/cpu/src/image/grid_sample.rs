//! GridSample: sampling an N-D input at normalized grid coordinates, in f64.

use xnpu_core::shape::checked_numel;
use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::image::{GridMode, GridPadding, GridSample};

use super::f64_tensor;
use crate::args::tensor;

/// The most spatial dims GridSample samples in.
const MAX_SPATIAL: usize = 8;

pub fn run(op: &GridSample, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let grid = tensor(inputs, 1)?;
    check_inputs(x, grid)?;
    let (xs, gs) = (x.shape(), grid.shape());
    let r = xs.len() - 2;
    let (n_batch, channels) = (xs[0], xs[1]);
    let dims = &xs[2..];
    let out_dims = &gs[1..gs.len() - 1];
    let n_in = checked_numel(dims)?;
    let n_out = checked_numel(out_dims)?;
    let mut out_shape = vec![n_batch, channels];
    out_shape.extend_from_slice(out_dims);
    let total = checked_numel(&out_shape)?;

    let data = x.to_f64_vec()?;
    let g = grid.to_f64_vec()?;
    let strides = spatial_strides(dims);
    let border = borders(op, dims);
    let mut out = buf::zeroed::<f64>(total, "GridSample's output")?;
    for b in 0..n_batch {
        for o in 0..n_out {
            let point = &g[(b * n_out + o) * r..(b * n_out + o + 1) * r];
            let taps: Vec<Vec<(i64, f64)>> = source_coords(op, point, dims, &border)
                .iter()
                .map(|&c| taps(op.mode, c))
                .collect();
            for ch in 0..channels {
                let base = (b * channels + ch) * n_in;
                let plane = &data[base..base + n_in];
                out[(b * channels + ch) * n_out + o] =
                    interpolate(plane, dims, &strides, &taps, &border, op.padding);
            }
        }
    }
    f64_tensor(x.dtype(), out_shape, out)
}

/// Checks the dtypes and that X is `[N, C, D1..Dr]` with non-empty spatial dims and the
/// grid `[N, O1..Or, r]`.
fn check_inputs(x: &Tensor, grid: &Tensor) -> Result<()> {
    if !x.dtype().is_numeric() || !grid.dtype().is_float() {
        return Err(Error::compute(format!(
            "GridSample needs numeric X and float grid, got {} and {}",
            x.dtype(),
            grid.dtype()
        )));
    }
    let (xs, gs) = (x.shape(), grid.shape());
    if xs.len() < 3 || gs.len() != xs.len() || gs[gs.len() - 1] != xs.len() - 2 || gs[0] != xs[0] {
        return Err(Error::compute(format!(
            "X must be [N, C, D1..Dr] and grid [N, O1..Or, r]; got X {xs:?} and grid {gs:?}"
        )));
    }
    // Each output value interpolates between up to 4^r input values.
    if xs.len() - 2 > MAX_SPATIAL {
        return Err(Error::compute(format!(
            "GridSample samples in at most {MAX_SPATIAL} spatial dims, X {xs:?} has {}",
            xs.len() - 2
        )));
    }
    if xs[2..].contains(&0) {
        return Err(Error::compute(format!(
            "GridSample needs non-empty spatial dims, got X {xs:?}"
        )));
    }
    Ok(())
}

/// Row-major strides of the spatial dims.
fn spatial_strides(dims: &[usize]) -> Vec<usize> {
    let r = dims.len();
    let mut strides = vec![1usize; r];
    for i in (0..r.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    strides
}

/// Borders of the valid coordinate range per spatial dim.
fn borders(op: &GridSample, dims: &[usize]) -> Vec<(f64, f64)> {
    dims.iter()
        .map(|&d| {
            if op.align_corners {
                (0.0, d as f64 - 1.0)
            } else {
                (-0.5, d as f64 - 0.5)
            }
        })
        .collect()
}

/// The source coordinate per spatial dim of grid point `point` (which lists the innermost
/// dim first), rounded for nearest mode and padded per `op.padding`.
fn source_coords(
    op: &GridSample,
    point: &[f64],
    dims: &[usize],
    border: &[(f64, f64)],
) -> Vec<f64> {
    let r = dims.len();
    (0..r)
        .map(|i| {
            let gv = point[r - 1 - i];
            let d = dims[i] as f64;
            let mut c = if op.align_corners {
                (gv + 1.0) / 2.0 * (d - 1.0)
            } else {
                ((gv + 1.0) * d - 1.0) / 2.0
            };
            if op.mode == GridMode::Nearest {
                c = c.round_ties_even();
            }
            let (lo, hi) = border[i];
            if c < lo || c > hi {
                c = match op.padding {
                    GridPadding::Border => c.clamp(0.0, d - 1.0),
                    GridPadding::Reflection => reflect(c, lo, hi),
                    GridPadding::Zeros => c,
                };
            }
            // Far outside is as good as infinitely far; keeps index math in range.
            c.clamp(-1e15, 1e15)
        })
        .collect()
}

/// The taps of coordinate `c` along one dim: (index, weight).
fn taps(mode: GridMode, c: f64) -> Vec<(i64, f64)> {
    match mode {
        GridMode::Nearest => vec![(c.trunc() as i64, 1.0)],
        GridMode::Linear => {
            let f = c.floor();
            let t = c - f;
            vec![(f as i64, 1.0 - t), (f as i64 + 1, t)]
        }
        GridMode::Cubic => {
            let f = c.floor();
            let w = cubic_coeffs(c - f);
            (0..4).map(|k| (f as i64 - 1 + k as i64, w[k])).collect()
        }
    }
}

/// The sum over all combinations of taps of the product of their weights times the element
/// they address (read per `padding`).
fn interpolate(
    plane: &[f64],
    dims: &[usize],
    strides: &[usize],
    taps: &[Vec<(i64, f64)>],
    border: &[(f64, f64)],
    padding: GridPadding,
) -> f64 {
    let r = dims.len();
    let mut pick = vec![0usize; r];
    let mut total = 0.0;
    loop {
        let mut weight = 1.0;
        let mut offset = Some(0usize);
        for i in 0..r {
            let (idx, w) = taps[i][pick[i]];
            weight *= w;
            let d = dims[i] as i64;
            let idx = match padding {
                GridPadding::Zeros => (0..d).contains(&idx).then_some(idx),
                GridPadding::Border => Some(idx.clamp(0, d - 1)),
                GridPadding::Reflection => {
                    let (lo, hi) = border[i];
                    Some((reflect(idx as f64, lo, hi) as i64).clamp(0, d - 1))
                }
            };
            offset = match (offset, idx) {
                (Some(o), Some(k)) if d > 0 => Some(o + k as usize * strides[i]),
                _ => None,
            };
        }
        let v = offset.map_or(0.0, |o| plane[o]);
        total += weight * v;
        // Next combination.
        let mut i = r;
        loop {
            if i == 0 {
                return total;
            }
            i -= 1;
            pick[i] += 1;
            if pick[i] < taps[i].len() {
                break;
            }
            pick[i] = 0;
        }
    }
}

/// Reflects `x` at the borders `lo` and `hi` until it lies between them.
fn reflect(x: f64, lo: f64, hi: f64) -> f64 {
    let range = hi - lo;
    if range <= 0.0 || !x.is_finite() {
        return lo;
    }
    if x < lo {
        let dx = lo - x;
        let n = (dx / range).trunc();
        let rem = dx - n * range;
        if n % 2.0 == 0.0 {
            lo + rem
        } else {
            hi - rem
        }
    } else if x > hi {
        let dx = x - hi;
        let n = (dx / range).trunc();
        let rem = dx - n * range;
        if n % 2.0 == 0.0 {
            hi - rem
        } else {
            lo + rem
        }
    } else {
        x
    }
}

/// Keys' cubic convolution weights (a = -0.75) for the 4 neighbours of a point at fraction
/// `t` past the second one.
fn cubic_coeffs(t: f64) -> [f64; 4] {
    let a = -0.75;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflection_folds_back_into_range() {
        assert_eq!(reflect(-1.0, -0.5, 2.5), 0.0);
        assert_eq!(reflect(3.0, -0.5, 2.5), 2.0);
        assert_eq!(reflect(1.0, -0.5, 2.5), 1.0);
    }

    #[test]
    fn bilinear_centre_of_2x2_is_the_mean() {
        let x = Tensor::from_vec(vec![1, 1, 2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let g = Tensor::from_vec(vec![1, 1, 1, 2], vec![0.0f32, 0.0]).unwrap();
        let (x, g) = (Value::Tensor(x), Value::Tensor(g));
        let op = GridSample {
            mode: GridMode::Linear,
            padding: GridPadding::Zeros,
            align_corners: false,
        };
        let out = run(&op, &[Some(&x), Some(&g)]).unwrap();
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![2.5]);
    }

    #[test]
    fn grid_of_wrong_rank_is_an_error() {
        let x = Value::Tensor(Tensor::zeros(xnpu_core::DType::F32, vec![1, 1, 2, 2]).unwrap());
        let g = Value::Tensor(Tensor::zeros(xnpu_core::DType::F32, vec![1, 1, 2]).unwrap());
        let op = GridSample {
            mode: GridMode::Linear,
            padding: GridPadding::Zeros,
            align_corners: false,
        };
        assert!(run(&op, &[Some(&x), Some(&g)]).is_err());
    }
}
