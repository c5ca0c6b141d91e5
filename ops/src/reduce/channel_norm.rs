use xnpu_core::{Result, Shape, ValueType};

use super::shape::same_as_input;
use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// BatchNormalization (ONNX opsets 1, 6, 7, 9, 14, 15).
///
/// Inputs `X` [N, C, D1, ...], `scale`, `B`, `input_mean`, `input_var` (each [C]).
/// Inference (`training_mode` false): Y = scale * (X - mean) / sqrt(var + epsilon) + B per
/// channel, with the given mean and var. Training: mean and var are the per-channel batch
/// statistics of X (population variance over all dims but 1) and Y uses them; the outputs
/// after Y are running_mean = input_mean * momentum + mean * (1 - momentum), running_var
/// likewise, then (opsets before 14) saved_mean = mean and saved_var = var. All outputs
/// have X's dtype. Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNormalization {
    pub epsilon: f32,
    pub momentum: f32,
    pub training_mode: bool,
}

impl OpDef for BatchNormalization {
    const NAMES: &'static [&'static str] = &["BatchNormalization"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let mut out = vec![same_as_input(inputs, 0)];
        let channels = input(inputs, 0)
            .and_then(|x| x.shape())
            .and_then(|s| s.0.get(1).cloned());
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        for _ in 1..n_outputs.min(5) {
            out.push(tensor_type(
                dtype,
                channels.as_ref().map(|c| Shape(vec![c.clone()])),
            ));
        }
        Ok(out)
    }
}

/// InstanceNormalization (ONNX opsets 1, 6, 22).
///
/// Inputs `input` [N, C, D1, ...], `scale` [C], `B` [C]. Each (n, c) slice over D1... is
/// normalized with its own mean and population variance:
/// y = scale[c] * (x - mean) / sqrt(var + epsilon) + B[c]. The output has the input's dtype
/// and shape. Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceNormalization {
    pub epsilon: f32,
}

impl OpDef for InstanceNormalization {
    const NAMES: &'static [&'static str] = &["InstanceNormalization"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![same_as_input(inputs, 0)])
    }
}

/// GroupNormalization (ONNX opsets 18, 21).
///
/// Inputs `X` [N, C, D1, ...], `scale`, `bias`. The C channels are split into `num_groups`
/// consecutive groups (C must be a multiple); each (n, group) slice is normalized with its
/// own mean and population variance: (x - mean) / sqrt(var + epsilon), then scaled and
/// shifted per channel (opset 21: scale and bias are [C]) or per group (opset 18:
/// `scale_per_group`, scale and bias are [num_groups]). The output has X's dtype and shape.
/// Computed in f64 and rounded once.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNormalization {
    pub num_groups: i64,
    pub epsilon: f32,
    pub scale_per_group: bool,
}

impl OpDef for GroupNormalization {
    const NAMES: &'static [&'static str] = &["GroupNormalization"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        Ok(vec![same_as_input(inputs, 0)])
    }
}
