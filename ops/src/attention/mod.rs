//! The `attention` family: scaled dot-product attention and rotary position embeddings.

mod gqa;
mod rotary;
mod sdpa;

pub use gqa::{GroupQueryAttention, MultiHeadAttention};
pub use rotary::RotaryEmbedding;
pub use sdpa::Attention;

/// The `attention` family's ops, declared once: `attention_ops!(cb!(args))` calls
/// `cb!(args attention: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! attention_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* attention:
            Attention RotaryEmbedding GroupQueryAttention MultiHeadAttention
        );
    };
}

attention_ops!(family!());
