//! Export of the `nn` family. The fused ops (FusedConv, FusedGemm, MatMulBias) have no ONNX
//! form and are written as the standard ops they stand for.

use xnpu_ops::nn::{self as nn, AutoPad, FusedActivation, GlobalKind, PoolKind, Window};

use super::elementwise::{activation_attrs, clip};
use super::{a_float, a_int, a_str, a_usizes, AttributeProto, Emit, R};

fn window_attrs(w: &Window, pool: bool) -> Vec<AttributeProto> {
    let mut a = vec![];
    if let Some(k) = &w.kernel_shape {
        a.push(a_usizes("kernel_shape", k));
    }
    if !w.strides.is_empty() {
        a.push(a_usizes("strides", &w.strides));
    }
    if !w.pads.is_empty() && w.auto_pad == AutoPad::NotSet {
        a.push(a_usizes("pads", &w.pads));
    }
    if !w.dilations.is_empty() {
        a.push(a_usizes("dilations", &w.dilations));
    }
    let auto = match w.auto_pad {
        AutoPad::NotSet => None,
        AutoPad::SameUpper => Some("SAME_UPPER"),
        AutoPad::SameLower => Some("SAME_LOWER"),
        AutoPad::Valid => Some("VALID"),
    };
    if let Some(s) = auto {
        a.push(a_str("auto_pad", s));
    }
    if pool && w.ceil_mode {
        a.push(a_int("ceil_mode", 1));
    }
    a
}

fn conv_attrs(c: &nn::Conv) -> Vec<AttributeProto> {
    let mut a = window_attrs(&c.window, false);
    a.push(a_int("group", c.group as i64));
    a
}

fn gemm_attrs(g: &nn::Gemm) -> Vec<AttributeProto> {
    vec![
        a_float("alpha", g.alpha),
        a_float("beta", g.beta),
        a_int("transA", g.trans_a as i64),
        a_int("transB", g.trans_b as i64),
    ]
}

/// Writes `activation(x)` into `y`.
fn fused_activation(e: &mut Emit<'_>, act: FusedActivation, x: String, y: String) -> R {
    let dtype = e.out_dtype(0);
    match act {
        FusedActivation::Activation(k) => {
            let attrs = activation_attrs(k, e.opset());
            e.add(k.name(), "", vec![x], vec![y], attrs)
        }
        FusedActivation::Tanh => e.add("Tanh", "", vec![x], vec![y], vec![]),
        FusedActivation::Clip { min, max } => {
            clip(e, vec![x], vec![y], Some(min), Some(max), dtype)
        }
    }
}

pub(super) fn export(op: &nn::Op, e: &mut Emit<'_>) -> R {
    let o = e.opset();
    match op {
        nn::Op::MatMul(_) => e.simple("MatMul", vec![]),
        nn::Op::MatMulInteger(_) => e.simple("MatMulInteger", vec![]),
        nn::Op::MatMulNBits(m) => e.microsoft(
            "MatMulNBits",
            vec![
                a_int("K", m.k as i64),
                a_int("N", m.n as i64),
                a_int("bits", m.bits as i64),
                a_int("block_size", m.block_size as i64),
                a_int("accuracy_level", m.accuracy_level as i64),
            ],
        ),
        nn::Op::QLinearMatMul(_) => e.simple("QLinearMatMul", vec![]),
        nn::Op::Gemm(g) => {
            if e.n_given() < 3 {
                // C became optional in opset 11.
                e.need(11)?;
            }
            e.simple("Gemm", gemm_attrs(g))
        }
        nn::Op::Conv(c) => e.simple("Conv", conv_attrs(c)),
        nn::Op::ConvInteger(c) => {
            let mut a = window_attrs(&c.window, false);
            a.push(a_int("group", c.group as i64));
            e.simple("ConvInteger", a)
        }
        nn::Op::QLinearConv(c) => {
            let mut a = window_attrs(&c.window, false);
            a.push(a_int("group", c.group as i64));
            e.simple("QLinearConv", a)
        }
        nn::Op::DeformConv(c) => {
            let mut a = window_attrs(&c.window, false);
            a.push(a_int("group", c.group as i64));
            a.push(a_int("offset_group", c.offset_group as i64));
            e.simple("DeformConv", a)
        }
        nn::Op::ConvTranspose(c) => {
            let mut a = window_attrs(&c.window, false);
            a.push(a_int("group", c.group as i64));
            if !c.output_padding.is_empty() {
                a.push(a_usizes("output_padding", &c.output_padding));
            }
            if let Some(s) = &c.output_shape {
                a.push(a_usizes("output_shape", s));
            }
            e.simple("ConvTranspose", a)
        }
        nn::Op::Pool(p) => {
            let mut a = window_attrs(&p.window, true);
            match p.kind {
                PoolKind::Average { count_include_pad } => {
                    if count_include_pad {
                        e.need(7)?;
                        a.push(a_int("count_include_pad", 1));
                    }
                }
                PoolKind::Max { column_major } => {
                    if column_major {
                        e.need(8)?;
                        a.push(a_int("storage_order", 1));
                    }
                }
                PoolKind::Lp { p } => a.push(lp_attr(o, p)),
            }
            let lp = matches!(p.kind, PoolKind::Lp { .. });
            if p.window.ceil_mode {
                e.need(if lp { 18 } else { 10 })?;
            }
            if !p.window.dilations.is_empty() {
                e.need(match p.kind {
                    PoolKind::Average { .. } => 19,
                    PoolKind::Max { .. } => 10,
                    PoolKind::Lp { .. } => 18,
                })?;
            }
            if e.outs.len() > 1 && !e.output(1).is_empty() {
                // MaxPool's indices output.
                e.need(8)?;
            }
            e.simple(p.name(), a)
        }
        nn::Op::GlobalPool(g) => {
            let a = match g.kind {
                GlobalKind::Lp { p } => vec![lp_attr(o, p)],
                _ => vec![],
            };
            e.simple(g.name(), a)
        }
        nn::Op::MaxUnpool(m) => {
            let mut a = vec![a_usizes("kernel_shape", &m.kernel_shape)];
            if !m.strides.is_empty() {
                a.push(a_usizes("strides", &m.strides));
            }
            if !m.pads.is_empty() {
                a.push(a_usizes("pads", &m.pads));
            }
            e.simple("MaxUnpool", a)
        }
        nn::Op::MaxRoiPool(m) => e.simple(
            "MaxRoiPool",
            vec![
                a_usizes("pooled_shape", &m.pooled_shape),
                a_float("spatial_scale", m.spatial_scale),
            ],
        ),
        nn::Op::QuantizeLinear(q) => {
            let mut a = vec![];
            if o >= 13 {
                a.push(a_int("axis", q.axis));
            }
            if q.block_size != 0 {
                e.need(21)?;
                a.push(a_int("block_size", q.block_size as i64));
            }
            if !q.saturate {
                e.need(19)?;
                a.push(a_int("saturate", 0));
            }
            if let Some(d) = q.output_dtype {
                e.need(21)?;
                a.push(a_int("output_dtype", d.onnx_code() as i64));
            }
            if let Some(d) = q.precision {
                e.need(25)?;
                a.push(a_int("precision", d.onnx_code() as i64));
            }
            e.simple("QuantizeLinear", a)
        }
        nn::Op::DequantizeLinear(q) => {
            let mut a = vec![];
            if o >= 13 {
                a.push(a_int("axis", q.axis));
            }
            if q.block_size != 0 {
                e.need(21)?;
                a.push(a_int("block_size", q.block_size as i64));
            }
            if let Some(d) = q.output_dtype {
                e.need(23)?;
                a.push(a_int("output_dtype", d.onnx_code() as i64));
            }
            e.simple("DequantizeLinear", a)
        }
        nn::Op::DynamicQuantizeLinear(_) => e.simple("DynamicQuantizeLinear", vec![]),
        nn::Op::Einsum(x) => e.simple("Einsum", vec![a_str("equation", &x.equation)]),
        nn::Op::Col2Im(c) => {
            let mut a = vec![];
            if !c.dilations.is_empty() {
                a.push(a_usizes("dilations", &c.dilations));
            }
            if !c.pads.is_empty() {
                a.push(a_usizes("pads", &c.pads));
            }
            if !c.strides.is_empty() {
                a.push(a_usizes("strides", &c.strides));
            }
            e.simple("Col2Im", a)
        }
        nn::Op::Det(_) => e.simple("Det", vec![]),
        nn::Op::CausalConvWithState(c) => e.simple(
            "CausalConvWithState",
            vec![a_str("activation", if c.silu { "silu" } else { "none" })],
        ),
        nn::Op::FusedConv(f) => {
            let tmp = e.fresh("conv");
            let (ins, y) = (e.ins.clone(), e.output(0));
            e.add("Conv", "", ins, vec![tmp.clone()], conv_attrs(&f.conv))?;
            fused_activation(e, f.activation, tmp, y)
        }
        nn::Op::FusedGemm(f) => {
            let tmp = e.fresh("gemm");
            let (ins, y) = (e.ins.clone(), e.output(0));
            e.add("Gemm", "", ins, vec![tmp.clone()], gemm_attrs(&f.gemm))?;
            fused_activation(e, f.activation, tmp, y)
        }
        nn::Op::MatMulBias(m) => {
            let prod = e.fresh("matmul");
            let (a, b, bias, y) = (e.input(0), e.input(1), e.input(2), e.output(0));
            e.add("MatMul", "", vec![a, b], vec![prod.clone()], vec![])?;
            match m.activation {
                None => e.add("Add", "", vec![prod, bias], vec![y], vec![]),
                Some(act) => {
                    let sum = e.fresh("add");
                    e.add("Add", "", vec![prod, bias], vec![sum.clone()], vec![])?;
                    fused_activation(e, act, sum, y)
                }
            }
        }
    }
}

/// The Lp pools' `p`: a FLOAT in opset 1, an INT from opset 2.
fn lp_attr(opset: i64, p: f64) -> AttributeProto {
    if opset < 2 {
        a_float("p", p as f32)
    } else {
        a_int("p", p.round() as i64)
    }
}
