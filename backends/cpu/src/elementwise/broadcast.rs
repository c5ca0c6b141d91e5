//! Numpy-style multidirectional broadcasting, written once for the whole family: the output
//! shape of several inputs, and for each input the flat index of the element that feeds each
//! output element (in row-major output order).

use xnpu_core::shape::{broadcast_shapes, checked_numel};
use xnpu_core::{Error, Result};

/// The shape every one of `shapes` broadcasts to.
pub fn broadcast_all(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    shapes
        .iter()
        .try_fold(Vec::new(), |acc, s| broadcast_shapes(&acc, s))
}

/// For an input of shape `src` broadcast to `out`, the flat index into the input of each
/// output element, in row-major output order.
pub struct SourceIndex {
    out: Vec<usize>,
    /// The input's stride for each output dim (0 where the input is broadcast).
    strides: Vec<usize>,
    counter: Vec<usize>,
    offset: usize,
    remaining: usize,
}

impl SourceIndex {
    /// An error when `src` does not broadcast to `out` (unidirectionally).
    pub fn new(src: &[usize], out: &[usize]) -> Result<SourceIndex> {
        let bad = || {
            Error::compute(format!(
                "shape {src:?} cannot be broadcast to shape {out:?}"
            ))
        };
        if src.len() > out.len() {
            return Err(bad());
        }
        let lead = out.len() - src.len();
        let mut strides = vec![0; out.len()];
        let mut stride = 1usize;
        for (i, &d) in src.iter().enumerate().rev() {
            let o = out[lead + i];
            if d == o {
                strides[lead + i] = if d == 1 { 0 } else { stride };
            } else if d != 1 {
                return Err(bad());
            }
            stride = stride.checked_mul(d).ok_or_else(bad)?;
        }
        Ok(SourceIndex {
            out: out.to_vec(),
            strides,
            counter: vec![0; out.len()],
            offset: 0,
            remaining: checked_numel(out)?,
        })
    }
}

impl Iterator for SourceIndex {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.offset;
        for d in (0..self.out.len()).rev() {
            self.counter[d] += 1;
            self.offset += self.strides[d];
            if self.counter[d] < self.out[d] {
                break;
            }
            self.offset -= self.strides[d] * self.out[d];
            self.counter[d] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// `f` over the elements of `a` and `b` broadcast against each other: the output shape and
/// the values in row-major order. Stops at the first error of `f`.
pub fn zip2<A, B, O>(
    (a_shape, a): (&[usize], &[A]),
    (b_shape, b): (&[usize], &[B]),
    mut f: impl FnMut(&A, &B) -> Result<O>,
) -> Result<(Vec<usize>, Vec<O>)> {
    let out = broadcast_shapes(a_shape, b_shape)?;
    let ia = SourceIndex::new(a_shape, &out)?;
    let ib = SourceIndex::new(b_shape, &out)?;
    let values = ia
        .zip(ib)
        .map(|(i, j)| f(&a[i], &b[j]))
        .collect::<Result<Vec<O>>>()?;
    Ok((out, values))
}

/// Like [`zip2`] for three inputs.
pub fn zip3<A, B, C, O>(
    (a_shape, a): (&[usize], &[A]),
    (b_shape, b): (&[usize], &[B]),
    (c_shape, c): (&[usize], &[C]),
    mut f: impl FnMut(&A, &B, &C) -> O,
) -> Result<(Vec<usize>, Vec<O>)> {
    let out = broadcast_all(&[a_shape, b_shape, c_shape])?;
    let ia = SourceIndex::new(a_shape, &out)?;
    let ib = SourceIndex::new(b_shape, &out)?;
    let ic = SourceIndex::new(c_shape, &out)?;
    let values = ia
        .zip(ib)
        .zip(ic)
        .map(|((i, j), k)| f(&a[i], &b[j], &c[k]))
        .collect();
    Ok((out, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_repeat_broadcast_dims() {
        let idx: Vec<_> = SourceIndex::new(&[3, 1], &[2, 3, 2]).unwrap().collect();
        assert_eq!(idx, vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        let idx: Vec<_> = SourceIndex::new(&[], &[2]).unwrap().collect();
        assert_eq!(idx, vec![0, 0]);
        assert_eq!(SourceIndex::new(&[0], &[0]).unwrap().count(), 0);
    }

    #[test]
    fn incompatible_shapes_are_an_error() {
        assert!(SourceIndex::new(&[3], &[2]).is_err());
        assert!(SourceIndex::new(&[2, 2], &[2]).is_err());
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
