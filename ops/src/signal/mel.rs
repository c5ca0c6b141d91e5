use xnpu_core::{DType, Result, ValueType};

use crate::infer::{input, known, tensor_type};
use crate::{InferInput, OpDef};

/// MelWeightMatrix (ONNX opset 17): the matrix `[dft_length / 2 + 1, num_mel_bins]` that
/// maps a one-sided linear spectrum to mel bands.
///
/// Inputs (scalars): `num_mel_bins`, `dft_length`, `sample_rate` (ints), `lower_edge_hertz`,
/// `upper_edge_hertz` (floats). `num_mel_bins + 2` points equally spaced in mel
/// (`mel = 2595 log10(1 + hz / 700)`) between the edges, each `hz` mapped to the spectrum bin
/// `floor((dft_length + 1) * hz / sample_rate)`, define triangles: band `i` rises linearly
/// from 0 at point `i` to 1 at point `i + 1` and falls to 0 at point `i + 2`. The output
/// has `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub struct MelWeightMatrix {
    pub dtype: DType,
}

impl OpDef for MelWeightMatrix {
    const NAMES: &'static [&'static str] = &["MelWeightMatrix"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let scalar = |i: usize| {
            input(inputs, i)
                .and_then(|s| s.value)
                .and_then(|s| s.to_i64_vec().ok())
                .and_then(|v| v.first().copied())
                .and_then(|n| usize::try_from(n).ok())
        };
        let shape = match (scalar(0), scalar(1)) {
            (Some(bins), Some(len)) => Some(known(&[len / 2 + 1, bins])),
            _ => None,
        };
        Ok(vec![tensor_type(Some(self.dtype), shape)])
    }
}
