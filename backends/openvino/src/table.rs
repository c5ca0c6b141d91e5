//! The capability table: what this backend claims OpenVINO runs, kept beside the crate in
//! `capabilities.json` and proven against OpenVINO's CPU device by `tests/capabilities.rs`
//! (every claimed op compiles and matches the reference; every refused op has a reason).

use xnpu_core::Result;
use xnpu_graph::backend::{CapabilityTable, DeviceKind, NodeContext};
use xnpu_graph::Op;
use xnpu_ops::nn::{Op as Nn, PoolKind};

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
/// cannot express: checked before the table, with the reason `--explain` shows.
pub fn refused_configuration(cx: &NodeContext<'_>) -> Option<&'static str> {
    match &cx.node.op {
        Op::Nn(Nn::Pool(p)) if matches!(p.kind, PoolKind::Max { .. }) && p.window.ceil_mode => {
            Some(
                "ceil_mode=1: OpenVINO 2026.4.1 computes another output size \
             (test_maxpool_2d_ceil_output_size_reduce_by_one)",
            )
        }
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
