//! Reference kernels of the `elementwise` family. Broadcasting zips are in `broadcast`; element
//! arithmetic (wrapping integers, IEEE floats) is `xnpu_core::Num`.

mod bernoulli;
mod binary;
mod broadcast;
mod cast;
mod clip;
mod erf;
mod gated;
mod select;
mod unary;
mod variadic;

use xnpu_core::{Result, Tensor};
use xnpu_ops::elementwise::*;

use crate::args::{opt_tensor, tensor};
use crate::one;

kernel!(Cast, |o, inputs, _| cast::cast(tensor(inputs, 0)?, o.to)
    .map(one));
kernel!(CastLike, |_, inputs, _| cast::cast(
    tensor(inputs, 0)?,
    tensor(inputs, 1)?.dtype()
)
.map(one));
kernel!(BitCast, |o, inputs, _| cast::bitcast(
    tensor(inputs, 0)?,
    o.to
)
.map(one));
kernel!(Unary, |o, inputs, _| unary::unary(
    o.kind,
    tensor(inputs, 0)?
)
.map(one));
kernel!(Activation, |o, inputs, _| unary::activation(
    o.kind,
    tensor(inputs, 0)?
)
.map(one));
kernel!(IsNaN, |_, inputs, _| unary::classify(
    tensor(inputs, 0)?,
    None
)
.map(one));
kernel!(IsInf, |o, inputs, _| unary::classify(
    tensor(inputs, 0)?,
    Some((o.detect_positive, o.detect_negative)),
)
.map(one));
kernel!(Binary, |o, inputs, _| binary::binary(
    o,
    tensor(inputs, 0)?,
    tensor(inputs, 1)?
)
.map(one));
kernel!(Variadic, |o, inputs, _| {
    let ts = (0..inputs.len())
        .map(|i| tensor(inputs, i))
        .collect::<Result<Vec<&Tensor>>>()?;
    variadic::variadic(o.kind, &ts).map(one)
});
kernel!(Where, |_, inputs, _| select::select(
    tensor(inputs, 0)?,
    tensor(inputs, 1)?,
    tensor(inputs, 2)?
)
.map(one));
kernel!(Clip, |o, inputs, _| clip::clip(
    o,
    tensor(inputs, 0)?,
    opt_tensor(inputs, 1)?,
    opt_tensor(inputs, 2)?,
)
.map(one));
kernel!(PRelu, |_, inputs, _| gated::prelu(
    tensor(inputs, 0)?,
    tensor(inputs, 1)?
)
.map(one));
kernel!(SwiGlu, |o, inputs, _| gated::swiglu(
    tensor(inputs, 0)?,
    tensor(inputs, 1)?,
    o.alpha
)
.map(one));
kernel!(BiasGelu, |o, inputs, _| {
    let x = tensor(inputs, 0)?;
    let sum = match opt_tensor(inputs, 1)? {
        Some(b) => binary::binary(&Binary::new(BinaryKind::Add), x, b)?,
        None => x.clone(),
    };
    unary::activation(ActivationKind::Gelu { tanh: o.tanh }, &sum).map(one)
});
kernel!(Bernoulli, |o, inputs, _| bernoulli::run(
    o,
    tensor(inputs, 0)?
)
.map(one));
