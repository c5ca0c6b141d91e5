//! The `elementwise` op family: functions applied element by element, with numpy-style
//! broadcasting where there are several inputs (casts, math, activations, comparisons,
//! logic and bitwise ops, Where, Clip, Max/Min/Sum/Mean).

mod activation;
mod bias_gelu;
mod binary;
mod broadcast;
mod cast;
mod classify;
mod clip;
mod prelu;
mod select;
mod swiglu;
mod unary;
mod variadic;

pub use activation::{Activation, ActivationKind};
pub use bias_gelu::BiasGelu;
pub use binary::{Binary, BinaryKind};
pub use cast::{check_bitcast, BitCast, Cast, CastLike};
pub use classify::{IsInf, IsNaN};
pub use clip::Clip;
pub use prelu::PRelu;
pub use select::Where;
pub use swiglu::SwiGlu;
pub use unary::{Unary, UnaryKind};
pub use variadic::{Variadic, VariadicKind};

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Cast(Cast),
    CastLike(CastLike),
    BitCast(BitCast),
    Unary(Unary),
    Activation(Activation),
    Binary(Binary),
    Variadic(Variadic),
    Where(Where),
    PRelu(PRelu),
    Clip(Clip),
    SwiGlu(SwiGlu),
    BiasGelu(BiasGelu),
    IsNaN(IsNaN),
    IsInf(IsInf),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Cast(_) => "Cast",
            Op::CastLike(_) => "CastLike",
            Op::BitCast(_) => "BitCast",
            Op::Unary(o) => o.kind.name(),
            Op::Activation(o) => o.kind.name(),
            Op::Binary(o) => o.kind.name(),
            Op::Variadic(o) => o.kind.name(),
            Op::Where(_) => "Where",
            Op::PRelu(_) => "PRelu",
            Op::Clip(_) => "Clip",
            Op::SwiGlu(_) => "SwiGLU",
            Op::BiasGelu(o) => o.op_name(),
            Op::IsNaN(_) => "IsNaN",
            Op::IsInf(_) => "IsInf",
        }
    }

    /// Output types from input types (and constant inputs). Dims that cannot be known before
    /// run time are left as symbols or the whole type as `ValueType::Unknown`.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        match self {
            Op::Cast(o) => o.infer(inputs, n_outputs),
            Op::CastLike(o) => o.infer(inputs, n_outputs),
            Op::BitCast(o) => o.infer(inputs, n_outputs),
            Op::Unary(o) => o.infer(inputs, n_outputs),
            Op::Activation(o) => o.infer(inputs, n_outputs),
            Op::Binary(o) => o.infer(inputs, n_outputs),
            Op::Variadic(o) => o.infer(inputs, n_outputs),
            Op::Where(o) => o.infer(inputs, n_outputs),
            Op::PRelu(o) => o.infer(inputs, n_outputs),
            Op::Clip(o) => o.infer(inputs, n_outputs),
            Op::SwiGlu(o) => o.infer(inputs, n_outputs),
            Op::BiasGelu(o) => o.infer(inputs, n_outputs),
            Op::IsNaN(o) => o.infer(inputs, n_outputs),
            Op::IsInf(o) => o.infer(inputs, n_outputs),
        }
    }
}
