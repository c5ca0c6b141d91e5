use xnpu_core::{Dim, Result, Shape, ValueType};

use super::util::{dtype, out, unknown};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// Range (ONNX opsets 11, 27): a 1-D tensor `start, start+delta, …` of
/// `max(ceil((limit - start) / delta), 0)` elements, from three scalars of one dtype
/// (f32 f64 f16 bf16 i16 i32 i64). Float elements are computed in f64 and rounded once, which
/// is at least as precise as opset 27's `stash_type` asks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Range;

impl Range {
    /// The element count for float inputs, or `None` when it is not a finite count.
    pub fn count_f64(start: f64, limit: f64, delta: f64) -> Option<f64> {
        let n = ((limit - start) / delta).ceil().max(0.0);
        n.is_finite().then_some(n)
    }

    /// The element count for integer inputs, or `None` when `delta` is 0.
    pub fn count_int(start: i64, limit: i64, delta: i64) -> Option<u128> {
        if delta == 0 {
            return None;
        }
        let (s, l, d) = (i128::from(start), i128::from(limit), i128::from(delta));
        let span = if d > 0 { l - s } else { s - l };
        let step = d.abs();
        Some(if span <= 0 {
            0
        } else {
            ((span + step - 1) / step) as u128
        })
    }
}

impl OpDef for Range {
    const NAMES: &'static [&'static str] = &["Range"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let consts: Option<Vec<_>> = (0..3)
            .map(|i| input(inputs, i).and_then(|x| x.value))
            .collect();
        let mut len = None;
        if let Some(c) = consts {
            if c.iter().all(|t| t.dtype().is_int()) {
                let v: Option<Vec<i64>> = c
                    .iter()
                    .map(|t| t.to_i64_vec().ok().and_then(|v| v.first().copied()))
                    .collect();
                len = v
                    .and_then(|v| Self::count_int(v[0], v[1], v[2]))
                    .and_then(|n| usize::try_from(n).ok());
            } else {
                let v: Option<Vec<f64>> = c
                    .iter()
                    .map(|t| t.to_f64_vec().ok().and_then(|v| v.first().copied()))
                    .collect();
                len = v
                    .and_then(|v| Self::count_f64(v[0], v[1], v[2]))
                    .filter(|&n| n < 1e15)
                    .map(|n| n as usize);
            }
        }
        let len = len.map_or_else(|| unknown("Range?len"), Dim::Known);
        Ok(vec![out(dtype(inputs, 0), Some(Shape(vec![len])))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_up_and_stop_at_zero() {
        assert_eq!(Range::count_int(3, 9, 3), Some(2));
        assert_eq!(Range::count_int(10, 4, -2), Some(3));
        assert_eq!(Range::count_int(0, 5, -1), Some(0));
        assert_eq!(Range::count_int(0, 5, 0), None);
        assert_eq!(Range::count_f64(1.0, 2.0, 0.3), Some(4.0));
        assert_eq!(Range::count_f64(0.0, 1.0, 0.0), None);
    }
}
