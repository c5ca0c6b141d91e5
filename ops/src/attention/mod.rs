//! The `attention` family: scaled dot-product attention, rotary position embeddings and
//! linear attention with a recurrent state.

mod gqa;
mod linear_attention;
mod rotary;
mod sdpa;

pub use gqa::{GroupQueryAttention, MultiHeadAttention};
pub use linear_attention::{LinearAttention, LinearAttentionRule};
pub use rotary::RotaryEmbedding;
pub use sdpa::Attention;

/// The `attention` family's ops, declared once: `attention_ops!(cb!(args))` calls
/// `cb!(args attention: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! attention_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* attention:
            Attention RotaryEmbedding GroupQueryAttention MultiHeadAttention LinearAttention
        );
    };
}

attention_ops!(family!());
