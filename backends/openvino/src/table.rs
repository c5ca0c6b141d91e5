//! The capability table: what this backend claims OpenVINO runs, kept beside the crate in
//! `capabilities.json` and proven against OpenVINO's CPU device by `tests/capabilities.rs`
//! (every claimed op compiles and matches the reference; every refused op has a reason).

use xnpu_core::Result;
use xnpu_graph::backend::{CapabilityTable, DeviceKind};

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
