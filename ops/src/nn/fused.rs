//! Ops that exist only after fusion (graph passes) or in ONNX Runtime's `com.microsoft`
//! domain: a matrix product or convolution with its bias and activation computed as one op.
//! Exported to ONNX they are written back as the standard ops they stand for (in the exact
//! form for plugins, as one node of xnpu's `ai.xnpu` domain).

use xnpu_core::broadcast::broadcast_dims;
use xnpu_core::{Result, ValueType};

use super::{matmul_shape, Conv, Gemm};
use crate::elementwise::ActivationKind;
use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// The activation a fused op applies to its result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedActivation {
    /// One of the element-wise activations (Relu, Sigmoid, LeakyRelu, HardSigmoid, Gelu, ...).
    Activation(ActivationKind),
    /// `tanh(x)`.
    Tanh,
    /// `min(max(x, min), max)`.
    Clip { min: f32, max: f32 },
}

impl FusedActivation {
    pub fn name(&self) -> &'static str {
        match self {
            FusedActivation::Activation(k) => k.name(),
            FusedActivation::Tanh => "Tanh",
            FusedActivation::Clip { .. } => "Clip",
        }
    }
}

/// Conv followed by an activation (ONNX Runtime's `com.microsoft.FusedConv`): inputs are
/// Conv's (X, W, B?); the output is `activation(Conv(X, W, B))`.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedConv {
    pub conv: Conv,
    pub activation: FusedActivation,
}

impl OpDef for FusedConv {
    const NAMES: &'static [&'static str] = &["FusedConv"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        self.conv.infer(inputs, n_outputs)
    }
}

/// Gemm followed by an activation (ONNX Runtime's `com.microsoft.FusedGemm`): inputs are
/// Gemm's (A, B, C?); the output is `activation(Gemm(A, B, C))`.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedGemm {
    pub gemm: Gemm,
    pub activation: FusedActivation,
}

impl OpDef for FusedGemm {
    const NAMES: &'static [&'static str] = &["FusedGemm"];

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        self.gemm.infer(inputs, n_outputs)
    }
}

/// A matrix product plus a bias, then an optional activation: inputs (A, B, bias); the
/// output is `activation(numpy.matmul(A, B) + bias)`, the bias broadcasting numpy-style
/// against the product (usually a `[N]` vector). This is what `MatMul` followed by `Add`
/// becomes, for any rank of `A` (Gemm takes only 2-D operands).
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulBias {
    pub activation: Option<FusedActivation>,
}

impl OpDef for MatMulBias {
    const NAMES: &'static [&'static str] = &["MatMulBias"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        let shape = match (
            input(inputs, 0).and_then(|x| x.shape()),
            input(inputs, 1).and_then(|x| x.shape()),
        ) {
            (Some(a), Some(b)) => {
                let p = matmul_shape(a, b)?;
                match input(inputs, 2).and_then(|x| x.shape()) {
                    Some(c) => Some(broadcast_dims(&p, c)?),
                    None => None,
                }
            }
            _ => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}
