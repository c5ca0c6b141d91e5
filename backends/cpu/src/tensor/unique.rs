//! Unique: items (elements, or slices along an axis) are sorted stably, equal neighbours
//! grouped, and each group represented by its first occurrence.

use std::cmp::Ordering;

use xnpu_core::num::total_order;
use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::tensor::Unique;

use xnpu_linalg::buf;

use super::elems::{Elems, Src};
use crate::args::tensor;

/// What grouping found: the first occurrence of each unique item (in output order), each
/// item's position in that order, and each group's size.
struct Groups {
    first: Vec<usize>,
    inverse: Vec<usize>,
    counts: Vec<usize>,
}

/// Groups of equal items. `n_items` is an axis length, which an empty tensor may set to
/// anything: the per-item tables are allocated fallibly.
fn group(n_items: usize, cmp: impl Fn(usize, usize) -> Ordering, sorted: bool) -> Result<Groups> {
    const WHAT: &str = "Unique's items";
    let mut order = buf::collected(0..n_items, WHAT)?;
    order.sort_by(|&a, &b| cmp(a, b)); // stable: equal items keep input order
    let mut group_of = buf::zeroed::<usize>(n_items, WHAT)?;
    let mut first = Vec::new();
    let mut counts = Vec::new();
    for (p, &item) in order.iter().enumerate() {
        if p == 0 || cmp(order[p - 1], item) != Ordering::Equal {
            first.push(item);
            counts.push(0);
        }
        group_of[item] = first.len() - 1;
        *counts.last_mut().expect("a group was pushed") += 1;
    }
    // Output position of each sorted group.
    let mut rank: Vec<usize> = (0..first.len()).collect();
    if !sorted {
        rank.sort_by_key(|&g| first[g]);
    }
    let mut pos = vec![0usize; first.len()];
    for (p, &g) in rank.iter().enumerate() {
        pos[g] = p;
    }
    Ok(Groups {
        first: rank.iter().map(|&g| first[g]).collect(),
        inverse: buf::collected(group_of.iter().map(|&g| pos[g]), WHAT)?,
        counts: rank.iter().map(|&g| counts[g]).collect(),
    })
}

/// Compares two items, given as the flat positions of their elements, lexicographically.
fn lex<T>(data: &[T], a: &[usize], b: &[usize], cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    for (&i, &j) in a.iter().zip(b) {
        let c = cmp(&data[i], &data[j]);
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

pub(crate) fn unique(
    op: &Unique,
    inputs: &[Option<&Value>],
    n_outputs: usize,
) -> Result<Vec<Value>> {
    let x0 = tensor(inputs, 0)?;
    let (x, a) = match op.axis {
        Some(a) => (x0.clone(), normalize_axis(a, x0.rank())?),
        None => (x0.reshape(vec![x0.len()])?, 0),
    };
    let d = x.shape()[a];
    // An empty tensor's items are all empty (and its dims may multiply past usize).
    let (outer, inner) = if x.is_empty() {
        (0, 0)
    } else {
        (
            x.shape()[..a].iter().product(),
            x.shape()[a + 1..].iter().product(),
        )
    };
    // The flat positions of each item's elements, in row-major order of the item.
    let items: Vec<Vec<usize>> = buf::collected(
        (0..d).map(|j| {
            (0..outer)
                .flat_map(|o| (0..inner).map(move |i| (o * d + j) * inner + i))
                .collect()
        }),
        "Unique's items",
    )?;
    let g = if x.dtype() == DType::String {
        let s = x.strings()?;
        group(
            d,
            |p, q| lex(s, &items[p], &items[q], |a, b| a.cmp(b)),
            op.sorted,
        )?
    } else {
        xnpu_core::with_pod_type!(x.dtype(), T => {
            let v = x.as_slice::<T>()?;
            group(d, |p, q| lex(&v, &items[p], &items[q], total_order::<T>), op.sorted)?
        }, _ => return Err(Error::compute(format!("Unique: unsupported dtype {}", x.dtype()))))
    };
    // Y: the first occurrences, gathered along the axis.
    let mut dims = x.shape().to_vec();
    dims[a] = g.first.len();
    let s = Src::new(&x)?;
    let mut y = Elems::new(x.dtype(), outer * g.first.len() * inner)?;
    for o in 0..outer {
        for &j in &g.first {
            y.extend(&s, (o * d + j) * inner, inner)?;
        }
    }
    let ints = |v: &[usize]| -> Result<Value> {
        Ok(Value::Tensor(Tensor::from_vec(
            vec![v.len()],
            buf::collected(v.iter().map(|&i| i as i64), "Unique's indices")?,
        )?))
    };
    let mut out = vec![Value::Tensor(y.finish(dims)?)];
    if n_outputs > 1 {
        out.push(ints(&g.first)?);
        out.push(ints(&g.inverse)?);
        out.push(ints(&g.counts)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsorted_groups_follow_first_occurrence() {
        let v = [2, 1, 1, 3, 4, 3];
        let g = group(6, |a, b| v[a].cmp(&v[b]), false).unwrap();
        assert_eq!(g.first, vec![0, 1, 3, 4]);
        assert_eq!(g.inverse, vec![0, 1, 1, 2, 3, 2]);
        assert_eq!(g.counts, vec![1, 2, 2, 1]);
        let g = group(6, |a, b| v[a].cmp(&v[b]), true).unwrap();
        assert_eq!(g.first, vec![1, 0, 3, 4]);
        assert_eq!(g.inverse, vec![1, 0, 0, 2, 3, 2]);
    }
}
