//! fp32 matrix products on checked, strided views.
//!
//! The product runs on the `gemm` crate's kernels (packed operands, register-blocked micro-
//! kernels for AVX-512, AVX2+FMA, NEON and scalar code, chosen at run time), threaded on the
//! caller's rayon pool. Measured against ONNX Runtime's MLAS at 1024³, 2 threads, before it
//! was chosen: see `benches/gemm.rs` and the README. This module is the one place that calls
//! it: views are checked here, so the unsafe call cannot read or write out of bounds.

use xnpu_core::{Error, Result};

/// A read-only matrix view of `rows x cols` elements: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`, checked to lie inside `data` when made.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// The number of elements a strided `rows x cols` view spans (0 when it is empty).
fn span(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)?
        .checked_add(1)
}

fn too_small(what: &str, len: usize, rows: usize, cols: usize) -> Error {
    Error::compute(format!(
        "a {rows}x{cols} {what} does not fit in {len} elements"
    ))
}

/// Checks a product of an `m x k` by a `kb x n` matrix into `c_len` elements at row stride
/// `ldc` (the packed GEMM's check too).
pub(crate) fn check_product(
    (m, k): (usize, usize),
    (kb, n): (usize, usize),
    c_len: usize,
    ldc: usize,
) -> Result<()> {
    if kb != k {
        return Err(Error::compute(format!(
            "matrix product of {m}x{k} by {kb}x{n}: inner dims differ"
        )));
    }
    if ldc < n || span(m, n, ldc, 1).is_none_or(|s| s > c_len) {
        return Err(too_small("product", c_len, m, n));
    }
    Ok(())
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>> {
        MatRef::strided(data, rows, cols, cols, 1)
    }

    /// A strided view; errors when it reaches past `data`.
    pub fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a>> {
        match span(rows, cols, row_stride, col_stride) {
            Some(n) if n <= data.len() => Ok(MatRef {
                data,
                rows,
                cols,
                row_stride,
                col_stride,
            }),
            _ => Err(too_small("matrix view", data.len(), rows, cols)),
        }
    }

    /// The transpose (no copy: the strides swap).
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` as a slice when the view's rows are contiguous (column stride 1).
    pub fn row(&self, i: usize) -> Option<&'a [f32]> {
        (self.col_stride == 1 && i < self.rows)
            .then(|| &self.data[i * self.row_stride..][..self.cols])
    }

    /// Element `(i, j)` (panics out of range; for tests and small loops).
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols);
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// Products below this many multiply-adds run on the calling thread: handing work to the
/// pool costs more than it saves.
const THREADING_THRESHOLD: usize = 48 * 48 * 48;

/// `C = scale * A B` (or `C += scale * A B` when `accumulate`) for `A` `m x k`, `B` `k x n`
/// and `C` the row-major `m x n` matrix at the start of `c` with row stride `ldc` (>= n).
/// Threads: the current rayon pool's, for products large enough to pay for them.
pub fn sgemm(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    scale: f32,
    accumulate: bool,
) -> Result<()> {
    sgemm_on(a, b, c, ldc, scale, accumulate, true)
}

/// [`sgemm`], on the calling thread only unless `threaded` (for callers that already split
/// the work across threads).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_on(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    scale: f32,
    accumulate: bool,
    threaded: bool,
) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    check_product((m, k), (b.rows, n), c.len(), ldc)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(ldc).take(m) {
                row[..n].fill(0.0);
            }
        }
        return Ok(());
    }
    let work = m.saturating_mul(n).saturating_mul(k);
    let threads = rayon::current_num_threads();
    let parallelism = if threaded && threads > 1 && work >= THREADING_THRESHOLD {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // Strides fit in isize: each view's span fits in its slice, whose length does.
    let s = |v: usize| v as isize;
    // SAFETY: every element the call reads, (i, j) of A and B for i, j below their dims, lies
    // inside its slice (`MatRef::strided` checked the span), and every element it writes or
    // reads of C, (i, j) for i < m, j < n at `i * ldc + j`, lies inside `c` (checked above);
    // `c` is borrowed mutably, so it aliases neither operand. The crate reads `dst` only when
    // `read_dst` is true.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            s(ldc),
            accumulate,
            a.data.as_ptr(),
            s(a.col_stride),
            s(a.row_stride),
            b.data.as_ptr(),
            s(b.col_stride),
            s(b.row_stride),
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f64> {
        let mut c = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                c[i * b.cols() + j] = (0..a.cols())
                    .map(|p| a.at(i, p) as f64 * b.at(p, j) as f64)
                    .sum();
            }
        }
        c
    }

    use crate::test_values as values;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Odd and tiny shapes, both operand layouts, accumulate or not: within f32
        /// rounding of the f64 product.
        #[test]
        fn matches_the_naive_product(
            m in 0usize..40, k in 0usize..70, n in 0usize..40,
            ta: bool, tb: bool, acc: bool, seed: u64, scale in prop_oneof![Just(1.0f32), -2.0f32..2.0],
        ) {
            let av = values(m * k, seed);
            let bv = values(k * n, seed ^ 1);
            let a = if ta { MatRef::row_major(&av, k, m).unwrap().t() } else { MatRef::row_major(&av, m, k).unwrap() };
            let b = if tb { MatRef::row_major(&bv, n, k).unwrap().t() } else { MatRef::row_major(&bv, k, n).unwrap() };
            let ldc = n + 3;
            let init = values(m * ldc, seed ^ 2);
            let mut c = init.clone();
            sgemm(a, b, &mut c, ldc, scale, acc).unwrap();
            let want = naive(a, b);
            for i in 0..m {
                for j in 0..n {
                    let base = if acc { init[i * ldc + j] as f64 } else { 0.0 };
                    let w = scale as f64 * want[i * n + j] + base;
                    let got = c[i * ldc + j] as f64;
                    prop_assert!((got - w).abs() <= 1e-5 * (k as f64 + 1.0), "({i}, {j}): {got} vs {w}");
                }
                // Past n, the row's padding is untouched.
                for j in n..ldc {
                    prop_assert_eq!(c[i * ldc + j], init[i * ldc + j]);
                }
            }
        }
    }

    #[test]
    fn views_past_their_data_are_refused() {
        let v = [0.0f32; 6];
        assert!(MatRef::row_major(&v, 2, 4).is_err());
        assert!(MatRef::strided(&v, 2, 2, usize::MAX, 1).is_err());
        let a = MatRef::row_major(&v, 2, 3).unwrap();
        let b = MatRef::row_major(&v, 3, 2).unwrap();
        let mut c = [0.0f32; 3];
        assert!(sgemm(a, b, &mut c, 2, 1.0, false).is_err());
        assert!(sgemm(a, a, &mut [0.0; 9], 3, 1.0, false).is_err());
    }
}
