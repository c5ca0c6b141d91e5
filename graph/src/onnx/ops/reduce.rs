//! Import of the `reduce` family: reductions, arg-reductions, softmax-like ops,
//! normalizations and losses. Opset differences (axes attribute → input, softmax's 2-D
//! coercion, BatchNormalization's training outputs) are settled here.

use xnpu_core::{DType, Error, Result};
use xnpu_ops::reduce::{
    self as r, ArgKind, ArgReduce, BatchNormalization, GroupNormalization, InstanceNormalization,
    LayerNormalization, LossReduction, LpNormalization, Lrn, MeanVarianceNormalization,
    NegativeLogLikelihoodLoss, Reduce, ReduceKind, RmsNormalization, Softmax,
    SoftmaxCrossEntropyLoss, SoftmaxKind,
};

use super::{contrib, NodeCtx, OnnxImport, Registry, MS};
use crate::ir::Op;
use crate::onnx::XNPU_DOMAIN;

impl OnnxImport for xnpu_ops::reduce::Reduce {
    fn register(r: &mut Registry) {
        r.add("", "ReduceMax", 1, reduce_max);
        r.add("", "ReduceMin", 1, reduce_min);
        r.add("", "ReduceSum", 1, reduce_sum);
        r.add("", "ReduceMean", 1, reduce_mean);
        r.add("", "ReduceProd", 1, reduce_prod);
        r.add("", "ReduceL1", 1, reduce_l1);
        r.add("", "ReduceL2", 1, reduce_l2);
        r.add("", "ReduceLogSum", 1, reduce_log_sum);
        r.add("", "ReduceLogSumExp", 1, reduce_log_sum_exp);
        r.add("", "ReduceSumSquare", 1, reduce_sum_square);
    }
}

impl OnnxImport for xnpu_ops::reduce::ArgReduce {
    fn register(r: &mut Registry) {
        r.add("", "ArgMax", 1, arg_max);
        r.add("", "ArgMin", 1, arg_min);
    }
}

impl OnnxImport for xnpu_ops::reduce::Softmax {
    fn register(r: &mut Registry) {
        r.add("", "Softmax", 1, softmax);
        r.add("", "LogSoftmax", 1, log_softmax);
        r.add("", "Hardmax", 1, hardmax);
        // Opsets 1-12's 2-D coercion, written for another xnpu (Form::Exact) at a later opset.
        r.add(XNPU_DOMAIN, "Softmax", 1, |n| {
            coerced(n, SoftmaxKind::Softmax)
        });
        r.add(XNPU_DOMAIN, "LogSoftmax", 1, |n| {
            coerced(n, SoftmaxKind::LogSoftmax)
        });
        r.add(XNPU_DOMAIN, "Hardmax", 1, |n| {
            coerced(n, SoftmaxKind::Hardmax)
        });
    }
}

impl OnnxImport for xnpu_ops::reduce::LayerNormalization {
    fn register(r: &mut Registry) {
        r.add("", "LayerNormalization", 17, layer_normalization);
    }
}

impl OnnxImport for xnpu_ops::reduce::RmsNormalization {
    fn register(r: &mut Registry) {
        // ONNX Runtime registers SimplifiedLayerNormalization in the default domain.
        r.add(
            "",
            "SimplifiedLayerNormalization",
            1,
            contrib::simplified_layer_norm,
        );
        r.add(
            MS,
            "SimplifiedLayerNormalization",
            1,
            contrib::simplified_layer_norm,
        );
        r.add("", "RMSNormalization", 23, rms_normalization);
    }
}

impl OnnxImport for xnpu_ops::reduce::SkipNormalization {
    fn register(r: &mut Registry) {
        r.add(MS, "SkipLayerNormalization", 1, contrib::skip_layer_norm);
        r.add(
            MS,
            "SkipSimplifiedLayerNormalization",
            1,
            contrib::skip_simplified_layer_norm,
        );
    }
}

impl OnnxImport for xnpu_ops::reduce::BatchNormalization {
    fn register(r: &mut Registry) {
        r.add("", "BatchNormalization", 1, batch_normalization);
    }
}

impl OnnxImport for xnpu_ops::reduce::InstanceNormalization {
    fn register(r: &mut Registry) {
        r.add("", "InstanceNormalization", 1, instance_normalization);
    }
}

impl OnnxImport for xnpu_ops::reduce::GroupNormalization {
    fn register(r: &mut Registry) {
        r.add("", "GroupNormalization", 18, group_normalization);
    }
}

impl OnnxImport for xnpu_ops::reduce::LpNormalization {
    fn register(r: &mut Registry) {
        r.add("", "LpNormalization", 1, lp_normalization);
    }
}

impl OnnxImport for xnpu_ops::reduce::Lrn {
    fn register(r: &mut Registry) {
        r.add("", "LRN", 1, lrn);
    }
}

impl OnnxImport for xnpu_ops::reduce::MeanVarianceNormalization {
    fn register(r: &mut Registry) {
        r.add(
            "",
            "MeanVarianceNormalization",
            9,
            mean_variance_normalization,
        );
    }
}

impl OnnxImport for xnpu_ops::reduce::NegativeLogLikelihoodLoss {
    fn register(r: &mut Registry) {
        r.add("", "NegativeLogLikelihoodLoss", 12, nll_loss);
    }
}

impl OnnxImport for xnpu_ops::reduce::SoftmaxCrossEntropyLoss {
    fn register(r: &mut Registry) {
        r.add("", "SoftmaxCrossEntropyLoss", 12, sce_loss);
    }
}

fn op(o: r::Op) -> Op {
    Op::Reduce(o)
}

/// A 0/1 INT attribute as a bool.
fn flag(n: &NodeCtx<'_>, name: &str, default: bool) -> Result<bool> {
    match n.int(name, default as i64)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Error::model(format!(
            "attribute \"{name}\" must be 0 or 1, got {v}"
        ))),
    }
}

/// The opset from which each reduction takes its axes as input 1 instead of an attribute.
fn axes_input_since(kind: ReduceKind) -> i64 {
    match kind {
        ReduceKind::Sum => 13,
        _ => 18,
    }
}

fn reduce(n: &mut NodeCtx<'_>, kind: ReduceKind) -> Result<Op> {
    let keepdims = flag(n, "keepdims", true)?;
    let o = if n.opset() >= axes_input_since(kind) {
        if n.has_attr("axes") {
            return Err(Error::model(format!(
                "{} from opset {} takes axes as input 1, not as an attribute",
                kind.op_name(),
                axes_input_since(kind)
            )));
        }
        Reduce {
            kind,
            axes: None,
            keepdims,
            noop_with_empty_axes: flag(n, "noop_with_empty_axes", false)?,
        }
    } else {
        Reduce {
            kind,
            axes: Some(n.ints("axes")?.unwrap_or_default()),
            keepdims,
            noop_with_empty_axes: false,
        }
    };
    Ok(op(r::Op::Reduce(o)))
}

fn reduce_max(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::Max)
}
fn reduce_min(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::Min)
}
fn reduce_sum(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::Sum)
}
fn reduce_mean(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::Mean)
}
fn reduce_prod(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::Prod)
}
fn reduce_l1(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::L1)
}
fn reduce_l2(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::L2)
}
fn reduce_log_sum(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::LogSum)
}
fn reduce_log_sum_exp(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::LogSumExp)
}
fn reduce_sum_square(n: &mut NodeCtx<'_>) -> Result<Op> {
    reduce(n, ReduceKind::SumSquare)
}

fn arg_reduce(n: &mut NodeCtx<'_>, kind: ArgKind) -> Result<Op> {
    Ok(op(r::Op::ArgReduce(ArgReduce {
        kind,
        axis: n.int("axis", 0)?,
        keepdims: flag(n, "keepdims", true)?,
        // Added in opset 12; always false before.
        select_last_index: flag(n, "select_last_index", false)?,
    })))
}

fn arg_max(n: &mut NodeCtx<'_>) -> Result<Op> {
    arg_reduce(n, ArgKind::Max)
}
fn arg_min(n: &mut NodeCtx<'_>) -> Result<Op> {
    arg_reduce(n, ArgKind::Min)
}

fn softmax_like(n: &mut NodeCtx<'_>, kind: SoftmaxKind) -> Result<Op> {
    // Before opset 13 the input is coerced to 2-D at `axis` (default 1); from 13 the op runs
    // along the single dim `axis` (default -1).
    let coerce_2d = n.opset() < 13;
    let axis = n.int("axis", if coerce_2d { 1 } else { -1 })?;
    Ok(op(r::Op::Softmax(Softmax {
        kind,
        axis,
        coerce_2d,
    })))
}

/// A softmax-like op in xnpu's domain: `axis` and `coerce_2d` given.
fn coerced(n: &mut NodeCtx<'_>, kind: SoftmaxKind) -> Result<Op> {
    Ok(op(r::Op::Softmax(Softmax {
        kind,
        axis: n.int("axis", 1)?,
        coerce_2d: n.int("coerce_2d", 1)? != 0,
    })))
}

fn softmax(n: &mut NodeCtx<'_>) -> Result<Op> {
    softmax_like(n, SoftmaxKind::Softmax)
}
fn log_softmax(n: &mut NodeCtx<'_>) -> Result<Op> {
    softmax_like(n, SoftmaxKind::LogSoftmax)
}
fn hardmax(n: &mut NodeCtx<'_>) -> Result<Op> {
    softmax_like(n, SoftmaxKind::Hardmax)
}

/// The `stash_type` attribute (an ONNX dtype code, default 1 = float32).
fn stash_type(n: &NodeCtx<'_>) -> Result<DType> {
    let code = n.int("stash_type", 1)?;
    match i32::try_from(code).ok().map(DType::from_onnx) {
        Some(Ok(d)) if d.is_float() => Ok(d),
        _ => Err(Error::model(format!(
            "attribute \"stash_type\" must be a float data type code, got {code}"
        ))),
    }
}

fn layer_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::LayerNormalization(LayerNormalization {
        axis: n.int("axis", -1)?,
        epsilon: n.float("epsilon", 1e-5)?,
        stash_type: stash_type(n)?,
    })))
}

fn rms_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::RmsNormalization(RmsNormalization {
        axis: n.int("axis", -1)?,
        epsilon: n.float("epsilon", 1e-5)?,
        stash_type: stash_type(n)?,
    })))
}

fn batch_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    if n.opset() < 9 && n.int("spatial", 1)? == 0 {
        return Err(Error::unsupported(
            "BatchNormalization with spatial=0 (per-activation statistics) is not supported",
        ));
    }
    // From opset 14 the attribute says; before, the op trains when it has the statistics
    // outputs (running mean and var, saved mean and var).
    let training_mode = if n.opset() >= 14 {
        flag(n, "training_mode", false)?
    } else {
        (1..n.n_outputs()).any(|i| n.has_output(i))
    };
    Ok(op(r::Op::BatchNormalization(BatchNormalization {
        epsilon: n.float("epsilon", 1e-5)?,
        momentum: n.float("momentum", 0.9)?,
        training_mode,
    })))
}

fn instance_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::InstanceNormalization(InstanceNormalization {
        epsilon: n.float("epsilon", 1e-5)?,
    })))
}

fn group_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    let num_groups = n.req_int("num_groups")?;
    if num_groups < 1 {
        return Err(Error::model(format!(
            "attribute \"num_groups\" must be at least 1, got {num_groups}"
        )));
    }
    Ok(op(r::Op::GroupNormalization(GroupNormalization {
        num_groups,
        epsilon: n.float("epsilon", 1e-5)?,
        // Opset 18 scales and shifts per group; 21 per channel.
        scale_per_group: n.opset() < 21,
    })))
}

fn lp_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    let p = n.int("p", 2)?;
    if p != 1 && p != 2 {
        return Err(Error::model(format!(
            "attribute \"p\" must be 1 or 2, got {p}"
        )));
    }
    Ok(op(r::Op::LpNormalization(LpNormalization {
        axis: n.int("axis", -1)?,
        p,
    })))
}

fn lrn(n: &mut NodeCtx<'_>) -> Result<Op> {
    let size = n.req_int("size")?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s >= 1)
        .ok_or_else(|| {
            Error::model(format!("attribute \"size\" must be at least 1, got {size}"))
        })?;
    Ok(op(r::Op::Lrn(Lrn {
        alpha: n.float("alpha", 1e-4)?,
        beta: n.float("beta", 0.75)?,
        bias: n.float("bias", 1.0)?,
        size,
    })))
}

fn mean_variance_normalization(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::MeanVarianceNormalization(
        MeanVarianceNormalization {
            axes: n.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]),
        },
    )))
}

fn loss_reduction(n: &NodeCtx<'_>) -> Result<LossReduction> {
    match n.string("reduction", "mean")?.as_str() {
        "none" => Ok(LossReduction::None),
        "sum" => Ok(LossReduction::Sum),
        "mean" => Ok(LossReduction::Mean),
        other => Err(Error::model(format!(
            "attribute \"reduction\" must be \"none\", \"sum\" or \"mean\", got \"{other}\""
        ))),
    }
}

fn nll_loss(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::NegativeLogLikelihoodLoss(
        NegativeLogLikelihoodLoss {
            reduction: loss_reduction(n)?,
            ignore_index: n.opt_int("ignore_index")?,
        },
    )))
}

fn sce_loss(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::SoftmaxCrossEntropyLoss(
        SoftmaxCrossEntropyLoss {
            reduction: loss_reduction(n)?,
            ignore_index: n.opt_int("ignore_index")?,
        },
    )))
}
