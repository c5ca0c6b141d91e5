//! fp32 2-D convolution (1-D as a height of one) of NCHW tensors, with weights packed once.
//!
//! Three paths, chosen per convolution when it is packed:
//! * **pointwise** (1x1 kernel, stride 1, no padding): each group is one GEMM of the weight
//!   `[M/g, C/g]` by the input plane block `[C/g, H*W]`, read in place;
//! * **depthwise** (one input channel per group): a direct kernel per output plane, rows of
//!   the kernel accumulated into rows of the output, planes split over the thread pool;
//! * **general**: the input is unrolled (im2col) into `[C/g * kh * kw, OH*OW]` and each group
//!   is one GEMM by the weight `[M/g, C/g * kh * kw]`.
//!
//! The bias and the activation are applied to each output plane as it is finished (the
//! epilogue); the output is written once.

use rayon::prelude::*;
use xnpu_core::{Error, Result};

use crate::act::Act;
use crate::buf;
use crate::packed::{self, Columns, PackedA, NR};
use crate::sgemm::{sgemm, MatRef};
use crate::winograd::Winograd;

/// Input and output channels below which a 3x3 convolution is not run by Winograd's
/// algorithm: with few channels its transforms cost more than the products it saves
/// (SqueezeNet's 16 to 64 channels ran slower in `xnpu bench`, ResNet's 64 and more faster).
const WINOGRAD_MIN_CHANNELS: usize = 64;

/// The geometry of one convolution on one input size (2-D; a 1-D convolution has a height
/// of 1 and kernel height 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub input: [usize; 2],
    pub output: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad_begin: [usize; 2],
}

/// How a packed convolution runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Pointwise,
    Depthwise,
    General,
    /// 3x3, stride 1, no dilation, one group: Winograd's F(2x2, 3x3) ([`crate::winograd`]).
    Winograd,
}

/// A convolution's weights, bias and activation, ready to run on any input size.
#[derive(Clone, Debug)]
pub struct PackedConv {
    c_in: usize,
    c_out: usize,
    groups: usize,
    kernel: [usize; 2],
    /// `[M, C/g * kh * kw]`, row-major.
    weights: Vec<f32>,
    /// Each group's weights packed for the AVX-512 GEMM (empty without AVX-512, or on the
    /// depthwise path).
    packed: Vec<PackedA>,
    /// The weights transformed for [`Path::Winograd`] (3x3 kernels of one group, with the
    /// packed GEMM, and channels enough for the transforms to pay).
    winograd: Option<Winograd>,
    bias: Option<Vec<f32>>,
    act: Act,
}

fn product(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::compute(format!("the convolution's sizes {dims:?} overflow")))
}

impl PackedConv {
    /// Packs weights `w` `[M, C/groups, kh, kw]` (row-major) and an optional bias `[M]`.
    pub fn new(
        w: &[f32],
        c_out: usize,
        c_in: usize,
        groups: usize,
        kernel: [usize; 2],
        bias: Option<&[f32]>,
        act: Act,
    ) -> Result<PackedConv> {
        if kernel.contains(&0) {
            return Err(Error::compute(format!(
                "the kernel {kernel:?} has a zero dim"
            )));
        }
        if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
            return Err(Error::compute(format!(
                "{c_in} input and {c_out} output channels do not split into {groups} groups"
            )));
        }
        let want = product(&[c_out, c_in / groups, kernel[0], kernel[1]])?;
        if w.len() != want {
            return Err(Error::compute(format!(
                "the weight has {} values, [{c_out}, {}, {}, {}] needs {want}",
                w.len(),
                c_in / groups,
                kernel[0],
                kernel[1]
            )));
        }
        if let Some(b) = bias {
            if b.len() != c_out {
                return Err(Error::compute(format!(
                    "the bias has {} values, expected one per output channel ({c_out})",
                    b.len()
                )));
            }
        }
        let weights = buf::copied(w, "the convolution's weights")?;
        let (cg, mg) = (c_in / groups, c_out / groups);
        let rows = want.checked_div(c_out).unwrap_or(0);
        let packed = if packed::available() && !(cg == 1 && groups > 1) && mg > 0 {
            (0..groups)
                .map(|gi| PackedA::new(MatRef::row_major(&weights[gi * mg * rows..], mg, rows)?))
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let winograd = if packed::available()
            && kernel == [3, 3]
            && groups == 1
            && c_in >= WINOGRAD_MIN_CHANNELS
            && c_out >= WINOGRAD_MIN_CHANNELS
        {
            Some(Winograd::new(&weights, c_out, c_in)?)
        } else {
            None
        };
        Ok(PackedConv {
            c_in,
            c_out,
            groups,
            kernel,
            weights,
            packed,
            winograd,
            bias: bias.map(<[f32]>::to_vec),
            act,
        })
    }

    /// This convolution on the portable path (the `gemm` crate's kernels) even where the
    /// packed AVX-512 GEMM is available: what other CPUs run, for tests on this one.
    pub fn portable(mut self) -> PackedConv {
        self.packed.clear();
        self.winograd = None;
        self
    }

    /// The path a run takes with geometry `g`.
    pub fn path(&self, g: &Geometry) -> Path {
        if self.c_in / self.groups == 1 && self.groups > 1 {
            Path::Depthwise
        } else if self.kernel == [1, 1]
            && g.stride == [1, 1]
            && g.pad_begin == [0, 0]
            && g.input == g.output
        {
            Path::Pointwise
        } else if self.winograd.is_some()
            && g.stride == [1, 1]
            && g.dilation == [1, 1]
            && crate::winograd::worth_it(g)
        {
            Path::Winograd
        } else {
            Path::General
        }
    }

    /// Runs on `x` `[N, C, H, W]`, writing `y` `[N, M, OH, OW]`.
    pub fn run(&self, g: &Geometry, x: &[f32], y: &mut [f32]) -> Result<()> {
        let plane_in = product(&g.input)?;
        let plane_out = product(&g.output)?;
        if x.len() != product(&[g.batch, self.c_in, plane_in])?
            || y.len() != product(&[g.batch, self.c_out, plane_out])?
        {
            return Err(Error::compute(format!(
                "convolution buffers of {} and {} values do not fit {g:?}",
                x.len(),
                y.len()
            )));
        }
        for (i, name) in [(0, "height"), (1, "width")] {
            let ext = (self.kernel[i] - 1)
                .checked_mul(g.dilation[i])
                .and_then(|e| e.checked_add(1));
            let last = g.output[i]
                .checked_sub(1)
                .and_then(|o| o.checked_mul(g.stride[i]))
                .zip(ext)
                .and_then(|(o, e)| o.checked_add(e));
            let padded = g.input[i].checked_add(g.pad_begin[i]);
            if g.output[i] > 0 && (last.is_none() || padded.is_none() || g.stride[i] == 0) {
                return Err(Error::compute(format!(
                    "the convolution's {name} overflows"
                )));
            }
        }
        if plane_out == 0 || g.batch == 0 || self.c_out == 0 {
            return Ok(());
        }
        match self.path(g) {
            Path::Depthwise => self.depthwise(g, x, y, plane_in, plane_out),
            Path::Pointwise => self.gemm_path(g, x, y, plane_in, plane_out, false),
            Path::General => self.gemm_path(g, x, y, plane_in, plane_out, true),
            Path::Winograd => {
                let w = self
                    .winograd
                    .as_ref()
                    .expect("the Winograd path has its weights");
                for n in 0..g.batch {
                    let xs = &x[n * self.c_in * plane_in..][..self.c_in * plane_in];
                    let ys = &mut y[n * self.c_out * plane_out..][..self.c_out * plane_out];
                    w.run(g, xs, ys, self.bias.as_deref(), self.act)?;
                }
                Ok(())
            }
        }
    }

    fn epilogue(&self, plane: &mut [f32], channel: usize) {
        let b = self.bias.as_ref().map_or(0.0, |b| b[channel]);
        self.act.apply(plane, b);
    }

    /// Per image and group, one GEMM of the weights by the input block (pointwise) or by its
    /// im2col unrolling.
    fn gemm_path(
        &self,
        g: &Geometry,
        x: &[f32],
        y: &mut [f32],
        plane_in: usize,
        plane_out: usize,
        unroll: bool,
    ) -> Result<()> {
        let (cg, mg) = (self.c_in / self.groups, self.c_out / self.groups);
        let rows = product(&[cg, self.kernel[0], self.kernel[1]])?;
        let mut col = if unroll && self.packed.is_empty() {
            buf::zeroed(product(&[rows, plane_out])?, "the unrolled input")?
        } else {
            Vec::new()
        };
        for n in 0..g.batch {
            for gi in 0..self.groups {
                let xs = &x[(n * self.c_in + gi * cg) * plane_in..][..cg * plane_in];
                let ys = &mut y[(n * self.c_out + gi * mg) * plane_out..][..mg * plane_out];
                match self.packed.get(gi) {
                    // The tiles add the bias and apply the activation themselves.
                    Some(w) => {
                        let bias = self.bias.as_ref().map(|b| &b[gi * mg..(gi + 1) * mg]);
                        self.panels(g, xs, w, ys, unroll, bias)?;
                        continue;
                    }
                    None => {
                        let b = if unroll {
                            im2col(self.kernel, g, xs, cg, &mut col);
                            MatRef::row_major(&col, rows, plane_out)?
                        } else {
                            MatRef::row_major(xs, cg, plane_in)?
                        };
                        let w = MatRef::row_major(&self.weights[gi * mg * rows..], mg, rows)?;
                        sgemm(w, b, ys, plane_out, 1.0, false)?;
                    }
                }
                let epi = |(m, plane): (usize, &mut [f32])| self.epilogue(plane, gi * mg + m);
                if plane_out * mg >= 1 << 15 {
                    ys.par_chunks_mut(plane_out).enumerate().for_each(epi);
                } else {
                    ys.chunks_mut(plane_out).enumerate().for_each(epi);
                }
            }
        }
        Ok(())
    }

    /// One group of one image on the packed GEMM: the input is unrolled one panel of [`NR`]
    /// output positions at a time straight into the packed layout (a buffer of
    /// `C/g * kh * kw * NR` floats per thread, which stays in cache), and every panel of the
    /// weights runs against it, the group's `bias` (one per output channel) and the
    /// activation applied in the tiles. Panels are split over the thread pool.
    fn panels(
        &self,
        g: &Geometry,
        xs: &[f32],
        w: &PackedA,
        ys: &mut [f32],
        unroll: bool,
        bias: Option<&[f32]>,
    ) -> Result<()> {
        let k = w.cols();
        let act = self.act;
        let plane_out = g.output[0] * g.output[1];
        let np = plane_out.div_ceil(NR);
        let out = Columns(ys.as_mut_ptr());
        let fill = |buf: &mut Vec<f32>, pj: usize| {
            let n0 = pj * NR;
            let cols = NR.min(plane_out - n0);
            let (b, ldb) = if unroll {
                unroll_panel(self.kernel, g, xs, n0, cols, buf);
                (&buf[..], NR)
            } else {
                // Pointwise: the input block `[C/g, H*W]` is B itself, read in place.
                (&xs[n0..], plane_out)
            };
            // SAFETY: AVX-512 is present (`packed` is filled only then); `b` holds
            // `(k - 1) * ldb + cols` floats (k * NR in `buf`; pointwise, `xs` holds k planes
            // of plane_out floats and `b` starts n0 into the first); this task alone writes
            // columns n0..n0+cols of the group's `mg` rows of `ys` (row stride plane_out),
            // which `ys` holds.
            unsafe {
                packed::times_panel(w, b, ldb, out.ptr().add(n0), plane_out, cols, bias, act)
            };
        };
        let new_buf = || {
            if unroll {
                vec![0.0f32; k * NR]
            } else {
                Vec::new()
            }
        };
        if np > 1 && rayon::current_num_threads() > 1 {
            (0..np).into_par_iter().for_each_init(new_buf, fill);
        } else {
            let mut buf = new_buf();
            (0..np).for_each(|pj| fill(&mut buf, pj));
        }
        Ok(())
    }

    /// One output plane per (image, output channel), each from its input channel, planes
    /// split over the thread pool (small ones grouped, so that a task is worth handing over).
    fn depthwise(
        &self,
        g: &Geometry,
        x: &[f32],
        y: &mut [f32],
        plane_in: usize,
        plane_out: usize,
    ) -> Result<()> {
        let mult = self.c_out / self.groups;
        let kk = self.kernel[0] * self.kernel[1];
        let layout = Phases::new(self.kernel, g)?;
        let scratch = layout.scratch;
        let per_task = (4096 / plane_out.max(1)).max(1);
        y.par_chunks_mut(plane_out)
            .enumerate()
            .with_min_len(per_task)
            .try_for_each_init(Vec::new, |buf: &mut Vec<f32>, (i, out)| {
                buf::grow(buf, scratch, "a depthwise convolution")?;
                let (n, m) = (i / self.c_out, i % self.c_out);
                let c = m / mult;
                let xs = &x[(n * self.c_in + c) * plane_in..][..plane_in];
                let w = &self.weights[m * kk..][..kk];
                depthwise_plane(&layout, g, xs, w, buf, out);
                self.epilogue(out, m);
                Ok(())
            })
    }
}

/// Outputs a depthwise kernel accumulates in registers at a time.
const CHUNK: usize = 32;

/// How a depthwise plane is computed: the zero-padded input split into `stride_y *
/// stride_x` phases (phase `(py, px)` holds padded positions `(r * sy + py, c * sx + px)`,
/// rows of `width` values), so that every kernel tap reads, for consecutive outputs,
/// consecutive values of one phase; and the output computed `width` values a row (the
/// columns past the output's width are computed and dropped), so that a tap is one run over
/// the whole plane.
#[derive(Debug)]
struct Phases {
    /// Rows and columns of a phase.
    rows: usize,
    width: usize,
    /// Values per phase: `rows * width`, a row more for the dropped columns' reads, and a
    /// chunk more for the last chunk's (every chunk of the wide output is whole).
    len: usize,
    /// Values of the wide output: `oh * width` rounded up to whole chunks.
    wide: usize,
    /// Per kernel tap (row-major), where its reads start in the phase buffer.
    taps: Vec<usize>,
    /// Floats of scratch per plane: the phases, then the wide output.
    scratch: usize,
}

impl Phases {
    fn new(kernel: [usize; 2], g: &Geometry) -> Result<Phases> {
        let overflow = || Error::compute("the depthwise convolution's sizes overflow");
        let [sy, sx] = g.stride;
        let [oh, ow] = g.output;
        // Rows (columns) of a phase: the output's, plus the kernel's reach past them.
        let reach = |k: usize, d: usize, s: usize| (k - 1).checked_mul(d).map(|e| e / s);
        let rows = reach(kernel[0], g.dilation[0], sy)
            .and_then(|r| r.checked_add(oh))
            .ok_or_else(overflow)?;
        let width = reach(kernel[1], g.dilation[1], sx)
            .and_then(|r| r.checked_add(ow))
            .ok_or_else(overflow)?;
        let len = rows
            .checked_add(1)
            .and_then(|r| r.checked_mul(width))
            .and_then(|n| n.checked_add(CHUNK))
            .ok_or_else(overflow)?;
        let wide = oh
            .checked_mul(width)
            .and_then(|n| n.checked_next_multiple_of(CHUNK))
            .ok_or_else(overflow)?;
        let taps = (0..kernel[0])
            .flat_map(|ky| (0..kernel[1]).map(move |kx| (ky, kx)))
            .map(|(ky, kx)| {
                let (ty, tx) = (ky * g.dilation[0], kx * g.dilation[1]);
                let phase = (ty % sy) * sx + tx % sx;
                phase * len + (ty / sy) * width + tx / sx
            })
            .collect();
        let scratch = sy
            .checked_mul(sx)
            .and_then(|p| p.checked_mul(len))
            .and_then(|p| p.checked_add(wide))
            .ok_or_else(overflow)?;
        Ok(Phases {
            rows,
            width,
            len,
            wide,
            taps,
            scratch,
        })
    }
}

crate::math::vectorised_fn! {
    /// A depthwise output plane `out` (`g.output`) of input plane `x` (`g.input`) and kernel
    /// `w`, in `buf` (`layout.scratch` floats): the input's phases filled, then every chunk
    /// of the wide output accumulated over the taps in registers and stored once.
    fn depthwise_plane(layout: &Phases, g: &Geometry, x: &[f32], w: &[f32], buf: &mut [f32], out: &mut [f32]) {
        let [ih, iw] = g.input;
        let ow = g.output[1];
        let [sy, sx] = g.stride;
        let [pt, pl] = g.pad_begin;
        let (rows, width, len) = (layout.rows, layout.width, layout.len);
        let (phases, wide) = buf.split_at_mut(sy * sx * len);
        for (p, phase) in phases.chunks_mut(len).enumerate() {
            let (py, px) = (p / sx, p % sx);
            phase[rows * width..].fill(0.0);
            for (r, dst) in phase.chunks_mut(width).take(rows).enumerate() {
                // Padded row r * sy + py is input row r * sy + py - pt.
                let iy = (r * sy + py).checked_sub(pt).filter(|&iy| iy < ih);
                let Some(iy) = iy else {
                    dst.fill(0.0);
                    continue;
                };
                // Column c reads input column c * sx + px - pl.
                gather_padded(dst, &x[iy * iw..][..iw], px as isize - pl as isize, sx);
            }
        }
        // Whole chunks only: the last one's values past the plane are computed and dropped
        // (its reads stay inside the phase, which has a chunk to spare).
        let wide = &mut wide[..layout.wide];
        for (ci, chunk) in wide.chunks_exact_mut(CHUNK).enumerate() {
            let base = ci * CHUNK;
            let mut acc = [0.0f32; CHUNK];
            for (&off, &wv) in layout.taps.iter().zip(w) {
                let src = &phases[off + base..][..CHUNK];
                for (a, &v) in acc.iter_mut().zip(src) {
                    *a += wv * v;
                }
            }
            chunk.copy_from_slice(&acc);
        }
        for (dst, src) in out.chunks_mut(ow).zip(wide.chunks(width)) {
            dst.copy_from_slice(&src[..ow]);
        }
    }
}

/// The range of output positions `o` along one dim for which input position
/// `o * stride + off - pad` lies in `0..len`, and that position's value at the range start.
fn valid_range(len: usize, out: usize, stride: usize, off: usize, pad: usize) -> (usize, usize) {
    // o * stride + off >= pad  and  o * stride + off < pad + len
    let lo = pad.saturating_sub(off).div_ceil(stride);
    let hi = (pad + len).saturating_sub(off).div_ceil(stride).min(out);
    (lo.min(hi), hi)
}

/// For kernel tap `(ky, kx)` over plane `x` (`g.input`): each output row `oy` whose tap reads
/// the input, the range of output columns whose tap does, and what those columns read: the
/// input row from the first one's column on, every `stride`-th value (callers loop over the
/// slice directly when the stride is 1, so that the loop vectorises).
#[inline(always)]
fn tap_rows(
    g: &Geometry,
    x: &[f32],
    ky: usize,
    kx: usize,
    mut f: impl FnMut(usize, (usize, usize), &[f32], usize),
) {
    let [ih, iw] = g.input;
    let [oh, ow] = g.output;
    let (offy, offx) = (ky * g.dilation[0], kx * g.dilation[1]);
    let (y0, y1) = valid_range(ih, oh, g.stride[0], offy, g.pad_begin[0]);
    let (x0, x1) = valid_range(iw, ow, g.stride[1], offx, g.pad_begin[1]);
    if x0 >= x1 {
        return;
    }
    for oy in y0..y1 {
        let iy = oy * g.stride[0] + offy - g.pad_begin[0];
        let ix0 = x0 * g.stride[1] + offx - g.pad_begin[1];
        f(oy, (x0, x1), &x[iy * iw + ix0..(iy + 1) * iw], g.stride[1]);
    }
}

/// Unrolls `x` `[cg, H, W]` into `col` `[cg * kh * kw, OH * OW]` (zeros where the window
/// reads padding); rows are filled in parallel.
fn im2col(kernel: [usize; 2], g: &Geometry, x: &[f32], cg: usize, col: &mut [f32]) {
    let [ih, iw] = g.input;
    let [oh, ow] = g.output;
    let plane_out = oh * ow;
    let kk = kernel[0] * kernel[1];
    let fill = |(r, row): (usize, &mut [f32])| {
        let (c, k) = (r / kk, r % kk);
        let xs = &x[c * ih * iw..][..ih * iw];
        row.fill(0.0);
        tap_rows(
            g,
            xs,
            k / kernel[1],
            k % kernel[1],
            |oy, (x0, x1), src, stride| {
                let dst = &mut row[oy * ow + x0..oy * ow + x1];
                if stride == 1 {
                    dst.copy_from_slice(&src[..x1 - x0]);
                } else {
                    for (d, &v) in dst.iter_mut().zip(src.iter().step_by(stride)) {
                        *d = v;
                    }
                }
            },
        );
    };
    let col = &mut col[..cg * kk * plane_out];
    if col.len() >= 1 << 16 {
        col.par_chunks_mut(plane_out).enumerate().for_each(fill);
    } else {
        col.chunks_mut(plane_out).enumerate().for_each(fill);
    }
}

/// One packed panel of the unrolled input: `buf[r * NR + j]` is the value row `r` (an input
/// channel and kernel tap) of the unrolled matrix has at output position `n0 + j`, for
/// `j < cols`; zero where the window reads padding and past `cols`.
fn unroll_panel(
    kernel: [usize; 2],
    g: &Geometry,
    x: &[f32],
    n0: usize,
    cols: usize,
    buf: &mut [f32],
) {
    let [ih, iw] = g.input;
    let ow = g.output[1];
    // The panel's positions as runs along output rows: (first j, oy, ox, length). The same
    // for every row of the unrolled matrix, so worked out once.
    let mut runs = [(0usize, 0usize, 0usize, 0usize); NR];
    let mut count = 0;
    let (mut j, mut oy, mut ox) = (0, n0 / ow, n0 % ow);
    while j < cols {
        let len = (ow - ox).min(cols - j);
        runs[count] = (j, oy, ox, len);
        count += 1;
        j += len;
        (oy, ox) = (oy + 1, 0);
    }
    let runs = &runs[..count];
    let (sy, sx) = (g.stride[0] as isize, g.stride[1]);
    let mut rows = buf.chunks_mut(NR);
    for plane in x.chunks(ih * iw) {
        for ky in 0..kernel[0] {
            let offy = (ky * g.dilation[0]) as isize - g.pad_begin[0] as isize;
            for kx in 0..kernel[1] {
                let offx = (kx * g.dilation[1]) as isize - g.pad_begin[1] as isize;
                let Some(dst) = rows.next() else {
                    return;
                };
                for &(j, oy, ox, len) in runs {
                    let out = &mut dst[j..j + len];
                    let iy = oy as isize * sy + offy;
                    if iy < 0 || iy >= ih as isize {
                        out.fill(0.0);
                        continue;
                    }
                    // Input column of run position t: ox * sx + offx + t * sx.
                    let row = &plane[iy as usize * iw..][..iw];
                    gather_padded(out, row, ox as isize * sx as isize + offx, sx);
                }
                dst[cols..].fill(0.0);
            }
        }
    }
}

/// `dst[c] = src[start + c * stride]` where that index lies inside `src`, zero elsewhere:
/// a row of a plane read with padding (and a stride), as convolutions and their transforms
/// read it.
#[inline(always)]
pub(crate) fn gather_padded(dst: &mut [f32], src: &[f32], start: isize, stride: usize) {
    let (n, len, s) = (dst.len() as isize, src.len() as isize, stride as isize);
    // The c that read `src`: start + c * s >= 0 from `lo` on, < len below `hi`.
    let lo = (if start >= 0 { 0 } else { (-start + s - 1) / s }).min(n);
    let hi = (if start >= len {
        0
    } else {
        (len - start + s - 1) / s
    })
    .clamp(lo, n);
    let (lo, hi) = (lo as usize, hi as usize);
    dst[..lo].fill(0.0);
    dst[hi..].fill(0.0);
    if lo < hi {
        let first = (start + lo as isize * s) as usize;
        copy_strided(&mut dst[lo..hi], &src[first..], stride);
    }
}

/// `dst[c] = src[c * stride]` for every `c` (`src` holds them). Stride 1 by `memcpy`, or in
/// blocks of 8 for runs of at most [`NR`] (an unrolled panel's, too short to pay for the
/// call); other strides as whole groups of `stride` values, a
/// form the compiler vectorises with shuffles (stride 2 with its size known), then the last
/// value alone when its group is cut short.
#[inline(always)]
pub(crate) fn copy_strided(dst: &mut [f32], src: &[f32], stride: usize) {
    if stride == 1 && dst.len() > NR {
        dst.copy_from_slice(&src[..dst.len()]);
        return;
    }
    if stride == 1 {
        let src = &src[..dst.len()];
        let mut d = dst.chunks_exact_mut(8);
        let mut s = src.chunks_exact(8);
        for (d, s) in (&mut d).zip(&mut s) {
            let s: &[f32; 8] = s.try_into().expect("a block of 8");
            d.copy_from_slice(s);
        }
        for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
            *d = s;
        }
        return;
    }
    #[inline(always)]
    fn groups(dst: &mut [f32], src: &[f32], stride: usize) -> usize {
        for (d, group) in dst.iter_mut().zip(src.chunks_exact(stride)) {
            *d = group[0];
        }
        src.len() / stride
    }
    let whole = if stride == 2 {
        groups(dst, src, 2)
    } else {
        groups(dst, src, stride)
    };
    if whole < dst.len() {
        dst[whole] = src[whole * stride];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, in f64.
    fn naive(p: &PackedConv, g: &Geometry, x: &[f32]) -> Vec<f64> {
        let (cg, mg) = (p.c_in / p.groups, p.c_out / p.groups);
        let [ih, iw] = g.input;
        let [oh, ow] = g.output;
        let mut y = vec![0.0; g.batch * p.c_out * oh * ow];
        for n in 0..g.batch {
            for m in 0..p.c_out {
                let gi = m / mg;
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = p.bias.as_ref().map_or(0.0, |b| b[m] as f64);
                        for c in 0..cg {
                            for ky in 0..p.kernel[0] {
                                for kx in 0..p.kernel[1] {
                                    let iy = (oy * g.stride[0] + ky * g.dilation[0]) as i64
                                        - g.pad_begin[0] as i64;
                                    let ix = (ox * g.stride[1] + kx * g.dilation[1]) as i64
                                        - g.pad_begin[1] as i64;
                                    if iy < 0 || ix < 0 || iy >= ih as i64 || ix >= iw as i64 {
                                        continue;
                                    }
                                    let xv = x[((n * p.c_in + gi * cg + c) * ih + iy as usize)
                                        * iw
                                        + ix as usize];
                                    let wv = p.weights
                                        [((m * cg + c) * p.kernel[0] + ky) * p.kernel[1] + kx];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((n * p.c_out + m) * oh + oy) * ow + ox] = s.max(0.0);
                    }
                }
            }
        }
        y
    }

    use crate::test_values as values;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Every path (pointwise, depthwise with multipliers, grouped, strided, dilated,
        /// padded, 1-D), against the definition, bias and Relu included.
        #[test]
        fn matches_the_definition(
            batch in 1usize..3, cg in 1usize..4, mg in 1usize..4, groups in 1usize..4,
            kh in 1usize..4, kw in 1usize..4, ih in 1usize..9, iw in 1usize..9,
            sy in 1usize..3, sx in 1usize..3, dy in 1usize..3, dx in 1usize..3,
            py in 0usize..4, px in 0usize..4, pe in 0usize..3, one_d: bool, seed: u64,
        ) {
            let (kh, ih, sy, dy, py) = if one_d { (1, 1, 1, 1, 0) } else { (kh, ih, sy, dy, py) };
            let (c_in, c_out) = (cg * groups, mg * groups);
            let out = |i: usize, k: usize, s: usize, d: usize, p: usize| {
                let padded = i + p + pe;
                let ext = (k - 1) * d + 1;
                (padded >= ext).then(|| (padded - ext) / s + 1)
            };
            let (Some(oh), Some(ow)) = (out(ih, kh, sy, dy, py), out(iw, kw, sx, dx, px)) else {
                return Ok(());
            };
            let g = Geometry { batch, input: [ih, iw], output: [oh, ow], stride: [sy, sx], dilation: [dy, dx], pad_begin: [py, px] };
            let w = values(c_out * cg * kh * kw, seed);
            let b = values(c_out, seed ^ 3);
            let p = PackedConv::new(&w, c_out, c_in, groups, [kh, kw], Some(&b), Act::Relu).unwrap();
            let x = values(batch * c_in * ih * iw, seed ^ 5);
            let want = naive(&p, &g, &x);
            for p in [p.clone(), p.portable()] {
                let mut y = vec![f32::NAN; batch * c_out * oh * ow];
                p.run(&g, &x, &mut y).unwrap();
                for (i, (&got, &w)) in y.iter().zip(&want).enumerate() {
                    prop_assert!((got as f64 - w).abs() <= 1e-5 * (cg * kh * kw) as f64 + 1e-6, "{i} ({:?}, packed {}): {got} vs {w}", p.path(&g), !p.packed.is_empty());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Winograd's F(2x2, 3x3) (3x3 stride-1 convolutions with channels enough): odd
        /// planes (partial 2x2 blocks), pads from none to past the kernel, several images, a
        /// plane of more tiles than a panel holds; against the definition.
        #[test]
        fn winograd_matches_the_definition(
            batch in 1usize..3, c_in in 8usize..20, c_out in 8usize..20,
            ih in 1usize..14, iw in 1usize..14, pt in 0usize..4, pl in 0usize..4,
            pb in 0usize..4, pr in 0usize..4, seed: u64,
        ) {
            let (ph, pw) = (ih + pt + pb, iw + pl + pr);
            if ph < 3 || pw < 3 {
                return Ok(());
            }
            let g = Geometry { batch, input: [ih, iw], output: [ph - 2, pw - 2], stride: [1, 1], dilation: [1, 1], pad_begin: [pt, pl] };
            let w = values(c_out * c_in * 9, seed);
            let b = values(c_out, seed ^ 3);
            let p = PackedConv::new(&w, c_out, c_in, 1, [3, 3], Some(&b), Act::Relu).unwrap();
            if !packed::available() {
                return Ok(());
            }
            // The kernel itself, below the channels and plane sizes `path` takes it for.
            let wino = Winograd::new(&p.weights, c_out, c_in).unwrap();
            let x = values(batch * c_in * ih * iw, seed ^ 5);
            let want = naive(&p, &g, &x);
            let plane_out = (ph - 2) * (pw - 2);
            let mut y = vec![f32::NAN; batch * c_out * plane_out];
            for n in 0..batch {
                let xs = &x[n * c_in * ih * iw..][..c_in * ih * iw];
                let ys = &mut y[n * c_out * plane_out..][..c_out * plane_out];
                wino.run(&g, xs, ys, Some(&b), Act::Relu).unwrap();
            }
            for (i, (&got, &w)) in y.iter().zip(&want).enumerate() {
                prop_assert!((got as f64 - w).abs() <= 1e-5 * (9 * c_in) as f64, "{i}: {got} vs {w}");
            }
        }
    }

    /// ResNet's 3x3 convolutions of 64 channels and more on planes of many tiles take the
    /// Winograd path; fewer channels, strides and small planes do not.
    #[test]
    fn winograd_is_taken_where_it_pays() {
        if !packed::available() {
            return;
        }
        let conv = |c: usize| {
            PackedConv::new(&vec![0.5; c * c * 9], c, c, 1, [3, 3], None, Act::None).unwrap()
        };
        let geom = |size: usize, stride: usize| Geometry {
            batch: 1,
            input: [size, size],
            output: [(size + 2 - 3) / stride + 1; 2],
            stride: [stride; 2],
            dilation: [1, 1],
            pad_begin: [1, 1],
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            assert_eq!(conv(64).path(&geom(56, 1)), Path::Winograd);
            assert_eq!(conv(16).path(&geom(56, 1)), Path::General);
            assert_eq!(conv(64).path(&geom(56, 2)), Path::General);
            assert_eq!(conv(64).path(&geom(7, 1)), Path::General);
        });
    }

    /// Every small 1-D geometry (sizes, strides, dilations and pads up to 3), exhaustively:
    /// windows that lie wholly in the padding included.
    #[test]
    fn every_small_1d_geometry_matches_the_definition() {
        for (iw, kw, s, d, pb, pe) in small_1d_geometries() {
            let padded = iw + pb + pe;
            let ext = (kw - 1) * d + 1;
            if padded < ext {
                continue;
            }
            let ow = (padded - ext) / s + 1;
            let g = Geometry {
                batch: 1,
                input: [1, iw],
                output: [1, ow],
                stride: [1, s],
                dilation: [1, d],
                pad_begin: [0, pb],
            };
            for groups in [1, 2] {
                let (c_in, c_out) = (2, 2);
                let w = values(c_out * (c_in / groups) * kw, 7);
                let p = PackedConv::new(
                    &w,
                    c_out,
                    c_in,
                    groups,
                    [1, kw],
                    Some(&[0.5, -0.5]),
                    Act::Relu,
                )
                .unwrap();
                let x = values(c_in * iw, 9);
                let want = naive(&p, &g, &x);
                for p in [p.clone(), p.portable()] {
                    let mut y = vec![f32::NAN; c_out * ow];
                    p.run(&g, &x, &mut y).unwrap();
                    for (i, (&got, &want)) in y.iter().zip(&want).enumerate() {
                        assert!(
                            (got as f64 - want).abs() < 1e-5,
                            "{g:?} groups {groups} at {i}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    fn small_1d_geometries() -> impl Iterator<Item = (usize, usize, usize, usize, usize, usize)> {
        (1..5).flat_map(|iw| {
            (1..4).flat_map(move |kw| {
                (1..4).flat_map(move |s| {
                    (1..4).flat_map(move |d| {
                        (0..4).flat_map(move |pb| (0..4).map(move |pe| (iw, kw, s, d, pb, pe)))
                    })
                })
            })
        })
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(PackedConv::new(&[0.0; 5], 2, 2, 1, [1, 1], None, Act::None).is_err());
        assert!(PackedConv::new(&[0.0; 4], 2, 3, 2, [1, 1], None, Act::None).is_err());
        let p = PackedConv::new(&[0.0; 4], 2, 2, 1, [1, 1], None, Act::None).unwrap();
        let g = Geometry {
            batch: 1,
            input: [2, 2],
            output: [2, 2],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        assert!(p.run(&g, &[0.0; 8], &mut [0.0; 7]).is_err());
    }
}
