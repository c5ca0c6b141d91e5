//! The `attention` family: scaled dot-product attention and rotary position embeddings.

mod gqa;
mod rotary;
mod sdpa;

pub use gqa::{GroupQueryAttention, MultiHeadAttention};
pub use rotary::RotaryEmbedding;
pub use sdpa::Attention;

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Attention(Attention),
    RotaryEmbedding(RotaryEmbedding),
    GroupQueryAttention(GroupQueryAttention),
    MultiHeadAttention(MultiHeadAttention),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Attention(_) => "Attention",
            Op::RotaryEmbedding(_) => "RotaryEmbedding",
            Op::GroupQueryAttention(_) => "GroupQueryAttention",
            Op::MultiHeadAttention(_) => "MultiHeadAttention",
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
            Op::Attention(o) => o.infer(inputs, n_outputs),
            Op::RotaryEmbedding(o) => o.infer(inputs, n_outputs),
            Op::GroupQueryAttention(o) => o.infer(inputs, n_outputs),
            Op::MultiHeadAttention(o) => o.infer(inputs, n_outputs),
        }
    }
}
