use xnpu_core::{DType, Result, ValueType};

use crate::infer::{input, known, tensor_type};
use crate::{InferInput, OpDef};

/// Which window function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// `sin^2(pi n / M)`
    Hann,
    /// `25/46 - 21/46 cos(2 pi n / M)`
    Hamming,
    /// `0.42 - 0.5 cos(2 pi n / M) + 0.08 cos(4 pi n / M)`
    Blackman,
}

/// HannWindow, HammingWindow, BlackmanWindow (ONNX opset 17): a window of `size` (scalar
/// int input) points `n = 0 .. size`, with `M = size` when `periodic`, `size - 1` otherwise
/// (a window of one point is `[1]`). The output has `dtype` (float values are rounded;
/// integer ones truncated).
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub kind: WindowKind,
    pub periodic: bool,
    pub dtype: DType,
}

impl OpDef for Window {
    const NAMES: &'static [&'static str] = &["HannWindow", "HammingWindow", "BlackmanWindow"];

    fn name(&self) -> &'static str {
        match self.kind {
            WindowKind::Hann => "HannWindow",
            WindowKind::Hamming => "HammingWindow",
            WindowKind::Blackman => "BlackmanWindow",
        }
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let shape = input(inputs, 0)
            .and_then(|s| s.value)
            .and_then(|s| s.to_i64_vec().ok())
            .and_then(|v| v.first().copied())
            .and_then(|n| usize::try_from(n).ok())
            .map(|n| known(&[n]));
        Ok(vec![tensor_type(Some(self.dtype), shape)])
    }
}
