use xnpu_core::{Result, Shape, ValueType};

use super::shape::{like_input, same_as_input};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// How a loss op combines its per-element losses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReduction {
    /// The per-element losses, shaped like the target.
    None,
    /// Their sum (a scalar).
    Sum,
    /// Their weighted mean: sum(loss) / sum(weight[target]) over the elements not ignored
    /// (a scalar).
    Mean,
}

/// The output type of a loss: the target's shape without reduction, a scalar with it.
fn loss_type(reduction: LossReduction, inputs: &[Option<InferInput<'_>>]) -> ValueType {
    let shape = match reduction {
        LossReduction::None => input(inputs, 1).and_then(|t| t.shape()).cloned(),
        _ => Some(Shape(vec![])),
    };
    like_input(inputs, 0, shape)
}

/// NegativeLogLikelihoodLoss (ONNX opsets 12, 13, 22).
///
/// Inputs `input` [N, C] or [N, C, D1, ...] (log-probabilities), `target` [N] or
/// [N, D1, ...] (int32/int64 class indices in [0, C)), optional `weight` [C]. The loss of
/// element (n, d) is -input[n, target[n, d], d] * weight[target[n, d]] (weight 1 when
/// absent), and 0 where target equals `ignore_index`; a target outside [0, C) that is not
/// ignored is an error. `reduction` combines them (see [`LossReduction`]). The output has
/// the input's dtype. Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct NegativeLogLikelihoodLoss {
    pub reduction: LossReduction,
    pub ignore_index: Option<i64>,
}

impl OpDef for NegativeLogLikelihoodLoss {
    const NAMES: &'static [&'static str] = &["NegativeLogLikelihoodLoss"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![loss_type(self.reduction, inputs)])
    }
}

/// SoftmaxCrossEntropyLoss (ONNX opsets 12, 13).
///
/// Inputs `scores` [N, C] or [N, C, D1, ...], `labels` [N] or [N, D1, ...] (int32/int64),
/// optional `weights` [C]. log_prob = LogSoftmax(scores) along dim 1; the loss is then
/// NegativeLogLikelihoodLoss(log_prob, labels, weights) with the same `reduction` and
/// `ignore_index`. Outputs: the loss, and optionally log_prob (the scores' shape). Both
/// have the scores' dtype. Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxCrossEntropyLoss {
    pub reduction: LossReduction,
    pub ignore_index: Option<i64>,
}

impl OpDef for SoftmaxCrossEntropyLoss {
    const NAMES: &'static [&'static str] = &["SoftmaxCrossEntropyLoss"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let mut out = vec![loss_type(self.reduction, inputs)];
        if n_outputs > 1 {
            out.push(same_as_input(inputs, 0));
        }
        Ok(out)
    }
}
