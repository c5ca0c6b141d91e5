use xnpu_core::{Error, Result, Shape, ValueType};

use super::util::{dtype, out, shape};
use crate::{InferInput, OpDef};

/// Transpose (ONNX opsets 1, 13, 21, 23, 24, 25): output dim `i` is input dim `perm[i]`;
/// `perm` defaults to reversing the dims and must be a permutation of `0..rank`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transpose {
    pub perm: Option<Vec<i64>>,
}

impl Transpose {
    /// The permutation for an input of rank `rank`.
    pub fn perm(&self, rank: usize) -> Result<Vec<usize>> {
        let Some(p) = &self.perm else {
            return Ok((0..rank).rev().collect());
        };
        let mut seen = vec![false; rank];
        let mut out = Vec::with_capacity(rank);
        for &v in p {
            let i = usize::try_from(v).ok().filter(|&i| i < rank);
            match i {
                Some(i) if !seen[i] => {
                    seen[i] = true;
                    out.push(i);
                }
                _ => {
                    return Err(Error::compute(format!(
                        "Transpose: perm {p:?} is not a permutation of 0..{rank}"
                    )))
                }
            }
        }
        if out.len() != rank {
            return Err(Error::compute(format!(
                "Transpose: perm {p:?} has {} entries for an input of rank {rank}",
                out.len()
            )));
        }
        Ok(out)
    }
}

impl OpDef for Transpose {
    const NAMES: &'static [&'static str] = &["Transpose"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match shape(inputs, 0) {
            Some(s) => {
                let p = self.perm(s.rank())?;
                Some(Shape(p.iter().map(|&i| s.0[i].clone()).collect()))
            }
            None => self
                .perm
                .as_ref()
                .map(|p| super::util::unknown_dims("Transpose", p.len()))
                .transpose()?,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}
