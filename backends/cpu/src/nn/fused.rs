//! Reference kernels of the fused ops: the base op's kernel, then the bias and the
//! activation with the element-wise kernels, so a fused graph computes exactly what the
//! unfused one did.

use xnpu_core::{Error, Result, Value};
use xnpu_ops::elementwise::{self as ew, Activation, Binary, BinaryKind, Clip, Unary, UnaryKind};
use xnpu_ops::nn::{FusedActivation, FusedConv, FusedGemm, MatMulBias};

/// Applies a fused op's activation to `x`.
pub fn activate(act: &FusedActivation, x: Value) -> Result<Value> {
    let op = match *act {
        FusedActivation::Activation(kind) => ew::Op::Activation(Activation { kind }),
        FusedActivation::Tanh => ew::Op::Unary(Unary {
            kind: UnaryKind::Tanh,
        }),
        FusedActivation::Clip { min, max } => ew::Op::Clip(Clip {
            min: Some(min),
            max: Some(max),
        }),
    };
    single(crate::Kernel::run(&op, &[Some(&x)], 1)?)
}

fn single(mut v: Vec<Value>) -> Result<Value> {
    if v.is_empty() {
        return Err(Error::compute("the kernel produced no output"));
    }
    Ok(v.swap_remove(0))
}

pub fn fused_conv(o: &FusedConv, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let y = single(super::conv::conv(&o.conv, inputs)?)?;
    Ok(vec![activate(&o.activation, y)?])
}

pub fn fused_gemm(o: &FusedGemm, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let y = single(super::matmul::gemm(&o.gemm, inputs)?)?;
    Ok(vec![activate(&o.activation, y)?])
}

pub fn matmul_bias(o: &MatMulBias, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let bias = inputs
        .get(2)
        .copied()
        .flatten()
        .ok_or_else(|| Error::model("MatMulBias needs its bias (input 2)"))?;
    let p = single(super::matmul::matmul(&inputs[..2.min(inputs.len())])?)?;
    let add = ew::Op::Binary(Binary::new(BinaryKind::Add));
    let y = single(crate::Kernel::run(&add, &[Some(&p), Some(bias)], 1)?)?;
    Ok(vec![match &o.activation {
        Some(a) => activate(a, y)?,
        None => y,
    }])
}
