//! Export of FlexAttention: one `ai.onnx.preview` node, its modifiers exported as bodies in
//! the node's scope (the values they capture named as the outer values).

use super::{a_float, a_graph, a_int, Emit, R};
use crate::ir::FlexAttention;

pub(super) fn export(o: &FlexAttention, e: &mut Emit<'_>) -> R {
    let mut attrs = vec![];
    if let Some(s) = o.scale {
        attrs.push(a_float("scale", s));
    }
    if let Some(d) = o.softmax_precision {
        attrs.push(a_int("softmax_precision", d.onnx_code() as i64));
    }
    for (name, g) in o.modifiers() {
        let body = e.body(g)?;
        attrs.push(a_graph(name, body));
    }
    e.in_domain("FlexAttention", "ai.onnx.preview", attrs)
}
