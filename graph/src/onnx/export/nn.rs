//! Export of the `nn` family. The fused ops (FusedConv, FusedGemm, MatMulBias) have no ONNX
//! form and are written as the standard ops they stand for.

use xnpu_ops::nn::{self as nn, AutoPad, FusedActivation, GlobalKind, PoolKind, Window};
use xnpu_ops::OpDef;

use super::super::ops::MAX_ONNX_OPSET;
use super::elementwise::{activation_attrs, clip};
use super::{a_float, a_int, a_str, a_usizes, AttributeProto, Emit, OnnxExport, R};

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

/// A fused activation as attributes of an op in xnpu's domain: `activation` (the name of
/// its own op) and that op's attributes (Clip's bounds as `min` and `max`).
fn fused_activation_attrs(act: FusedActivation) -> Vec<AttributeProto> {
    let mut a = vec![a_str("activation", act.name())];
    match act {
        FusedActivation::Activation(k) => a.extend(activation_attrs(k, MAX_ONNX_OPSET)),
        FusedActivation::Tanh => {}
        FusedActivation::Clip { min, max } => {
            a.push(a_float("min", min));
            a.push(a_float("max", max));
        }
    }
    a
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

impl OnnxExport for nn::MatMul {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("MatMul", vec![])
    }
}

impl OnnxExport for nn::MatMulInteger {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("MatMulInteger", vec![])
    }
}

impl OnnxExport for nn::QLinearMatMul {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("QLinearMatMul", vec![])
    }
}

impl OnnxExport for nn::Gemm {
    fn export(&self, e: &mut Emit<'_>) -> R {
        if e.n_given() < 3 {
            // C became optional in opset 11.
            e.need(11)?;
        }
        e.simple("Gemm", gemm_attrs(self))
    }
}

impl OnnxExport for nn::Conv {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Conv", conv_attrs(self))
    }
}

impl OnnxExport for nn::ConvInteger {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut a = window_attrs(&self.window, false);
        a.push(a_int("group", self.group as i64));
        e.simple("ConvInteger", a)
    }
}

impl OnnxExport for nn::QLinearConv {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut a = window_attrs(&self.window, false);
        a.push(a_int("group", self.group as i64));
        e.simple("QLinearConv", a)
    }
}

impl OnnxExport for nn::DeformConv {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut a = window_attrs(&self.window, false);
        a.push(a_int("group", self.group as i64));
        a.push(a_int("offset_group", self.offset_group as i64));
        e.simple("DeformConv", a)
    }
}

impl OnnxExport for nn::ConvTranspose {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut a = window_attrs(&self.window, false);
        a.push(a_int("group", self.group as i64));
        if !self.output_padding.is_empty() {
            a.push(a_usizes("output_padding", &self.output_padding));
        }
        if let Some(s) = &self.output_shape {
            a.push(a_usizes("output_shape", s));
        }
        e.simple("ConvTranspose", a)
    }
}

impl OnnxExport for nn::Pool {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut a = window_attrs(&self.window, true);
        match self.kind {
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
        let lp = matches!(self.kind, PoolKind::Lp { .. });
        if self.window.ceil_mode {
            e.need(if lp { 18 } else { 10 })?;
        }
        if !self.window.dilations.is_empty() {
            e.need(match self.kind {
                PoolKind::Average { .. } => 19,
                PoolKind::Max { .. } => 10,
                PoolKind::Lp { .. } => 18,
            })?;
        }
        if e.outs.len() > 1 && !e.output(1).is_empty() {
            // MaxPool's indices output.
            e.need(8)?;
        }
        e.simple(self.name(), a)
    }
}

impl OnnxExport for nn::GlobalPool {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let a = match self.kind {
            GlobalKind::Lp { p } => vec![lp_attr(o, p)],
            _ => vec![],
        };
        e.simple(self.name(), a)
    }
}

impl OnnxExport for nn::MaxUnpool {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut a = vec![a_usizes("kernel_shape", &self.kernel_shape)];
        if !self.strides.is_empty() {
            a.push(a_usizes("strides", &self.strides));
        }
        if !self.pads.is_empty() {
            a.push(a_usizes("pads", &self.pads));
        }
        e.simple("MaxUnpool", a)
    }
}

impl OnnxExport for nn::MaxRoiPool {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "MaxRoiPool",
            vec![
                a_usizes("pooled_shape", &self.pooled_shape),
                a_float("spatial_scale", self.spatial_scale),
            ],
        )
    }
}

impl OnnxExport for nn::QuantizeLinear {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut a = vec![];
        if o >= 13 {
            a.push(a_int("axis", self.axis));
        }
        if self.block_size != 0 {
            e.need(21)?;
            a.push(a_int("block_size", self.block_size as i64));
        }
        if !self.saturate {
            e.need(19)?;
            a.push(a_int("saturate", 0));
        }
        if let Some(d) = self.output_dtype {
            e.need(21)?;
            a.push(a_int("output_dtype", d.onnx_code() as i64));
        }
        if let Some(d) = self.precision {
            e.need(25)?;
            a.push(a_int("precision", d.onnx_code() as i64));
        }
        e.simple("QuantizeLinear", a)
    }
}

impl OnnxExport for nn::DequantizeLinear {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut a = vec![];
        if o >= 13 {
            a.push(a_int("axis", self.axis));
        }
        if self.block_size != 0 {
            e.need(21)?;
            a.push(a_int("block_size", self.block_size as i64));
        }
        if let Some(d) = self.output_dtype {
            e.need(23)?;
            a.push(a_int("output_dtype", d.onnx_code() as i64));
        }
        e.simple("DequantizeLinear", a)
    }
}

impl OnnxExport for nn::DynamicQuantizeLinear {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("DynamicQuantizeLinear", vec![])
    }
}

impl OnnxExport for nn::Einsum {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Einsum", vec![a_str("equation", &self.equation)])
    }
}

impl OnnxExport for nn::Col2Im {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut a = vec![];
        if !self.dilations.is_empty() {
            a.push(a_usizes("dilations", &self.dilations));
        }
        if !self.pads.is_empty() {
            a.push(a_usizes("pads", &self.pads));
        }
        if !self.strides.is_empty() {
            a.push(a_usizes("strides", &self.strides));
        }
        e.simple("Col2Im", a)
    }
}

impl OnnxExport for nn::Det {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Det", vec![])
    }
}

impl OnnxExport for nn::CausalConvWithState {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "CausalConvWithState",
            vec![a_str("activation", if self.silu { "silu" } else { "none" })],
        )
    }
}

/// A base op followed by an activation: one node of xnpu's domain in the exact form, else
/// the base op (`base` with `attrs`, on the node's inputs) into a fresh value and the
/// activation from it to the node's output.
fn export_fused(
    e: &mut Emit<'_>,
    fused: &str,
    base: (&str, Vec<AttributeProto>),
    act: FusedActivation,
) -> R {
    let (base, attrs) = base;
    if e.exact() {
        let mut attrs = attrs;
        attrs.extend(fused_activation_attrs(act));
        return e.xnpu(fused, attrs);
    }
    let tmp = e.fresh(&base.to_ascii_lowercase());
    let (ins, y) = (e.ins.clone(), e.output(0));
    e.add(base, "", ins, vec![tmp.clone()], attrs)?;
    fused_activation(e, act, tmp, y)
}

impl OnnxExport for nn::FusedConv {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let base = ("Conv", conv_attrs(&self.conv));
        export_fused(e, "FusedConv", base, self.activation)
    }
}

impl OnnxExport for nn::FusedGemm {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let base = ("Gemm", gemm_attrs(&self.gemm));
        export_fused(e, "FusedGemm", base, self.activation)
    }
}

impl OnnxExport for nn::MatMulBias {
    fn export(&self, e: &mut Emit<'_>) -> R {
        if e.exact() {
            let attrs = self
                .activation
                .map(fused_activation_attrs)
                .unwrap_or_default();
            return e.xnpu("MatMulBias", attrs);
        }
        let prod = e.fresh("matmul");
        let (a, b, bias, y) = (e.input(0), e.input(1), e.input(2), e.output(0));
        e.add("MatMul", "", vec![a, b], vec![prod.clone()], vec![])?;
        match self.activation {
            None => e.add("Add", "", vec![prod, bias], vec![y], vec![]),
            Some(act) => {
                let sum = e.fresh("add");
                e.add("Add", "", vec![prod, bias], vec![sum.clone()], vec![])?;
                fused_activation(e, act, sum, y)
            }
        }
    }
}

impl OnnxExport for nn::MatMulNBits {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.microsoft(
            "MatMulNBits",
            vec![
                a_int("K", self.k as i64),
                a_int("N", self.n as i64),
                a_int("bits", self.bits as i64),
                a_int("block_size", self.block_size as i64),
                a_int("accuracy_level", self.accuracy_level as i64),
            ],
        )
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
