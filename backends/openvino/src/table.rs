//! The capability table: what this backend claims OpenVINO runs, kept beside the crate in
//! `capabilities.json` and proven against OpenVINO's CPU device by `tests/capabilities.rs`
//! (every claimed op compiles and matches the reference; every refused op has a reason).

use xnpu_core::shape::normalize_axis;
use xnpu_core::{Result, ValueType};
use xnpu_graph::backend::{CapabilityTable, DeviceKind, NodeContext};
use xnpu_graph::Op;
use xnpu_ops::nn::{Op as Nn, PoolKind};
use xnpu_ops::reduce::{Op as Rd, Reduce, ReduceKind};
use xnpu_ops::tensor::{Op as Tn, PadMode};

/// The table as committed.
pub const TABLE_JSON: &str = include_str!("../capabilities.json");

/// What Intel's NPU computes on: FP16 hardware that takes f32/f16 models (run as f16) and
/// u8/i8-quantised ones; integer index tensors for shapes and gathers (OpenVINO's
/// documentation; no NPU was at hand to measure).
const NPU_DTYPES: &[&str] = &["f32", "f16", "i8", "u8", "i32", "i64", "bool"];

/// The table for one device. The NPU adds its constraints: static shapes only, and the
/// dtypes above.
pub fn capability_table(name: &str, kind: DeviceKind) -> Result<CapabilityTable> {
    let mut t = CapabilityTable::from_json(TABLE_JSON)?;
    t.name = name.to_string();
    t.kind = kind;
    if kind == DeviceKind::Npu {
        t.static_shapes = true;
        t.dtypes = Some(NPU_DTYPES.iter().map(|s| s.to_string()).collect());
    }
    Ok(t)
}

/// Configurations of claimed ops that OpenVINO gets wrong, which a table keyed by op name
/// cannot express: checked before the table, with the reason `--explain` shows. The backend
/// suite (`tests/backend_suite`) found most of them.
pub fn refused_configuration(cx: &NodeContext<'_>) -> Option<&'static str> {
    if has_empty_tensor(cx) {
        return Some(
            "a tensor with a dim of 0: OpenVINO 2026.4.1 stops the process (SIGFPE, SIGSEGV) or \
             computes other shapes on empty tensors (backend suite: Expand, Transpose, Gather, \
             Flatten, Gemm, MatMul, Max)",
        );
    }
    let no_ov_type = cx.typed_values().into_iter().any(|(_, ty)| {
        ty.tensor().is_some_and(|t| {
            t.dtype != xnpu_core::DType::String && crate::tensor::ov_type(t.dtype).is_none()
        })
    });
    if no_ov_type {
        return Some(
            "a tensor of a type OpenVINO has no element type for (float8 E4M3FNUZ/E5M2FNUZ, \
             INT2/UINT2)",
        );
    }
    match &cx.node.op {
        Op::Nn(Nn::Pool(p)) if matches!(p.kind, PoolKind::Max { .. }) && p.window.ceil_mode => {
            Some(
                "ceil_mode=1: OpenVINO 2026.4.1 computes another output size \
             (test_maxpool_2d_ceil_output_size_reduce_by_one)",
            )
        }
        Op::Nn(Nn::Pool(p))
            if p.kind
                == (PoolKind::Average {
                    count_include_pad: true,
                })
                && p.window.ceil_mode =>
        {
            Some(
                "ceil_mode=1 with count_include_pad=1: OpenVINO 2026.4.1 divides a window past \
                 the end by its whole size, the reference by the positions in the input or its \
                 padding (backend suite)",
            )
        }
        Op::Reduce(Rd::Reduce(r))
            if r.noop_with_empty_axes && transforms(r.kind) && no_axes(cx, r) =>
        {
            Some(
                "noop_with_empty_axes with no axes: OpenVINO 2026.4.1 returns the input, where \
                 ONNX Runtime and onnx's reference still square it, take its magnitude or its log \
                 (backend suite)",
            )
        }
        Op::Tensor(Tn::Pad(p)) if p.mode == PadMode::Wrap => {
            Some("mode wrap: OpenVINO 2026.4.1's ONNX frontend has no wrap padding")
        }
        Op::Tensor(Tn::Expand(_)) if known_len(cx, 1) == Some(0) => Some(
            "Expand to a scalar (an empty shape input): OpenVINO 2026.4.1 gives shape [1] \
             (backend suite)",
        ),
        Op::Tensor(Tn::Split(sp)) if sp.num_outputs.is_some() && !splits_evenly(cx, sp) => Some(
            "Split into num_outputs parts of a dim that is not known to divide evenly: \
             OpenVINO 2026.4.1 takes only even splits (backend suite)",
        ),
        // Measured: a scale computed by the graph's own nodes makes OpenVINO's x / scale land on the
        // other side of a .5 rounding boundary (178 for 179); constant scales match.
        Op::Nn(Nn::QuantizeLinear(_))
            if cx.node.inputs.get(1).copied().flatten().is_some_and(|s| {
                cx.graph.values[s].constant.is_none() && !cx.graph.inputs.contains(&s)
            }) =>
        {
            Some(
                "a scale computed by the model's nodes: OpenVINO 2026.4.1 rounds x / scale to a \
                 neighbouring integer at .5 boundaries (test_dynamicquantizelinear_expanded)",
            )
        }
        _ => None,
    }
}

/// Whether a reduction changes an element on its own (what a no-op reduction still does).
fn transforms(kind: ReduceKind) -> bool {
    matches!(
        kind,
        ReduceKind::L1
            | ReduceKind::L2
            | ReduceKind::LogSum
            | ReduceKind::LogSumExp
            | ReduceKind::SumSquare
    )
}

/// Whether a reduction has no axes, or may have none (axes computed at run time).
fn no_axes(cx: &NodeContext<'_>, r: &Reduce) -> bool {
    match &r.axes {
        Some(a) => a.is_empty(),
        None => known_len(cx, 1).is_none_or(|n| n == 0),
    }
}

/// The known dims of a value (a constant's, or its type's numbers).
fn known_dims(cx: &NodeContext<'_>, id: usize) -> Option<Vec<usize>> {
    let v = &cx.graph.values[id];
    if let Some(c) = &v.constant {
        return Some(c.shape().to_vec());
    }
    match &v.ty {
        ValueType::Tensor(t) => t.shape.as_ref()?.as_known(),
        _ => None,
    }
}

/// Whether any value the node reads or writes has a known dim of 0.
fn has_empty_tensor(cx: &NodeContext<'_>) -> bool {
    let dims_of = |id: usize| -> Vec<Option<usize>> {
        let v = &cx.graph.values[id];
        if let Some(c) = &v.constant {
            return c.shape().iter().map(|&d| Some(d)).collect();
        }
        match &v.ty {
            ValueType::Tensor(t) => t
                .shape
                .as_ref()
                .map(|s| s.0.iter().map(|d| d.known()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    cx.node
        .inputs
        .iter()
        .chain(&cx.node.outputs)
        .flatten()
        .any(|&id| dims_of(id).contains(&Some(0)))
}

/// The element count of input `k` when its dims are known.
fn known_len(cx: &NodeContext<'_>, k: usize) -> Option<usize> {
    let id = cx.node.inputs.get(k).copied().flatten()?;
    Some(known_dims(cx, id)?.iter().product())
}

/// Whether a Split into `num_outputs` parts has a known dim that the parts divide evenly.
fn splits_evenly(cx: &NodeContext<'_>, sp: &xnpu_ops::tensor::Split) -> bool {
    let (Some(n), Some(x)) = (sp.num_outputs, cx.node.inputs.first().copied().flatten()) else {
        return false;
    };
    let Some(dims) = known_dims(cx, x) else {
        return false;
    };
    normalize_axis(sp.axis, dims.len()).is_ok_and(|a| n > 0 && dims[a] % n == 0)
}
