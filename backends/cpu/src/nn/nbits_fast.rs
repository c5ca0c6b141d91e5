//! A fast CPU kernel for `com.microsoft::MatMulNBits` with 4-bit weights and f32 activations.
//!
//! `Y[m, n] = Σ_k A[m, k] · W[n, k] + bias[n]` with `W[n, k] = (q[n, k] - zp[n, blk]) ·
//! scale[n, blk]`, `blk = k / block_size` (see the op's doc in `xnpu_ops::nn::MatMulNBits`; the
//! reference kernel is `super::nbits`). B is read as stored (row `n` = `n_blocks` blobs of
//! `block_size / 2` bytes, the low nibble of a byte is the even k): nothing is repacked, so the
//! kernel can run straight on a model's initializers.
//!
//! # Paths
//!
//! * **f32** (accuracy levels 0 to 3, and any level with float zero points). M = 1 (decode):
//!   per column and block, `s · Σ a·q` over the unpacked nibbles, minus the zero-point term
//!   `Σ_blk s·zp · Σ_blk a` (the block sums of A are computed once per call). M > 1 (prefill):
//!   columns are dequantised four at a time, `(q - zp) · s` in f32 like ONNX Runtime's
//!   dequantise-then-SGEMM path, over 256-wide slices of K into a small scratch, and a register-
//!   tiled 3 x 4 micro-kernel runs that slice against every row of A, so each weight block is
//!   unpacked once per call whatever M.
//! * **int8** (`int8_activations`, accuracy level 4, uint8 or absent zero points): A is
//!   quantised per row and block exactly as ONNX Runtime's MLAS "CompInt8" path does, and the
//!   block products are integer dot products, scaled in f32 — see below. At M = 1 on AVX2 one
//!   call runs a whole column tile (`Kern::int8_m1`): each column's chunks feed four
//!   accumulators, since a single chain of multiply-adds, not memory, bounded the loop
//!   (L3-resident weights: 13 → 17 GiB/s, one thread).
//!
//! Work is split over column tiles with rayon, in whatever pool the caller installed. The
//! SIMD code is x86_64 AVX2+FMA (chosen at run time) and aarch64 NEON (baseline; the int8 path
//! uses `sdot` when the CPU has the dot-product extension), with a portable scalar fallback
//! that runs the same algorithms.
//!
//! # int8 activations: ONNX Runtime's scheme
//!
//! Read from MLAS in onnxruntime's `onnxruntime/core/mlas/lib/` (main branch, several stored
//! revisions agreeing): `QuantizeARow_CompInt8_avx2` in `sqnbitgemm_kernel_avx2.cpp`,
//! `QuantizeARow_CompInt8_avx512` in `sqnbitgemm_kernel_avx512.cpp` (the x86 dispatches set
//! `QuantizeARowComputeBlkSum_CompInt8` to these), `ComputePackBlkSum` and the
//! `load_and_mul_sum_s8_quads_with_zp_avx2` family in `sqnbitgemm_kernel_avx_common.h`,
//! `SQ4BitGemmKernel_BlkSum_CompInt8_avx2` (`sqnbitgemm_kernel_avx2.cpp`),
//! `InitializeWorkspace_CompInt8` in `qnbitgemm.cpp`, and `GetComputeType`/`PrePack` in
//! `onnxruntime/contrib_ops/cpu/quantization/matmul_nbits.cc`. This is the x86_64 scheme; it is
//! used here on every architecture. (On aarch64 ONNX Runtime differs: its NEON dispatch sets
//! `QuantizeARow_CompInt8`, which `InitializeWorkspace_CompInt8` prefers, quantising with
//! `a * (1 / scale)` rounded half away from zero (`vcvtaq_s32_f32`, `QuantizeBlock` in
//! `sqnbitgemm_kernel_neon_int8.cpp`), and KleidiAI builds quantise A per row instead.)
//!
//! * Each row of A is cut into blocks of `block_size` along K (the same blocks as B's; the
//!   last one may be short). Per block: `amax = max |a|`, `scale_a = amax / 127` (f32
//!   division), `inv = amax != 0 ? 127 / amax : 0`, `qa = round_half_even(a * inv)` (f32
//!   product, then `_mm256_round_ps(_MM_ROUND_NEAREST)` / `vcvtnq_s32_f32`), saturated to
//!   int8 (never reached: |qa| <= 127). Padding past K is 0.
//! * `ABlkSum = scale_a * (float)Σ qa` per block.
//! * B's zero point enters as a separate term: MLAS packs `QuantBBlkSum = -scale_b * zp` per
//!   block (zp = 8 when absent) and computes
//!   `C = Σ_blk (scale_a·scale_b) · Σ_k qa·q  +  Σ_blk ABlkSum · QuantBBlkSum (+ bias)`
//!   with `q` the raw unsigned nibble (the second sum is an SGEMM added onto C). Its M = 1
//!   AVX2 kernel subtracts `zp` from the nibbles first instead, `Σ qa·(q - zp)`: the same
//!   value in exact arithmetic. This kernel computes the first form: the integer part
//!   `Σ qa·q` is exact (i32), scaled per block by the f32 product `scale_a · scale_b`,
//!   minus `Σ_blk (scale_b · zp) · ABlkSum`.
//! * Float zero points (or `g_idx`) make ONNX Runtime skip MLAS's packed paths
//!   (`has_unquantized_zero_point_` in `PrePack`), dequantising B and running an f32 GEMM; here
//!   too `ZeroPoints::Float` always takes the f32 path.
//!
//! So A's int8 values, scales and block sums are bit-identical to ONNX Runtime's on x86_64, the
//! integer dot products are exact, and results differ from MLAS only by f32 rounding (the order
//! of the sums, and for M = 1 the zero point's separate term: a few ulps of `Σ|a|·|q|·scale`). Against exact arithmetic the int8 path errs by A's quantisation:
//! at most `scale_a / 2 = amax / 254` per element of A (see the tests' bound).

use rayon::prelude::*;
use xnpu_core::{Error, Result};
use xnpu_linalg::buf;

/// The zero points of the weight blocks.
#[derive(Clone, Copy, Debug)]
pub enum ZeroPoints<'a> {
    /// Absent: 8.
    Default,
    /// uint8, `N * ceil(n_blocks / 2)` bytes: row n's block zero points, low nibble first.
    Packed(&'a [u8]),
    /// One float per block, `N * n_blocks`.
    Float(&'a [f32]),
}

/// MatMulNBits' 4-bit weights, as the op stores them.
#[derive(Clone, Copy, Debug)]
pub struct NBitsWeights<'a> {
    /// `N * n_blocks * block_size / 2` bytes, `n_blocks = ceil(K / block_size)`.
    pub b: &'a [u8],
    /// `N * n_blocks`.
    pub scales: &'a [f32],
    pub zero_points: ZeroPoints<'a>,
    pub n: usize,
    pub k: usize,
    /// A power of two, 16 to 256.
    pub block_size: usize,
}

/// `out[m, n] = Σ_k a[m, k] · W[n, k] + bias[n]`: `a` is `[m, k]`, `out` is `[m, n]`,
/// overwritten. `int8_activations`: the accuracy_level 4 path, A quantised to int8 per block as
/// ONNX Runtime does (ignored with float zero points, which ONNX Runtime computes in f32 too).
pub fn matmul_nbits_f32(
    a: &[f32],
    m: usize,
    w: &NBitsWeights<'_>,
    bias: Option<&[f32]>,
    int8_activations: bool,
    out: &mut [f32],
) -> Result<()> {
    run(Isa::detect(), a, m, w, bias, int8_activations, out)
}

/// [`matmul_nbits_f32`] on the portable scalar code, whatever the CPU (for benchmarks).
#[doc(hidden)]
pub fn matmul_nbits_f32_scalar(
    a: &[f32],
    m: usize,
    w: &NBitsWeights<'_>,
    bias: Option<&[f32]>,
    int8_activations: bool,
    out: &mut [f32],
) -> Result<()> {
    run(Isa::Scalar, a, m, w, bias, int8_activations, out)
}

// ------------------------------------------------------------------------------------------
// Instruction sets.

/// The code a call runs. The SIMD variants hold tokens that exist only when the CPU has the
/// features.
#[derive(Clone, Copy, Debug)]
enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    #[cfg(target_arch = "aarch64")]
    Neon(neon::Neon),
    #[cfg(target_arch = "aarch64")]
    NeonDot(neon::NeonDot),
}

impl Isa {
    /// The best this CPU runs.
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            avx2::Avx2::new().map_or(Isa::Scalar, Isa::Avx2)
        }
        #[cfg(target_arch = "aarch64")]
        {
            neon::NeonDot::new().map_or(Isa::Neon(neon::Neon::new()), Isa::NeonDot)
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Isa::Scalar
        }
    }

    /// Every variant this CPU runs, scalar first.
    #[cfg(test)]
    fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut v = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        v.extend(avx2::Avx2::new().map(Isa::Avx2));
        #[cfg(target_arch = "aarch64")]
        {
            v.push(Isa::Neon(neon::Neon::new()));
            v.extend(neon::NeonDot::new().map(Isa::NeonDot));
        }
        v
    }
}

// ------------------------------------------------------------------------------------------
// Shapes.

/// K per SIMD chunk of the int8 path: 32 bytes of B.
const CHUNK: usize = 64;
/// K per slice of the M > 1 f32 path (a multiple of every block size).
const KC: usize = 256;

#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    k: usize,
    bs: usize,
    nb: usize,
    /// `nb * bs`: K padded to whole blocks.
    kp: usize,
    /// Bytes of B per column.
    row_bytes: usize,
    /// Bytes of packed zero points per column.
    zp_row: usize,
    /// `ceil(kp / CHUNK)`.
    nchunks: usize,
}

fn check(
    a: &[f32],
    m: usize,
    w: &NBitsWeights<'_>,
    bias: Option<&[f32]>,
    out: &[f32],
) -> Result<Geom> {
    let (n, k, bs) = (w.n, w.k, w.block_size);
    if !(16..=256).contains(&bs) || !bs.is_power_of_two() {
        return Err(Error::compute(format!(
            "MatMulNBits block_size must be a power of two from 16 to 256, got {bs}"
        )));
    }
    let nb = k.div_ceil(bs);
    let row_bytes = nb * bs / 2;
    let zp_row = nb.div_ceil(2);
    let overflow = || Error::compute(format!("MatMulNBits sizes overflow (M={m}, N={n}, K={k})"));
    let want = |what: &str, got: usize, want: Option<usize>, detail: String| -> Result<()> {
        let want = want.ok_or_else(overflow)?;
        if got != want {
            return Err(Error::compute(format!(
                "MatMulNBits {what} holds {got} values, {want} expected ({detail})"
            )));
        }
        Ok(())
    };
    want("A", a.len(), m.checked_mul(k), format!("M={m} x K={k}"))?;
    want(
        "B",
        w.b.len(),
        n.checked_mul(row_bytes),
        format!("N={n} x {nb} blocks x {} bytes", bs / 2),
    )?;
    want(
        "scales",
        w.scales.len(),
        n.checked_mul(nb),
        format!("N={n} x {nb} blocks"),
    )?;
    match w.zero_points {
        ZeroPoints::Default => {}
        ZeroPoints::Packed(z) => want(
            "packed zero_points",
            z.len(),
            n.checked_mul(zp_row),
            format!("N={n} x {zp_row} bytes"),
        )?,
        ZeroPoints::Float(z) => want(
            "float zero_points",
            z.len(),
            n.checked_mul(nb),
            format!("N={n} x {nb} blocks"),
        )?,
    }
    if let Some(b) = bias {
        want("bias", b.len(), Some(n), format!("N={n}"))?;
    }
    want(
        "the output",
        out.len(),
        m.checked_mul(n),
        format!("M={m} x N={n}"),
    )?;
    let kp = nb * bs;
    Ok(Geom {
        n,
        k,
        bs,
        nb,
        kp,
        row_bytes,
        zp_row,
        nchunks: kp.div_ceil(CHUNK),
    })
}

/// One column's zero points.
#[derive(Clone, Copy, Debug)]
enum ZpCol<'a> {
    Default,
    /// `ceil(nb / 2)` bytes.
    Packed(&'a [u8]),
    /// `nb` values.
    Float(&'a [f32]),
}

impl ZpCol<'_> {
    fn get(&self, blk: usize) -> f32 {
        match self {
            ZpCol::Default => 8.0,
            ZpCol::Packed(z) => ((z[blk / 2] >> ((blk % 2) * 4)) & 0xF) as f32,
            ZpCol::Float(z) => z[blk],
        }
    }
}

/// One column of W.
#[derive(Clone, Copy, Debug)]
struct Col<'a> {
    /// `row_bytes`.
    b: &'a [u8],
    /// `nb`.
    s: &'a [f32],
    zp: ZpCol<'a>,
}

// ------------------------------------------------------------------------------------------
// A, prepared once per call.

/// A quantised per row and block (ONNX Runtime's CompInt8 scheme), in the layout of the SIMD
/// kernels: each chunk of 64 k holds the 32 even k, then the 32 odd k (byte j of 32 bytes of
/// B holds k = 2j in its low nibble and 2j + 1 in its high nibble).
struct QuantA {
    /// `nchunks * 64` per row.
    q: Vec<i8>,
    /// Per row and chunk, the scale of A's block of each 8-k lane (`nchunks * 8` per row).
    lane_scale: Vec<f32>,
    /// Per row and block, `scale_a * Σ qa` (`nb` per row).
    blk_sum: Vec<f32>,
    row_len: usize,
    lanes_len: usize,
    nb: usize,
}

impl QuantA {
    fn new(a: &[f32], m: usize, g: &Geom) -> Result<QuantA> {
        // `check` found A to hold m * k values; these are about as many.
        let row_len = g.nchunks * CHUNK;
        let lanes_len = g.nchunks * 8;
        let size = |per_row: usize| buf::count(&[m, per_row], "A quantised to int8");
        let mut qa = QuantA {
            q: buf::zeroed(size(row_len)?, "A quantised to int8")?,
            lane_scale: buf::zeroed(size(lanes_len)?, "A's scales")?,
            blk_sum: buf::zeroed(size(g.nb)?, "A's block sums")?,
            row_len,
            lanes_len,
            nb: g.nb,
        };
        let rows =
            qa.q.par_chunks_mut(row_len.max(1))
                .zip(qa.lane_scale.par_chunks_mut(lanes_len.max(1)))
                .zip(qa.blk_sum.par_chunks_mut(g.nb.max(1)));
        rows.enumerate().for_each_init(
            || (vec![0i8; row_len], vec![0f32; g.nb]),
            |(nat, scale), (r, ((q, lanes), sums))| {
                quantize_row(&a[r * g.k..(r + 1) * g.k], g.bs, nat, scale, sums);
                for c in 0..g.nchunks {
                    for j in 0..32 {
                        q[c * CHUNK + j] = nat[c * CHUNK + 2 * j];
                        q[c * CHUNK + 32 + j] = nat[c * CHUNK + 2 * j + 1];
                    }
                    for (i, l) in lanes[c * 8..c * 8 + 8].iter_mut().enumerate() {
                        let blk = (c * CHUNK + 8 * i) / g.bs;
                        *l = if blk < g.nb { scale[blk] } else { 0.0 };
                    }
                }
            },
        );
        Ok(qa)
    }

    fn row(&self, r: usize) -> &[i8] {
        &self.q[r * self.row_len..(r + 1) * self.row_len]
    }

    fn lanes(&self, r: usize) -> &[f32] {
        &self.lane_scale[r * self.lanes_len..(r + 1) * self.lanes_len]
    }

    fn sums(&self, r: usize) -> &[f32] {
        &self.blk_sum[r * self.nb..(r + 1) * self.nb]
    }
}

/// One row of A to int8 per block, as MLAS' `QuantizeARow_CompInt8` (see the module doc):
/// `q` (natural order, `>= nb * bs`, padding left as it is: zero), `scale` and `blk_sum` per
/// block.
fn quantize_row(a: &[f32], bs: usize, q: &mut [i8], scale: &mut [f32], blk_sum: &mut [f32]) {
    // Adding and subtracting 1.5 · 2^23 rounds an f32 of magnitude below 2^22 to the nearest
    // integer, ties to even (the default rounding of every f32 addition): `round_ties_even`
    // without a libm call, so the loop vectorises. |v · inv| <= 127 here (NaN stays NaN and
    // saturates to 0 in the cast, as it would after `round_ties_even`).
    const ROUND: f32 = 12_582_912.0;
    for (blk, x) in a.chunks(bs).enumerate() {
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = amax / 127.0;
        let inv = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (d, &v) in q[blk * bs..].iter_mut().zip(x) {
            let t = ((v * inv + ROUND) - ROUND).clamp(-128.0, 127.0) as i8;
            *d = t;
            sum += t as i32;
        }
        scale[blk] = s;
        blk_sum[blk] = s * sum as f32;
    }
}

enum Prep {
    Int8(QuantA),
    /// M = 1 on the f32 path: A padded with zeros to whole blocks, and its block sums.
    F32One {
        a: Vec<f32>,
        sums: Vec<f32>,
    },
    /// M > 1 on the f32 path: A as given.
    F32Many,
}

// ------------------------------------------------------------------------------------------
// Driver.

fn run(
    isa: Isa,
    a: &[f32],
    m: usize,
    w: &NBitsWeights<'_>,
    bias: Option<&[f32]>,
    int8_activations: bool,
    out: &mut [f32],
) -> Result<()> {
    let g = check(a, m, w, bias, out)?;
    if m == 0 || g.n == 0 {
        return Ok(());
    }
    let int8 = int8_activations && !matches!(w.zero_points, ZeroPoints::Float(_));
    let prep = if int8 {
        Prep::Int8(QuantA::new(a, m, &g)?)
    } else if m == 1 {
        let mut ap = buf::zeroed::<f32>(g.kp, "A padded to whole blocks")?;
        ap[..g.k].copy_from_slice(a);
        let sums = ap.chunks(g.bs).map(|x| x.iter().sum()).collect();
        Prep::F32One { a: ap, sums }
    } else {
        Prep::F32Many
    };
    let ctx = Ctx {
        g,
        a,
        w,
        bias,
        prep,
    };
    let tile = tile_cols(&g, m);
    if m == 1 {
        out.par_chunks_mut(tile)
            .enumerate()
            .for_each(|(t, o)| ctx.tile(isa, t * tile, &mut [o]));
    } else {
        let ntiles = g.n.div_ceil(tile);
        let mut tiles: Vec<Vec<&mut [f32]>> = (0..ntiles).map(|_| Vec::with_capacity(m)).collect();
        for row in out.chunks_mut(g.n) {
            for (t, part) in row.chunks_mut(tile).enumerate() {
                tiles[t].push(part);
            }
        }
        tiles
            .into_par_iter()
            .enumerate()
            .for_each(|(t, mut rows)| ctx.tile(isa, t * tile, &mut rows));
    }
    Ok(())
}

/// Columns per task: a multiple of 4, about four tasks per thread, at least 64 Ki weights each,
/// for M > 1 a tile of B within 256 KiB (it is read once per group of rows), and as many tasks
/// for each thread.
fn tile_cols(g: &Geom, m: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let min_cols = (1usize << 16) / g.kp.max(1);
    let mut t = g.n.div_ceil(threads * 4).max(min_cols).max(4);
    if m > 1 {
        t = t.min(((256 << 10) / g.row_bytes.max(1)).max(16));
    }
    t = t.min(1024);
    // A whole number of tiles per thread (9 tiles on 2 threads leave one thread a tile
    // alone at the end); a matrix of one tile stays one task.
    let tiles = g.n.div_ceil(t);
    if tiles == 1 {
        return t.div_ceil(4) * 4;
    }
    let tiles = tiles.div_ceil(threads) * threads;
    g.n.div_ceil(tiles).div_ceil(4) * 4
}

struct Ctx<'a> {
    g: Geom,
    a: &'a [f32],
    w: &'a NBitsWeights<'a>,
    bias: Option<&'a [f32]>,
    prep: Prep,
}

impl Ctx<'_> {
    fn col(&self, n: usize) -> Col<'_> {
        let g = &self.g;
        Col {
            b: &self.w.b[n * g.row_bytes..(n + 1) * g.row_bytes],
            s: &self.w.scales[n * g.nb..(n + 1) * g.nb],
            zp: match self.w.zero_points {
                ZeroPoints::Default => ZpCol::Default,
                ZeroPoints::Packed(z) => ZpCol::Packed(&z[n * g.zp_row..(n + 1) * g.zp_row]),
                ZeroPoints::Float(z) => ZpCol::Float(&z[n * g.nb..(n + 1) * g.nb]),
            },
        }
    }

    /// Columns `n0..n0 + rows[0].len()` of every row.
    fn tile(&self, isa: Isa, n0: usize, rows: &mut [&mut [f32]]) {
        match isa {
            Isa::Scalar => self.tile_with(Scalar, n0, rows),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(t) => self.tile_with(t, n0, rows),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon(t) => self.tile_with(t, n0, rows),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot(t) => self.tile_with(t, n0, rows),
        }
    }

    fn tile_with<K: Kern>(&self, kern: K, n0: usize, rows: &mut [&mut [f32]]) {
        match &self.prep {
            Prep::Int8(q) => self.int8_tile(kern, q, n0, rows),
            Prep::F32One { a, sums } => self.f32_one_tile(kern, a, sums, n0, rows[0]),
            Prep::F32Many => self.f32_many_tile(kern, n0, rows),
        }
        if let Some(b) = self.bias {
            for row in rows.iter_mut() {
                for (y, b) in row.iter_mut().zip(&b[n0..]) {
                    *y += b;
                }
            }
        }
    }

    fn int8_tile<K: Kern>(&self, kern: K, q: &QuantA, n0: usize, rows: &mut [&mut [f32]]) {
        let g = &self.g;
        let cols = rows[0].len();
        if rows.len() == 1 {
            let zp = match self.w.zero_points {
                ZeroPoints::Default => Some(None),
                ZeroPoints::Packed(z) => Some(Some(&z[n0 * g.zp_row..(n0 + cols) * g.zp_row])),
                ZeroPoints::Float(_) => None,
            };
            if let Some(zp) = zp {
                let cols_w = M1Cols {
                    b: &self.w.b[n0 * g.row_bytes..(n0 + cols) * g.row_bytes],
                    s: &self.w.scales[n0 * g.nb..(n0 + cols) * g.nb],
                    zp,
                };
                if kern.int8_m1(g, q, cols_w, rows[0]) {
                    return;
                }
            }
            let (qa, lanes, sums) = ([q.row(0)], [q.lanes(0)], q.sums(0));
            let out = &mut *rows[0];
            // One column at a time: its blocks are one sequential stream, which the hardware
            // prefetcher follows; four columns at once (four interleaved streams of a few
            // cache lines each) measured 1.3x (1 thread) to 1.45x (2 threads) slower on the
            // Phi-3.5-mini shapes.
            for (j, o) in out.iter_mut().enumerate() {
                let c = self.col(n0 + j);
                let y = kern.int8_dot::<1, 1>(g.bs, g.nb, qa, lanes, [c.b], [c.s]);
                *o = y[0][0] - kern.zp_dot(c.s, c.zp, sums);
            }
            return;
        }
        // Zero-point terms of the tile's columns, then groups of 4 rows against each column.
        let mut szp = vec![0.0f32; cols * g.nb];
        for (j, z) in szp.chunks_mut(g.nb.max(1)).enumerate().take(cols) {
            let c = self.col(n0 + j);
            kern.szp(c.s, c.zp, z);
        }
        let mut r0 = 0;
        while r0 < rows.len() {
            let rr = (rows.len() - r0).min(4);
            match rr {
                4 => self.int8_rows::<K, 4>(kern, q, &szp, r0, n0, rows),
                3 => self.int8_rows::<K, 3>(kern, q, &szp, r0, n0, rows),
                2 => self.int8_rows::<K, 2>(kern, q, &szp, r0, n0, rows),
                _ => self.int8_rows::<K, 1>(kern, q, &szp, r0, n0, rows),
            }
            r0 += rr;
        }
    }

    // `rows[r0 + i][j]`: a column index into R rows at once.
    #[allow(clippy::needless_range_loop)]
    fn int8_rows<K: Kern, const R: usize>(
        &self,
        kern: K,
        q: &QuantA,
        szp: &[f32],
        r0: usize,
        n0: usize,
        rows: &mut [&mut [f32]],
    ) {
        let g = &self.g;
        let qa: [&[i8]; R] = std::array::from_fn(|i| q.row(r0 + i));
        let lanes: [&[f32]; R] = std::array::from_fn(|i| q.lanes(r0 + i));
        let sums: [&[f32]; R] = std::array::from_fn(|i| q.sums(r0 + i));
        let cols = rows[0].len();
        for j in 0..cols {
            let c = self.col(n0 + j);
            let y = kern.int8_dot::<R, 1>(g.bs, g.nb, qa, lanes, [c.b], [c.s]);
            for i in 0..R {
                rows[r0 + i][j] = y[i][0];
            }
        }
        // The zero-point terms, `Σ_blk szp[j][blk] · sums[i][blk]`: a small product of R rows
        // by the tile's columns, four columns at a time.
        let mut j = 0;
        while j + 4 <= cols {
            let z = kern.gemm4::<R>(sums, &szp[j * g.nb..], g.nb, g.nb);
            for i in 0..R {
                for (jj, zv) in z[i].iter().enumerate() {
                    rows[r0 + i][j + jj] -= zv;
                }
            }
            j += 4;
        }
        for j in j..cols {
            let z = &szp[j * g.nb..(j + 1) * g.nb];
            for i in 0..R {
                rows[r0 + i][j] -= kern.dot(z, sums[i]);
            }
        }
    }

    fn f32_one_tile<K: Kern>(&self, kern: K, a: &[f32], sums: &[f32], n0: usize, out: &mut [f32]) {
        let g = &self.g;
        let cols = out.len();
        let mut j = 0;
        while j + 4 <= cols {
            let c: [Col; 4] = std::array::from_fn(|t| self.col(n0 + j + t));
            let y = kern.f32_dot::<4>(g.bs, g.nb, a, c.map(|c| c.b), c.map(|c| c.s));
            for t in 0..4 {
                out[j + t] = y[t] - kern.zp_dot(c[t].s, c[t].zp, sums);
            }
            j += 4;
        }
        for (j, o) in out.iter_mut().enumerate().skip(j) {
            let c = self.col(n0 + j);
            let y = kern.f32_dot::<1>(g.bs, g.nb, a, [c.b], [c.s]);
            *o = y[0] - kern.zp_dot(c.s, c.zp, sums);
        }
    }

    /// M > 1, f32: for each slice of K, four columns dequantised into `w`, then every row.
    fn f32_many_tile<K: Kern>(&self, kern: K, n0: usize, rows: &mut [&mut [f32]]) {
        let g = &self.g;
        let (m, cols) = (rows.len(), rows[0].len());
        for row in rows.iter_mut() {
            row.fill(0.0);
        }
        let mut w = vec![0.0f32; 4 * KC];
        for k0 in (0..g.k).step_by(KC) {
            let klen = KC.min(g.k - k0);
            let (blk0, nblk) = (k0 / g.bs, klen.div_ceil(g.bs));
            for j0 in (0..cols).step_by(4) {
                let jn = (cols - j0).min(4);
                for t in 0..jn {
                    let c = self.col(n0 + j0 + t);
                    kern.dequant(
                        g.bs,
                        c.b,
                        c.s,
                        c.zp,
                        blk0,
                        &mut w[t * KC..t * KC + nblk * g.bs],
                    );
                }
                let mut r0 = 0;
                while r0 < m {
                    let rr = (m - r0).min(3);
                    let y = match rr {
                        3 => self.gemm_rows::<K, 3>(kern, &w, r0, k0, klen),
                        2 => self.gemm_rows::<K, 2>(kern, &w, r0, k0, klen),
                        _ => self.gemm_rows::<K, 1>(kern, &w, r0, k0, klen),
                    };
                    for (i, yi) in y.iter().enumerate().take(rr) {
                        for t in 0..jn {
                            rows[r0 + i][j0 + t] += yi[t];
                        }
                    }
                    r0 += rr;
                }
            }
        }
    }

    fn gemm_rows<K: Kern, const R: usize>(
        &self,
        kern: K,
        w: &[f32],
        r0: usize,
        k0: usize,
        klen: usize,
    ) -> [[f32; 4]; 3] {
        let k = self.g.k;
        let a: [&[f32]; R] =
            std::array::from_fn(|i| &self.a[(r0 + i) * k + k0..(r0 + i) * k + k0 + klen]);
        let y = kern.gemm4::<R>(a, w, KC, klen);
        let mut out = [[0.0f32; 4]; 3];
        out[..R].copy_from_slice(&y);
        out
    }
}

// ------------------------------------------------------------------------------------------
// Kernels.

/// Consecutive columns of B with their scales and packed zero points (`None`: absent, 8).
#[derive(Clone, Copy, Debug)]
// Read by the AVX2 `int8_m1` only; elsewhere the trait's default declines.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct M1Cols<'a> {
    b: &'a [u8],
    s: &'a [f32],
    zp: Option<&'a [u8]>,
}

/// The inner loops, one implementation per instruction set.
trait Kern: Copy + Send + Sync {
    /// M = 1 on the int8 path over the consecutive columns `w` (`out.len()` of them): what
    /// `int8_dot` and `zp_dot` give per column, in one call for the whole tile (one sequential
    /// stream through B, scales and zero points). Returns false where this instruction set has
    /// no such kernel or the shape is not one it takes; the caller then runs those two.
    fn int8_m1(self, g: &Geom, q: &QuantA, w: M1Cols<'_>, out: &mut [f32]) -> bool {
        let _ = (g, q, w, out);
        false
    }

    /// For R rows of quantised A (`QuantA::row`, `QuantA::lanes`) and C columns of B and
    /// scales: `Σ_blk (scale_a · scale_b) · Σ_k qa · q`, q the raw nibble.
    fn int8_dot<const R: usize, const C: usize>(
        self,
        bs: usize,
        nb: usize,
        qa: [&[i8]; R],
        lanes: [&[f32]; R],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [[f32; C]; R];

    /// For A padded to `nb * bs` and C columns: `Σ_blk scale · Σ_k a · q`, q the raw nibble.
    fn f32_dot<const C: usize>(
        self,
        bs: usize,
        nb: usize,
        a: &[f32],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [f32; C];

    /// `out[blk] = s[blk] · zp[blk]` for the `out.len()` blocks.
    fn szp(self, s: &[f32], zp: ZpCol<'_>, out: &mut [f32]);

    /// `Σ x · y`.
    fn dot(self, x: &[f32], y: &[f32]) -> f32;

    /// `Σ_blk s[blk] · zp[blk] · sums[blk]` over `sums.len()` blocks (`szp` and `dot` in one
    /// pass).
    fn zp_dot(self, s: &[f32], zp: ZpCol<'_>, sums: &[f32]) -> f32;

    /// `out = (q - zp) · s` for blocks `blk0..blk0 + out.len() / bs`.
    fn dequant(self, bs: usize, b: &[u8], s: &[f32], zp: ZpCol<'_>, blk0: usize, out: &mut [f32]);

    /// `y[r][j] = Σ_{k < klen} a[r][k] · w[j * ldw + k]` for four columns of `w`.
    fn gemm4<const R: usize>(
        self,
        a: [&[f32]; R],
        w: &[f32],
        ldw: usize,
        klen: usize,
    ) -> [[f32; 4]; R];
}

/// The portable kernels.
#[derive(Clone, Copy, Debug)]
struct Scalar;

/// `Σ x · y` in eight interleaved partial sums (which the compiler can keep in vector lanes).
fn dot8(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let mut acc = [0.0f32; 8];
    for (x, y) in x[..n].chunks_exact(8).zip(y[..n].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = (n / 8 * 8..n).map(|i| x[i] * y[i]).sum();
    acc.iter().sum::<f32>() + tail
}

impl Kern for Scalar {
    fn int8_dot<const R: usize, const C: usize>(
        self,
        bs: usize,
        nb: usize,
        qa: [&[i8]; R],
        lanes: [&[f32]; R],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [[f32; C]; R] {
        let blob = bs / 2;
        let mut y = [[0.0f32; C]; R];
        for blk in 0..nb {
            for j in 0..C {
                for r in 0..R {
                    // The block's bytes, cut at chunk boundaries: byte `i` of chunk `c` pairs
                    // with the chunk's even k `i` and odd k `i`.
                    let mut d = 0i32;
                    let (mut gb, end) = (blk * blob, (blk + 1) * blob);
                    while gb < end {
                        let (c, i0) = (gb / 32, gb % 32);
                        let len = (32 - i0).min(end - gb);
                        let even = &qa[r][c * CHUNK + i0..c * CHUNK + i0 + len];
                        let odd = &qa[r][c * CHUNK + 32 + i0..c * CHUNK + 32 + i0 + len];
                        d += b[j][gb..gb + len]
                            .iter()
                            .zip(even)
                            .zip(odd)
                            .map(|((&q, &e), &o)| {
                                (q & 0xF) as i32 * e as i32 + (q >> 4) as i32 * o as i32
                            })
                            .sum::<i32>();
                        gb += len;
                    }
                    let sa = lanes[r][blk * bs / 8];
                    y[r][j] += sa * s[j][blk] * d as f32;
                }
            }
        }
        y
    }

    fn f32_dot<const C: usize>(
        self,
        bs: usize,
        nb: usize,
        a: &[f32],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [f32; C] {
        let blob = bs / 2;
        let mut y = [0.0f32; C];
        for j in 0..C {
            for blk in 0..nb {
                // Eight partial sums: four bytes (eight k) at a time.
                let mut acc = [0.0f32; 8];
                let bytes = &b[j][blk * blob..(blk + 1) * blob];
                for (q, x) in bytes
                    .chunks_exact(4)
                    .zip(a[blk * bs..(blk + 1) * bs].chunks_exact(8))
                {
                    for t in 0..4 {
                        acc[2 * t] += x[2 * t] * (q[t] & 0xF) as f32;
                        acc[2 * t + 1] += x[2 * t + 1] * (q[t] >> 4) as f32;
                    }
                }
                y[j] += s[j][blk] * acc.iter().sum::<f32>();
            }
        }
        y
    }

    fn szp(self, s: &[f32], zp: ZpCol<'_>, out: &mut [f32]) {
        for (blk, o) in out.iter_mut().enumerate() {
            *o = s[blk] * zp.get(blk);
        }
    }

    fn dot(self, x: &[f32], y: &[f32]) -> f32 {
        dot8(x, y)
    }

    fn zp_dot(self, s: &[f32], zp: ZpCol<'_>, sums: &[f32]) -> f32 {
        sums.iter()
            .enumerate()
            .map(|(blk, t)| s[blk] * zp.get(blk) * t)
            .sum()
    }

    fn dequant(self, bs: usize, b: &[u8], s: &[f32], zp: ZpCol<'_>, blk0: usize, out: &mut [f32]) {
        let blob = bs / 2;
        for (i, o) in out.chunks_mut(bs).enumerate() {
            let blk = blk0 + i;
            let (sc, z) = (s[blk], zp.get(blk));
            for (o, &byte) in o.chunks_exact_mut(2).zip(&b[blk * blob..(blk + 1) * blob]) {
                o[0] = ((byte & 0xF) as f32 - z) * sc;
                o[1] = ((byte >> 4) as f32 - z) * sc;
            }
        }
    }

    fn gemm4<const R: usize>(
        self,
        a: [&[f32]; R],
        w: &[f32],
        ldw: usize,
        klen: usize,
    ) -> [[f32; 4]; R] {
        let mut y = [[0.0f32; 4]; R];
        for r in 0..R {
            for (j, yj) in y[r].iter_mut().enumerate() {
                *yj = dot8(&a[r][..klen], &w[j * ldw..j * ldw + klen]);
            }
        }
        y
    }
}

/// Calls `$f::<.., BS>` with `BS` the block size `$bs` as a constant.
macro_rules! with_block_size {
    ($bs:expr, $f:ident :: < $($g:tt),* > ( $($arg:expr),* )) => {
        match $bs {
            16 => $f::<$($g,)* 16>($($arg),*),
            32 => $f::<$($g,)* 32>($($arg),*),
            64 => $f::<$($g,)* 64>($($arg),*),
            128 => $f::<$($g,)* 128>($($arg),*),
            256 => $f::<$($g,)* 256>($($arg),*),
            _ => unreachable!("block size {} was checked", $bs),
        }
    };
}

/// Asserts the lengths the SIMD kernels read.
#[allow(clippy::too_many_arguments)]
fn check_int8_args<const R: usize, const C: usize>(
    bs: usize,
    nb: usize,
    qa: &[&[i8]; R],
    lanes: &[&[f32]; R],
    b: &[&[u8]; C],
    s: &[&[f32]; C],
) {
    let nchunks = (nb * bs).div_ceil(CHUNK);
    assert!(matches!(bs, 16 | 32 | 64 | 128 | 256));
    assert!(qa.iter().all(|q| q.len() >= nchunks * CHUNK));
    assert!(lanes.iter().all(|l| l.len() >= nchunks * 8));
    assert!(b.iter().all(|b| b.len() >= nb * bs / 2));
    assert!(s.iter().all(|s| s.len() >= nb));
}

fn check_f32_args<const C: usize>(
    bs: usize,
    nb: usize,
    a: &[f32],
    b: &[&[u8]; C],
    s: &[&[f32]; C],
) {
    assert!(matches!(bs, 16 | 32 | 64 | 128 | 256));
    assert!(a.len() >= nb * bs);
    assert!(b.iter().all(|b| b.len() >= nb * bs / 2));
    assert!(s.iter().all(|s| s.len() >= nb));
}

fn check_dequant_args(bs: usize, b: &[u8], s: &[f32], zp: ZpCol<'_>, blk0: usize, out: &[f32]) {
    assert!(matches!(bs, 16 | 32 | 64 | 128 | 256) && out.len().is_multiple_of(bs));
    let end = blk0 + out.len() / bs;
    assert!(b.len() >= end * bs / 2 && s.len() >= end);
    match zp {
        ZpCol::Default => {}
        ZpCol::Packed(z) => assert!(z.len() >= end.div_ceil(2)),
        ZpCol::Float(z) => assert!(z.len() >= end),
    }
}

fn check_gemm_args<const R: usize>(a: &[&[f32]; R], w: &[f32], ldw: usize, klen: usize) {
    assert!(a.iter().all(|a| a.len() >= klen));
    assert!(klen <= ldw && w.len() >= 3 * ldw + klen);
}

fn check_szp_args(s: &[f32], zp: ZpCol<'_>, out: &[f32]) {
    let nb = out.len();
    assert!(s.len() >= nb);
    match zp {
        ZpCol::Default => {}
        ZpCol::Packed(z) => assert!(z.len() >= nb.div_ceil(2)),
        ZpCol::Float(z) => assert!(z.len() >= nb),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 + FMA. The int8 dot product of a chunk: `_mm256_maddubs_epi16(q, qa)` (q the
    //! unsigned nibbles, at most 2·15·127 per i16 lane), the low- and high-nibble products
    //! added in i16, `_mm256_madd_epi16` by ones to i32 lanes of 8 k each, which lie in one
    //! block: converted to f32 and multiplied by `scale_a · scale_b` lane by lane.
    // Register tiles (`acc[r][j]`) are indexed in lockstep with pointer arrays.
    #![allow(clippy::needless_range_loop)]
    use std::arch::x86_64::*;

    use super::{
        check_dequant_args, check_f32_args, check_gemm_args, check_int8_args, check_szp_args, Geom,
        Kern, M1Cols, QuantA, ZpCol, CHUNK,
    };

    /// Exists only where AVX2 and FMA were detected.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Avx2(());

    impl Avx2 {
        pub(super) fn new() -> Option<Avx2> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                .then_some(Avx2(()))
        }
    }

    impl Kern for Avx2 {
        fn int8_m1(self, g: &Geom, q: &QuantA, w: M1Cols<'_>, out: &mut [f32]) -> bool {
            // Whole chunks only (B's column is a whole number of 32-byte chunks).
            if !g.row_bytes.is_multiple_of(32) {
                return false;
            }
            let cols = out.len();
            let nchunks = g.row_bytes / 32;
            let (qa, lanes, sums) = (q.row(0), q.lanes(0), q.sums(0));
            assert!(matches!(g.bs, 16 | 32 | 64 | 128 | 256));
            assert!(qa.len() >= nchunks * CHUNK);
            assert!(lanes.len() >= nchunks * 8 && sums.len() == g.nb);
            assert!(w.b.len() >= cols * g.row_bytes && w.s.len() >= cols * g.nb);
            assert!(w.zp.is_none_or(|z| z.len() >= cols * g.zp_row));
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); the lengths the kernel reads
            // were checked just above.
            unsafe {
                let f = match g.bs {
                    16 => int8_m1::<16>,
                    32 => int8_m1::<32>,
                    64 => int8_m1::<64>,
                    128 => int8_m1::<128>,
                    _ => int8_m1::<256>,
                };
                f(g.nb, g.row_bytes, g.zp_row, qa, lanes, sums, w, out)
            }
            true
        }

        fn int8_dot<const R: usize, const C: usize>(
            self,
            bs: usize,
            nb: usize,
            qa: [&[i8]; R],
            lanes: [&[f32]; R],
            b: [&[u8]; C],
            s: [&[f32]; C],
        ) -> [[f32; C]; R] {
            check_int8_args(bs, nb, &qa, &lanes, &b, &s);
            // SAFETY: `self` exists only where AVX2 and FMA were detected; the slices hold
            // what the kernel reads (checked just above).
            unsafe { with_block_size!(bs, int8_dot::<R, C>(nb, qa, lanes, b, s)) }
        }

        fn f32_dot<const C: usize>(
            self,
            bs: usize,
            nb: usize,
            a: &[f32],
            b: [&[u8]; C],
            s: [&[f32]; C],
        ) -> [f32; C] {
            check_f32_args(bs, nb, a, &b, &s);
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); lengths checked just above.
            unsafe { with_block_size!(bs, f32_dot::<C>(nb, a, b, s)) }
        }

        fn szp(self, s: &[f32], zp: ZpCol<'_>, out: &mut [f32]) {
            check_szp_args(s, zp, out);
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); lengths checked just above.
            unsafe { szp(s, zp, out) }
        }

        fn dot(self, x: &[f32], y: &[f32]) -> f32 {
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); `dot` reads min(len) values.
            unsafe { dot(x, y) }
        }

        fn zp_dot(self, s: &[f32], zp: ZpCol<'_>, sums: &[f32]) -> f32 {
            check_szp_args(s, zp, sums);
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); lengths checked just above.
            unsafe { zp_dot(s, zp, sums) }
        }

        fn dequant(
            self,
            bs: usize,
            b: &[u8],
            s: &[f32],
            zp: ZpCol<'_>,
            blk0: usize,
            out: &mut [f32],
        ) {
            check_dequant_args(bs, b, s, zp, blk0, out);
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); lengths checked just above.
            unsafe { dequant(bs, b, s, zp, blk0, out) }
        }

        fn gemm4<const R: usize>(
            self,
            a: [&[f32]; R],
            w: &[f32],
            ldw: usize,
            klen: usize,
        ) -> [[f32; 4]; R] {
            check_gemm_args(&a, w, ldw, klen);
            // SAFETY: AVX2 and FMA were detected (see `Avx2`); lengths checked just above.
            unsafe { gemm4(a, w, ldw, klen) }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }

    /// The nibbles of 8 k (4 bytes at `p`) as i32 lanes, k order.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn nibbles8(p: *const u8) -> __m256i {
        let word = (p as *const i32).read_unaligned();
        let q = _mm256_srlv_epi32(
            _mm256_set1_epi32(word),
            _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28),
        );
        _mm256_and_si256(q, _mm256_set1_epi32(0xF))
    }

    /// Adds chunk `c` (64 k) of blocks of 16 or 32 k: `bp`/`sp` point at the chunk's 32 bytes
    /// of B and its first block's scale in each column.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn small_chunk<const R: usize, const C: usize, const BS: usize>(
        acc: &mut [[__m256; C]; R],
        qp: [*const i8; R],
        lp: [*const f32; R],
        c: usize,
        bp: [*const u8; C],
        sp: [*const f32; C],
    ) {
        let m4 = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        // The block scales, broadcast to both 128-bit halves by the load, then picked in-lane:
        // lane i takes block 8i / BS.
        let idx = if BS == 16 {
            _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)
        } else {
            _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)
        };
        for j in 0..C {
            let x = _mm256_loadu_si256(bp[j] as *const __m256i);
            let lo = _mm256_and_si256(x, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), m4);
            let sv = if BS == 16 {
                let v = _mm_loadu_ps(sp[j]);
                _mm256_set_m128(v, v)
            } else {
                _mm256_castpd_ps(_mm256_set1_pd((sp[j] as *const f64).read_unaligned()))
            };
            let sb = _mm256_permutevar_ps(sv, idx);
            for r in 0..R {
                let ae = _mm256_loadu_si256(qp[r].add(c * CHUNK) as *const __m256i);
                let ao = _mm256_loadu_si256(qp[r].add(c * CHUNK + 32) as *const __m256i);
                let p =
                    _mm256_add_epi16(_mm256_maddubs_epi16(lo, ae), _mm256_maddubs_epi16(hi, ao));
                let d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                let sc = _mm256_mul_ps(_mm256_loadu_ps(lp[r].add(c * 8)), sb);
                acc[r][j] = _mm256_fmadd_ps(d, sc, acc[r][j]);
            }
        }
    }

    /// How far ahead of the chunk in hand `int8_m1` asks for B: past the end of the column,
    /// about the next one. With two threads the hardware prefetcher alone left the loop
    /// waiting on memory; this measured about 8% more decode tokens/s (14 alternating runs,
    /// 1 to 8 KiB alike within the noise). The hint is non-temporal: each weight is read once
    /// per token, and keeping it out of the outer caches kept A, the KV cache and the
    /// activations there (about 4% more, 10 of 12 alternating pairs faster than with T0).
    const PREFETCH: usize = 2048;

    /// See `Kern::int8_m1`; the caller checked the lengths: `row_bytes` a multiple of 32,
    /// `qa` `row_bytes * 2` values, `lanes` `row_bytes / 4`, `sums` `nb`, and `w` `out.len()`
    /// columns.
    ///
    /// Four accumulators per column: one would wait on the previous chunk's multiply-add
    /// (its latency, not the memory, bounds a single chain). The zero-point term is taken per
    /// column after its chunks, from scales and zero points still in L1.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn int8_m1<const BS: usize>(
        nb: usize,
        row_bytes: usize,
        zp_row: usize,
        qa: &[i8],
        lanes: &[f32],
        sums: &[f32],
        w: M1Cols<'_>,
        out: &mut [f32],
    ) {
        let nchunks = row_bytes / 32;
        let (qp, lp) = (qa.as_ptr(), lanes.as_ptr());
        for (j, o) in out.iter_mut().enumerate() {
            let bp = w.b.as_ptr().add(j * row_bytes);
            let s = &w.s[j * nb..(j + 1) * nb];
            let acc = if BS <= 32 {
                m1_small_blocks::<BS>(bp, s.as_ptr(), qp, lp, nchunks)
            } else {
                m1_large_blocks::<BS>(bp, s.as_ptr(), qp, lp, nb)
            };
            let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let zp = match w.zp {
                None => ZpCol::Default,
                Some(z) => ZpCol::Packed(&z[j * zp_row..(j + 1) * zp_row]),
            };
            *o = hsum(total) - zp_dot(s, zp, sums);
        }
    }

    /// Chunk `c`'s products `qa·q` of the column at `bp`, in i16 sums of 4 k (2 even, 2 odd).
    /// The caller checked that chunk `c` lies inside the column and `qa`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn m1_prod(bp: *const u8, qp: *const i8, c: usize) -> __m256i {
        let m4 = _mm256_set1_epi8(0x0F);
        let x = _mm256_loadu_si256(bp.add(c * 32) as *const __m256i);
        let lo = _mm256_and_si256(x, m4);
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), m4);
        let ae = _mm256_loadu_si256(qp.add(c * CHUNK) as *const __m256i);
        let ao = _mm256_loadu_si256(qp.add(c * CHUNK + 32) as *const __m256i);
        _mm256_add_epi16(_mm256_maddubs_epi16(lo, ae), _mm256_maddubs_epi16(hi, ao))
    }

    /// `int8_m1`'s four accumulators of one column (B at `bp`, its scales at `sp`) for
    /// blocks of 16 or 32 k (several per chunk): chunk by chunk, four chunks at a time. The
    /// caller checked the lengths (`nchunks` chunks of B, `qa` and `lanes`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn m1_small_blocks<const BS: usize>(
        bp: *const u8,
        sp: *const f32,
        qp: *const i8,
        lp: *const f32,
        nchunks: usize,
    ) -> [__m256; 4] {
        let ones = _mm256_set1_epi16(1);
        // Lane i (k 8i..8i + 8 of a chunk) lies in block 8i / BS of the chunk's blocks.
        let idx = if BS == 16 {
            _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3)
        } else {
            _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)
        };
        // i32 sums of 8 k per lane.
        let dot = |c: usize| -> __m256i { _mm256_madd_epi16(m1_prod(bp, qp, c), ones) };
        // `scale_a · scale_b` per lane of chunk c.
        let scale = |c: usize| -> __m256 {
            let s0 = sp.add(c * CHUNK / BS);
            let sv = if BS == 16 {
                let v = _mm_loadu_ps(s0);
                _mm256_set_m128(v, v)
            } else {
                _mm256_castpd_ps(_mm256_set1_pd((s0 as *const f64).read_unaligned()))
            };
            _mm256_mul_ps(
                _mm256_loadu_ps(lp.add(c * 8)),
                _mm256_permutevar_ps(sv, idx),
            )
        };
        let step = |c: usize, acc: __m256| -> __m256 {
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot(c)), scale(c), acc)
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut c = 0;
        while c + 4 <= nchunks {
            // The two cache lines these four chunks span, PREFETCH bytes on (a hint:
            // addresses past the weights are never read, only not fetched).
            let ahead = bp.wrapping_add(c * 32 + PREFETCH) as *const i8;
            _mm_prefetch::<_MM_HINT_NTA>(ahead);
            _mm_prefetch::<_MM_HINT_NTA>(ahead.wrapping_add(64));
            acc[0] = step(c, acc[0]);
            acc[1] = step(c + 1, acc[1]);
            acc[2] = step(c + 2, acc[2]);
            acc[3] = step(c + 3, acc[3]);
            c += 4;
        }
        while c < nchunks {
            acc[0] = step(c, acc[0]);
            c += 1;
        }
        acc
    }

    /// `int8_m1`'s accumulators of one column (B at `bp`, its scales at `sp`) for blocks of
    /// 64 k or more: block by block, two blocks at a time (the last two accumulators stay
    /// zero). The caller checked the lengths (`nb` blocks of B, `qa` and `lanes`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn m1_large_blocks<const BS: usize>(
        bp: *const u8,
        sp: *const f32,
        qp: *const i8,
        lp: *const f32,
        nb: usize,
    ) -> [__m256; 4] {
        let ones = _mm256_set1_epi16(1);
        // BS / 64 chunks per block, summed in i16 (at most 4 · 2 · 15 · 127 < 2^15).
        let cpb = BS / CHUNK;
        let block = |blk: usize, acc: __m256| -> __m256 {
            let ahead = bp.wrapping_add(blk * BS / 2 + PREFETCH) as *const i8;
            for line in (0..BS / 2).step_by(64) {
                _mm_prefetch::<_MM_HINT_NTA>(ahead.wrapping_add(line));
            }
            let mut p = _mm256_setzero_si256();
            for cc in 0..cpb {
                p = _mm256_add_epi16(p, m1_prod(bp, qp, blk * cpb + cc));
            }
            let sc = _mm256_mul_ps(
                _mm256_loadu_ps(lp.add(blk * cpb * 8)),
                _mm256_set1_ps(*sp.add(blk)),
            );
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones)), sc, acc)
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut blk = 0;
        while blk + 2 <= nb {
            acc[0] = block(blk, acc[0]);
            acc[1] = block(blk + 1, acc[1]);
            blk += 2;
        }
        if blk < nb {
            acc[0] = block(blk, acc[0]);
        }
        acc
    }

    /// See `Kern::int8_dot`; the caller checked the lengths (`check_int8_args`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn int8_dot<const R: usize, const C: usize, const BS: usize>(
        nb: usize,
        qa: [&[i8]; R],
        lanes: [&[f32]; R],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [[f32; C]; R] {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let mut qp = [std::ptr::null::<i8>(); R];
        let mut lp = [std::ptr::null::<f32>(); R];
        for r in 0..R {
            qp[r] = qa[r].as_ptr();
            lp[r] = lanes[r].as_ptr();
        }
        if BS <= 32 {
            // 64 / BS blocks per chunk; a column may end in a part of a chunk.
            let row_bytes = nb * BS / 2;
            let full = row_bytes / 32;
            let mut bp = [std::ptr::null::<u8>(); C];
            let mut sp = [std::ptr::null::<f32>(); C];
            for c in 0..full {
                for j in 0..C {
                    bp[j] = b[j].as_ptr().add(c * 32);
                    sp[j] = s[j].as_ptr().add(c * CHUNK / BS);
                }
                small_chunk::<R, C, BS>(&mut acc, qp, lp, c, bp, sp);
            }
            let tail = row_bytes % 32;
            if tail != 0 {
                let blk0 = full * CHUNK / BS;
                let mut tb = [[0u8; 32]; C];
                let mut ts = [[0.0f32; 4]; C];
                for j in 0..C {
                    tb[j][..tail].copy_from_slice(&b[j][full * 32..row_bytes]);
                    ts[j][..nb - blk0].copy_from_slice(&s[j][blk0..nb]);
                    bp[j] = tb[j].as_ptr();
                    sp[j] = ts[j].as_ptr();
                }
                small_chunk::<R, C, BS>(&mut acc, qp, lp, full, bp, sp);
            }
        } else {
            // BS / 64 chunks per block, summed in i16 (at most 4 · 2 · 15 · 127 < 2^15).
            let m4 = _mm256_set1_epi8(0x0F);
            let ones = _mm256_set1_epi16(1);
            let cpb = BS / CHUNK;
            for blk in 0..nb {
                let mut p = [[_mm256_setzero_si256(); C]; R];
                for cc in 0..cpb {
                    let c = blk * cpb + cc;
                    for j in 0..C {
                        let x = _mm256_loadu_si256(b[j].as_ptr().add(c * 32) as *const __m256i);
                        let lo = _mm256_and_si256(x, m4);
                        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), m4);
                        for r in 0..R {
                            let ae = _mm256_loadu_si256(qp[r].add(c * CHUNK) as *const __m256i);
                            let ao =
                                _mm256_loadu_si256(qp[r].add(c * CHUNK + 32) as *const __m256i);
                            let d = _mm256_add_epi16(
                                _mm256_maddubs_epi16(lo, ae),
                                _mm256_maddubs_epi16(hi, ao),
                            );
                            p[r][j] = _mm256_add_epi16(p[r][j], d);
                        }
                    }
                }
                for j in 0..C {
                    let sb = _mm256_set1_ps(*s[j].as_ptr().add(blk));
                    for r in 0..R {
                        let d = _mm256_cvtepi32_ps(_mm256_madd_epi16(p[r][j], ones));
                        let sc = _mm256_mul_ps(_mm256_loadu_ps(lp[r].add(blk * cpb * 8)), sb);
                        acc[r][j] = _mm256_fmadd_ps(d, sc, acc[r][j]);
                    }
                }
            }
        }
        let mut y = [[0.0f32; C]; R];
        for r in 0..R {
            for j in 0..C {
                y[r][j] = hsum(acc[r][j]);
            }
        }
        y
    }

    /// See `Kern::f32_dot`; the caller checked the lengths (`check_f32_args`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn f32_dot<const C: usize, const BS: usize>(
        nb: usize,
        a: &[f32],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [f32; C] {
        let mut acc = [_mm256_setzero_ps(); C];
        let ap = a.as_ptr();
        for blk in 0..nb {
            let mut ba = [_mm256_setzero_ps(); C];
            for g in 0..BS / 8 {
                let av = _mm256_loadu_ps(ap.add(blk * BS + g * 8));
                for j in 0..C {
                    let q = nibbles8(b[j].as_ptr().add(blk * BS / 2 + g * 4));
                    ba[j] = _mm256_fmadd_ps(av, _mm256_cvtepi32_ps(q), ba[j]);
                }
            }
            for j in 0..C {
                acc[j] = _mm256_fmadd_ps(ba[j], _mm256_set1_ps(*s[j].as_ptr().add(blk)), acc[j]);
            }
        }
        let mut y = [0.0f32; C];
        for j in 0..C {
            y[j] = hsum(acc[j]);
        }
        y
    }

    /// The zero points of blocks `i..i + 8` as f32; the caller checked that they exist.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn zp8(zp: ZpCol<'_>, i: usize) -> __m256 {
        match zp {
            ZpCol::Default => _mm256_set1_ps(8.0),
            ZpCol::Packed(z) => _mm256_cvtepi32_ps(nibbles8(z.as_ptr().add(i / 2))),
            ZpCol::Float(z) => _mm256_loadu_ps(z.as_ptr().add(i)),
        }
    }

    /// See `Kern::szp`; the caller checked the lengths (`check_szp_args`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn szp(s: &[f32], zp: ZpCol<'_>, out: &mut [f32]) {
        let nb = out.len();
        let n8 = nb / 8 * 8;
        let (sp, op) = (s.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        while i < n8 {
            let z = zp8(zp, i);
            _mm256_storeu_ps(op.add(i), _mm256_mul_ps(_mm256_loadu_ps(sp.add(i)), z));
            i += 8;
        }
        for blk in n8..nb {
            out[blk] = s[blk] * zp.get(blk);
        }
    }

    /// See `Kern::zp_dot`; the caller checked the lengths (`check_szp_args`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn zp_dot(s: &[f32], zp: ZpCol<'_>, sums: &[f32]) -> f32 {
        let nb = sums.len();
        let n8 = nb / 8 * 8;
        let (sp, tp) = (s.as_ptr(), sums.as_ptr());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n8 {
            let st = _mm256_mul_ps(_mm256_loadu_ps(sp.add(i)), _mm256_loadu_ps(tp.add(i)));
            let z = zp8(zp, i);
            acc = _mm256_fmadd_ps(st, z, acc);
            i += 8;
        }
        let mut t = hsum(acc);
        for blk in n8..nb {
            t += s[blk] * sums[blk] * zp.get(blk);
        }
        t
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot(x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        let n8 = n / 8 * 8;
        let (xp, yp) = (x.as_ptr(), y.as_ptr());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n8 {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(i)), _mm256_loadu_ps(yp.add(i)), acc);
            i += 8;
        }
        let mut t = hsum(acc);
        for i in n8..n {
            t += x[i] * y[i];
        }
        t
    }

    /// See `Kern::dequant`; the caller checked the lengths (`check_dequant_args`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dequant(bs: usize, b: &[u8], s: &[f32], zp: ZpCol<'_>, blk0: usize, out: &mut [f32]) {
        let op = out.as_mut_ptr();
        for i in 0..out.len() / bs {
            let blk = blk0 + i;
            let sv = _mm256_set1_ps(s[blk]);
            let zv = _mm256_set1_ps(zp.get(blk));
            for g in 0..bs / 8 {
                let q = _mm256_cvtepi32_ps(nibbles8(b.as_ptr().add(blk * bs / 2 + g * 4)));
                _mm256_storeu_ps(
                    op.add(i * bs + g * 8),
                    _mm256_mul_ps(_mm256_sub_ps(q, zv), sv),
                );
            }
        }
    }

    /// See `Kern::gemm4`; the caller checked the lengths (`check_gemm_args`).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gemm4<const R: usize>(
        a: [&[f32]; R],
        w: &[f32],
        ldw: usize,
        klen: usize,
    ) -> [[f32; 4]; R] {
        let k8 = klen / 8 * 8;
        let wp = w.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        let mut kk = 0;
        while kk < k8 {
            let mut av = [_mm256_setzero_ps(); R];
            for r in 0..R {
                av[r] = _mm256_loadu_ps(a[r].as_ptr().add(kk));
            }
            for j in 0..4 {
                let wv = _mm256_loadu_ps(wp.add(j * ldw + kk));
                for r in 0..R {
                    acc[r][j] = _mm256_fmadd_ps(av[r], wv, acc[r][j]);
                }
            }
            kk += 8;
        }
        let mut y = [[0.0f32; 4]; R];
        for r in 0..R {
            let s01 = _mm256_hadd_ps(acc[r][0], acc[r][1]);
            let s23 = _mm256_hadd_ps(acc[r][2], acc[r][3]);
            let s = _mm256_hadd_ps(s01, s23);
            let v = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            _mm_storeu_ps(y[r].as_mut_ptr(), v);
            for (j, yj) in y[r].iter_mut().enumerate() {
                for t in k8..klen {
                    *yj += a[r][t] * w[j * ldw + t];
                }
            }
        }
        y
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    //! NEON (baseline on aarch64). Same layout and lanes as the AVX2 kernels, in pairs of
    //! 4-lane registers. The int8 dot products use `sdot` where the CPU has the dot-product
    //! extension (`NeonDot`; through `asm!`, the intrinsic not being stable), else
    //! `vmull_s8`/`vmlal_s8` and pairwise adds.
    // Register tiles (`acc[r][j]`) are indexed in lockstep with pointer arrays.
    #![allow(clippy::needless_range_loop)]
    use std::arch::aarch64::*;

    use super::{
        check_dequant_args, check_f32_args, check_gemm_args, check_int8_args, check_szp_args, Kern,
        ZpCol, CHUNK,
    };

    /// NEON without the dot-product extension.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Neon(());

    impl Neon {
        pub(super) fn new() -> Neon {
            Neon(())
        }
    }

    /// Exists only where the dot-product extension was detected.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct NeonDot(());

    impl NeonDot {
        pub(super) fn new() -> Option<NeonDot> {
            std::arch::is_aarch64_feature_detected!("dotprod").then_some(NeonDot(()))
        }
    }

    macro_rules! common_kernels {
        () => {
            fn f32_dot<const C: usize>(
                self,
                bs: usize,
                nb: usize,
                a: &[f32],
                b: [&[u8]; C],
                s: [&[f32]; C],
            ) -> [f32; C] {
                check_f32_args(bs, nb, a, &b, &s);
                // SAFETY: NEON is baseline on aarch64; lengths checked just above.
                unsafe { with_block_size!(bs, f32_dot::<C>(nb, a, b, s)) }
            }

            fn szp(self, s: &[f32], zp: ZpCol<'_>, out: &mut [f32]) {
                check_szp_args(s, zp, out);
                // SAFETY: NEON is baseline on aarch64; lengths checked just above.
                unsafe { szp(s, zp, out) }
            }

            fn dot(self, x: &[f32], y: &[f32]) -> f32 {
                // SAFETY: NEON is baseline on aarch64; `dot` reads min(len) values.
                unsafe { dot(x, y) }
            }

            fn zp_dot(self, s: &[f32], zp: ZpCol<'_>, sums: &[f32]) -> f32 {
                check_szp_args(s, zp, sums);
                // SAFETY: NEON is baseline on aarch64; lengths checked just above.
                unsafe { zp_dot(s, zp, sums) }
            }

            fn dequant(
                self,
                bs: usize,
                b: &[u8],
                s: &[f32],
                zp: ZpCol<'_>,
                blk0: usize,
                out: &mut [f32],
            ) {
                check_dequant_args(bs, b, s, zp, blk0, out);
                // SAFETY: NEON is baseline on aarch64; lengths checked just above.
                unsafe { dequant(bs, b, s, zp, blk0, out) }
            }

            fn gemm4<const R: usize>(
                self,
                a: [&[f32]; R],
                w: &[f32],
                ldw: usize,
                klen: usize,
            ) -> [[f32; 4]; R] {
                check_gemm_args(&a, w, ldw, klen);
                // SAFETY: NEON is baseline on aarch64; lengths checked just above.
                unsafe { gemm4(a, w, ldw, klen) }
            }
        };
    }

    impl Kern for Neon {
        fn int8_dot<const R: usize, const C: usize>(
            self,
            bs: usize,
            nb: usize,
            qa: [&[i8]; R],
            lanes: [&[f32]; R],
            b: [&[u8]; C],
            s: [&[f32]; C],
        ) -> [[f32; C]; R] {
            check_int8_args(bs, nb, &qa, &lanes, &b, &s);
            // SAFETY: NEON is baseline on aarch64; lengths checked just above.
            unsafe { with_block_size!(bs, int8_dot_mull::<R, C>(nb, qa, lanes, b, s)) }
        }

        common_kernels!();
    }

    impl Kern for NeonDot {
        fn int8_dot<const R: usize, const C: usize>(
            self,
            bs: usize,
            nb: usize,
            qa: [&[i8]; R],
            lanes: [&[f32]; R],
            b: [&[u8]; C],
            s: [&[f32]; C],
        ) -> [[f32; C]; R] {
            check_int8_args(bs, nb, &qa, &lanes, &b, &s);
            // SAFETY: `self` exists only where the dot-product extension was detected;
            // lengths checked just above.
            unsafe { with_block_size!(bs, int8_dot_sdot::<R, C>(nb, qa, lanes, b, s)) }
        }

        common_kernels!();
    }

    /// `acc + Σ` of each 4 bytes of `lo · ae + hi · ao` (q unsigned nibbles, a signed).
    #[inline(always)]
    unsafe fn dot_pairs<const DOT: bool>(
        acc: int32x4_t,
        lo: uint8x16_t,
        ae: int8x16_t,
        hi: uint8x16_t,
        ao: int8x16_t,
    ) -> int32x4_t {
        let (l, h) = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
        if DOT {
            let mut acc = acc;
            // SAFETY (of the asm): `sdot` reads and writes registers only; it is emitted only
            // into `int8_dot_sdot`, compiled with the dot-product extension, which the caller
            // detected.
            std::arch::asm!(
                "sdot {acc:v}.4s, {l:v}.16b, {ae:v}.16b",
                "sdot {acc:v}.4s, {h:v}.16b, {ao:v}.16b",
                acc = inout(vreg) acc,
                l = in(vreg) l,
                ae = in(vreg) ae,
                h = in(vreg) h,
                ao = in(vreg) ao,
                options(pure, nomem, nostack, preserves_flags),
            );
            acc
        } else {
            // i16 products of bytes 0..8 and 8..16 (|.| <= 2 · 15 · 128), then pairwise sums.
            let p0 = vmlal_s8(
                vmull_s8(vget_low_s8(l), vget_low_s8(ae)),
                vget_low_s8(h),
                vget_low_s8(ao),
            );
            let p1 = vmlal_high_s8(vmull_high_s8(l, ae), h, ao);
            vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)))
        }
    }

    #[target_feature(enable = "dotprod")]
    unsafe fn int8_dot_sdot<const R: usize, const C: usize, const BS: usize>(
        nb: usize,
        qa: [&[i8]; R],
        lanes: [&[f32]; R],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [[f32; C]; R] {
        int8_dot::<R, C, BS, true>(nb, qa, lanes, b, s)
    }

    unsafe fn int8_dot_mull<const R: usize, const C: usize, const BS: usize>(
        nb: usize,
        qa: [&[i8]; R],
        lanes: [&[f32]; R],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [[f32; C]; R] {
        int8_dot::<R, C, BS, false>(nb, qa, lanes, b, s)
    }

    /// Adds chunk `c` (64 k, 8 lanes as two registers) with lane scales `sb` per column.
    #[inline(always)]
    unsafe fn chunk<const R: usize, const C: usize, const DOT: bool>(
        acc: &mut [[[float32x4_t; 2]; C]; R],
        qp: [*const i8; R],
        lp: [*const f32; R],
        c: usize,
        bp: [*const u8; C],
        sb: [[float32x4_t; 2]; C],
    ) {
        let m4 = vdupq_n_u8(0x0F);
        for j in 0..C {
            let x0 = vld1q_u8(bp[j]);
            let x1 = vld1q_u8(bp[j].add(16));
            let (lo0, hi0) = (vandq_u8(x0, m4), vshrq_n_u8::<4>(x0));
            let (lo1, hi1) = (vandq_u8(x1, m4), vshrq_n_u8::<4>(x1));
            for r in 0..R {
                let q = qp[r].add(c * CHUNK);
                let z = vdupq_n_s32(0);
                let d0 = dot_pairs::<DOT>(z, lo0, vld1q_s8(q), hi0, vld1q_s8(q.add(32)));
                let d1 = dot_pairs::<DOT>(z, lo1, vld1q_s8(q.add(16)), hi1, vld1q_s8(q.add(48)));
                let l = lp[r].add(c * 8);
                let s0 = vmulq_f32(vld1q_f32(l), sb[j][0]);
                let s1 = vmulq_f32(vld1q_f32(l.add(4)), sb[j][1]);
                acc[r][j][0] = vfmaq_f32(acc[r][j][0], vcvtq_f32_s32(d0), s0);
                acc[r][j][1] = vfmaq_f32(acc[r][j][1], vcvtq_f32_s32(d1), s1);
            }
        }
    }

    /// The lane scales of chunk `c` for blocks of 16 or 32 (from `sp`, the chunk's first
    /// block's scale).
    #[inline(always)]
    unsafe fn small_scales<const BS: usize>(sp: *const f32) -> [float32x4_t; 2] {
        if BS == 16 {
            let v = vld1q_f32(sp);
            [vzip1q_f32(v, v), vzip2q_f32(v, v)]
        } else {
            [vld1q_dup_f32(sp), vld1q_dup_f32(sp.add(1))]
        }
    }

    #[inline(always)]
    unsafe fn int8_dot<const R: usize, const C: usize, const BS: usize, const DOT: bool>(
        nb: usize,
        qa: [&[i8]; R],
        lanes: [&[f32]; R],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [[f32; C]; R] {
        let zero = vdupq_n_f32(0.0);
        let mut acc = [[[zero; 2]; C]; R];
        let mut qp = [std::ptr::null::<i8>(); R];
        let mut lp = [std::ptr::null::<f32>(); R];
        for r in 0..R {
            qp[r] = qa[r].as_ptr();
            lp[r] = lanes[r].as_ptr();
        }
        let mut bp = [std::ptr::null::<u8>(); C];
        let mut sb = [[zero; 2]; C];
        if BS <= 32 {
            let row_bytes = nb * BS / 2;
            let full = row_bytes / 32;
            for c in 0..full {
                for j in 0..C {
                    bp[j] = b[j].as_ptr().add(c * 32);
                    sb[j] = small_scales::<BS>(s[j].as_ptr().add(c * CHUNK / BS));
                }
                chunk::<R, C, DOT>(&mut acc, qp, lp, c, bp, sb);
            }
            let tail = row_bytes % 32;
            if tail != 0 {
                let blk0 = full * CHUNK / BS;
                let mut tb = [[0u8; 32]; C];
                let mut ts = [[0.0f32; 4]; C];
                for j in 0..C {
                    tb[j][..tail].copy_from_slice(&b[j][full * 32..row_bytes]);
                    ts[j][..nb - blk0].copy_from_slice(&s[j][blk0..nb]);
                    bp[j] = tb[j].as_ptr();
                    sb[j] = small_scales::<BS>(ts[j].as_ptr());
                }
                chunk::<R, C, DOT>(&mut acc, qp, lp, full, bp, sb);
            }
        } else {
            // One scale per block: integer sums over the block's chunks, then one product.
            let m4 = vdupq_n_u8(0x0F);
            let cpb = BS / CHUNK;
            for blk in 0..nb {
                let mut p = [[vdupq_n_s32(0); C]; R];
                for cc in 0..cpb {
                    let c = blk * cpb + cc;
                    for j in 0..C {
                        let x0 = vld1q_u8(b[j].as_ptr().add(c * 32));
                        let x1 = vld1q_u8(b[j].as_ptr().add(c * 32 + 16));
                        for r in 0..R {
                            let q = qp[r].add(c * CHUNK);
                            let d = dot_pairs::<DOT>(
                                p[r][j],
                                vandq_u8(x0, m4),
                                vld1q_s8(q),
                                vshrq_n_u8::<4>(x0),
                                vld1q_s8(q.add(32)),
                            );
                            p[r][j] = dot_pairs::<DOT>(
                                d,
                                vandq_u8(x1, m4),
                                vld1q_s8(q.add(16)),
                                vshrq_n_u8::<4>(x1),
                                vld1q_s8(q.add(48)),
                            );
                        }
                    }
                }
                for j in 0..C {
                    let sbv = *s[j].as_ptr().add(blk);
                    for r in 0..R {
                        let sc = vmulq_n_f32(vld1q_f32(lp[r].add(blk * cpb * 8)), sbv);
                        acc[r][j][0] = vfmaq_f32(acc[r][j][0], vcvtq_f32_s32(p[r][j]), sc);
                    }
                }
            }
        }
        let mut y = [[0.0f32; C]; R];
        for r in 0..R {
            for j in 0..C {
                y[r][j] = vaddvq_f32(vaddq_f32(acc[r][j][0], acc[r][j][1]));
            }
        }
        y
    }

    /// The nibbles of 8 k (4 bytes at `p`) as f32, k order.
    #[inline(always)]
    unsafe fn nibbles8(p: *const u8) -> [float32x4_t; 2] {
        let word = vdupq_n_u32((p as *const u32).read_unaligned());
        let m = vdupq_n_u32(0xF);
        let sh0 = vld1q_s32([0, -4, -8, -12].as_ptr());
        let sh1 = vld1q_s32([-16, -20, -24, -28].as_ptr());
        [
            vcvtq_f32_u32(vandq_u32(vshlq_u32(word, sh0), m)),
            vcvtq_f32_u32(vandq_u32(vshlq_u32(word, sh1), m)),
        ]
    }

    unsafe fn f32_dot<const C: usize, const BS: usize>(
        nb: usize,
        a: &[f32],
        b: [&[u8]; C],
        s: [&[f32]; C],
    ) -> [f32; C] {
        let zero = vdupq_n_f32(0.0);
        let mut acc = [zero; C];
        let ap = a.as_ptr();
        for blk in 0..nb {
            let mut ba = [[zero; 2]; C];
            for g in 0..BS / 8 {
                let a0 = vld1q_f32(ap.add(blk * BS + g * 8));
                let a1 = vld1q_f32(ap.add(blk * BS + g * 8 + 4));
                for j in 0..C {
                    let q = nibbles8(b[j].as_ptr().add(blk * BS / 2 + g * 4));
                    ba[j][0] = vfmaq_f32(ba[j][0], a0, q[0]);
                    ba[j][1] = vfmaq_f32(ba[j][1], a1, q[1]);
                }
            }
            for j in 0..C {
                let sc = *s[j].as_ptr().add(blk);
                acc[j] = vfmaq_n_f32(acc[j], vaddq_f32(ba[j][0], ba[j][1]), sc);
            }
        }
        let mut y = [0.0f32; C];
        for j in 0..C {
            y[j] = vaddvq_f32(acc[j]);
        }
        y
    }

    /// The zero points of blocks `i..i + 8` as f32; the caller checked that they exist.
    #[inline]
    unsafe fn zp8(zp: ZpCol<'_>, i: usize) -> [float32x4_t; 2] {
        match zp {
            ZpCol::Default => [vdupq_n_f32(8.0); 2],
            ZpCol::Packed(z) => nibbles8(z.as_ptr().add(i / 2)),
            ZpCol::Float(z) => [
                vld1q_f32(z.as_ptr().add(i)),
                vld1q_f32(z.as_ptr().add(i + 4)),
            ],
        }
    }

    unsafe fn szp(s: &[f32], zp: ZpCol<'_>, out: &mut [f32]) {
        let nb = out.len();
        let n8 = nb / 8 * 8;
        let (sp, op) = (s.as_ptr(), out.as_mut_ptr());
        let mut i = 0;
        while i < n8 {
            let z = zp8(zp, i);
            vst1q_f32(op.add(i), vmulq_f32(vld1q_f32(sp.add(i)), z[0]));
            vst1q_f32(op.add(i + 4), vmulq_f32(vld1q_f32(sp.add(i + 4)), z[1]));
            i += 8;
        }
        for blk in n8..nb {
            out[blk] = s[blk] * zp.get(blk);
        }
    }

    unsafe fn zp_dot(s: &[f32], zp: ZpCol<'_>, sums: &[f32]) -> f32 {
        let nb = sums.len();
        let n8 = nb / 8 * 8;
        let (sp, tp) = (s.as_ptr(), sums.as_ptr());
        let mut acc = [vdupq_n_f32(0.0); 2];
        let mut i = 0;
        while i < n8 {
            let z = zp8(zp, i);
            for h in 0..2 {
                let st = vmulq_f32(vld1q_f32(sp.add(i + 4 * h)), vld1q_f32(tp.add(i + 4 * h)));
                acc[h] = vfmaq_f32(acc[h], st, z[h]);
            }
            i += 8;
        }
        let mut t = vaddvq_f32(vaddq_f32(acc[0], acc[1]));
        for blk in n8..nb {
            t += s[blk] * sums[blk] * zp.get(blk);
        }
        t
    }

    unsafe fn dot(x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        let n4 = n / 4 * 4;
        let mut acc = vdupq_n_f32(0.0);
        let mut i = 0;
        while i < n4 {
            acc = vfmaq_f32(
                acc,
                vld1q_f32(x.as_ptr().add(i)),
                vld1q_f32(y.as_ptr().add(i)),
            );
            i += 4;
        }
        let mut t = vaddvq_f32(acc);
        for i in n4..n {
            t += x[i] * y[i];
        }
        t
    }

    unsafe fn dequant(bs: usize, b: &[u8], s: &[f32], zp: ZpCol<'_>, blk0: usize, out: &mut [f32]) {
        let op = out.as_mut_ptr();
        for i in 0..out.len() / bs {
            let blk = blk0 + i;
            let (sv, zv) = (vdupq_n_f32(s[blk]), vdupq_n_f32(zp.get(blk)));
            for g in 0..bs / 8 {
                let q = nibbles8(b.as_ptr().add(blk * bs / 2 + g * 4));
                vst1q_f32(op.add(i * bs + g * 8), vmulq_f32(vsubq_f32(q[0], zv), sv));
                vst1q_f32(
                    op.add(i * bs + g * 8 + 4),
                    vmulq_f32(vsubq_f32(q[1], zv), sv),
                );
            }
        }
    }

    unsafe fn gemm4<const R: usize>(
        a: [&[f32]; R],
        w: &[f32],
        ldw: usize,
        klen: usize,
    ) -> [[f32; 4]; R] {
        let k4 = klen / 4 * 4;
        let wp = w.as_ptr();
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        let mut kk = 0;
        while kk < k4 {
            let mut av = [vdupq_n_f32(0.0); R];
            for r in 0..R {
                av[r] = vld1q_f32(a[r].as_ptr().add(kk));
            }
            for j in 0..4 {
                let wv = vld1q_f32(wp.add(j * ldw + kk));
                for r in 0..R {
                    acc[r][j] = vfmaq_f32(acc[r][j], av[r], wv);
                }
            }
            kk += 4;
        }
        let mut y = [[0.0f32; 4]; R];
        for r in 0..R {
            for j in 0..4 {
                y[r][j] = vaddvq_f32(acc[r][j]);
                for t in k4..klen {
                    y[r][j] += a[r][t] * w[j * ldw + t];
                }
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A random problem: weights, their exact f64 dequantisation, A, bias.
    struct Case {
        m: usize,
        n: usize,
        k: usize,
        bs: usize,
        b: Vec<u8>,
        scales: Vec<f32>,
        zp_packed: Vec<u8>,
        zp_float: Vec<f32>,
        a: Vec<f32>,
        bias: Vec<f32>,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Zp {
        Default,
        Packed,
        Float,
    }

    impl Case {
        fn new(rng: &mut StdRng, m: usize, n: usize, k: usize, bs: usize) -> Case {
            let nb = k.div_ceil(bs);
            Case {
                m,
                n,
                k,
                bs,
                // Padding nibbles random too: the kernel must ignore them.
                b: (0..n * nb * bs / 2).map(|_| rng.random()).collect(),
                scales: (0..n * nb)
                    .map(|_| rng.random_range(0.001f32..0.05))
                    .collect(),
                zp_packed: (0..n * nb.div_ceil(2)).map(|_| rng.random()).collect(),
                zp_float: (0..n * nb)
                    .map(|_| rng.random_range(0.0f32..15.0))
                    .collect(),
                a: (0..m * k)
                    .map(|i| {
                        // Some blocks all zero, some with outliers, as activations have.
                        if (i / bs) % 7 == 3 {
                            0.0
                        } else if i % 97 == 5 {
                            rng.random_range(-40.0f32..40.0)
                        } else {
                            rng.random_range(-2.0f32..2.0)
                        }
                    })
                    .collect(),
                bias: (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
            }
        }

        fn weights(&self, zp: Zp) -> NBitsWeights<'_> {
            NBitsWeights {
                b: &self.b,
                scales: &self.scales,
                zero_points: match zp {
                    Zp::Default => ZeroPoints::Default,
                    Zp::Packed => ZeroPoints::Packed(&self.zp_packed),
                    Zp::Float => ZeroPoints::Float(&self.zp_float),
                },
                n: self.n,
                k: self.k,
                block_size: self.bs,
            }
        }

        /// W[n, k] in f64, straight from the op's definition.
        fn w(&self, zp: Zp, n: usize, k: usize) -> f64 {
            let nb = self.k.div_ceil(self.bs);
            let blk = k / self.bs;
            let byte = self.b[n * nb * self.bs / 2 + k / 2];
            let q = if k.is_multiple_of(2) {
                byte & 0xF
            } else {
                byte >> 4
            } as f64;
            let z = match zp {
                Zp::Default => 8.0,
                Zp::Packed => {
                    let zb = self.zp_packed[n * nb.div_ceil(2) + blk / 2];
                    (if blk.is_multiple_of(2) {
                        zb & 0xF
                    } else {
                        zb >> 4
                    }) as f64
                }
                Zp::Float => self.zp_float[n * nb + blk] as f64,
            };
            (q - z) * self.scales[n * nb + blk] as f64
        }

        /// The exact result and `Σ|a||w|` per output.
        fn exact(&self, zp: Zp, a: &[f32], bias: bool) -> (Vec<f64>, Vec<f64>) {
            let (mut y, mut mag) = (vec![0.0; self.m * self.n], vec![0.0; self.m * self.n]);
            for n in 0..self.n {
                let w: Vec<f64> = (0..self.k).map(|k| self.w(zp, n, k)).collect();
                for r in 0..self.m {
                    let row = &a[r * self.k..(r + 1) * self.k];
                    let dot: f64 = row.iter().zip(&w).map(|(&a, w)| a as f64 * w).sum();
                    y[r * self.n + n] = dot + if bias { self.bias[n] as f64 } else { 0.0 };
                    mag[r * self.n + n] =
                        row.iter().zip(&w).map(|(&a, w)| (a as f64 * w).abs()).sum();
                }
            }
            (y, mag)
        }

        /// A as the int8 path sees it, in f64: `round(a / scale_a) * scale_a` per block.
        fn a_int8(&self) -> Vec<f32> {
            let mut out = vec![0.0f32; self.a.len()];
            for (row, o) in self.a.chunks(self.k).zip(out.chunks_mut(self.k)) {
                for (x, o) in row.chunks(self.bs).zip(o.chunks_mut(self.bs)) {
                    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                    let inv = if amax != 0.0 { 127.0 / amax } else { 0.0 };
                    for (v, o) in x.iter().zip(o) {
                        // Exact in f64 below: the product of the int8 value and scale_a.
                        *o = ((v * inv).round_ties_even() as f64 * (amax / 127.0) as f64) as f32;
                    }
                }
            }
            out
        }

        fn run(&self, isa: Isa, zp: Zp, bias: bool, int8: bool) -> Vec<f32> {
            let mut out = vec![f32::NAN; self.m * self.n];
            let w = self.weights(zp);
            let bias = bias.then_some(&self.bias[..]);
            run(isa, &self.a, self.m, &w, bias, int8, &mut out).unwrap();
            out
        }
    }

    /// The f32 path within 1e-4 of `Σ|a||w|` (plus a tiny absolute slack).
    fn check_close(what: &str, got: &[f32], want: &[f64], mag: &[f64], rel: f64) {
        for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(mag).enumerate() {
            let err = (g as f64 - w).abs();
            assert!(
                err <= rel * m + 1e-6,
                "{what}: output {i}: got {g}, want {w} (err {err:e}, Σ|a||w| = {m:e})"
            );
        }
    }

    const SHAPES: &[(usize, usize, usize, usize)] = &[
        // (m, n, k, bs)
        (1, 13, 16, 16),
        (1, 9, 40, 16),
        (1, 7, 72, 32),
        (1, 21, 96, 32),
        (1, 5, 200, 64),
        (1, 11, 320, 128),
        (1, 6, 300, 256),
        (1, 3, 1000, 32),
        (3, 13, 88, 16),
        (3, 9, 160, 32),
        (3, 7, 130, 64),
        (3, 10, 384, 128),
        (3, 5, 513, 256),
        (17, 11, 48, 16),
        (17, 7, 600, 32),
        (17, 9, 260, 64),
        (17, 5, 256, 128),
        (17, 6, 700, 256),
        (4, 19, 1030, 32),
    ];

    #[test]
    fn f32_path_matches_exact_on_every_isa() {
        let mut rng = StdRng::seed_from_u64(7);
        for &(m, n, k, bs) in SHAPES {
            let case = Case::new(&mut rng, m, n, k, bs);
            for zp in [Zp::Default, Zp::Packed, Zp::Float] {
                for bias in [false, true] {
                    let (want, mag) = case.exact(zp, &case.a, bias);
                    for isa in Isa::available() {
                        let got = case.run(isa, zp, bias, false);
                        let what =
                            format!("f32 {isa:?} m={m} n={n} k={k} bs={bs} {zp:?} bias={bias}");
                        check_close(&what, &got, &want, &mag, 1e-4);
                    }
                }
            }
        }
    }

    /// The int8 path is exact arithmetic on A quantised per block (A's error is at most
    /// `scale_a / 2` per element, so the result's is at most `Σ_blk scale_a / 2 · Σ|w|`): against
    /// the exact product with the quantised A, within f32 rounding (1e-4 of `Σ|a||w|`); against the
    /// exact product with A, within that bound.
    #[test]
    fn int8_path_matches_quantised_a_on_every_isa() {
        let mut rng = StdRng::seed_from_u64(8);
        for &(m, n, k, bs) in SHAPES {
            let case = Case::new(&mut rng, m, n, k, bs);
            let aq = case.a_int8();
            for zp in [Zp::Default, Zp::Packed] {
                for bias in [false, true] {
                    let (want_q, mag_q) = case.exact(zp, &aq, bias);
                    let (want, _) = case.exact(zp, &case.a, bias);
                    // Σ_k (scale_a(k) / 2) · |w(k)| per output.
                    let mut bound = vec![0.0f64; m * n];
                    for r in 0..m {
                        for c in 0..n {
                            let mut t = 0.0;
                            for (b, x) in case.a[r * k..(r + 1) * k].chunks(bs).enumerate() {
                                let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
                                for kk in b * bs..(b * bs + x.len()) {
                                    t += amax / 254.0 * case.w(zp, c, kk).abs();
                                }
                            }
                            bound[r * n + c] = t * 1.0001 + 1e-5 * mag_q[r * n + c] + 1e-6;
                        }
                    }
                    for isa in Isa::available() {
                        let got = case.run(isa, zp, bias, true);
                        let what =
                            format!("int8 {isa:?} m={m} n={n} k={k} bs={bs} {zp:?} bias={bias}");
                        check_close(&what, &got, &want_q, &mag_q, 1e-4);
                        for i in 0..m * n {
                            let err = (got[i] as f64 - want[i]).abs();
                            assert!(
                                err <= bound[i],
                                "{what}: output {i}: error {err:e} above {:e}",
                                bound[i]
                            );
                        }
                    }
                }
            }
        }
    }

    /// Float zero points take the f32 path, as in ONNX Runtime.
    #[test]
    fn int8_with_float_zero_points_is_the_f32_path() {
        let mut rng = StdRng::seed_from_u64(9);
        let case = Case::new(&mut rng, 3, 9, 100, 32);
        for isa in Isa::available() {
            assert_eq!(
                case.run(isa, Zp::Float, true, true),
                case.run(isa, Zp::Float, true, false)
            );
        }
    }

    /// The quantised A is ONNX Runtime's: `round_half_even(a · (127 / amax))`, scale amax / 127.
    #[test]
    fn quantize_row_is_mlas() {
        // amax 127: inv = 1, ties to even.
        let a = [127.0f32, 0.5, 1.5, 2.5, -0.5, -1.5, 63.5, -3.25];
        let (mut q, mut s, mut sum) = (vec![0i8; 16], vec![0.0f32; 1], vec![0.0f32; 1]);
        quantize_row(&a, 16, &mut q, &mut s, &mut sum);
        assert_eq!(&q[..8], &[127, 0, 2, 2, 0, -2, 64, -3]);
        assert_eq!(&q[8..], &[0; 8]);
        assert_eq!((s[0], sum[0]), (1.0, 190.0));
        // amax 1: inv = 127.
        let (mut q, mut s) = (vec![0i8; 16], vec![0.0f32; 2]);
        let mut sum = vec![0.0f32; 2];
        let a = [
            0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        quantize_row(&a, 8, &mut q, &mut s, &mut sum);
        assert_eq!(&q[..4], &[64, -127, 32, 0]);
        assert_eq!((s[0], sum[0]), (1.0 / 127.0, (1.0f32 / 127.0) * -31.0));
        // An all-zero block: scale 0, values 0.
        assert_eq!((&q[8..], s[1], sum[1]), (&[0i8; 8][..], 0.0, 0.0));
    }

    /// The SIMD kernels agree with the scalar ones to f32 rounding on a larger problem.
    #[test]
    fn simd_matches_scalar_large() {
        let mut rng = StdRng::seed_from_u64(10);
        for &(m, bs) in &[(1, 32), (1, 128), (5, 32), (5, 64)] {
            let case = Case::new(&mut rng, m, 67, 3072 + bs / 2, bs);
            for int8 in [false, true] {
                let want = case.run(Isa::Scalar, Zp::Packed, true, int8);
                let (_, mag) = case.exact(Zp::Packed, &case.a, true);
                for isa in Isa::available() {
                    let got = case.run(isa, Zp::Packed, true, int8);
                    for i in 0..got.len() {
                        let err = (got[i] - want[i]).abs() as f64;
                        assert!(
                            err <= 1e-5 * mag[i] + 1e-6,
                            "{isa:?} int8={int8} m={m} bs={bs} {i}: {} vs {}",
                            got[i],
                            want[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn k_zero_gives_bias_and_empty_shapes_are_fine() {
        let w = NBitsWeights {
            b: &[],
            scales: &[],
            zero_points: ZeroPoints::Default,
            n: 3,
            k: 0,
            block_size: 32,
        };
        let mut out = vec![f32::NAN; 6];
        matmul_nbits_f32(&[], 2, &w, Some(&[1.0, 2.0, 3.0]), true, &mut out).unwrap();
        assert_eq!(out, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        matmul_nbits_f32(&[], 0, &w, None, false, &mut []).unwrap();
    }

    #[test]
    fn bad_lengths_are_errors() {
        let b = vec![0u8; 3 * 2 * 16];
        let s = vec![1.0f32; 6];
        let w = NBitsWeights {
            b: &b,
            scales: &s,
            zero_points: ZeroPoints::Default,
            n: 3,
            k: 40,
            block_size: 32,
        };
        let a = vec![0.0f32; 80];
        let mut out = vec![0.0f32; 6];
        assert!(matmul_nbits_f32(&a, 2, &w, None, false, &mut out).is_ok());
        let err = |r: Result<()>| r.unwrap_err().to_string();
        assert!(err(matmul_nbits_f32(&a[1..], 2, &w, None, false, &mut out)).contains("A holds 79"));
        assert!(err(matmul_nbits_f32(&a, 2, &w, None, false, &mut out[1..])).contains("output"));
        assert!(err(matmul_nbits_f32(
            &a,
            2,
            &w,
            Some(&[0.0; 2]),
            false,
            &mut out
        ))
        .contains("bias"));
        let w2 = NBitsWeights { b: &b[1..], ..w };
        assert!(err(matmul_nbits_f32(&a, 2, &w2, None, false, &mut out)).contains("B holds"));
        let w2 = NBitsWeights {
            scales: &s[1..],
            ..w
        };
        assert!(err(matmul_nbits_f32(&a, 2, &w2, None, false, &mut out)).contains("scales"));
        let w2 = NBitsWeights {
            zero_points: ZeroPoints::Packed(&[0; 5]),
            ..w
        };
        assert!(err(matmul_nbits_f32(&a, 2, &w2, None, false, &mut out)).contains("zero_points"));
        let w2 = NBitsWeights {
            zero_points: ZeroPoints::Float(&[0.0; 5]),
            ..w
        };
        assert!(err(matmul_nbits_f32(&a, 2, &w2, None, false, &mut out)).contains("zero_points"));
        let w2 = NBitsWeights {
            block_size: 24,
            ..w
        };
        assert!(err(matmul_nbits_f32(&a, 2, &w2, None, false, &mut out)).contains("block_size"));
        let w2 = NBitsWeights {
            block_size: 512,
            ..w
        };
        assert!(err(matmul_nbits_f32(&a, 2, &w2, None, false, &mut out)).contains("block_size"));
    }

    /// Runs inside a caller's pool of any size with the same results.
    #[test]
    fn same_result_in_any_pool() {
        let mut rng = StdRng::seed_from_u64(11);
        let case = Case::new(&mut rng, 5, 301, 256, 32);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for int8 in [false, true] {
            let isa = Isa::detect();
            let a = one.install(|| case.run(isa, Zp::Packed, true, int8));
            let b = three.install(|| case.run(isa, Zp::Packed, true, int8));
            assert_eq!(a, b);
        }
    }
}
