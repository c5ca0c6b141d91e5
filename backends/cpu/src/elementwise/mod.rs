//! Reference kernels of the `elementwise` family. Broadcasting is in `broadcast`, element
//! arithmetic (wrapping integers, f64 for floats) in `num`.

mod binary;
mod broadcast;
mod cast;
mod clip;
mod gated;
mod num;
mod select;
mod unary;
mod variadic;

use xnpu_core::{Result, Tensor, Value};
use xnpu_ops::elementwise::{ActivationKind, Binary, BinaryKind, Op};

use crate::args::{opt_tensor, tensor};

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, inputs: &[Option<&Value>], _n_outputs: usize) -> Result<Vec<Value>> {
    let out = match op {
        Op::Cast(o) => cast::cast(tensor(inputs, 0)?, o.to),
        Op::CastLike(_) => cast::cast(tensor(inputs, 0)?, tensor(inputs, 1)?.dtype()),
        Op::BitCast(o) => cast::bitcast(tensor(inputs, 0)?, o.to),
        Op::Unary(o) => unary::unary(o.kind, tensor(inputs, 0)?),
        Op::Activation(o) => unary::activation(o.kind, tensor(inputs, 0)?),
        Op::IsNaN(_) => unary::classify(tensor(inputs, 0)?, None),
        Op::IsInf(o) => unary::classify(
            tensor(inputs, 0)?,
            Some((o.detect_positive, o.detect_negative)),
        ),
        Op::Binary(o) => binary::binary(o, tensor(inputs, 0)?, tensor(inputs, 1)?),
        Op::Variadic(o) => {
            let ts = (0..inputs.len())
                .map(|i| tensor(inputs, i))
                .collect::<Result<Vec<&Tensor>>>()?;
            variadic::variadic(o.kind, &ts)
        }
        Op::Where(_) => select::select(tensor(inputs, 0)?, tensor(inputs, 1)?, tensor(inputs, 2)?),
        Op::Clip(o) => clip::clip(
            o,
            tensor(inputs, 0)?,
            opt_tensor(inputs, 1)?,
            opt_tensor(inputs, 2)?,
        ),
        Op::PRelu(_) => gated::prelu(tensor(inputs, 0)?, tensor(inputs, 1)?),
        Op::SwiGlu(o) => gated::swiglu(tensor(inputs, 0)?, tensor(inputs, 1)?, o.alpha),
        Op::BiasGelu(o) => {
            let x = tensor(inputs, 0)?;
            let sum = match opt_tensor(inputs, 1)? {
                Some(b) => binary::binary(&Binary::new(BinaryKind::Add), x, b)?,
                None => x.clone(),
            };
            unary::activation(ActivationKind::Gelu { tanh: o.tanh }, &sum)
        }
    };
    out.map(|t| vec![Value::Tensor(t)])
}
