//! Import of the `reduce` family: reductions, softmax-like ops, normalizations, losses.

use xnpu_core::{Error, Result};
use xnpu_ops::reduce::{
    self as r, ArgReduce, BatchNorm, GroupNorm, InstanceNorm, LayerNorm, Loss, LossKind,
    LossReduction, LpNorm, Lrn, Mvn, Reduce, ReduceKind, RmsNorm, Softmax, SoftmaxKind,
};

use super::{NodeCtx, Registry};
use crate::ir::Op;

pub fn register(reg: &mut Registry) {
    reg.add("", "ReduceMax", 1, |n| reduce(n, ReduceKind::Max, 18));
    reg.add("", "ReduceMin", 1, |n| reduce(n, ReduceKind::Min, 18));
    reg.add("", "ReduceSum", 1, |n| reduce(n, ReduceKind::Sum, 13));
    reg.add("", "ReduceMean", 1, |n| reduce(n, ReduceKind::Mean, 18));
    reg.add("", "ReduceProd", 1, |n| reduce(n, ReduceKind::Prod, 18));
    reg.add("", "ReduceL1", 1, |n| reduce(n, ReduceKind::L1, 18));
    reg.add("", "ReduceL2", 1, |n| reduce(n, ReduceKind::L2, 18));
    reg.add("", "ReduceLogSum", 1, |n| reduce(n, ReduceKind::LogSum, 18));
    reg.add("", "ReduceLogSumExp", 1, |n| {
        reduce(n, ReduceKind::LogSumExp, 18)
    });
    reg.add("", "ReduceSumSquare", 1, |n| {
        reduce(n, ReduceKind::SumSquare, 18)
    });
    reg.add("", "ArgMax", 1, |n| arg(n, true));
    reg.add("", "ArgMin", 1, |n| arg(n, false));
    reg.add("", "Softmax", 1, |n| softmax(n, SoftmaxKind::Softmax));
    reg.add("", "LogSoftmax", 1, |n| softmax(n, SoftmaxKind::LogSoftmax));
    reg.add("", "Hardmax", 1, |n| softmax(n, SoftmaxKind::Hardmax));
    reg.add("", "LayerNormalization", 17, layer_norm);
    reg.add("", "RMSNormalization", 23, rms_norm);
    reg.add("", "BatchNormalization", 1, batch_norm);
    reg.add("", "InstanceNormalization", 1, instance_norm);
    reg.add("", "GroupNormalization", 18, group_norm);
    reg.add("", "LpNormalization", 1, lp_norm);
    reg.add("", "LRN", 1, lrn);
    reg.add("", "MeanVarianceNormalization", 9, mvn);
    reg.add("", "NegativeLogLikelihoodLoss", 12, |n| {
        loss(n, LossKind::NegativeLogLikelihood)
    });
    reg.add("", "SoftmaxCrossEntropyLoss", 12, |n| {
        loss(n, LossKind::SoftmaxCrossEntropy)
    });
}

fn op(o: r::Op) -> Op {
    Op::Reduce(o)
}

/// `axes_input_from`: the opset from which axes come as input 1 instead of an attribute.
fn reduce(n: &mut NodeCtx<'_>, kind: ReduceKind, axes_input_from: i64) -> Result<Op> {
    let axes = if n.opset() >= axes_input_from {
        if n.has_attr("axes") {
            return Err(Error::model(format!(
                "attribute \"axes\" is an input from opset {axes_input_from}"
            )));
        }
        None
    } else {
        Some(n.ints("axes")?.unwrap_or_default())
    };
    Ok(op(r::Op::Reduce(Reduce {
        kind,
        axes,
        keepdims: n.int("keepdims", 1)? != 0,
        noop_with_empty_axes: n.int("noop_with_empty_axes", 0)? != 0,
    })))
}

fn arg(n: &mut NodeCtx<'_>, max: bool) -> Result<Op> {
    Ok(op(r::Op::ArgReduce(ArgReduce {
        max,
        axis: n.int("axis", 0)?,
        keepdims: n.int("keepdims", 1)? != 0,
        select_last_index: n.int("select_last_index", 0)? != 0,
    })))
}

fn softmax(n: &mut NodeCtx<'_>, kind: SoftmaxKind) -> Result<Op> {
    let coerce_2d = n.opset() < 13;
    Ok(op(r::Op::Softmax(Softmax {
        kind,
        axis: n.int("axis", if coerce_2d { 1 } else { -1 })?,
        coerce_2d,
    })))
}

fn layer_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::LayerNorm(LayerNorm {
        axis: n.int("axis", -1)?,
        epsilon: n.float("epsilon", 1e-5)?,
        stash_f32: n.int("stash_type", 1)? == 1,
    })))
}

fn rms_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::RmsNorm(RmsNorm {
        axis: n.int("axis", -1)?,
        epsilon: n.float("epsilon", 1e-5)?,
    })))
}

fn batch_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    let training = if n.opset() >= 14 {
        n.int("training_mode", 0)? != 0
    } else if n.opset() >= 9 {
        false
    } else {
        // Opsets 1-7: is_test=0 with the extra outputs asked for means training.
        n.int("is_test", 0)? == 0 && n.n_outputs() > 1
    };
    Ok(op(r::Op::BatchNorm(BatchNorm {
        epsilon: n.float("epsilon", 1e-5)?,
        momentum: n.float("momentum", 0.9)?,
        training,
    })))
}

fn instance_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::InstanceNorm(InstanceNorm {
        epsilon: n.float("epsilon", 1e-5)?,
    })))
}

fn group_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    let g = n.req_int("num_groups")?;
    if g < 1 {
        return Err(Error::model(format!(
            "num_groups must be at least 1, got {g}"
        )));
    }
    Ok(op(r::Op::GroupNorm(GroupNorm {
        epsilon: n.float("epsilon", 1e-5)?,
        num_groups: g as usize,
        per_group_affine: n.opset() < 21,
    })))
}

fn lp_norm(n: &mut NodeCtx<'_>) -> Result<Op> {
    let p = n.int("p", 2)?;
    if p != 1 && p != 2 {
        return Err(Error::model(format!("p must be 1 or 2, got {p}")));
    }
    Ok(op(r::Op::LpNorm(LpNorm {
        axis: n.int("axis", -1)?,
        p,
    })))
}

fn lrn(n: &mut NodeCtx<'_>) -> Result<Op> {
    let size = n.req_int("size")?;
    if size < 1 {
        return Err(Error::model(format!("size must be at least 1, got {size}")));
    }
    Ok(op(r::Op::Lrn(Lrn {
        alpha: n.float("alpha", 1e-4)?,
        beta: n.float("beta", 0.75)?,
        bias: n.float("bias", 1.0)?,
        size: size as usize,
    })))
}

fn mvn(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(r::Op::Mvn(Mvn {
        axes: n.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]),
    })))
}

fn loss(n: &mut NodeCtx<'_>, kind: LossKind) -> Result<Op> {
    let reduction = match n.string("reduction", "mean")?.as_str() {
        "none" => LossReduction::None,
        "sum" => LossReduction::Sum,
        "mean" => LossReduction::Mean,
        other => {
            return Err(Error::model(format!(
                "reduction must be none, sum or mean, got \"{other}\""
            )))
        }
    };
    Ok(op(r::Op::Loss(Loss {
        kind,
        reduction,
        ignore_index: n.opt_int("ignore_index")?,
    })))
}
