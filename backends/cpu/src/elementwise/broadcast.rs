//! The family's broadcasting zips: `f` over the elements of several inputs broadcast against
//! each other (the rule and the index map are `xnpu_core::broadcast`'s).

use xnpu_core::broadcast::{broadcast_shapes, BroadcastIndex};
use xnpu_core::shape::checked_numel;
use xnpu_core::Result;
use xnpu_linalg::buf;

/// `f` over the elements of `a` and `b` broadcast against each other: the output shape and
/// the values in row-major order. Stops at the first error of `f`. Broadcasting makes outputs
/// larger than any input (`[N, 1]` with `[1, M]`): they are allocated fallibly.
pub fn zip2<A, B, O>(
    (a_shape, a): (&[usize], &[A]),
    (b_shape, b): (&[usize], &[B]),
    mut f: impl FnMut(&A, &B) -> Result<O>,
) -> Result<(Vec<usize>, Vec<O>)> {
    let out = broadcast_shapes(&[a_shape, b_shape])?;
    let ia = BroadcastIndex::new(a_shape, &out)?;
    let ib = BroadcastIndex::new(b_shape, &out)?;
    let values = buf::try_collected(
        checked_numel(&out)?,
        ia.zip(ib).map(|(i, j)| f(&a[i], &b[j])),
        "a broadcast output",
    )?;
    Ok((out, values))
}

/// Like [`zip2`] for three inputs.
pub fn zip3<A, B, C, O>(
    (a_shape, a): (&[usize], &[A]),
    (b_shape, b): (&[usize], &[B]),
    (c_shape, c): (&[usize], &[C]),
    mut f: impl FnMut(&A, &B, &C) -> O,
) -> Result<(Vec<usize>, Vec<O>)> {
    let out = broadcast_shapes(&[a_shape, b_shape, c_shape])?;
    let ia = BroadcastIndex::new(a_shape, &out)?;
    let ib = BroadcastIndex::new(b_shape, &out)?;
    let ic = BroadcastIndex::new(c_shape, &out)?;
    let values = buf::collected(
        ia.zip(ib).zip(ic).map(|((i, j), k)| f(&a[i], &b[j], &c[k])),
        "a broadcast output",
    )?;
    Ok((out, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompatible_shapes_are_an_error() {
        let err = zip2((&[2], &[1, 2]), (&[3], &[1, 2, 3]), |a: &i32, b: &i32| {
            Ok(a + b)
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("do not broadcast"), "{err}");
    }

    #[test]
    fn zip_broadcasts_both_ways() {
        let (shape, v) = zip2(
            (&[2, 1], &[10, 20]),
            (&[3], &[1, 2, 3]),
            |a: &i32, b: &i32| Ok(a + b),
        )
        .unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v, vec![11, 12, 13, 21, 22, 23]);
    }
}
