use xnpu_core::shape::normalize_axis;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{dtype, out, shape};
use crate::{InferInput, OpDef};

/// Gather (ONNX opsets 1, 11, 13): picks slices of input 0 along `axis` at the integer
/// indices of input 1 (negative indices count from the dim). Output dims:
/// `data[..axis] ++ indices ++ data[axis+1..]`. An index out of `[-dim, dim)` is an error.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gather {
    pub axis: i64,
}

impl OpDef for Gather {
    const NAMES: &'static [&'static str] = &["Gather"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match (shape(inputs, 0), shape(inputs, 1)) {
            (Some(d), Some(i)) => {
                let a = normalize_axis(self.axis, d.rank())?;
                let mut v = d.0[..a].to_vec();
                v.extend(i.0.iter().cloned());
                v.extend(d.0[a + 1..].iter().cloned());
                Some(Shape(v))
            }
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}

/// GatherElements (ONNX opsets 11, 13): `out[i0, …, i(r-1)] = data[i0, …, indices[i0, …], …]`
/// with the index replacing position `axis`. Indices have the rank of data and the output
/// their dims; negative indices count from the dim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatherElements {
    pub axis: i64,
}

impl OpDef for GatherElements {
    const NAMES: &'static [&'static str] = &["GatherElements"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let (Some(d), Some(i)) = (shape(inputs, 0), shape(inputs, 1)) {
            if d.rank() != i.rank() {
                return Err(Error::model(format!(
                    "GatherElements: data {d} and indices {i} must have the same rank"
                )));
            }
            normalize_axis(self.axis, d.rank())?;
        }
        Ok(vec![out(dtype(inputs, 0), shape(inputs, 1).cloned())])
    }
}

/// GatherND (ONNX opsets 11, 12, 13): the last dim `k` of the i64 indices addresses the
/// `k` dims of data that follow the first `batch_dims` (shared by data and indices); each
/// index tuple picks a slice. Output dims:
/// `indices[..-1] ++ data[batch_dims + k..]`. Negative indices count from the dim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatherNd {
    pub batch_dims: usize,
}

impl OpDef for GatherNd {
    const NAMES: &'static [&'static str] = &["GatherND"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match (shape(inputs, 0), shape(inputs, 1)) {
            (Some(d), Some(i)) if i.rank() > 0 => match &i.0[i.rank() - 1] {
                Dim::Known(k) => {
                    let b = self.batch_dims;
                    if b.saturating_add(*k) > d.rank() || b >= i.rank() {
                        return Err(Error::model(format!(
                            "GatherND: indices {i} with batch_dims {b} do not fit data {d}"
                        )));
                    }
                    let mut v = i.0[..i.rank() - 1].to_vec();
                    v.extend(d.0[b + k..].iter().cloned());
                    Some(Shape(v))
                }
                Dim::Sym(_) => None,
            },
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}
