use xnpu_core::shape::normalize_axis;
use xnpu_core::{Error, Result, ValueType};

use super::util::{same_as, shape};
use crate::{InferInput, OpDef};

/// How a scatter combines an update with the value already there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The update replaces the value (the last of duplicate indices wins).
    #[default]
    None,
    Add,
    Mul,
    Max,
    Min,
}

impl Reduction {
    pub fn parse(s: &str) -> Option<Reduction> {
        Some(match s {
            "none" => Reduction::None,
            "add" => Reduction::Add,
            "mul" => Reduction::Mul,
            "max" => Reduction::Max,
            "min" => Reduction::Min,
            _ => return None,
        })
    }
}

/// ScatterElements (ONNX opsets 11, 13, 16, 18; also the deprecated Scatter of opsets 9–10):
/// a copy of `data` (input 0) where, for every position `p` of `indices` (input 1, i32/i64,
/// same rank as data, negative counts from the dim), the element at `p` with its `axis`
/// coordinate replaced by `indices[p]` is combined with `updates[p]` (input 2, dims of
/// indices) by `reduction`, in row-major order of `p`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScatterElements {
    pub axis: i64,
    pub reduction: Reduction,
}

impl OpDef for ScatterElements {
    const NAMES: &'static [&'static str] = &["ScatterElements"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let (Some(d), Some(i)) = (shape(inputs, 0), shape(inputs, 1)) {
            if d.rank() != i.rank() {
                return Err(Error::model(format!(
                    "ScatterElements: data {d} and indices {i} must have the same rank"
                )));
            }
            normalize_axis(self.axis, d.rank())?;
        }
        Ok(vec![same_as(inputs, 0)])
    }
}

/// ScatterND (ONNX opsets 11, 13, 16, 18): a copy of `data` where each index tuple in the
/// last dim of `indices` (i64, length `k` ≤ rank of data; negative counts from the dim)
/// addresses a slice of data of dims `data[k..]`, combined with the matching slice of
/// `updates` (dims `indices[..-1] ++ data[k..]`) by `reduction`, in row-major order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScatterNd {
    pub reduction: Reduction,
}

impl OpDef for ScatterNd {
    const NAMES: &'static [&'static str] = &["ScatterND"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![same_as(inputs, 0)])
    }
}

/// TensorScatter (ONNX opset 24): a KV-cache update. Output = `past_cache` (input 0) with,
/// for every prefix `p` of the dims before `axis` (batch `b = p[0]`) and every position `s`
/// of `update` (input 1) along `axis`, the slice `past[p, w, …]` replaced by `update[p, s, …]`,
/// where `w = write_indices[b] + s` (input 2, i64 per batch, default 0), taken modulo the
/// cache length along `axis` when `circular`. Update dims equal the cache's except along
/// `axis`, where they are no larger. `axis` must not be 0 (the batch).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorScatter {
    pub axis: i64,
    pub circular: bool,
}

impl OpDef for TensorScatter {
    const NAMES: &'static [&'static str] = &["TensorScatter"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        if let Some(s) = shape(inputs, 0) {
            let a = normalize_axis(self.axis, s.rank())?;
            if a == 0 {
                return Err(Error::model(
                    "TensorScatter: axis must not be 0, the batch axis",
                ));
            }
        }
        Ok(vec![same_as(inputs, 0)])
    }
}
