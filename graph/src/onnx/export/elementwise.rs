//! Export of the `elementwise` family.

use xnpu_core::narrow::RoundMode;
use xnpu_core::DType;
use xnpu_ops::elementwise::{self as el, ActivationKind as A, BinaryKind as B};

use super::{
    a_bool, a_float, a_int, a_ints, a_str, scalar_of, AttributeProto, Emit, OnnxExport, R,
};

impl OnnxExport for el::Cast {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![to_attr(e, self.to)?];
        attrs.extend(cast_modes(e, self.saturate, self.round_mode)?);
        e.simple("Cast", attrs)
    }
}

impl OnnxExport for el::CastLike {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = cast_modes(e, self.saturate, self.round_mode)?;
        e.simple("CastLike", attrs)
    }
}

/// Cast's `saturate` (opset 19) and `round_mode` (opset 24), written only when not the
/// default (so a plain cast exports at any opset).
fn cast_modes(e: &Emit<'_>, saturate: bool, round_mode: RoundMode) -> R<Vec<AttributeProto>> {
    let mut attrs = vec![];
    if !saturate {
        e.need(19)?;
        attrs.push(a_int("saturate", 0));
    }
    if round_mode != RoundMode::Up {
        e.need(24)?;
        attrs.push(a_str("round_mode", round_mode.name()));
    }
    Ok(attrs)
}

impl OnnxExport for el::BitCast {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("BitCast", vec![a_int("to", self.to.onnx_code() as i64)])
    }
}

impl OnnxExport for el::Unary {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(self.kind.name(), vec![])
    }
}

impl OnnxExport for el::Activation {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = activation_attrs(self.kind, e.opset());
        e.simple(self.kind.name(), attrs)
    }
}

impl OnnxExport for el::Binary {
    fn export(&self, e: &mut Emit<'_>) -> R {
        binary(self, e)
    }
}

impl OnnxExport for el::Variadic {
    fn export(&self, e: &mut Emit<'_>) -> R {
        // Broadcasting between the inputs came with opset 8: before, their shapes are equal.
        let shape = |i| {
            e.in_type(i)
                .and_then(|t| t.tensor())
                .and_then(|t| t.shape.clone())
        };
        let first = shape(0);
        if first.is_none() || (1..e.n_given()).any(|i| shape(i) != first) {
            e.need(8)?;
        }
        e.simple(self.kind.name(), vec![])
    }
}

impl OnnxExport for el::Where {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Where", vec![])
    }
}

impl OnnxExport for el::PRelu {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("PRelu", vec![])
    }
}

impl OnnxExport for el::Clip {
    fn export(&self, e: &mut Emit<'_>) -> R {
        if self.min.is_none() && self.max.is_none() {
            if e.has(1) || e.has(2) {
                e.need(11)?;
            }
            return e.simple("Clip", vec![]);
        }
        let (ins, outs, dtype) = (vec![e.input(0)], e.outs.clone(), e.in_dtype(0));
        clip(e, ins, outs, self.min, self.max, dtype)
    }
}

impl OnnxExport for el::SwiGlu {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("SwiGLU", vec![a_float("alpha", self.alpha)])
    }
}

impl OnnxExport for el::BiasGelu {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.microsoft(self.op_name(), vec![])
    }
}

impl OnnxExport for el::IsNaN {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("IsNaN", vec![])
    }
}

impl OnnxExport for el::IsInf {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "IsInf",
            vec![
                a_bool("detect_positive", self.detect_positive),
                a_bool("detect_negative", self.detect_negative),
            ],
        )
    }
}

/// Cast's `to`: a type name before opset 6, a data type code after.
fn to_attr(e: &Emit<'_>, to: DType) -> R<AttributeProto> {
    if e.opset() >= 6 {
        return Ok(a_int("to", to.onnx_code() as i64));
    }
    Ok(a_str("to", to.row().onnx_name))
}

/// Clip of `ins[0]` to `[min, max]`: attributes before opset 11, constant inputs of the
/// input's dtype from 11.
pub(super) fn clip(
    e: &mut Emit<'_>,
    mut ins: Vec<String>,
    outs: Vec<String>,
    min: Option<f32>,
    max: Option<f32>,
    dtype: Option<DType>,
) -> R {
    if e.opset() < 11 {
        let mut attrs = vec![];
        if let Some(m) = min {
            attrs.push(a_float("min", m));
        }
        if let Some(m) = max {
            attrs.push(a_float("max", m));
        }
        return e.add("Clip", "", ins, outs, attrs);
    }
    let dtype = dtype.unwrap_or(DType::F32);
    ins.truncate(1);
    ins.push(match min {
        Some(m) => e.constant("min", &scalar_of(dtype, m as f64)?)?,
        None => String::new(),
    });
    if let Some(m) = max {
        ins.push(e.constant("max", &scalar_of(dtype, m as f64)?)?);
    }
    e.add("Clip", "", ins, outs, vec![])
}

/// The attributes of an activation.
pub(super) fn activation_attrs(kind: A, opset: i64) -> Vec<AttributeProto> {
    match kind {
        A::Sigmoid | A::Relu | A::HardSwish | A::Softplus | A::Softsign | A::Mish => vec![],
        A::LeakyRelu { alpha } | A::Elu { alpha } | A::Celu { alpha } => {
            vec![a_float("alpha", alpha)]
        }
        A::ThresholdedRelu { alpha } | A::Swish { alpha } => vec![a_float("alpha", alpha)],
        A::Selu { alpha, gamma } => vec![a_float("alpha", alpha), a_float("gamma", gamma)],
        A::HardSigmoid { alpha, beta } => vec![a_float("alpha", alpha), a_float("beta", beta)],
        A::Gelu { tanh } => {
            if tanh || opset >= 20 {
                vec![a_str("approximate", if tanh { "tanh" } else { "none" })]
            } else {
                vec![]
            }
        }
        A::Shrink { bias, lambd } => vec![a_float("bias", bias), a_float("lambd", lambd)],
    }
}

/// Ops that had `broadcast`/`axis` attributes in opsets 1–6.
fn had_legacy_broadcast(kind: B) -> bool {
    matches!(
        kind,
        B::Add
            | B::Sub
            | B::Mul
            | B::Div
            | B::Pow
            | B::And
            | B::Or
            | B::Xor
            | B::Equal
            | B::Less
            | B::Greater
    )
}

fn binary(b: &el::Binary, e: &mut Emit<'_>) -> R {
    let mut attrs = vec![];
    match b.kind {
        B::Mod { fmod } => attrs.push(a_int("fmod", fmod as i64)),
        B::BitShift { left } => attrs.push(a_str("direction", if left { "LEFT" } else { "RIGHT" })),
        _ => {}
    }
    if let Some(axis) = b.legacy_axis {
        e.at_most(
            6,
            &format!("{} with a legacy broadcast axis", b.kind.name()),
        )?;
        attrs.push(a_int("broadcast", 1));
        attrs.push(a_int("axis", axis));
    } else if e.opset() < 7 && had_legacy_broadcast(b.kind) {
        attrs.push(a_int("broadcast", 1));
    }
    e.simple(b.kind.name(), attrs)
}

impl OnnxExport for el::Random {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = match self.dist {
            el::Distribution::Uniform { low, high } => {
                vec![a_float("low", low), a_float("high", high)]
            }
            el::Distribution::Normal { mean, scale } => {
                vec![a_float("mean", mean), a_float("scale", scale)]
            }
        };
        if let Some(shape) = &self.shape {
            attrs.push(a_ints("shape", shape));
        }
        if let Some(d) = self.dtype {
            attrs.push(a_int("dtype", d.onnx_code() as i64));
        }
        if let Some(seed) = self.seed {
            attrs.push(a_float("seed", seed));
        }
        e.simple(xnpu_ops::OpDef::name(self), attrs)
    }
}

impl OnnxExport for el::Bernoulli {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![];
        if let Some(d) = self.dtype {
            attrs.push(a_int("dtype", d.onnx_code() as i64));
        }
        if let Some(seed) = self.seed {
            attrs.push(a_float("seed", seed));
        }
        e.simple("Bernoulli", attrs)
    }
}
