//! `ByteRanges`: which address ranges a set of graphs' constants occupy, so that a runtime
//! can tell a result that is its own buffer from one that shares memory with the model.

use super::{Graph, Op};

/// Disjoint, sorted address ranges `[start, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ByteRanges(Vec<(usize, usize)>);

impl ByteRanges {
    /// The bytes of every constant of `graphs`: their values' constants, the tensors of
    /// `Constant` nodes, and the same inside every nested body.
    pub fn of_graphs<'a>(graphs: impl IntoIterator<Item = &'a Graph>) -> ByteRanges {
        let mut spans = Vec::new();
        for g in graphs {
            collect(g, &mut spans);
        }
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        ByteRanges(merged)
    }

    /// Whether `data` overlaps any of the ranges (never for empty data).
    pub fn overlaps(&self, data: &[u8]) -> bool {
        if data.is_empty() {
            return false;
        }
        let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
        // The last range starting before `end` is the only one that may reach `start`.
        let i = self.0.partition_point(|&(s, _)| s < end);
        i > 0 && self.0[i - 1].1 > start
    }

    /// How many disjoint ranges there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn collect(g: &Graph, out: &mut Vec<(usize, usize)>) {
    let mut push = |b: &[u8]| {
        if !b.is_empty() {
            out.push((b.as_ptr() as usize, b.as_ptr() as usize + b.len()));
        }
    };
    for v in &g.values {
        if let Some(t) = &v.constant {
            push(t.raw_bytes());
        }
    }
    for n in &g.nodes {
        if let Op::Tensor(xnpu_ops::tensor::Op::Constant(c)) = &n.op {
            push(c.value.raw_bytes());
        }
    }
    for n in &g.nodes {
        for body in n.op.subgraphs() {
            collect(body, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{Tensor, ValueType};

    #[test]
    fn overlapping_ranges_merge_and_are_found() {
        let mut g = Graph::default();
        let a = Tensor::from_vec(vec![8], vec![0f32; 8]).unwrap();
        let inner = a.bytes().unwrap().slice(4..12);
        let b = Tensor::from_bytes(xnpu_core::DType::F32, vec![2], inner).unwrap();
        let other = Tensor::from_vec(vec![2], vec![1f32; 2]).unwrap();
        for t in [a.clone(), b, other.clone()] {
            let id = g.add_value("c", ValueType::Unknown);
            g.values[id].constant = Some(t);
        }
        let r = ByteRanges::of_graphs([&g]);
        assert_eq!(r.len(), 2);
        assert!(r.overlaps(&a.raw_bytes()[30..32]));
        assert!(r.overlaps(other.raw_bytes()));
        let fresh = Tensor::from_vec(vec![2], vec![2f32; 2]).unwrap();
        assert!(!r.overlaps(fresh.raw_bytes()));
        assert!(!r.overlaps(&[]));
    }
}
