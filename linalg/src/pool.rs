//! fp32 2-D max pooling (1-D as a height of one) of NCHW planes.

use rayon::prelude::*;
use xnpu_core::{Error, Result};

use crate::buf;
use crate::conv::Geometry;

/// For each output position along one dim, the first kernel tap that reads the input (or
/// `None` when the whole window lies in the padding), and per tap the range of output
/// positions for which it does.
struct Axis {
    first: Vec<Option<usize>>,
    ranges: Vec<(usize, usize)>,
}

/// The taps of one dim (the kernel is an attribute: its length is allocated fallibly, and
/// its offsets, below the padded size that `max_pool` checked, do not overflow).
fn axis(
    len: usize,
    out: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
) -> Result<Axis> {
    let ranges = buf::collected(
        (0..kernel).map(|k| {
            let off = k * dilation;
            let lo = pad.saturating_sub(off).div_ceil(stride);
            let hi = (pad + len).saturating_sub(off).div_ceil(stride).min(out);
            (lo.min(hi), hi)
        }),
        "a max pool's taps",
    )?;
    let first = buf::collected(
        (0..out).map(|o| ranges.iter().position(|&(lo, hi)| (lo..hi).contains(&o))),
        "a max pool's first taps",
    )?;
    Ok(Axis { first, ranges })
}

/// Whether `kernel`, `g` and `pad_end` fit in usize arithmetic: every padded size, dilated
/// kernel and window start, as the pools compute them.
fn geometry_fits(kernel: [usize; 2], g: &Geometry, pad_end: [usize; 2]) -> bool {
    (0..2).all(|i| {
        let ext = (kernel[i].max(1) - 1)
            .checked_mul(g.dilation[i])
            .and_then(|e| e.checked_add(1));
        let last = g.output[i]
            .saturating_sub(1)
            .checked_mul(g.stride[i])
            .zip(ext)
            .and_then(|(o, e)| o.checked_add(e));
        let padded = g.input[i]
            .checked_add(g.pad_begin[i])
            .and_then(|p| p.checked_add(pad_end[i]));
        last.zip(padded)
            .and_then(|(l, p)| l.checked_add(p))
            .is_some()
    })
}

/// Max over each window of `x` (`planes` planes of `g.input`), into `y` (`planes` planes of
/// `g.output`). Taps in the padding are skipped; a window wholly in the padding gives 0. Taps
/// are compared in window order and a value replaces the maximum only when greater, so a NaN
/// is kept where it comes first, as the reference kernel does.
pub fn max_pool(
    kernel: [usize; 2],
    g: &Geometry,
    planes: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let [ih, iw] = g.input;
    let [oh, ow] = g.output;
    let size = |n: &[usize]| n.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    let (pin, pout) = (size(&[ih, iw]), size(&[oh, ow]));
    let fits = |a: Option<usize>, len: usize| a.and_then(|a| planes.checked_mul(a)) == Some(len);
    if !fits(pin, x.len())
        || !fits(pout, y.len())
        || kernel.contains(&0)
        || g.stride.contains(&0)
        || !geometry_fits(kernel, g, [0, 0])
    {
        return Err(Error::compute(format!(
            "max pool buffers of {} and {} values do not fit {planes} planes of {g:?}",
            x.len(),
            y.len()
        )));
    }
    // Both checked just above.
    let (pin, pout) = (ih * iw, oh * ow);
    if pout == 0 {
        return Ok(());
    }
    let ay = axis(
        ih,
        oh,
        kernel[0],
        g.stride[0],
        g.dilation[0],
        g.pad_begin[0],
    )?;
    let ax = axis(
        iw,
        ow,
        kernel[1],
        g.stride[1],
        g.dilation[1],
        g.pad_begin[1],
    )?;
    let input = |o: usize, k: usize, axis: usize| {
        o * g.stride[axis] + k * g.dilation[axis] - g.pad_begin[axis]
    };
    let separable = Separable::new(kernel, g);
    // The two-pass buffers grow with the padded row and the input's height times the output's
    // width; where those dwarf the planes (huge strides or pads), the direct path, which
    // allocates nothing, runs instead.
    let small = |n: Option<usize>| n.is_some_and(|n| n <= 4 * (pin + pout) + 1024);
    let two_pass = small(Some(separable.padded)) && small(ih.checked_mul(ow));
    let plane = |(p, out): (usize, &mut [f32])| {
        let xp = &x[p * pin..][..pin];
        if two_pass && !has_nan(xp) {
            // Without NaNs the order of comparisons does not matter: rows, then columns.
            separable_plane(separable.padded, kernel, g, &ay, &ax, xp, out);
            return;
        }
        // The first tap of each window, then every tap compared in window order.
        for oy in 0..oh {
            for ox in 0..ow {
                out[oy * ow + ox] = match (ay.first[oy], ax.first[ox]) {
                    (Some(ky), Some(kx)) => xp[input(oy, ky, 0) * iw + input(ox, kx, 1)],
                    _ => 0.0,
                };
            }
        }
        for (ky, &(y0, y1)) in ay.ranges.iter().enumerate() {
            for (kx, &(x0, x1)) in ax.ranges.iter().enumerate() {
                if x0 >= x1 {
                    continue;
                }
                for oy in y0..y1 {
                    let row = &xp[input(oy, ky, 0) * iw..][..iw];
                    let orow = &mut out[oy * ow + x0..oy * ow + x1];
                    let ix0 = input(x0, kx, 1);
                    // A select, not a branch (x86's max instruction has these semantics).
                    let take = |o: &mut f32, v: f32| *o = if v > *o { v } else { *o };
                    if g.stride[1] == 1 {
                        orow.iter_mut()
                            .zip(&row[ix0..])
                            .for_each(|(o, &v)| take(o, v));
                    } else {
                        let s = g.stride[1];
                        for (t, o) in orow.iter_mut().enumerate() {
                            take(o, row[ix0 + t * s]);
                        }
                    }
                }
            }
        }
    };
    if planes * pout >= 1 << 14 {
        y.par_chunks_mut(pout).enumerate().for_each(plane);
    } else {
        y.chunks_mut(pout).enumerate().for_each(plane);
    }
    Ok(())
}

/// Max pooling as two passes over a plane without NaNs: each input row's maximum over the
/// kernel's columns at every output column (the row padded with -inf, the maxima over
/// consecutive positions taken with contiguous, vectorisable loops, then every `stride`-th
/// kept), then each output row's maximum over the kernel's rows of those.
struct Separable {
    /// The padded row's length: every tap of every output column.
    padded: usize,
}

impl Separable {
    fn new(kernel: [usize; 2], g: &Geometry) -> Separable {
        let ow = g.output[1];
        let padded = if ow == 0 {
            Some(0)
        } else {
            (ow - 1)
                .checked_mul(g.stride[1])
                .zip((kernel[1] - 1).checked_mul(g.dilation[1]))
                .and_then(|(a, b)| a.checked_add(b))
                .and_then(|v| v.checked_add(1))
        };
        // Too large (or overflowing) means the direct path: see `max_pool`.
        let padded = padded.unwrap_or(usize::MAX);
        Separable { padded }
    }
}

crate::math::vectorised_fn! {
    /// Whether `x` holds a NaN (every value looked at, so that the loop vectorises).
    fn has_nan(x: &[f32]) -> bool {
        x.chunks(256).any(|c| c.iter().fold(false, |a, &v| a | v.is_nan()))
    }
}

crate::math::vectorised_fn! {
    /// [`Separable`]'s two passes over one plane, compiled for AVX2 where the CPU has it.
    #[allow(clippy::too_many_arguments)]
    fn separable_plane(
        padded: usize,
        kernel: [usize; 2],
        g: &Geometry,
        ay: &Axis,
        ax: &Axis,
        xp: &[f32],
        out: &mut [f32],
    ) {
        let [ih, iw] = g.input;
        let [oh, ow] = g.output;
        let (sx, dx, px) = (g.stride[1], g.dilation[1], g.pad_begin[1]);
        let span = (ow - 1) * sx + 1;
        let mut row = vec![f32::NEG_INFINITY; padded];
        let mut full = vec![f32::NEG_INFINITY; span];
        // Per input row, its maximum at each output column.
        let mut h = vec![f32::NEG_INFINITY; ih * ow];
        for (iy, hrow) in h.chunks_mut(ow).enumerate() {
            let src = &xp[iy * iw..][..iw];
            // The row in padded coordinates: input column c sits at c + px.
            row.fill(f32::NEG_INFINITY);
            let (lo, hi) = (px.min(padded), (px + iw).min(padded));
            if lo < hi {
                row[lo..hi].copy_from_slice(&src[..hi - lo]);
            }
            full.fill(f32::NEG_INFINITY);
            for kx in 0..kernel[1] {
                let off = kx * dx;
                // No NaNs here: `max` is the comparison (and compiles to one instruction
                // a lane, where a select of the greater compiles to a masked store).
                for (f, &v) in full.iter_mut().zip(&row[off..off + span]) {
                    *f = f.max(v);
                }
            }
            crate::conv::copy_strided(hrow, &full, sx);
        }
        for oy in 0..oh {
            let orow = &mut out[oy * ow..][..ow];
            orow.fill(f32::NEG_INFINITY);
            for (ky, &(y0, y1)) in ay.ranges.iter().enumerate() {
                if (y0..y1).contains(&oy) {
                    let iy = oy * g.stride[0] + ky * g.dilation[0] - g.pad_begin[0];
                    for (o, &v) in orow.iter_mut().zip(&h[iy * ow..][..ow]) {
                        *o = o.max(v);
                    }
                }
            }
            // Windows wholly in the padding give 0, as the reference kernel's do.
            if ay.first[oy].is_none() {
                orow.fill(0.0);
            } else {
                for (o, f) in orow.iter_mut().zip(&ax.first) {
                    if f.is_none() {
                        *o = 0.0;
                    }
                }
            }
        }
    }
}

/// One axis of an average pool: for each output position, the taps that read the input
/// (`(first, last + 1)` as tap indices, `dilation` apart) and the count it divides by.
fn avg_axis(
    len: usize,
    out: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pads: [usize; 2],
    include_pad: bool,
) -> Result<Vec<(usize, usize, usize)>> {
    let windows = (0..out).map(|o| {
        // Tap k reads padded position o*stride + k*dilation, input position that - pad.
        let at = |k: usize| o * stride + k * dilation;
        let inside = |k: usize| at(k) >= pads[0] && at(k) - pads[0] < len;
        let lo = (0..kernel).find(|&k| inside(k)).unwrap_or(kernel);
        let hi = (lo..kernel)
            .rev()
            .find(|&k| inside(k))
            .map_or(lo, |k| k + 1);
        let count = if include_pad {
            (0..kernel)
                .filter(|&k| at(k) < pads[0] + len + pads[1])
                .count()
        } else {
            hi - lo
        };
        (lo, hi, count)
    });
    buf::collected(windows, "an average pool's windows")
}

/// The mean over each window of `x` (`planes` planes of `g.input`) into `y`: with
/// `include_pad` the declared pads (`g.pad_begin` and `pad_end`) count as zeros, otherwise
/// only input elements count; positions past the end padding never count. `Ok(false)`
/// (nothing written) when a window counts no position, which the caller leaves to its
/// reference.
pub fn avg_pool(
    kernel: [usize; 2],
    g: &Geometry,
    pad_end: [usize; 2],
    include_pad: bool,
    planes: usize,
    x: &[f32],
    y: &mut [f32],
) -> Result<bool> {
    let [ih, iw] = g.input;
    let [oh, ow] = g.output;
    let size = |n: &[usize]| n.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    let fits = |a: Option<usize>, b: usize| a.and_then(|a| planes.checked_mul(a)) == Some(b);
    if !fits(size(&[ih, iw]), x.len())
        || !fits(size(&[oh, ow]), y.len())
        || kernel.contains(&0)
        || g.stride.contains(&0)
        || !geometry_fits(kernel, g, pad_end)
    {
        return Err(Error::compute(format!(
            "average pool buffers of {} and {} values do not fit {planes} planes of {g:?}",
            x.len(),
            y.len()
        )));
    }
    let axis = |i: usize, len: usize, out: usize| {
        avg_axis(
            len,
            out,
            kernel[i],
            g.stride[i],
            g.dilation[i],
            [g.pad_begin[i], pad_end[i]],
            include_pad,
        )
    };
    // Both checked just above.
    let (pin, pout) = (ih * iw, oh * ow);
    if pout == 0 || planes == 0 {
        return Ok(true);
    }
    let (ay, ax) = (axis(0, ih, oh)?, axis(1, iw, ow)?);
    if ay.iter().chain(&ax).any(|&(_, _, n)| n == 0) {
        return Ok(false);
    }
    let input = |o: usize, k: usize, i: usize| o * g.stride[i] + k * g.dilation[i] - g.pad_begin[i];
    let plane = |(p, out): (usize, &mut [f32])| {
        let xp = &x[p * pin..][..pin];
        for (oy, &(y0, y1, ny)) in ay.iter().enumerate() {
            for (ox, &(x0, x1, nx)) in ax.iter().enumerate() {
                let mut sum = 0.0f32;
                for ky in y0..y1 {
                    let row = &xp[input(oy, ky, 0) * iw..][..iw];
                    for kx in x0..x1 {
                        sum += row[input(ox, kx, 1)];
                    }
                }
                out[oy * ow + ox] = sum / (ny * nx) as f32;
            }
        }
    };
    if planes > 1 && planes * pout >= 1 << 12 {
        y.par_chunks_mut(pout).enumerate().for_each(plane);
    } else {
        y.chunks_mut(pout).enumerate().for_each(plane);
    }
    Ok(true)
}

crate::math::vectorised_fn! {
    /// The mean (or with `max`, the maximum; a NaN counts only as the first value) of each
    /// `area`-element plane of `x`, one value per plane into `y`.
    pub fn global(x: &[f32], area: usize, max: bool, y: &mut [f32]) {
        if area == 0 {
            return;
        }
        for (plane, out) in x.chunks_exact(area).zip(y.iter_mut()) {
            *out = if max {
                // As the reference: a NaN first stays (nothing compares greater), a later
                // one is passed over.
                if plane[0].is_nan() {
                    f32::NAN
                } else {
                    crate::math::max_of(plane)
                }
            } else {
                crate::math::sum_by(plane, |v| v) / area as f32
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_max_keeps_a_leading_nan_only_and_empty_averages_write_nothing() {
        let mut y = [0.0; 2];
        global(&[1.0, f32::NAN, 2.0, f32::NAN, 1.0, 0.0], 3, true, &mut y);
        assert_eq!(y[0], 2.0);
        assert!(y[1].is_nan());
        let g = Geometry {
            batch: 1,
            input: [1, 0],
            output: [1, 0],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        assert!(avg_pool([1, 2], &g, [0, 2], false, 1, &[], &mut []).unwrap());
    }

    #[test]
    fn kernels_and_geometries_past_memory_are_errors() {
        // A kernel of 2^62 taps (over pads of 2^62): its tap table is refused.
        let g = Geometry {
            batch: 1,
            input: [1, 1],
            output: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 1 << 62],
        };
        let mut y = [0.0];
        let e = max_pool([1, 1 << 62], &g, 1, &[1.0], &mut y).unwrap_err();
        assert!(e.to_string().contains("a max pool's taps"), "{e}");
        // Positions past usize::MAX: refused before any is computed.
        let g = Geometry {
            stride: [1, usize::MAX],
            output: [1, 2],
            ..g
        };
        let mut y = [0.0; 2];
        assert!(max_pool([1, 1], &g, 1, &[1.0], &mut y).is_err());
        assert!(avg_pool([1, 1], &g, [0, 0], true, 1, &[1.0], &mut y).is_err());
    }

    #[test]
    fn average_counts_pads_only_when_asked() {
        // 1 plane 2x3, kernel 2x2, stride 1, pads 1 at the start of each dim, 0 at the end.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let g = Geometry {
            batch: 1,
            input: [2, 3],
            output: [2, 3],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let mut y = [0.0; 6];
        assert!(avg_pool([2, 2], &g, [0, 0], false, 1, &x, &mut y).unwrap());
        assert_eq!(y, [1.0, 1.5, 2.5, 2.5, 3.0, 4.0]);
        assert!(avg_pool([2, 2], &g, [0, 0], true, 1, &x, &mut y).unwrap());
        assert_eq!(y, [0.25, 0.75, 1.25, 1.25, 3.0, 4.0]);
    }

    /// The definition: each window's taps in order, the first valid one, then any greater.
    fn naive(kernel: [usize; 2], g: &Geometry, x: &[f32]) -> Vec<f32> {
        let [ih, iw] = g.input;
        let [oh, ow] = g.output;
        let mut y = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<f32> = None;
                for ky in 0..kernel[0] {
                    for kx in 0..kernel[1] {
                        let iy =
                            (oy * g.stride[0] + ky * g.dilation[0]) as i64 - g.pad_begin[0] as i64;
                        let ix =
                            (ox * g.stride[1] + kx * g.dilation[1]) as i64 - g.pad_begin[1] as i64;
                        if iy < 0 || ix < 0 || iy >= ih as i64 || ix >= iw as i64 {
                            continue;
                        }
                        let v = x[iy as usize * iw + ix as usize];
                        if best.is_none_or(|b| v > b) {
                            best = Some(v);
                        }
                    }
                }
                y.push(best.unwrap_or(0.0));
            }
        }
        y
    }

    /// Strides and pads far larger than the planes take the direct path, which allocates
    /// nothing (the two-pass buffers would be terabytes here).
    #[test]
    fn huge_strides_and_pads_allocate_nothing_large() {
        let big = 1usize << 40;
        let g = Geometry {
            batch: 1,
            input: [1, 1],
            output: [1, 2],
            stride: [1, big],
            dilation: [1, 1],
            pad_begin: [0, big],
        };
        let mut y = [f32::NAN; 2];
        max_pool([1, 1], &g, 1, &[3.5], &mut y).unwrap();
        assert_eq!(y, [0.0, 3.5]);
    }

    /// Every small geometry (sizes, kernels, strides, dilations, pads and an extra end
    /// extent as ceil_mode gives), exhaustively, with NaNs among the values.
    #[test]
    fn every_small_geometry_matches_the_definition() {
        let mut checked = 0;
        for ih in 1..4 {
            for iw in 1..5 {
                for k in 1..4 {
                    for s in 1..3 {
                        for d in 1..3 {
                            for p in 0..3 {
                                for extra in 0..2 {
                                    let ext = (k - 1) * d + 1;
                                    let (ph, pw) = (ih + 2 * p + extra, iw + 2 * p + extra);
                                    if ph < ext || pw < ext {
                                        continue;
                                    }
                                    let g = Geometry {
                                        batch: 1,
                                        input: [ih, iw],
                                        output: [(ph - ext) / s + 1, (pw - ext) / s + 1],
                                        stride: [s, s],
                                        dilation: [d, d],
                                        pad_begin: [p, p],
                                    };
                                    for nan in [true, false] {
                                        let x: Vec<f32> = (0..ih * iw)
                                            .map(|i| match (i % 5, i % 7) {
                                                (3, _) if nan => f32::NAN,
                                                (_, 6) => f32::NEG_INFINITY,
                                                _ => ((i * 7) % 11) as f32 - 5.0,
                                            })
                                            .collect();
                                        let mut y = vec![-1.0; g.output[0] * g.output[1]];
                                        max_pool([k, k], &g, 1, &x, &mut y).unwrap();
                                        let want = naive([k, k], &g, &x);
                                        for (a, b) in y.iter().zip(&want) {
                                            assert!(
                                                a == b || (a.is_nan() && b.is_nan()),
                                                "{g:?} k {k} nan {nan}: {y:?} vs {want:?}"
                                            );
                                        }
                                    }
                                    checked += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 500);
    }
}
