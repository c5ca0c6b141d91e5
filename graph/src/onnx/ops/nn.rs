//! Import of the `nn` family: matrix products, convolutions, pools, quantization, einsum.

use xnpu_core::{DType, Error, Result};
use xnpu_ops::nn::{self as nn, AutoPad, FusedActivation, GlobalKind, PoolKind, Window};

use super::{contrib, NodeCtx, OnnxImport, Registry, MS};
use crate::ir::Op;
use crate::onnx::XNPU_DOMAIN;

impl OnnxImport for xnpu_ops::nn::MatMul {
    fn register(r: &mut Registry) {
        r.add("", "MatMul", 1, matmul);
    }
}

impl OnnxImport for xnpu_ops::nn::MatMulInteger {
    fn register(r: &mut Registry) {
        r.add("", "MatMulInteger", 10, matmul_integer);
    }
}

impl OnnxImport for xnpu_ops::nn::QLinearMatMul {
    fn register(r: &mut Registry) {
        r.add("", "QLinearMatMul", 10, qlinear_matmul);
    }
}

impl OnnxImport for xnpu_ops::nn::Gemm {
    fn register(r: &mut Registry) {
        r.add("", "Gemm", 1, gemm);
    }
}

impl OnnxImport for xnpu_ops::nn::Conv {
    fn register(r: &mut Registry) {
        r.add("", "Conv", 1, conv);
    }
}

impl OnnxImport for xnpu_ops::nn::ConvInteger {
    fn register(r: &mut Registry) {
        r.add("", "ConvInteger", 10, conv_integer);
    }
}

impl OnnxImport for xnpu_ops::nn::QLinearConv {
    fn register(r: &mut Registry) {
        r.add("", "QLinearConv", 10, qlinear_conv);
    }
}

impl OnnxImport for xnpu_ops::nn::DeformConv {
    fn register(r: &mut Registry) {
        r.add("", "DeformConv", 19, deform_conv);
    }
}

impl OnnxImport for xnpu_ops::nn::ConvTranspose {
    fn register(r: &mut Registry) {
        r.add("", "ConvTranspose", 1, conv_transpose);
    }
}

impl OnnxImport for xnpu_ops::nn::Pool {
    fn register(r: &mut Registry) {
        r.add("", "AveragePool", 1, average_pool);
        r.add("", "MaxPool", 1, max_pool);
        r.add("", "LpPool", 1, lp_pool);
    }
}

impl OnnxImport for xnpu_ops::nn::GlobalPool {
    fn register(r: &mut Registry) {
        r.add("", "GlobalAveragePool", 1, global_average_pool);
        r.add("", "GlobalMaxPool", 1, global_max_pool);
        r.add("", "GlobalLpPool", 1, global_lp_pool);
    }
}

impl OnnxImport for xnpu_ops::nn::MaxUnpool {
    fn register(r: &mut Registry) {
        r.add("", "MaxUnpool", 9, max_unpool);
    }
}

impl OnnxImport for xnpu_ops::nn::MaxRoiPool {
    fn register(r: &mut Registry) {
        r.add("", "MaxRoiPool", 1, max_roi_pool);
    }
}

impl OnnxImport for xnpu_ops::nn::QuantizeLinear {
    fn register(r: &mut Registry) {
        r.add("", "QuantizeLinear", 10, quantize_linear);
    }
}

impl OnnxImport for xnpu_ops::nn::DequantizeLinear {
    fn register(r: &mut Registry) {
        r.add("", "DequantizeLinear", 10, dequantize_linear);
    }
}

impl OnnxImport for xnpu_ops::nn::DynamicQuantizeLinear {
    fn register(r: &mut Registry) {
        r.add("", "DynamicQuantizeLinear", 11, dynamic_quantize_linear);
    }
}

impl OnnxImport for xnpu_ops::nn::Einsum {
    fn register(r: &mut Registry) {
        r.add("", "Einsum", 12, einsum);
    }
}

impl OnnxImport for xnpu_ops::nn::Col2Im {
    fn register(r: &mut Registry) {
        r.add("", "Col2Im", 18, col2im);
    }
}

impl OnnxImport for xnpu_ops::nn::Det {
    fn register(r: &mut Registry) {
        r.add("", "Det", 11, det);
    }
}

impl OnnxImport for xnpu_ops::nn::CausalConvWithState {
    fn register(r: &mut Registry) {
        r.add("", "CausalConvWithState", 27, causal_conv_with_state);
    }
}

impl OnnxImport for xnpu_ops::nn::FusedConv {
    fn register(r: &mut Registry) {
        // Made by the fusion passes; read back in xnpu's own domain only (Form::Exact).
        r.add(XNPU_DOMAIN, "FusedConv", 1, xnpu_fused_conv);
    }
}

impl OnnxImport for xnpu_ops::nn::FusedGemm {
    fn register(r: &mut Registry) {
        // Made by the fusion passes; read back in xnpu's own domain only (Form::Exact).
        r.add(XNPU_DOMAIN, "FusedGemm", 1, xnpu_fused_gemm);
    }
}

impl OnnxImport for xnpu_ops::nn::MatMulBias {
    fn register(r: &mut Registry) {
        // Made by the fusion passes; read back in xnpu's own domain only (Form::Exact).
        r.add(XNPU_DOMAIN, "MatMulBias", 1, xnpu_matmul_bias);
    }
}

impl OnnxImport for xnpu_ops::nn::MatMulNBits {
    fn register(r: &mut Registry) {
        r.add(MS, "MatMulNBits", 1, contrib::matmul_nbits);
    }
}

fn op(o: nn::Op) -> Op {
    Op::Nn(o)
}

/// An INTS attribute of non-negative values (empty when absent).
fn usizes(n: &NodeCtx<'_>, name: &str) -> Result<Vec<usize>> {
    let v = n.ints(name)?.unwrap_or_default();
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| {
                Error::model(format!(
                    "attribute \"{name}\" must not be negative, got {v:?}"
                ))
            })
        })
        .collect()
}

/// A positive INT attribute.
fn positive(n: &NodeCtx<'_>, name: &str, default: i64) -> Result<usize> {
    let v = n.int(name, default)?;
    if v < 1 {
        return Err(Error::model(format!(
            "attribute \"{name}\" must be positive, got {v}"
        )));
    }
    usize::try_from(v).map_err(|_| Error::model(format!("attribute \"{name}\" is too large")))
}

/// A data type given as an INT attribute (0 = not set).
fn dtype_attr(n: &NodeCtx<'_>, name: &str) -> Result<Option<DType>> {
    match n.int(name, 0)? {
        0 => Ok(None),
        code => DType::from_onnx_code(code)
            .map(Some)
            .map_err(|e| e.context(format!("attribute \"{name}\""))),
    }
}

/// The window attributes of a conv or pool; `kernel_required` for pools.
fn window(n: &NodeCtx<'_>, kernel_required: bool) -> Result<Window> {
    let kernel_shape = match n.ints("kernel_shape")? {
        Some(_) => Some(usizes(n, "kernel_shape")?),
        None if kernel_required => {
            return Err(Error::model(
                "required attribute \"kernel_shape\" is missing",
            ))
        }
        None => None,
    };
    let w = Window {
        kernel_shape,
        strides: usizes(n, "strides")?,
        pads: usizes(n, "pads")?,
        dilations: usizes(n, "dilations")?,
        auto_pad: AutoPad::parse(&n.string("auto_pad", "NOTSET")?)?,
        ceil_mode: n.int("ceil_mode", 0)? != 0,
    };
    w.validate()?;
    Ok(w)
}

fn matmul(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::MatMul(nn::MatMul)))
}

fn matmul_integer(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::MatMulInteger(nn::MatMulInteger)))
}

fn qlinear_matmul(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::QLinearMatMul(nn::QLinearMatMul)))
}

fn gemm_of(n: &NodeCtx<'_>) -> Result<nn::Gemm> {
    Ok(nn::Gemm {
        alpha: n.float("alpha", 1.0)?,
        beta: n.float("beta", 1.0)?,
        trans_a: n.int("transA", 0)? != 0,
        trans_b: n.int("transB", 0)? != 0,
    })
}

fn gemm(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::Gemm(gemm_of(n)?)))
}

fn conv_of(n: &NodeCtx<'_>) -> Result<nn::Conv> {
    Ok(nn::Conv {
        window: window(n, false)?,
        group: positive(n, "group", 1)?,
    })
}

fn conv(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::Conv(conv_of(n)?)))
}

/// The activation of a fused op in xnpu's domain: `activation` names its op, whose own
/// attributes follow (Clip's bounds as `min` and `max`).
fn fused_activation(n: &NodeCtx<'_>) -> Result<FusedActivation> {
    Ok(match n.string("activation", "")?.as_str() {
        "Tanh" => FusedActivation::Tanh,
        "Clip" => FusedActivation::Clip {
            min: n.float("min", f32::MIN)?,
            max: n.float("max", f32::MAX)?,
        },
        name => FusedActivation::Activation(super::elementwise::activation_kind(name, n)?),
    })
}

fn xnpu_fused_conv(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::FusedConv(nn::FusedConv {
        conv: conv_of(n)?,
        activation: fused_activation(n)?,
    })))
}

fn xnpu_fused_gemm(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::FusedGemm(nn::FusedGemm {
        gemm: gemm_of(n)?,
        activation: fused_activation(n)?,
    })))
}

fn xnpu_matmul_bias(n: &mut NodeCtx<'_>) -> Result<Op> {
    let activation = match n.string("activation", "")?.as_str() {
        "" => None,
        _ => Some(fused_activation(n)?),
    };
    Ok(op(nn::Op::MatMulBias(nn::MatMulBias { activation })))
}

fn conv_integer(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::ConvInteger(nn::ConvInteger {
        window: window(n, false)?,
        group: positive(n, "group", 1)?,
    })))
}

fn qlinear_conv(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::QLinearConv(nn::QLinearConv {
        window: window(n, false)?,
        group: positive(n, "group", 1)?,
    })))
}

fn deform_conv(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::DeformConv(nn::DeformConv {
        window: window(n, false)?,
        group: positive(n, "group", 1)?,
        offset_group: positive(n, "offset_group", 1)?,
    })))
}

fn conv_transpose(n: &mut NodeCtx<'_>) -> Result<Op> {
    let output_shape = match n.ints("output_shape")? {
        Some(_) => Some(usizes(n, "output_shape")?),
        None => None,
    };
    Ok(op(nn::Op::ConvTranspose(nn::ConvTranspose {
        window: window(n, false)?,
        group: positive(n, "group", 1)?,
        output_padding: usizes(n, "output_padding")?,
        output_shape,
    })))
}

fn pool(n: &NodeCtx<'_>, kind: PoolKind) -> Result<Op> {
    Ok(op(nn::Op::Pool(nn::Pool {
        kind,
        window: window(n, true)?,
    })))
}

fn average_pool(n: &mut NodeCtx<'_>) -> Result<Op> {
    let count_include_pad = n.int("count_include_pad", 0)? != 0;
    pool(n, PoolKind::Average { count_include_pad })
}

fn max_pool(n: &mut NodeCtx<'_>) -> Result<Op> {
    let column_major = match n.int("storage_order", 0)? {
        0 => false,
        1 => true,
        v => {
            return Err(Error::model(format!(
                "storage_order must be 0 (row major) or 1 (column major), got {v}"
            )))
        }
    };
    pool(n, PoolKind::Max { column_major })
}

/// The `p` attribute of the Lp pools: a FLOAT in opset 1, an INT from opset 2.
fn lp_p(n: &NodeCtx<'_>) -> Result<f64> {
    let p = if n.opset() < 2 {
        n.float("p", 2.0)? as f64
    } else {
        n.int("p", 2)? as f64
    };
    if p <= 0.0 || !p.is_finite() {
        return Err(Error::model(format!("p must be positive, got {p}")));
    }
    Ok(p)
}

fn lp_pool(n: &mut NodeCtx<'_>) -> Result<Op> {
    let p = lp_p(n)?;
    pool(n, PoolKind::Lp { p })
}

fn global_average_pool(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::GlobalPool(nn::GlobalPool {
        kind: GlobalKind::Average,
    })))
}

fn global_max_pool(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::GlobalPool(nn::GlobalPool {
        kind: GlobalKind::Max,
    })))
}

fn global_lp_pool(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::GlobalPool(nn::GlobalPool {
        kind: GlobalKind::Lp { p: lp_p(n)? },
    })))
}

fn max_unpool(n: &mut NodeCtx<'_>) -> Result<Op> {
    let kernel_shape = usizes(n, "kernel_shape")?;
    if kernel_shape.is_empty() || kernel_shape.contains(&0) {
        return Err(Error::model(format!(
            "kernel_shape must be given and positive, got {kernel_shape:?}"
        )));
    }
    let strides = usizes(n, "strides")?;
    let pads = usizes(n, "pads")?;
    let k = kernel_shape.len();
    if strides.contains(&0) || !(strides.is_empty() || strides.len() == k) {
        return Err(Error::model(format!(
            "strides must be {k} positive values, got {strides:?}"
        )));
    }
    if !(pads.is_empty() || pads.len() == 2 * k) {
        return Err(Error::model(format!(
            "pads must have {} values, got {pads:?}",
            2 * k
        )));
    }
    Ok(op(nn::Op::MaxUnpool(nn::MaxUnpool {
        kernel_shape,
        strides,
        pads,
    })))
}

fn max_roi_pool(n: &mut NodeCtx<'_>) -> Result<Op> {
    let ps = usizes(n, "pooled_shape")?;
    if ps.len() != 2 || ps.contains(&0) {
        return Err(Error::model(format!(
            "pooled_shape must be 2 positive values, got {ps:?}"
        )));
    }
    Ok(op(nn::Op::MaxRoiPool(nn::MaxRoiPool {
        pooled_shape: [ps[0], ps[1]],
        spatial_scale: n.float("spatial_scale", 1.0)?,
    })))
}

fn block_size(n: &NodeCtx<'_>) -> Result<usize> {
    let b = n.int("block_size", 0)?;
    usize::try_from(b)
        .map_err(|_| Error::model(format!("block_size must not be negative, got {b}")))
}

fn quantize_linear(n: &mut NodeCtx<'_>) -> Result<Op> {
    let output_dtype = dtype_attr(n, "output_dtype")?;
    let precision = dtype_attr(n, "precision")?;
    if let Some(p) = precision {
        if !p.is_float() {
            return Err(Error::model(format!(
                "precision must be a float type, got {p}"
            )));
        }
    }
    Ok(op(nn::Op::QuantizeLinear(nn::QuantizeLinear {
        axis: n.int("axis", 1)?,
        block_size: block_size(n)?,
        saturate: n.int("saturate", 1)? != 0,
        output_dtype,
        precision,
    })))
}

fn dequantize_linear(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::DequantizeLinear(nn::DequantizeLinear {
        axis: n.int("axis", 1)?,
        block_size: block_size(n)?,
        output_dtype: dtype_attr(n, "output_dtype")?,
    })))
}

fn dynamic_quantize_linear(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::DynamicQuantizeLinear(nn::DynamicQuantizeLinear)))
}

fn einsum(n: &mut NodeCtx<'_>) -> Result<Op> {
    let eq = n
        .opt_string("equation")?
        .ok_or_else(|| Error::model("required attribute \"equation\" is missing"))?;
    Ok(op(nn::Op::Einsum(nn::Einsum::parse(&eq)?)))
}

fn col2im(n: &mut NodeCtx<'_>) -> Result<Op> {
    let o = nn::Col2Im {
        dilations: usizes(n, "dilations")?,
        pads: usizes(n, "pads")?,
        strides: usizes(n, "strides")?,
    };
    if o.dilations.contains(&0) || o.strides.contains(&0) {
        return Err(Error::model(format!(
            "strides {:?} and dilations {:?} must be positive",
            o.strides, o.dilations
        )));
    }
    Ok(op(nn::Op::Col2Im(o)))
}

fn det(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(nn::Op::Det(nn::Det)))
}

fn causal_conv_with_state(n: &mut NodeCtx<'_>) -> Result<Op> {
    let silu = match n.string("activation", "none")?.as_str() {
        "none" => false,
        "silu" | "swish" => true,
        a => {
            return Err(Error::model(format!(
                "activation must be \"none\", \"silu\" or \"swish\", got \"{a}\""
            )))
        }
    };
    Ok(op(nn::Op::CausalConvWithState(nn::CausalConvWithState {
        silu,
    })))
}
