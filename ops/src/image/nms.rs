use xnpu_core::{DType, Error, Result, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// NonMaxSuppression (ONNX opsets 10, 11): greedy selection of boxes per batch and class.
///
/// Inputs: `boxes` `[B, N, 4]`, `scores` `[B, C, N]`, and optional one-element
/// `max_output_boxes_per_class` (int64, default 0: select nothing), `iou_threshold`
/// (default 0) and `score_threshold` (default: no threshold). For each batch and class, boxes
/// with score above `score_threshold` are visited by descending score (ties: lower index
/// first); a box is selected when its intersection-over-union with every box already
/// selected in that class is at most `iou_threshold`, until `max_output_boxes_per_class`
/// are selected. Boxes are `[y1, x1, y2, x2]` (any two opposite corners) or, with
/// `center_point_box`, `[x_center, y_center, width, height]`.
///
/// The output is int64 `[M, 3]`: `(batch, class, box)` per selected box, by batch, class,
/// then selection order.
#[derive(Clone, Debug, PartialEq)]
pub struct NonMaxSuppression {
    pub center_point_box: bool,
}

impl OpDef for NonMaxSuppression {
    const NAMES: &'static [&'static str] = &["NonMaxSuppression"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let boxes = input(inputs, 0).ok_or_else(|| Error::model("input boxes is required"))?;
        let scores = input(inputs, 1).ok_or_else(|| Error::model("input scores is required"))?;
        if let Some(r) = boxes.rank() {
            if r != 3 {
                return Err(Error::model(format!("boxes must have rank 3, got {r}")));
            }
        }
        if let Some(r) = scores.rank() {
            if r != 3 {
                return Err(Error::model(format!("scores must have rank 3, got {r}")));
            }
        }
        Ok(vec![tensor_type(Some(DType::I64), None)])
    }
}
