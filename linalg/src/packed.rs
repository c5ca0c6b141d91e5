//! fp32 GEMM on operands packed once: `C = A B` with `A` in panels of [`MR`] rows and `B` in
//! panels of [`NR`] columns, each panel laid out along K, and a register-blocked AVX-512
//! micro-kernel computing one `MR x NR` tile of C over the whole of K (28 accumulators, the
//! row of A broadcast, two vectors of B per step). Constant operands (a convolution's
//! weights, a layer's weight matrix) are packed when a graph is compiled; the other operand
//! when it arrives. Tiles are split over the caller's rayon pool.
//!
//! This path is taken on CPUs with AVX-512 ([`available`]); elsewhere the callers use
//! [`crate::sgemm`] (the `gemm` crate's kernels for AVX2+FMA, NEON and scalar code).

use rayon::prelude::*;
use xnpu_core::{Error, Result};

use crate::act::Act;
use crate::sgemm::MatRef;

/// Rows of A per panel (and of a C tile).
pub const MR: usize = 14;
/// Columns of B per panel (and of a C tile): two 16-float vectors.
pub const NR: usize = 32;

/// Whether this CPU runs the packed kernels (AVX-512 F, and a compiler of Rust 1.89 or
/// newer, which has its intrinsics: see `build.rs`).
pub fn available() -> bool {
    cfg!(all(target_arch = "x86_64", xnpu_avx512))
        && crate::Features::get().isa == crate::Isa::Avx512
}

fn size(panels: usize, k: usize, width: usize) -> Result<usize> {
    panels
        .checked_mul(k)
        .and_then(|v| v.checked_mul(width))
        .ok_or_else(|| Error::compute("a packed operand's size overflows"))
}

/// A (`m x k`) packed in panels of [`MR`] rows: panel `p` holds `A[p*MR + i, kk]` at
/// `(p * k + kk) * MR + i`, zero past the last row.
#[derive(Clone, Debug)]
pub struct PackedA {
    m: usize,
    k: usize,
    data: Vec<f32>,
}

impl PackedA {
    pub fn new(a: MatRef<'_>) -> Result<PackedA> {
        let (m, k) = (a.rows(), a.cols());
        let panels = m.div_ceil(MR);
        let mut data = crate::buf::zeroed(size(panels, k, MR)?, "a packed matrix")?;
        let fill = |(p, panel): (usize, &mut [f32])| {
            for i in 0..MR.min(m - p * MR) {
                match a.row(p * MR + i) {
                    // Row-major: the row read in order, scattered MR apart.
                    Some(row) => {
                        for (dst, &v) in panel.iter_mut().skip(i).step_by(MR).zip(row) {
                            *dst = v;
                        }
                    }
                    None => {
                        for kk in 0..k {
                            panel[kk * MR + i] = a.at(p * MR + i, kk);
                        }
                    }
                }
            }
        };
        let chunks = data.chunks_mut((k * MR).max(1)).enumerate().take(panels);
        if m * k >= 1 << 16 {
            chunks.par_bridge().for_each(fill);
        } else {
            chunks.for_each(fill);
        }
        Ok(PackedA { m, k, data })
    }

    pub fn rows(&self) -> usize {
        self.m
    }

    pub fn cols(&self) -> usize {
        self.k
    }
}

/// B (`k x n`) packed in panels of [`NR`] columns: panel `p` holds `B[kk, p*NR + j]` at
/// `(p * k + kk) * NR + j`, zero past the last column.
#[derive(Clone, Debug, Default)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    pub fn new(b: MatRef<'_>) -> Result<PackedB> {
        let mut p = PackedB::default();
        p.repack(b)?;
        Ok(p)
    }

    pub fn rows(&self) -> usize {
        self.k
    }

    pub fn cols(&self) -> usize {
        self.n
    }

    /// Packs `b` into this buffer, reusing its memory.
    pub fn repack(&mut self, b: MatRef<'_>) -> Result<()> {
        let (k, n) = (b.rows(), b.cols());
        let panels = n.div_ceil(NR);
        let len = size(panels, k, NR)?;
        // Empty until packed: a failed repack leaves no stale dims behind.
        (self.k, self.n) = (0, 0);
        self.data.clear();
        self.data.try_reserve(len).map_err(|_| {
            Error::compute(format!("cannot allocate {len} floats for a packed matrix"))
        })?;
        self.data.resize(len, 0.0);
        let fill = |(p, panel): (usize, &mut [f32])| {
            let w = NR.min(n - p * NR);
            for kk in 0..k {
                let dst = &mut panel[kk * NR..kk * NR + w];
                match b.row(kk) {
                    Some(row) => dst.copy_from_slice(&row[p * NR..p * NR + w]),
                    None => {
                        for (j, d) in dst.iter_mut().enumerate() {
                            *d = b.at(kk, p * NR + j);
                        }
                    }
                }
            }
        };
        let chunks = self
            .data
            .chunks_mut((k * NR).max(1))
            .enumerate()
            .take(panels);
        if len >= 1 << 16 {
            chunks.par_bridge().for_each(fill);
        } else {
            chunks.for_each(fill);
        }
        self.k = k;
        self.n = n;
        Ok(())
    }
}

/// `C = A B` (or `C += A B` when `accumulate`) for `C` the row-major `m x n` matrix at the
/// start of `c` with row stride `ldc`. Errors unless this CPU has AVX-512 ([`available`]).
pub fn gemm(a: &PackedA, b: &PackedB, c: &mut [f32], ldc: usize, accumulate: bool) -> Result<()> {
    product(a, b, c, ldc, accumulate, None, Act::None)
}

/// `C = act(A B + bias)`, `bias` one value per column of C (`n`), both applied to each tile
/// while it is in registers or L1 (no pass over C of their own).
pub fn gemm_bias(
    a: &PackedA,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    bias: Option<&[f32]>,
    act: Act,
) -> Result<()> {
    if bias.is_some_and(|v| v.len() != b.n) {
        return Err(Error::compute(format!(
            "a bias of {} values for {} columns",
            bias.map_or(0, <[f32]>::len),
            b.n
        )));
    }
    product(a, b, c, ldc, false, bias, act)
}

fn product(
    a: &PackedA,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    bias: Option<&[f32]>,
    act: Act,
) -> Result<()> {
    let (m, k, n) = (a.m, a.k, b.n);
    crate::sgemm::check_product((m, k), (b.k, n), c.len(), ldc)?;
    if !available() {
        return Err(Error::unsupported("the packed GEMM needs AVX-512"));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (mp, np) = (m.div_ceil(MR), n.div_ceil(NR));
    let out = Columns(c.as_mut_ptr());
    let kc = kc_for(k);
    // One task: a column panel of B against a group of A's row panels, K in blocks of `kc`
    // so that the block of B stays in L1 while the group's blocks of A stream past it.
    let groups = mp.div_ceil(GROUP);
    let task = |t: usize| {
        let (pj, g) = (t / groups, t % groups);
        let cols = NR.min(n - pj * NR);
        let panels = g * GROUP..((g + 1) * GROUP).min(mp);
        // At least one block: with K = 0 the tiles still write C (zeros, or the bias).
        let mut k0 = 0;
        loop {
            let len = kc.min(k - k0);
            let (first, last) = (k0 == 0, k0 + len == k);
            let bp = &b.data[(pj * k + k0) * NR..][..len * NR];
            for pi in panels.clone() {
                let rows = MR.min(m - pi * MR);
                let ap = &a.data[(pi * k + k0) * MR..][..len * MR];
                let epi = Epilogue {
                    bias: bias.filter(|_| first).map(|v| &v[pj * NR..pj * NR + cols]),
                    row_bias: None,
                    act: if last { act } else { Act::None },
                };
                // SAFETY: AVX-512 F is present (checked above). `ap` and `bp` hold `len`
                // steps of `MR` and `NR` floats. The tile's rows `pi*MR..+rows` and columns
                // `pj*NR..+cols` lie inside C: the last element written is
                // `(m-1)*ldc + n - 1 < c.len()` (checked above), and no other task writes
                // this tile; the bias slice holds `cols` values.
                #[cfg(all(target_arch = "x86_64", xnpu_avx512))]
                unsafe {
                    x86::tile(
                        len,
                        ap,
                        bp,
                        NR,
                        out.ptr().add(pi * MR * ldc + pj * NR),
                        ldc,
                        rows,
                        cols,
                        accumulate || !first,
                        epi,
                    );
                }
                #[cfg(not(all(target_arch = "x86_64", xnpu_avx512)))]
                let _ = (ap, bp, out, rows, accumulate, epi);
            }
            k0 += len;
            if k0 >= k {
                break;
            }
        }
    };
    let tasks = np * groups;
    let threads = rayon::current_num_threads();
    if threads > 1 && tasks > 1 && m * n * k >= 32 * 32 * 32 {
        (0..tasks).into_par_iter().with_min_len(1).for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
    Ok(())
}

/// `C[:, cols] = A B_panel` for one panel of B of `cols <= NR` columns and `k` (A's columns)
/// rows, row `p` at `b_panel[p * ldb..]` (packed: `ldb = NR`; or the columns of a row-major
/// matrix read in place, `ldb` its row stride): every row panel of A against it.
///
/// # Safety
/// `c` must be valid for reads and writes of `a.rows()` rows of `cols` floats at row stride
/// `ldc`, written by no one else meanwhile; `b_panel` must hold `(k - 1) * ldb + cols`
/// floats when `k > 0`. The CPU must have AVX-512 F ([`available`]).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn times_panel(
    a: &PackedA,
    b_panel: &[f32],
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    row_bias: Option<&[f32]>,
    act: Act,
) {
    let (m, k) = (a.m, a.k);
    debug_assert!(row_bias.is_none_or(|v| v.len() >= m));
    debug_assert!(cols <= NR && (k == 0 || b_panel.len() >= (k - 1) * ldb + cols));
    for pi in 0..m.div_ceil(MR) {
        let rows = MR.min(m - pi * MR);
        let ap = &a.data[pi * k * MR..][..k * MR];
        // SAFETY: the caller's contract; rows pi*MR..+rows are among C's `m` rows.
        #[cfg(all(target_arch = "x86_64", xnpu_avx512))]
        unsafe {
            x86::tile(
                k,
                ap,
                b_panel,
                ldb,
                c.add(pi * MR * ldc),
                ldc,
                rows,
                cols,
                false,
                Epilogue {
                    bias: None,
                    row_bias: row_bias.map(|v| &v[pi * MR..pi * MR + rows]),
                    act,
                },
            )
        };
        #[cfg(not(all(target_arch = "x86_64", xnpu_avx512)))]
        let _ = (ap, b_panel, c, ldc, rows, cols);
    }
}

/// What a tile adds to its product before and after storing it: a bias per column (its
/// `cols` values) or per row (its `rows` values), and an activation.
#[derive(Clone, Copy)]
struct Epilogue<'a> {
    bias: Option<&'a [f32]>,
    row_bias: Option<&'a [f32]>,
    act: Act,
}

/// Row panels of A per task of a product.
const GROUP: usize = 8;

/// The K block of a product: `KC` at most, the blocks of one product of equal size.
fn kc_for(k: usize) -> usize {
    let blocks = k.div_ceil(KC).max(1);
    k.div_ceil(blocks).max(1)
}

/// Steps of K per block: a block of B (`KC x NR` floats, 16 KiB) stays in a 32 KiB L1.
const KC: usize = 128;

/// A pointer to C shared by the tasks of one product, each writing its own tiles or column
/// panels.
#[derive(Clone, Copy)]
pub(crate) struct Columns(pub(crate) *mut f32);

impl Columns {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    pub(crate) fn ptr(self) -> *mut f32 {
        self.0
    }
}
// SAFETY: used only to hand each task its own tiles or columns of C (see `gemm` and
// `times_panel`), while the product holds the only borrow of C.
unsafe impl Send for Columns {}
// SAFETY: as above.
unsafe impl Sync for Columns {}

// AVX-512 intrinsics are stable from Rust 1.89, later than the workspace's MSRV: `build.rs`
// compiles this module only with such a compiler.
#[cfg(all(target_arch = "x86_64", xnpu_avx512))]
#[allow(clippy::incompatible_msrv)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Act, Epilogue, MR, NR};

    /// One `MR x NR` tile: `rows x cols` of it stored at `c` (row stride `ldc`), added to
    /// what is there when `accumulate`; the epilogue's bias (one per column) starts the
    /// accumulators and its activation is applied to the stored rows.
    ///
    /// B's step `p` is the `cols` floats at `b[p * ldb..]` (a packed panel: `ldb = NR`; rows
    /// of a row-major matrix read in place: its row stride); past `cols` nothing is read.
    ///
    /// # Safety
    /// AVX-512 F must be present; `a` holds `k * MR` floats and `b` (when `k > 0`)
    /// `(k - 1) * ldb + cols`; `c` is valid for reads and writes of `rows` rows of `cols`
    /// floats at row stride `ldc`, written by no one else meanwhile; the bias holds at least
    /// `cols` values.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) unsafe fn tile(
        k: usize,
        a: &[f32],
        b: &[f32],
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
        epi: Epilogue<'_>,
    ) {
        // SAFETY: the caller's contract, passed on; each kernel computes at least `rows` rows.
        unsafe {
            match rows {
                0..=1 => tile_rows::<1>(k, a, b, ldb, c, ldc, rows, cols, accumulate, epi),
                2 => tile_rows::<2>(k, a, b, ldb, c, ldc, rows, cols, accumulate, epi),
                3..=4 => tile_rows::<4>(k, a, b, ldb, c, ldc, rows, cols, accumulate, epi),
                5..=8 => tile_rows::<8>(k, a, b, ldb, c, ldc, rows, cols, accumulate, epi),
                _ => tile_rows::<MR>(k, a, b, ldb, c, ldc, rows, cols, accumulate, epi),
            }
        }
    }

    /// [`tile`] computing only the first `R >= rows` rows of the panel (a product of few rows,
    /// such as a matrix-vector product, does not pay for 14).
    ///
    /// # Safety
    /// As [`tile`], and `rows <= R <= MR`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_rows<const R: usize>(
        k: usize,
        a: &[f32],
        b: &[f32],
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
        epi: Epilogue<'_>,
    ) {
        debug_assert!(a.len() >= k * MR && rows <= R && R <= MR && cols <= NR);
        debug_assert!(k == 0 || b.len() >= (k - 1) * ldb + cols);
        let lo: __mmask16 = if cols >= 16 {
            0xffff
        } else {
            (1u32 << cols) as u16 - 1
        };
        let hi: __mmask16 = if cols >= 32 {
            0xffff
        } else if cols > 16 {
            (1u32 << (cols - 16)) as u16 - 1
        } else {
            0
        };
        let start = match epi.bias {
            // SAFETY: the masked lanes are the bias's first `cols` values.
            Some(v) if v.len() >= cols => unsafe {
                [
                    _mm512_maskz_loadu_ps(lo, v.as_ptr()),
                    _mm512_maskz_loadu_ps(hi, v.as_ptr().add(16.min(v.len()))),
                ]
            },
            _ => [_mm512_setzero_ps(); 2],
        };
        let mut acc = [start; R];
        if let Some(v) = epi.row_bias {
            for (row, &b) in acc.iter_mut().zip(v).take(rows) {
                let b = _mm512_set1_ps(b);
                row[0] = _mm512_add_ps(row[0], b);
                row[1] = _mm512_add_ps(row[1], b);
            }
        }
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        for p in 0..k {
            // SAFETY: p < k, so the first `cols` floats at pb + p*ldb (the lanes the masks
            // load; a masked-off lane is not accessed) and the 14 at pa + p*MR are inside `b`
            // and `a`. The addresses are computed wrapping: the second may lie past `b` when
            // its mask is empty.
            let (b0, b1) = unsafe {
                (
                    _mm512_maskz_loadu_ps(lo, pb.wrapping_add(p * ldb)),
                    _mm512_maskz_loadu_ps(hi, pb.wrapping_add(p * ldb + 16)),
                )
            };
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let ai = _mm512_set1_ps(unsafe { *pa.add(p * MR + i) });
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
        }
        // The piecewise-linear activations are applied in registers before the store; the
        // others to the stored rows.
        let in_registers = matches!(
            epi.act,
            Act::None | Act::Relu | Act::LeakyRelu { .. } | Act::Clip { .. } | Act::HardSwish
        );
        for (i, row) in acc.iter().enumerate().take(rows) {
            // SAFETY: row i < rows and the masked lanes are the first `cols` columns: inside
            // the caller's region.
            unsafe {
                let cr = c.add(i * ldc);
                let (mut v0, mut v1) = (row[0], row[1]);
                if accumulate {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(lo, cr));
                    if hi != 0 {
                        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(hi, cr.add(16)));
                    }
                }
                if in_registers {
                    v0 = activate(epi.act, v0);
                    v1 = activate(epi.act, v1);
                }
                _mm512_mask_storeu_ps(cr, lo, v0);
                if hi != 0 {
                    _mm512_mask_storeu_ps(cr.add(16), hi, v1);
                }
            }
        }
        if !in_registers {
            for i in 0..rows {
                // SAFETY: row i < rows of `cols` floats at `c + i*ldc`: the caller's region,
                // which no one else touches meanwhile.
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), cols) };
                epi.act.apply_here(row, 0.0);
            }
        }
    }

    /// The piecewise-linear activations on 16 lanes, as [`Act::apply`] computes them (NaN
    /// kept: a comparison with NaN is false, so the lane keeps `y`); any other activation is
    /// left to the caller (`y` unchanged).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn activate(act: Act, y: __m512) -> __m512 {
        let below = |bound: f32| _mm512_cmp_ps_mask::<_CMP_LT_OQ>(y, _mm512_set1_ps(bound));
        match act {
            Act::Relu => _mm512_mask_mov_ps(y, below(0.0), _mm512_setzero_ps()),
            Act::LeakyRelu { alpha } => _mm512_mask_mul_ps(y, below(0.0), y, _mm512_set1_ps(alpha)),
            Act::Clip { min, max } => {
                // Max with `min`, then min with `max`: `max` wins when the bounds cross.
                let y = _mm512_mask_mov_ps(y, below(min), _mm512_set1_ps(min));
                let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm512_set1_ps(max));
                _mm512_mask_mov_ps(y, above, _mm512_set1_ps(max))
            }
            Act::HardSwish => {
                // y * clamp(y / 6 + 0.5, 0, 1), with y / 6 divided as the scalar code does.
                let t = _mm512_add_ps(_mm512_div_ps(y, _mm512_set1_ps(6.0)), _mm512_set1_ps(0.5));
                let t = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(1.0));
                _mm512_mul_ps(y, t)
            }
            _ => y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_values as values;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// The bias (per column) and activation of `gemm_bias` equal adding and activating
        /// after the product.
        #[test]
        fn bias_and_activation_match_a_separate_pass(m in 0usize..33, k in 0usize..40, n in 0usize..70, which in 0usize..6, seed: u64) {
            if !available() {
                return Ok(());
            }
            let av = values(m * k, seed);
            let bv = values(k * n, seed ^ 1);
            let bias = values(n, seed ^ 3);
            let pa = PackedA::new(MatRef::row_major(&av, m, k).unwrap()).unwrap();
            let pb = PackedB::new(MatRef::row_major(&bv, k, n).unwrap()).unwrap();
            // Those applied in registers and one applied to the stored rows.
            let act = [
                Act::Relu,
                Act::LeakyRelu { alpha: 0.1 },
                Act::Clip { min: -0.5, max: 0.25 },
                Act::HardSwish,
                Act::None,
                Act::Gelu { tanh: false },
            ][which];
            let mut want = vec![0.0; m * n];
            gemm(&pa, &pb, &mut want, n, false).unwrap();
            for row in want.chunks_mut(n.max(1)) {
                for (v, b) in row.iter_mut().zip(&bias) {
                    *v += b;
                }
                act.apply(row, 0.0);
            }
            let mut got = vec![0.0; m * n];
            gemm_bias(&pa, &pb, &mut got, n, Some(&bias), act).unwrap();
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
            }
            prop_assert!(gemm_bias(&pa, &pb, &mut got, n, Some(&bias[..n.saturating_sub(1)]), act).is_err() || n == 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Odd and tiny shapes (panel edges in both dims), both layouts of B, accumulate or
        /// not: within f32 rounding of the f64 product; C's padding untouched.
        #[test]
        fn matches_the_naive_product(m in 0usize..40, k in 0usize..70, n in 0usize..80, tb: bool, acc: bool, seed: u64) {
            if !available() {
                return Ok(());
            }
            let av = values(m * k, seed);
            let bv = values(k * n, seed ^ 1);
            let a = MatRef::row_major(&av, m, k).unwrap();
            let b = if tb { MatRef::row_major(&bv, n, k).unwrap().t() } else { MatRef::row_major(&bv, k, n).unwrap() };
            let ldc = n + 3;
            let init = values(m * ldc, seed ^ 2);
            let mut c = init.clone();
            gemm(&PackedA::new(a).unwrap(), &PackedB::new(b).unwrap(), &mut c, ldc, acc).unwrap();
            for i in 0..m {
                for j in 0..ldc {
                    let base = if acc || j >= n { init[i * ldc + j] as f64 } else { 0.0 };
                    let w = if j < n { (0..k).map(|p| a.at(i, p) as f64 * b.at(p, j) as f64).sum::<f64>() } else { 0.0 } + base;
                    let got = c[i * ldc + j] as f64;
                    prop_assert!((got - w).abs() <= 1e-5 * (k as f64 + 1.0), "({i}, {j}): {got} vs {w}");
                }
            }
        }
    }
}
