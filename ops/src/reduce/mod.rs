//! The `reduce` op family: reductions over axes, softmax-like ops, normalizations and losses.
//! Every op here computes per group of elements that share their coordinates outside a set of
//! axes.

mod loss;
mod norm;
mod reduction;
mod softmax;

pub use loss::{Loss, LossKind, LossReduction};
pub use norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm, LpNorm, Lrn, Mvn, RmsNorm};
pub use reduction::{ArgReduce, Reduce, ReduceKind};
pub use softmax::{Softmax, SoftmaxKind};

use xnpu_core::{Result, ValueType};

use crate::infer::input;
use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Reduce(Reduce),
    ArgReduce(ArgReduce),
    Softmax(Softmax),
    LayerNorm(LayerNorm),
    RmsNorm(RmsNorm),
    BatchNorm(BatchNorm),
    InstanceNorm(InstanceNorm),
    GroupNorm(GroupNorm),
    LpNorm(LpNorm),
    Lrn(Lrn),
    Mvn(Mvn),
    Loss(Loss),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Reduce(o) => o.kind.onnx_name(),
            Op::ArgReduce(o) => {
                if o.max {
                    "ArgMax"
                } else {
                    "ArgMin"
                }
            }
            Op::Softmax(o) => match o.kind {
                SoftmaxKind::Softmax => "Softmax",
                SoftmaxKind::LogSoftmax => "LogSoftmax",
                SoftmaxKind::Hardmax => "Hardmax",
            },
            Op::LayerNorm(_) => "LayerNormalization",
            Op::RmsNorm(_) => "RMSNormalization",
            Op::BatchNorm(_) => "BatchNormalization",
            Op::InstanceNorm(_) => "InstanceNormalization",
            Op::GroupNorm(_) => "GroupNormalization",
            Op::LpNorm(_) => "LpNormalization",
            Op::Lrn(_) => "LRN",
            Op::Mvn(_) => "MeanVarianceNormalization",
            Op::Loss(o) => match o.kind {
                LossKind::NegativeLogLikelihood => "NegativeLogLikelihoodLoss",
                LossKind::SoftmaxCrossEntropy => "SoftmaxCrossEntropyLoss",
            },
        }
    }

    /// Output types: reductions whose axes are known at import get their shape; ops that keep
    /// the input's shape say so; everything else keeps the dtype only.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0);
        let same = x.map_or(ValueType::Unknown, |x| x.ty.clone());
        let dtype_only = x.and_then(|x| x.dtype()).map_or(ValueType::Unknown, |d| {
            ValueType::Tensor(xnpu_core::TensorType::unranked(d))
        });
        let mut out = match self {
            Op::Reduce(o) => vec![o.infer(inputs)],
            Op::ArgReduce(_) => vec![ValueType::Tensor(xnpu_core::TensorType::unranked(
                xnpu_core::DType::I64,
            ))],
            Op::Loss(_) => vec![dtype_only.clone(), same.clone()],
            Op::LayerNorm(_) | Op::BatchNorm(_) => {
                vec![same.clone(), ValueType::Unknown, ValueType::Unknown]
            }
            _ => vec![same],
        };
        out.resize(n_outputs, ValueType::Unknown);
        Ok(out)
    }
}
