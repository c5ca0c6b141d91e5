//! fp32 element-wise arithmetic with numpy broadcasting, and transposition.
//!
//! Broadcasting runs over rows: dims that every operand walks the same way (contiguously, or
//! not at all) are merged first, so `[N, C, H, W] + [1, C, 1, 1]` is `N*C` rows of `H*W`, each
//! added to one scalar, and `[B, S, D] + [D]` is one long loop over rows of `D`. The inner loop
//! is a plain slice loop the compiler vectorises.

use rayon::prelude::*;

use crate::math::vectorised_fn;
use xnpu_core::broadcast::broadcast_shapes;
use xnpu_core::{Error, Result};

/// A binary arithmetic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

impl BinOp {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            // NaN wins, as numpy's maximum/minimum and the reference Max/Min have it.
            BinOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
        }
    }
}

fn numel(shape: &[usize]) -> Result<usize> {
    xnpu_core::shape::checked_numel(shape)
}

/// Each operand's stride along each dim of `out` (0 where it is broadcast), operands
/// right-aligned numpy-style.
fn strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let lead = out.len() - shape.len();
    let mut st = vec![0; out.len()];
    let mut s = 1;
    for (i, &d) in shape.iter().enumerate().rev() {
        st[lead + i] = if d == 1 { 0 } else { s };
        s *= d;
    }
    st
}

/// Merges adjacent dims that every operand walks alike: `(dims, strides per operand)`.
fn merge(out: &[usize], st: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut dims: Vec<usize> = Vec::new();
    let mut merged: Vec<Vec<usize>> = vec![Vec::new(); st.len()];
    for (i, &d) in out.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let can = !dims.is_empty()
            && st.iter().zip(&merged).all(|(s, m)| {
                let last = *m.last().unwrap_or(&0);
                // The previous dim's stride equals this dim's stride times its size.
                last == s[i] * d
            });
        if can {
            let n = dims.len() - 1;
            dims[n] *= d;
            for (s, m) in st.iter().zip(merged.iter_mut()) {
                let k = m.len() - 1;
                m[k] = s[i];
            }
        } else {
            dims.push(d);
            for (s, m) in st.iter().zip(merged.iter_mut()) {
                m.push(s[i]);
            }
        }
    }
    if dims.is_empty() {
        dims.push(1);
        for m in &mut merged {
            m.push(0);
        }
    }
    (dims, merged)
}

/// `a op b` with numpy broadcasting: the values and the output shape.
pub fn binary(
    op: BinOp,
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
) -> Result<(Vec<f32>, Vec<usize>)> {
    // One copy of the loops per op, so that each inner loop is a plain vectorisable one.
    match op {
        BinOp::Add => binary_with(|x, z| BinOp::Add.apply(x, z), a, ash, b, bsh),
        BinOp::Sub => binary_with(|x, z| BinOp::Sub.apply(x, z), a, ash, b, bsh),
        BinOp::Mul => binary_with(|x, z| BinOp::Mul.apply(x, z), a, ash, b, bsh),
        BinOp::Div => binary_with(|x, z| BinOp::Div.apply(x, z), a, ash, b, bsh),
        BinOp::Max => binary_with(|x, z| BinOp::Max.apply(x, z), a, ash, b, bsh),
        BinOp::Min => binary_with(|x, z| BinOp::Min.apply(x, z), a, ash, b, bsh),
    }
}

#[inline(always)]
fn binary_with(
    f: impl Fn(f32, f32) -> f32 + Copy + Sync,
    a: &[f32],
    ash: &[usize],
    b: &[f32],
    bsh: &[usize],
) -> Result<(Vec<f32>, Vec<usize>)> {
    let out = broadcast_shapes(&[ash, bsh])?;
    if a.len() != numel(ash)? || b.len() != numel(bsh)? {
        return Err(Error::compute(
            "element-wise operands do not match their shapes",
        ));
    }
    let n = numel(&out)?;
    let mut y = crate::buf::overwritten(n, "an element-wise output")?;
    if n == 0 {
        return Ok((y, out));
    }
    // Equal shapes: one zip, in blocks.
    if ash == bsh {
        for_rows(&mut y, BLOCK, |r, yr| {
            let at = r * BLOCK;
            let (ar, br) = (&a[at..at + yr.len()], &b[at..at + yr.len()]);
            zip_with(f, yr, ar, br)
        });
        return Ok((y, out));
    }
    let (dims, st) = merge(&out, &[strides(ash, &out), strides(bsh, &out)]);
    let inner = *dims.last().unwrap_or(&1);
    let (sa, sb) = (st[0][dims.len() - 1], st[1][dims.len() - 1]);
    let outer_dims = &dims[..dims.len() - 1];
    let row = |r: usize, yr: &mut [f32]| {
        // The row's offset in each operand.
        let (mut oa, mut ob, mut rem) = (0, 0, r);
        for d in (0..outer_dims.len()).rev() {
            let i = rem % outer_dims[d];
            rem /= outer_dims[d];
            oa += i * st[0][d];
            ob += i * st[1][d];
        }
        match (sa, sb) {
            (1, 1) => zip_with(f, yr, &a[oa..oa + inner], &b[ob..ob + inner]),
            (1, _) => with_right(f, yr, &a[oa..oa + inner], b[ob]),
            (_, 1) => with_left(f, yr, a[oa], &b[ob..ob + inner]),
            _ => yr.fill(f(a[oa], b[ob])),
        }
    };
    for_rows(&mut y, inner, row);
    Ok((y, out))
}

vectorised_fn! {
    fn zip_with(f: impl Fn(f32, f32) -> f32, y: &mut [f32], a: &[f32], b: &[f32]) {
        for ((v, &x), &z) in y.iter_mut().zip(a).zip(b) {
            *v = f(x, z);
        }
    }
}

vectorised_fn! {
    fn with_right(f: impl Fn(f32, f32) -> f32, y: &mut [f32], a: &[f32], z: f32) {
        for (v, &x) in y.iter_mut().zip(a) {
            *v = f(x, z);
        }
    }
}

vectorised_fn! {
    fn with_left(f: impl Fn(f32, f32) -> f32, y: &mut [f32], x: f32, b: &[f32]) {
        for (v, &z) in y.iter_mut().zip(b) {
            *v = f(x, z);
        }
    }
}

/// Elements per task of an element-wise loop over equal shapes.
const BLOCK: usize = 1 << 14;

/// `x` (shape `shape`) with its dims permuted by `perm`: output dim `i` is input dim
/// `perm[i]`. Returns the values; the shape is `perm` applied to `shape`.
pub fn transpose<T: Copy + Send + Sync + Default>(
    x: &[T],
    shape: &[usize],
    perm: &[usize],
) -> Result<Vec<T>> {
    let mut y = crate::buf::zeroed(x.len(), "a transposed tensor")?;
    transpose_into(x, shape, perm, &mut y)?;
    Ok(y)
}

/// [`transpose`] into `y` (as many values as `x`), every one of which it writes.
pub fn transpose_into<T: Copy + Send + Sync>(
    x: &[T],
    shape: &[usize],
    perm: &[usize],
    y: &mut [T],
) -> Result<()> {
    let rank = shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        return Err(Error::compute(format!(
            "{perm:?} is not a permutation of {rank} dims"
        )));
    }
    if x.len() != numel(shape)? || y.len() != x.len() {
        return Err(Error::compute("the tensor does not match its shape"));
    }
    if x.is_empty() {
        return Ok(());
    }
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    // The input's strides in output order, then dims merged where the input is read in order.
    let mut in_st = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_st[d] = in_st[d + 1] * shape[d + 1];
    }
    let st: Vec<usize> = perm.iter().map(|&p| in_st[p]).collect();
    let (dims, merged) = merge(&out, &[strides_full(&out), st]);
    let st = &merged[1];
    let inner = *dims.last().unwrap_or(&1);
    let s_in = st[dims.len() - 1];
    let outer = &dims[..dims.len() - 1];
    let row = |r: usize, yr: &mut [T]| {
        let (mut off, mut rem) = (0, r);
        for d in (0..outer.len()).rev() {
            off += (rem % outer[d]) * st[d];
            rem /= outer[d];
        }
        if s_in == 1 {
            yr.copy_from_slice(&x[off..off + inner]);
        } else {
            for (k, v) in yr.iter_mut().enumerate() {
                *v = x[off + k * s_in];
            }
        }
    };
    for_rows(y, inner, row);
    Ok(())
}

/// Calls `row(r, y_r)` for every row of `inner` values of `y`, over the thread pool when `y`
/// is large enough to pay for it.
fn for_rows<T: Send>(y: &mut [T], inner: usize, row: impl Fn(usize, &mut [T]) + Sync) {
    let inner = inner.max(1);
    if y.len() >= 1 << 16 {
        y.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(r, yr)| row(r, yr));
    } else {
        y.chunks_mut(inner)
            .enumerate()
            .for_each(|(r, yr)| row(r, yr));
    }
}

/// Row-major strides of `shape` (every dim walked, none broadcast).
fn strides_full(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        st[d] = st[d + 1] * shape[d + 1];
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(prop_oneof![Just(1usize), 1usize..5], 0..5)
    }

    /// The definition: index the output, map to each operand.
    fn naive(
        op: BinOp,
        a: &[f32],
        ash: &[usize],
        b: &[f32],
        bsh: &[usize],
        out: &[usize],
    ) -> Vec<f32> {
        let n: usize = out.iter().product();
        let pick = |v: &[f32], sh: &[usize], mut idx: Vec<usize>| {
            let lead = out.len() - sh.len();
            let mut off = 0;
            for (i, &d) in sh.iter().enumerate() {
                let c = if d == 1 { 0 } else { idx[lead + i] };
                off = off * d + c;
            }
            idx.clear();
            v[off]
        };
        (0..n)
            .map(|mut k| {
                let mut idx = vec![0; out.len()];
                for d in (0..out.len()).rev() {
                    idx[d] = k % out[d];
                    k /= out[d];
                }
                op.apply(pick(a, ash, idx.clone()), pick(b, bsh, idx))
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn broadcasting_matches_the_definition(ash in shape_strategy(), mask in prop::collection::vec(any::<bool>(), 5), op in 0usize..6) {
            // b: a's shape with some dims set to 1 and maybe fewer leading dims.
            let mut bsh: Vec<usize> = ash.iter().zip(&mask).map(|(&d, &m)| if m { 1 } else { d }).collect();
            if mask[4] && !bsh.is_empty() { bsh.remove(0); }
            let (ash, bsh) = if mask[3] { (bsh, ash) } else { (ash, bsh) };
            let op = [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div, BinOp::Max, BinOp::Min][op];
            let a: Vec<f32> = (0..ash.iter().product::<usize>()).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..bsh.iter().product::<usize>()).map(|i| i as f32 * 0.25 + 1.0).collect();
            let (y, out) = binary(op, &a, &ash, &b, &bsh).unwrap();
            prop_assert_eq!(&out, &broadcast_shapes(&[&ash, &bsh]).unwrap());
            prop_assert_eq!(y, naive(op, &a, &ash, &b, &bsh, &out));
        }

        #[test]
        fn transpose_matches_the_definition(shape in prop::collection::vec(1usize..5, 0..5), seed: u64) {
            let rank = shape.len();
            let mut perm: Vec<usize> = (0..rank).collect();
            // A seeded shuffle.
            let mut s = seed;
            for i in (1..rank).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                perm.swap(i, (s >> 33) as usize % (i + 1));
            }
            let x: Vec<u32> = (0..shape.iter().product::<usize>() as u32).collect();
            let y = transpose(&x, &shape, &perm).unwrap();
            let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let in_st = strides_full(&shape);
            for (k, &v) in y.iter().enumerate() {
                let mut rem = k;
                let mut off = 0;
                for d in (0..rank).rev() {
                    off += (rem % out[d]) * in_st[perm[d]];
                    rem /= out[d];
                }
                prop_assert_eq!(v, x[off]);
            }
        }
    }

    #[test]
    fn bad_permutations_are_refused() {
        assert!(transpose(&[0u32; 6], &[2, 3], &[0, 0]).is_err());
        assert!(transpose(&[0u32; 6], &[2, 3], &[0, 2]).is_err());
        assert!(transpose(&[0u32; 5], &[2, 3], &[1, 0]).is_err());
    }
}
