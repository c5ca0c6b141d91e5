//! 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2015): each 2x2 block of an output
//! plane is `A^T [(G g G^T) ⊙ (B^T d B)] A` of the 4x4 input tile `d` under it, so the
//! multiplications become 16 matrix products — for each of the 16 positions of a tile, the
//! transformed weights `[M, C]` by the transformed tiles `[C, tiles]` — with 16 products per
//! 2x2 block and input channel where the direct convolution has 36 (2.25 times fewer). The
//! transforms only add and halve, so the results stay within a few ulps of the direct sum.
//!
//! The weights are transformed and packed once; at run time tiles are taken [`NR`] at a
//! time (one packed panel per position, in a scratch buffer that stays in cache), the 16
//! products run on the packed GEMM's tiles, and the output transform adds the bias, applies
//! the activation and writes the 2x2 blocks.

use rayon::prelude::*;
use xnpu_core::{Error, Result};

use crate::act::Act;
use crate::conv::{gather_padded, Geometry};
use crate::packed::{self, Columns, PackedA, NR};
use crate::sgemm::MatRef;

/// Whether a plane of output `g.output` has panels of tiles enough to keep every thread busy
/// (a panel is one thread's task; on a small plane the unrolled GEMM splits finer).
pub(crate) fn worth_it(g: &Geometry) -> bool {
    let tiles = g.output[0].div_ceil(2) * g.output[1].div_ceil(2);
    tiles.div_ceil(NR) >= 2 * rayon::current_num_threads()
}

/// The 16 transformed weight matrices of a 3x3 convolution, packed.
#[derive(Clone, Debug)]
pub(crate) struct Winograd {
    c_in: usize,
    c_out: usize,
    /// `u[p]` is `[M, C]`: position `p` (row-major in the 4x4 tile) of `G g G^T` for every
    /// output and input channel.
    u: Vec<PackedA>,
}

impl Winograd {
    /// Transforms weights `w` `[M, C, 3, 3]` (row-major).
    pub(crate) fn new(w: &[f32], c_out: usize, c_in: usize) -> Result<Winograd> {
        let n = c_out
            .checked_mul(c_in)
            .filter(|&n| n.checked_mul(9) == Some(w.len()))
            .ok_or_else(|| Error::compute("the 3x3 weights do not match their channels"))?;
        let mut t = crate::buf::zeroed(16 * n, "the transformed weights")?;
        for (mc, g) in w.chunks_exact(9).enumerate() {
            // G g (4x3), then (G g) G^T (4x4).
            let mut gg = [[0.0f32; 3]; 4];
            for j in 0..3 {
                let (a, b, c) = (g[j], g[3 + j], g[6 + j]);
                gg[0][j] = a;
                gg[1][j] = 0.5 * (a + b + c);
                gg[2][j] = 0.5 * (a - b + c);
                gg[3][j] = c;
            }
            for (i, row) in gg.iter().enumerate() {
                let [a, b, c] = *row;
                let u = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                for (j, &v) in u.iter().enumerate() {
                    t[(i * 4 + j) * n + mc] = v;
                }
            }
        }
        let u = t
            .chunks_exact(n.max(1))
            .take(16)
            .map(|p| PackedA::new(MatRef::row_major(p, c_out, c_in)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Winograd { c_in, c_out, u })
    }

    /// Runs on one image `x` `[C, H, W]` into `y` `[M, OH, OW]` (stride 1, no dilation:
    /// the caller's check), adding `bias` (one per output channel) and applying `act`.
    /// Needs the packed GEMM ([`packed::available`]).
    pub(crate) fn run(
        &self,
        g: &Geometry,
        x: &[f32],
        y: &mut [f32],
        bias: Option<&[f32]>,
        act: Act,
    ) -> Result<()> {
        let (c, m) = (self.c_in, self.c_out);
        let [oh, ow] = g.output;
        let (ty, tx) = (oh.div_ceil(2), ow.div_ceil(2));
        let tiles = ty * tx;
        if tiles == 0 || m == 0 {
            return Ok(());
        }
        // Per thread: the 16 panels of transformed tiles `[C, NR]`, the 16 products `[M, NR]`
        // and the transforms' own scratch.
        let scratch = 16 * c * NR + 16 * m * NR + (4 * SPAN).max(10 * NR);
        let out = Columns(y.as_mut_ptr());
        let panel = |buf: &mut Vec<f32>, pj: usize| -> Result<()> {
            crate::buf::grow(buf, scratch, "a Winograd convolution")?;
            let (v, rest) = buf.split_at_mut(16 * c * NR);
            let (prod, tmp) = rest.split_at_mut(16 * m * NR);
            let t0 = pj * NR;
            let cols = NR.min(tiles - t0);
            let segs = Segments::new(t0, cols, tx);
            let plane = g.input[0] * g.input[1];
            for seg in segs.iter() {
                for ch in 0..c {
                    input_segment(g, &x[ch * plane..][..plane], seg, c, ch, v, tmp);
                }
            }
            for p in 0..16 {
                // SAFETY: the packed GEMM is available (the caller's contract); panel `p` of
                // `v` holds C rows of NR floats, and `prod`'s `[M, NR]` block is this
                // thread's own, written in its first `cols` columns.
                unsafe {
                    packed::times_panel(
                        &self.u[p],
                        &v[p * c * NR..][..c * NR],
                        NR,
                        prod[p * m * NR..].as_mut_ptr(),
                        NR,
                        cols,
                        None,
                        Act::None,
                    )
                };
            }
            for seg in segs.iter() {
                // The segment's output: rows 2 ty and 2 ty + 1 (inside the plane), columns
                // from 2 tx0 on, at most 2 len of them.
                let (oy, ox) = (2 * seg.ty, 2 * seg.tx0);
                let width = (2 * seg.len).min(ow - ox);
                for ch in 0..m {
                    let mut rows: [&mut [f32]; 2] = [&mut [], &mut []];
                    for (i, row) in rows.iter_mut().enumerate() {
                        if oy + i < oh {
                            // SAFETY: the `width` values from (ch, oy + i, ox) lie in the
                            // `[M, OH, OW]` output (ox + width <= ow), and they belong to
                            // this segment's tiles, which this task alone computes.
                            *row = unsafe {
                                std::slice::from_raw_parts_mut(
                                    out.ptr().add((ch * oh + oy + i) * ow + ox),
                                    width,
                                )
                            };
                        }
                    }
                    let b = bias.map_or(0.0, |v| v[ch]);
                    output_segment(prod, m, ch, seg, b, act, rows, tmp);
                }
            }
            Ok(())
        };
        let np = tiles.div_ceil(NR);
        if np > 1 && rayon::current_num_threads() > 1 {
            (0..np).into_par_iter().try_for_each_init(Vec::new, panel)
        } else {
            let mut buf = Vec::new();
            (0..np).try_for_each(|pj| panel(&mut buf, pj))
        }
    }
}

/// A run of a panel's tiles along one row of tiles: tile row `ty`, tile columns
/// `tx0..tx0 + len`, the panel's columns from `j0` on.
#[derive(Clone, Copy, Debug)]
struct Segment {
    ty: usize,
    tx0: usize,
    len: usize,
    j0: usize,
}

/// The segments of the panel of tiles `t0..t0 + cols` (tiles numbered row by row, `tx` a
/// row).
struct Segments {
    segs: [Segment; NR],
    count: usize,
}

impl Segments {
    fn new(t0: usize, cols: usize, tx: usize) -> Segments {
        let empty = Segment {
            ty: 0,
            tx0: 0,
            len: 0,
            j0: 0,
        };
        let mut s = Segments {
            segs: [empty; NR],
            count: 0,
        };
        let mut j = 0;
        while j < cols {
            let t = t0 + j;
            let (ty, tx0) = (t / tx, t % tx);
            let len = (tx - tx0).min(cols - j);
            s.segs[s.count] = Segment {
                ty,
                tx0,
                len,
                j0: j,
            };
            s.count += 1;
            j += len;
        }
        s
    }

    fn iter(&self) -> impl Iterator<Item = Segment> + '_ {
        self.segs[..self.count].iter().copied()
    }
}

/// Padded input columns a segment reads: two per tile and two more.
const SPAN: usize = 2 * NR + 2;

crate::math::vectorised_fn! {
    /// `B^T d B` of one segment's 4x4 input tiles of channel `ch` (`plane`, zeros where a
    /// tile reads padding), into position `p`'s panel at `v[(p * c + ch) * NR + j0..]`
    /// (`tmp`: `4 * SPAN` floats of scratch).
    /// On rows first, whole padded rows at once (in place), then on columns, which for
    /// consecutive tiles are the even and odd columns of those rows shifted by one: every
    /// loop runs over consecutive values.
    fn input_segment(g: &Geometry, plane: &[f32], seg: Segment, c: usize, ch: usize, v: &mut [f32], tmp: &mut [f32]) {
        let [ih, iw] = g.input;
        let [pt, pl] = g.pad_begin;
        let width = 2 * seg.len + 2;
        // The four input rows under the segment, padded.
        let iy0 = (2 * seg.ty) as isize - pt as isize;
        let ix0 = (2 * seg.tx0) as isize - pl as isize;
        let (d0, rest) = tmp.split_at_mut(SPAN);
        let (d1, rest) = rest.split_at_mut(SPAN);
        let (d2, d3) = rest.split_at_mut(SPAN);
        for (r, row) in [&mut *d0, &mut *d1, &mut *d2, &mut *d3].into_iter().enumerate() {
            let row = &mut row[..width];
            let iy = iy0 + r as isize;
            if iy < 0 || iy >= ih as isize {
                row.fill(0.0);
                continue;
            }
            gather_padded(row, &plane[iy as usize * iw..][..iw], ix0, 1);
        }
        // B^T d on whole rows, in place.
        for (((a, b), c2), d) in d0[..width]
            .iter_mut()
            .zip(&mut d1[..width])
            .zip(&mut d2[..width])
            .zip(&mut d3[..width])
        {
            let (x0, x1, x2, x3) = (*a, *b, *c2, *d);
            *a = x0 - x2;
            *b = x1 + x2;
            *c2 = x2 - x1;
            *d = x1 - x3;
        }
        // Then on columns: tile k reads the pairs k and k + 1 of each row (columns 2k..2k+4):
        // (B^T row) B is a0 - a2, a1 + a2, a2 - a1, a1 - a3.
        let len = seg.len;
        for (r, e) in [&*d0, &*d1, &*d2, &*d3].into_iter().enumerate() {
            let at = |q: usize| ((r * 4 + q) * c + ch) * NR + seg.j0;
            let pairs = &e[..2 * len + 2];
            let (v0, rest) = v[at(0)..].split_at_mut(c * NR);
            let (v1, rest) = rest.split_at_mut(c * NR);
            let (v2, rest) = rest.split_at_mut(c * NR);
            let v3 = &mut rest[..len];
            let outs = v0[..len].iter_mut().zip(&mut v1[..len]).zip(&mut v2[..len]).zip(v3);
            let steps = pairs.chunks_exact(2).zip(pairs[2..].chunks_exact(2));
            for ((((o0, o1), o2), o3), (a, b)) in outs.zip(steps) {
                *o0 = a[0] - b[0];
                *o1 = a[1] + b[0];
                *o2 = b[0] - a[1];
                *o3 = a[1] - b[1];
            }
        }
    }
}

crate::math::vectorised_fn! {
    /// `A^T P A` of one segment's product tiles of output channel `ch` (`P[p]` at
    /// `prod[(p * m + ch) * NR + j0 + k]`), plus `bias`, through `act`, written as the 2x2
    /// blocks into the output rows `rows` (the segment's part of rows 2 ty and 2 ty + 1;
    /// empty past the plane, and cut at its width).
    #[allow(clippy::too_many_arguments)]
    fn output_segment(prod: &[f32], m: usize, ch: usize, seg: Segment, bias: f32, act: Act, rows: [&mut [f32]; 2], tmp: &mut [f32]) {
        let len = seg.len;
        let base = ch * NR + seg.j0;
        let ps: [&[f32]; 16] = std::array::from_fn(|p| &prod[p * m * NR + base..][..len]);
        // A^T P: for each column q of the tile, row 0 (p0 + p1 + p2 over the tile's rows) at
        // tmp[2q], row 1 (p1 - p2 - p3) at tmp[2q + 1], NR apart.
        let (r, lr) = tmp[..10 * NR].split_at_mut(8 * NR);
        for (q, pair) in r.chunks_exact_mut(2 * NR).enumerate() {
            let (ra, rb) = pair.split_at_mut(NR);
            let cols = ps[q].iter().zip(ps[4 + q]).zip(ps[8 + q]).zip(ps[12 + q]);
            for ((a, b), (((&x0, &x1), &x2), &x3)) in ra[..len].iter_mut().zip(&mut rb[..len]).zip(cols) {
                *a = x0 + x1 + x2;
                *b = x1 - x2 - x3;
            }
        }
        let (left, right) = lr.split_at_mut(NR);
        let (left, right) = (&mut left[..len], &mut right[..len]);
        for (i, row) in rows.into_iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            // Row i of A^T P times A: t0 + t1 + t2 and t1 - t2 - t3.
            let t: [&[f32]; 4] = std::array::from_fn(|q| &r[(2 * q + i) * NR..][..len]);
            let ts = t[0].iter().zip(t[1]).zip(t[2]).zip(t[3]);
            for ((l, rr), (((&t0, &t1), &t2), &t3)) in left.iter_mut().zip(right.iter_mut()).zip(ts) {
                *l = t0 + t1 + t2;
                *rr = t1 - t2 - t3;
            }
            act.apply(left, bias);
            act.apply(right, bias);
            let pairs = row.len() / 2;
            for ((o, &a), &b) in row.chunks_exact_mut(2).zip(&left[..pairs]).zip(&right[..pairs]) {
                o[0] = a;
                o[1] = b;
            }
            if row.len() % 2 == 1 {
                row[2 * pairs] = left[pairs];
            }
        }
    }
}
