//! Numpy-style broadcasting, written once for every crate: the broadcast shape of several
//! known shapes or of two symbolic ones, and [`BroadcastIndex`], which says for an input
//! which of its elements feeds each element of the broadcast output.

use crate::shape::checked_numel;
use crate::{Dim, Error, Result, Shape};

/// The shape every one of `shapes` broadcasts to (multidirectional: dims are aligned on the
/// right, a dim of 1 stretches; no shapes give the scalar shape).
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    shapes
        .iter()
        .try_fold(Vec::new(), |acc, s| broadcast_two(&acc, s))
}

fn broadcast_two(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |k| s[k]);
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            (x, y) => Err(Error::compute(format!(
                "shapes {a:?} and {b:?} do not broadcast (dim {i}: {x} vs {y})"
            ))),
        })
        .collect()
}

/// Numpy-style broadcast of two shapes with symbols; a symbol against 1 keeps the symbol,
/// two different symbols give a fresh unknown named after both.
pub fn broadcast_dims(a: &Shape, b: &Shape) -> Result<Shape> {
    let rank = a.rank().max(b.rank());
    let one = Dim::Known(1);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = (i + a.rank()).checked_sub(rank).map_or(&one, |k| &a.0[k]);
        let db = (i + b.rank()).checked_sub(rank).map_or(&one, |k| &b.0[k]);
        out.push(match (da, db) {
            (x, y) if x == y => x.clone(),
            (Dim::Known(1), y) => y.clone(),
            (x, Dim::Known(1)) => x.clone(),
            (Dim::Known(x), Dim::Known(y)) => {
                return Err(Error::model(format!(
                    "shapes {a} and {b} do not broadcast (dim {i}: {x} vs {y})"
                )))
            }
            (Dim::Sym(_), k @ Dim::Known(_)) | (k @ Dim::Known(_), Dim::Sym(_)) => k.clone(),
            (Dim::Sym(x), Dim::Sym(y)) => Dim::Sym(format!("max({x},{y})")),
        });
    }
    Ok(Shape(out))
}

/// For an input of shape `src` broadcast (unidirectionally) to shape `out`: the flat index
/// into the input of each output element, in row-major output order, as an iterator; and
/// the input's stride along each output dim ([`BroadcastIndex::strides`]) for random access.
#[derive(Clone, Debug)]
pub struct BroadcastIndex {
    out: Vec<usize>,
    /// The input's stride for each output dim (0 where the input is broadcast).
    strides: Vec<usize>,
    counter: Vec<usize>,
    offset: usize,
    remaining: usize,
}

impl BroadcastIndex {
    /// An error when `src` does not broadcast to `out` (`src` has a higher rank, or a dim that
    /// is neither 1 nor the output's), or when a size overflows `usize`.
    pub fn new(src: &[usize], out: &[usize]) -> Result<BroadcastIndex> {
        let bad = || {
            Error::compute(format!(
                "shape {src:?} cannot be broadcast to shape {out:?}"
            ))
        };
        let lead = out.len().checked_sub(src.len()).ok_or_else(bad)?;
        let mut strides = vec![0; out.len()];
        let mut stride = 1usize;
        for (i, &d) in src.iter().enumerate().rev() {
            if d == out[lead + i] {
                strides[lead + i] = if d == 1 { 0 } else { stride };
            } else if d != 1 {
                return Err(bad());
            }
            stride = stride.checked_mul(d).ok_or_else(bad)?;
        }
        Ok(BroadcastIndex {
            out: out.to_vec(),
            strides,
            counter: vec![0; out.len()],
            offset: 0,
            remaining: checked_numel(out)?,
        })
    }

    /// The input's stride along each output dim, 0 where the input is broadcast: output
    /// element `[i0, i1, …]` reads input element `i0 * strides[0] + i1 * strides[1] + …`.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
}

impl Iterator for BroadcastIndex {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.offset;
        // Odometer step; `offset` stays below the input's element count, so it cannot
        // overflow.
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

impl ExactSizeIterator for BroadcastIndex {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(
            broadcast_shapes(&[&[2, 1, 3], &[4, 1]]).unwrap(),
            vec![2, 4, 3]
        );
        assert_eq!(broadcast_shapes(&[&[3], &[2, 1], &[]]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shapes(&[]).unwrap(), Vec::<usize>::new());
        assert_eq!(broadcast_shapes(&[&[0], &[1]]).unwrap(), vec![0]);
        let e = broadcast_shapes(&[&[2], &[3]]).unwrap_err().to_string();
        assert_eq!(e, "shapes [2] and [3] do not broadcast (dim 0: 2 vs 3)");
        let a = Shape(vec![Dim::Sym("b".into()), Dim::Known(1)]);
        let b = Shape::known(&[5]);
        assert_eq!(
            broadcast_dims(&a, &b).unwrap(),
            Shape(vec![Dim::Sym("b".into()), Dim::Known(5)])
        );
        let c = Shape(vec![Dim::Sym("c".into()), Dim::Known(1)]);
        assert_eq!(
            broadcast_dims(&a, &c).unwrap(),
            Shape(vec![Dim::Sym("max(b,c)".into()), Dim::Known(1)])
        );
        assert!(broadcast_dims(&Shape::known(&[2]), &Shape::known(&[3])).is_err());
    }

    #[test]
    fn indices_repeat_broadcast_dims() {
        let idx: Vec<_> = BroadcastIndex::new(&[3, 1], &[2, 3, 2]).unwrap().collect();
        assert_eq!(idx, vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        let idx: Vec<_> = BroadcastIndex::new(&[], &[2]).unwrap().collect();
        assert_eq!(idx, vec![0, 0]);
        let idx: Vec<_> = BroadcastIndex::new(&[2, 1], &[2, 2]).unwrap().collect();
        assert_eq!(idx, vec![0, 0, 1, 1]);
        let idx: Vec<_> = BroadcastIndex::new(&[], &[]).unwrap().collect();
        assert_eq!(idx, vec![0]);
        assert_eq!(BroadcastIndex::new(&[0], &[0]).unwrap().count(), 0);
        assert_eq!(BroadcastIndex::new(&[1], &[4, 0]).unwrap().len(), 0);
    }

    #[test]
    fn strides_are_zero_on_broadcast_dims() {
        let b = BroadcastIndex::new(&[3, 1, 4], &[2, 3, 5, 4]).unwrap();
        assert_eq!(b.strides(), &[0, 4, 0, 1]);
        // Random access by strides agrees with the iterator.
        let st = b.strides().to_vec();
        let mut expected = Vec::new();
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..5 {
                    for l in 0..4 {
                        expected.push(i * st[0] + j * st[1] + k * st[2] + l * st[3]);
                    }
                }
            }
        }
        assert_eq!(b.collect::<Vec<_>>(), expected);
    }

    #[test]
    fn shapes_that_do_not_broadcast_are_an_error() {
        let e = BroadcastIndex::new(&[3], &[2]).unwrap_err().to_string();
        assert_eq!(e, "shape [3] cannot be broadcast to shape [2]");
        assert!(BroadcastIndex::new(&[2, 2], &[2]).is_err());
        assert!(BroadcastIndex::new(&[2], &[1]).is_err());
        assert!(BroadcastIndex::new(&[1], &[usize::MAX, 2]).is_err());
    }
}
