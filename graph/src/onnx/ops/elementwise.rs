//! Import of the `elementwise` family.
//!
//! Opset differences handled here: Cast's `to` was a type name string in opset 1; the
//! arithmetic, comparison and logic ops of opsets 1–6 had `broadcast`/`axis` attributes; Clip's
//! bounds were attributes before opset 11; `consumed_inputs` (opsets 1–5) is ignored.

use xnpu_core::narrow::RoundMode;
use xnpu_core::{DType, Error, Result};
use xnpu_ops::elementwise::{
    self as e, Activation, ActivationKind as A, Bernoulli, Binary, BinaryKind as B, BitCast, Cast,
    CastLike, Clip, Distribution, IsInf, IsNaN, PRelu, Random, SwiGlu, Unary, UnaryKind as U,
    Variadic, VariadicKind as V, Where,
};

use super::super::types::dtype;
use super::{contrib, NodeCtx, OnnxImport, Registry, MS};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::elementwise::Cast {
    fn register(r: &mut Registry) {
        r.add("", "Cast", 1, cast);
    }
}

impl OnnxImport for xnpu_ops::elementwise::CastLike {
    fn register(r: &mut Registry) {
        r.add("", "CastLike", 15, |n| {
            let (saturate, round_mode) = cast_modes(n)?;
            Ok(op(e::Op::CastLike(CastLike {
                saturate,
                round_mode,
            })))
        });
    }
}

impl OnnxImport for xnpu_ops::elementwise::BitCast {
    fn register(r: &mut Registry) {
        r.add("", "BitCast", 26, bitcast);
    }
}

impl OnnxImport for xnpu_ops::elementwise::Unary {
    fn register(r: &mut Registry) {
        r.add("", "Neg", 1, |_| unary(U::Neg));
        r.add("", "Abs", 1, |_| unary(U::Abs));
        r.add("", "Reciprocal", 1, |_| unary(U::Reciprocal));
        r.add("", "Sqrt", 1, |_| unary(U::Sqrt));
        r.add("", "Exp", 1, |_| unary(U::Exp));
        r.add("", "Log", 1, |_| unary(U::Log));
        r.add("", "Ceil", 1, |_| unary(U::Ceil));
        r.add("", "Floor", 1, |_| unary(U::Floor));
        r.add("", "Round", 11, |_| unary(U::Round));
        r.add("", "Sign", 9, |_| unary(U::Sign));
        r.add("", "Erf", 9, |_| unary(U::Erf));
        r.add("", "Sin", 7, |_| unary(U::Sin));
        r.add("", "Cos", 7, |_| unary(U::Cos));
        r.add("", "Tan", 7, |_| unary(U::Tan));
        r.add("", "Asin", 7, |_| unary(U::Asin));
        r.add("", "Acos", 7, |_| unary(U::Acos));
        r.add("", "Atan", 7, |_| unary(U::Atan));
        r.add("", "Sinh", 9, |_| unary(U::Sinh));
        r.add("", "Cosh", 9, |_| unary(U::Cosh));
        r.add("", "Asinh", 9, |_| unary(U::Asinh));
        r.add("", "Acosh", 9, |_| unary(U::Acosh));
        r.add("", "Atanh", 9, |_| unary(U::Atanh));
        r.add("", "Tanh", 1, |_| unary(U::Tanh));
        r.add("", "Not", 1, |_| unary(U::Not));
        r.add("", "BitwiseNot", 18, |_| unary(U::BitwiseNot));
    }
}

impl OnnxImport for xnpu_ops::elementwise::Activation {
    fn register(r: &mut Registry) {
        r.add(MS, "Gelu", 1, contrib::gelu);
        r.add(MS, "QuickGelu", 1, contrib::quick_gelu);

        r.add("", "Sigmoid", 1, |n| activation(n, "Sigmoid"));
        r.add("", "Relu", 1, |n| activation(n, "Relu"));
        r.add("", "LeakyRelu", 1, |n| activation(n, "LeakyRelu"));
        r.add("", "Elu", 1, |n| activation(n, "Elu"));
        r.add("", "Selu", 1, |n| activation(n, "Selu"));
        r.add("", "Celu", 12, |n| activation(n, "Celu"));
        r.add("", "ThresholdedRelu", 10, |n| {
            activation(n, "ThresholdedRelu")
        });
        r.add("", "HardSigmoid", 1, |n| activation(n, "HardSigmoid"));
        r.add("", "HardSwish", 14, |n| activation(n, "HardSwish"));
        r.add("", "Softplus", 1, |n| activation(n, "Softplus"));
        r.add("", "Softsign", 1, |n| activation(n, "Softsign"));
        r.add("", "Mish", 18, |n| activation(n, "Mish"));
        r.add("", "Gelu", 20, |n| activation(n, "Gelu"));
        r.add("", "Swish", 24, |n| activation(n, "Swish"));
        r.add("", "Shrink", 9, |n| activation(n, "Shrink"));
    }
}

impl OnnxImport for xnpu_ops::elementwise::Binary {
    fn register(r: &mut Registry) {
        r.add("", "Add", 1, |n| binary(n, B::Add));
        r.add("", "Sub", 1, |n| binary(n, B::Sub));
        r.add("", "Mul", 1, |n| binary(n, B::Mul));
        r.add("", "Div", 1, |n| binary(n, B::Div));
        r.add("", "Pow", 1, |n| binary(n, B::Pow));
        r.add("", "Mod", 10, modulo);
        r.add("", "BitShift", 11, bitshift);
        r.add("", "BitwiseAnd", 18, |n| binary(n, B::BitwiseAnd));
        r.add("", "BitwiseOr", 18, |n| binary(n, B::BitwiseOr));
        r.add("", "BitwiseXor", 18, |n| binary(n, B::BitwiseXor));
        r.add("", "And", 1, |n| binary(n, B::And));
        r.add("", "Or", 1, |n| binary(n, B::Or));
        r.add("", "Xor", 1, |n| binary(n, B::Xor));
        r.add("", "Equal", 1, |n| binary(n, B::Equal));
        r.add("", "Less", 1, |n| binary(n, B::Less));
        r.add("", "Greater", 1, |n| binary(n, B::Greater));
        r.add("", "LessOrEqual", 12, |n| binary(n, B::LessOrEqual));
        r.add("", "GreaterOrEqual", 12, |n| binary(n, B::GreaterOrEqual));
    }
}

impl OnnxImport for xnpu_ops::elementwise::Variadic {
    fn register(r: &mut Registry) {
        r.add("", "Max", 1, |_| variadic(V::Max));
        r.add("", "Min", 1, |_| variadic(V::Min));
        r.add("", "Sum", 1, |_| variadic(V::Sum));
        r.add("", "Mean", 1, |_| variadic(V::Mean));
    }
}

impl OnnxImport for xnpu_ops::elementwise::Where {
    fn register(r: &mut Registry) {
        r.add("", "Where", 9, |_| Ok(op(e::Op::Where(Where))));
    }
}

impl OnnxImport for xnpu_ops::elementwise::PRelu {
    fn register(r: &mut Registry) {
        r.add("", "PRelu", 1, |_| Ok(op(e::Op::PRelu(PRelu))));
    }
}

impl OnnxImport for xnpu_ops::elementwise::Clip {
    fn register(r: &mut Registry) {
        r.add("", "Clip", 1, clip);
    }
}

impl OnnxImport for xnpu_ops::elementwise::SwiGlu {
    fn register(r: &mut Registry) {
        r.add("", "SwiGLU", 28, swiglu);
    }
}

impl OnnxImport for xnpu_ops::elementwise::BiasGelu {
    fn register(r: &mut Registry) {
        r.add(MS, "FastGelu", 1, contrib::fast_gelu);
        r.add(MS, "BiasGelu", 1, contrib::bias_gelu);
    }
}

impl OnnxImport for xnpu_ops::elementwise::IsNaN {
    fn register(r: &mut Registry) {
        r.add("", "IsNaN", 9, |_| Ok(op(e::Op::IsNaN(IsNaN))));
    }
}

impl OnnxImport for xnpu_ops::elementwise::IsInf {
    fn register(r: &mut Registry) {
        r.add("", "IsInf", 10, is_inf);
    }
}

impl OnnxImport for xnpu_ops::elementwise::Bernoulli {
    fn register(r: &mut Registry) {
        r.add("", "Bernoulli", 15, bernoulli);
    }
}

fn bernoulli(n: &mut NodeCtx<'_>) -> Result<Op> {
    let dtype = match n.int("dtype", 0)? {
        0 => None,
        code => Some(dtype(i32::try_from(code).map_err(|_| {
            Error::model(format!("attribute \"dtype\" {code} is not a data type"))
        })?)?),
    };
    Ok(op(e::Op::Bernoulli(Bernoulli {
        dtype,
        seed: n.opt_float("seed")?,
    })))
}

impl OnnxImport for xnpu_ops::elementwise::Random {
    fn register(r: &mut Registry) {
        r.add("", "RandomUniform", 1, |n| random(n, false, true));
        r.add("", "RandomUniformLike", 1, |n| random(n, false, false));
        r.add("", "RandomNormal", 1, |n| random(n, true, true));
        r.add("", "RandomNormalLike", 1, |n| random(n, true, false));
    }
}

/// RandomUniform(Like) and RandomNormal(Like): `shaped` for the forms with a `shape`
/// attribute (required there) and no input.
fn random(n: &mut NodeCtx<'_>, normal: bool, shaped: bool) -> Result<Op> {
    let dist = if normal {
        Distribution::Normal {
            mean: n.float("mean", 0.0)?,
            scale: n.float("scale", 1.0)?,
        }
    } else {
        Distribution::Uniform {
            low: n.float("low", 0.0)?,
            high: n.float("high", 1.0)?,
        }
    };
    let shape = if shaped {
        Some(
            n.ints("shape")?
                .ok_or_else(|| Error::model("attribute \"shape\" is required"))?,
        )
    } else {
        None
    };
    let dtype = match n.opt_int("dtype")? {
        None => None,
        Some(code) => {
            Some(DType::from_onnx_code(code).map_err(|e| e.context("attribute \"dtype\""))?)
        }
    };
    Ok(op(e::Op::Random(Random {
        dist,
        shape,
        dtype,
        seed: n.opt_float("seed")?,
    })))
}

fn op(o: e::Op) -> Op {
    Op::Elementwise(o)
}

/// The ONNX type names Cast-1 used for its `to` attribute (any case).
fn dtype_by_onnx_name(name: &str) -> Result<DType> {
    let upper = name.to_ascii_uppercase();
    DType::ALL
        .into_iter()
        .find(|d| d.row().onnx_name == upper)
        .ok_or_else(|| {
            Error::unsupported(format!(
                "data type \"{name}\" (attribute \"to\") is not supported"
            ))
        })
}

/// Cast's and CastLike's `saturate` (opset 19, default 1) and `round_mode` (opset 24,
/// default "up"), which concern the narrow float targets only.
fn cast_modes(n: &NodeCtx<'_>) -> Result<(bool, RoundMode)> {
    let saturate = n.int("saturate", 1)? != 0;
    let mode = n.string("round_mode", "up")?;
    let round_mode = RoundMode::parse(&mode).ok_or_else(|| {
        Error::model(format!(
            "attribute \"round_mode\" = {mode:?} is not one of \"up\", \"down\", \"nearest\""
        ))
    })?;
    Ok((saturate, round_mode))
}

/// The `to` attribute: a type name string in Cast-1, a `TensorProto.DataType` code later.
fn to_attr(n: &NodeCtx<'_>) -> Result<DType> {
    if n.opset() < 6 {
        if let Some(name) = n.opt_string("to")? {
            return dtype_by_onnx_name(&name);
        }
    }
    let code = n.req_int("to")?;
    let code = i32::try_from(code)
        .map_err(|_| Error::model(format!("attribute \"to\" = {code} is not a data type")))?;
    dtype(code)
}

fn cast(n: &mut NodeCtx<'_>) -> Result<Op> {
    let (saturate, round_mode) = cast_modes(n)?;
    Ok(op(e::Op::Cast(Cast {
        to: to_attr(n)?,
        saturate,
        round_mode,
    })))
}

fn bitcast(n: &mut NodeCtx<'_>) -> Result<Op> {
    let to = to_attr(n)?;
    if let Some(from) = n.input_dtype(0) {
        e::check_bitcast(from, to)?;
    }
    Ok(op(e::Op::BitCast(BitCast { to })))
}

/// A binary op; opsets 1–6 of Add, Sub, Mul, Div, Pow, And, Or, Xor, Equal, Less and Greater
/// had `broadcast` (0: shapes must be equal, 1: `B` broadcasts to `A`) and `axis`.
fn binary(n: &mut NodeCtx<'_>, kind: B) -> Result<Op> {
    let mut b = Binary::new(kind);
    if n.opset() < 7 && n.int("broadcast", 0)? != 0 {
        b.legacy_axis = n.opt_int("axis")?;
    }
    Ok(op(e::Op::Binary(b)))
}

fn modulo(n: &mut NodeCtx<'_>) -> Result<Op> {
    let fmod = match n.int("fmod", 0)? {
        0 => false,
        1 => true,
        v => {
            return Err(Error::model(format!(
                "attribute \"fmod\" must be 0 or 1, got {v}"
            )))
        }
    };
    binary(n, B::Mod { fmod })
}

fn bitshift(n: &mut NodeCtx<'_>) -> Result<Op> {
    let left = match n.string("direction", "")?.as_str() {
        "LEFT" => true,
        "RIGHT" => false,
        d => {
            return Err(Error::model(format!(
                "attribute \"direction\" must be \"LEFT\" or \"RIGHT\", got \"{d}\""
            )))
        }
    };
    binary(n, B::BitShift { left })
}

fn unary(kind: U) -> Result<Op> {
    Ok(op(e::Op::Unary(Unary { kind })))
}

/// The activation op `name` with its attributes read from the node.
fn activation(n: &mut NodeCtx<'_>, name: &str) -> Result<Op> {
    let kind = activation_kind(name, n)?;
    Ok(op(e::Op::Activation(Activation { kind })))
}

/// The activation named like its ONNX op, its attributes read from `n` with that op's
/// defaults: for the standalone op, and for the activation of a fused op in xnpu's domain.
pub(super) fn activation_kind(name: &str, n: &NodeCtx<'_>) -> Result<A> {
    Ok(match name {
        "Sigmoid" => A::Sigmoid,
        "Relu" => A::Relu,
        "HardSwish" => A::HardSwish,
        "Softplus" => A::Softplus,
        "Softsign" => A::Softsign,
        "Mish" => A::Mish,
        "LeakyRelu" => A::LeakyRelu {
            alpha: n.float("alpha", 0.01)?,
        },
        "Elu" => A::Elu {
            alpha: n.float("alpha", 1.0)?,
        },
        "Selu" => A::Selu {
            alpha: n.float("alpha", 1.673_263_2)?,
            gamma: n.float("gamma", 1.050_701)?,
        },
        "Celu" => {
            let alpha = n.float("alpha", 1.0)?;
            if alpha == 0.0 {
                return Err(Error::model("Celu: attribute \"alpha\" must not be 0"));
            }
            A::Celu { alpha }
        }
        "ThresholdedRelu" => A::ThresholdedRelu {
            alpha: n.float("alpha", 1.0)?,
        },
        "HardSigmoid" => A::HardSigmoid {
            alpha: n.float("alpha", 0.2)?,
            beta: n.float("beta", 0.5)?,
        },
        "Gelu" => A::Gelu {
            tanh: match n.string("approximate", "none")?.as_str() {
                "none" => false,
                "tanh" => true,
                a => {
                    return Err(Error::model(format!(
                        "attribute \"approximate\" must be \"none\" or \"tanh\", got \"{a}\""
                    )))
                }
            },
        },
        "Swish" => A::Swish {
            alpha: n.float("alpha", 1.0)?,
        },
        "Shrink" => A::Shrink {
            bias: n.float("bias", 0.0)?,
            lambd: n.float("lambd", 0.5)?,
        },
        other => {
            return Err(Error::model(format!(
                "\"{other}\" is not an activation xnpu knows"
            )))
        }
    })
}

fn variadic(kind: V) -> Result<Op> {
    Ok(op(e::Op::Variadic(Variadic { kind })))
}

/// Clip: bounds are attributes before opset 11 (absent = no bound), inputs from 11 on.
fn clip(n: &mut NodeCtx<'_>) -> Result<Op> {
    let c = if n.opset() < 11 {
        Clip {
            min: n.opt_float("min")?,
            max: n.opt_float("max")?,
        }
    } else {
        Clip::default()
    };
    Ok(op(e::Op::Clip(c)))
}

fn swiglu(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(e::Op::SwiGlu(SwiGlu {
        alpha: n.float("alpha", 1.0)?,
    })))
}

fn is_inf(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(e::Op::IsInf(IsInf {
        detect_positive: n.int("detect_positive", 1)? != 0,
        detect_negative: n.int("detect_negative", 1)? != 0,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_1_type_names_are_read() {
        assert_eq!(dtype_by_onnx_name("FLOAT").unwrap(), DType::F32);
        assert_eq!(dtype_by_onnx_name("int64").unwrap(), DType::I64);
        let err = dtype_by_onnx_name("COMPLEX64").unwrap_err().to_string();
        assert!(
            err.contains("COMPLEX64") && err.contains("not supported"),
            "{err}"
        );
    }

    #[test]
    fn cast_1_type_names_are_the_table_s_onnx_names() {
        assert_eq!(dtype_by_onnx_name("float").unwrap(), DType::F32);
        assert_eq!(dtype_by_onnx_name("DOUBLE").unwrap(), DType::F64);
        assert_eq!(dtype_by_onnx_name("bfloat16").unwrap(), DType::Bf16);
        assert_eq!(dtype_by_onnx_name("int4").unwrap(), DType::I4);
        let err = dtype_by_onnx_name("complex64").unwrap_err().to_string();
        assert!(
            err.contains("\"complex64\" (attribute \"to\") is not supported"),
            "{err}"
        );
    }
}
