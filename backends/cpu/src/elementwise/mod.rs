//! Reference kernels of the `elementwise` family. Broadcasting zips are in `broadcast`; element
//! arithmetic (wrapping integers, IEEE floats) is `xnpu_core::Num`.

mod bernoulli;
mod binary;
mod broadcast;
mod cast;
mod clip;
mod erf;
mod gated;
mod random;
mod select;
mod unary;
mod variadic;

use xnpu_core::{Result, Tensor};
use xnpu_ops::elementwise::*;

use crate::args::{opt_tensor, tensor};
use crate::one;

kernel!(Cast, |o, inputs, _| cast::cast_with(
    tensor(inputs, 0)?,
    o.to,
    o.saturate,
    o.round_mode
)
.map(one));
kernel!(CastLike, |o, inputs, _| cast::cast_with(
    tensor(inputs, 0)?,
    tensor(inputs, 1)?.dtype(),
    o.saturate,
    o.round_mode
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
kernel!(Random, |o, inputs, _| random::run(
    o,
    opt_tensor(inputs, 0)?
)
.map(one));
kernel!(Bernoulli, |o, inputs, _| bernoulli::run(
    o,
    tensor(inputs, 0)?
)
.map(one));

/// Hostile sizes (issue 21): broadcasting makes outputs far larger than the inputs (`[N, 1]`
/// with `[1, M]`); each such output is allocated fallibly, once, and an error names it.
#[cfg(test)]
mod hostile {
    use super::*;
    use crate::Kernel;
    use xnpu_core::Value;

    /// 2^21 values along axis `axis` of a rank-3 tensor.
    fn along<T: xnpu_core::Elem + Clone>(axis: usize, v: T) -> Tensor {
        let mut shape = vec![1, 1, 1];
        shape[axis] = 1 << 21;
        Tensor::from_vec(shape, vec![v; 1 << 21]).unwrap()
    }

    fn run(op: &impl Kernel, inputs: Vec<Tensor>) -> Result<Tensor> {
        let vals: Vec<Value> = inputs.into_iter().map(Value::Tensor).collect();
        let refs: Vec<Option<&Value>> = vals.iter().map(Some).collect();
        op.run(&refs, 1)?.remove(0).into_tensor()
    }

    #[test]
    fn broadcast_outputs_past_memory_are_errors() {
        // 2^63 outputs from three inputs of 2^21 values.
        let e = run(&Where, vec![along(0, true), along(1, 1f32), along(2, 2f32)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot allocate 9223372036854775808 values for a broadcast output"),
            "{e}"
        );
        let sum = Variadic {
            kind: VariadicKind::Sum,
        };
        let e = run(&sum, vec![along(0, 1f32), along(1, 1f32), along(2, 1f32)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("for Sum's output"), "{e}");
    }

    #[test]
    fn sum_to_an_empty_output_makes_no_large_intermediate() {
        // Pairwise, the first two make 2^42 values; all three broadcast to none.
        let sum = Variadic {
            kind: VariadicKind::Sum,
        };
        let none = Tensor::from_vec(vec![1, 1, 0], Vec::<f32>::new()).unwrap();
        let y = run(&sum, vec![along(0, 1f32), along(1, 1f32), none]).unwrap();
        assert_eq!(y.shape(), &[1 << 21, 1 << 21, 0]);
    }

    #[test]
    fn legacy_broadcast_axis_past_the_rank_is_an_error() {
        let add = Binary {
            kind: BinaryKind::Add,
            legacy_axis: Some(i64::MAX),
        };
        let a = Tensor::from_vec(vec![2], vec![1f32, 2.0]).unwrap();
        let e = run(&add, vec![a.clone(), a]).unwrap_err().to_string();
        assert!(e.contains("does not fit A"), "{e}");
    }
}
