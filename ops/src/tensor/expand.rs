use xnpu_core::broadcast::broadcast_dims;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{const_ints, dtype, out, product, shape, unknown_dims};
use crate::{InferInput, OpDef};

fn dims_from(op: &str, v: &[i64]) -> Result<Vec<usize>> {
    v.iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| Error::compute(format!("{op}: dims {v:?} must not be negative")))
        })
        .collect()
}

/// Expand (ONNX opsets 8, 13): broadcasts input 0 numpy-style against the dims of input 1
/// (i64, non-negative); the output has the broadcast dims (a 1 in input 1 keeps the input's
/// dim).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expand;

impl Expand {
    /// The requested dims, checked non-negative.
    pub fn dims(v: &[i64]) -> Result<Vec<usize>> {
        dims_from("Expand", v)
    }
}

impl OpDef for Expand {
    const NAMES: &'static [&'static str] = &["Expand"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let target = const_ints(inputs, 1);
        let dims = match (shape(inputs, 0), target) {
            (Some(s), Some(t)) => Some(broadcast_dims(s, &Shape::known(&Self::dims(&t)?))?),
            (s, None) => {
                let n = shape(inputs, 1)
                    .and_then(|t| t.0.first())
                    .and_then(Dim::known);
                match (s, n) {
                    (Some(s), Some(n)) => Some(unknown_dims("Expand", n.max(s.rank()))?),
                    _ => None,
                }
            }
            (None, Some(t)) => Some(unknown_dims("Expand", t.len())?),
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}

/// Tile (ONNX opsets 6, 13): repeats input 0 `repeats[i]` times along each axis `i`
/// (input 1: i64, one non-negative count per axis).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tile;

impl Tile {
    /// The repeat counts for an input of rank `rank`.
    pub fn repeats(v: &[i64], rank: usize) -> Result<Vec<usize>> {
        if v.len() != rank {
            return Err(Error::compute(format!(
                "Tile: repeats {v:?} must have one count per input axis ({rank})"
            )));
        }
        dims_from("Tile", v)
    }
}

impl OpDef for Tile {
    const NAMES: &'static [&'static str] = &["Tile"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dims = match (shape(inputs, 0), const_ints(inputs, 1)) {
            (Some(s), Some(r)) => {
                let r = Self::repeats(&r, s.rank())?;
                Some(Shape(
                    s.0.iter()
                        .zip(r)
                        .map(|(d, n)| match d {
                            Dim::Known(k) => k.checked_mul(n).map(Dim::Known).ok_or_else(|| {
                                Error::model(format!(
                                    "Tile: a dim of {k} repeated {n} times overflows"
                                ))
                            }),
                            d => Ok(product(&[d.clone(), Dim::Known(n)])),
                        })
                        .collect::<Result<Vec<_>>>()?,
                ))
            }
            (Some(s), None) => Some(unknown_dims("Tile", s.rank())?),
            _ => None,
        };
        Ok(vec![out(dtype(inputs, 0), dims)])
    }
}
