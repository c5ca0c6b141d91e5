//! The `elementwise` op family: functions applied element by element, with numpy-style
//! broadcasting where there are several inputs (casts, math, activations, comparisons,
//! logic and bitwise ops, Where, Clip, Max/Min/Sum/Mean).

mod activation;
mod bernoulli;
mod bias_gelu;
mod binary;
mod broadcast;
mod cast;
mod classify;
mod clip;
mod prelu;
mod random;
mod select;
mod swiglu;
mod unary;
mod variadic;

pub use activation::{Activation, ActivationKind};
pub use bernoulli::Bernoulli;
pub use bias_gelu::BiasGelu;
pub use binary::{Binary, BinaryKind};
pub use cast::{check_bitcast, BitCast, Cast, CastLike};
pub use classify::{IsInf, IsNaN};
pub use clip::Clip;
pub use prelu::PRelu;
pub use random::{Distribution, Random};
pub use select::Where;
pub use swiglu::SwiGlu;
pub use unary::{Unary, UnaryKind};
pub use variadic::{Variadic, VariadicKind};

/// The `elementwise` family's ops, declared once: `elementwise_ops!(cb!(args))` calls
/// `cb!(args elementwise: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! elementwise_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* elementwise:
            Cast CastLike BitCast Unary Activation Binary Variadic Where PRelu Clip SwiGlu
            BiasGelu IsNaN IsInf Bernoulli Random
        );
    };
}

elementwise_ops!(family!());
