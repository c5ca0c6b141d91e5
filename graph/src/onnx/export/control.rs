//! Export of control flow: If, Loop, Scan, SequenceMap. Bodies are exported in the scope of
//! the node; the values they capture are named as the outer values, so the node does not
//! list them as inputs.

use super::{a_graph, a_int, a_ints, Emit, Op, R};

pub(super) fn export(op: &Op, e: &mut Emit<'_>) -> R {
    match op {
        Op::If(o) => {
            let then_g = e.body(&o.then_branch)?;
            let else_g = e.body(&o.else_branch)?;
            e.simple(
                "If",
                vec![
                    a_graph("then_branch", then_g),
                    a_graph("else_branch", else_g),
                ],
            )
        }
        Op::Loop(o) => {
            // Loop's outputs are variadic, not optional: an unread one keeps a name (ONNX
            // Runtime 1.32 crashes on a Loop whose first output is "").
            name_unread_outputs(e);
            let body = e.body(&o.body)?;
            e.simple("Loop", vec![a_graph("body", body)])
        }
        Op::SequenceMap(o) => {
            let body = e.body(&o.body)?;
            e.simple("SequenceMap", vec![a_graph("body", body)])
        }
        Op::Scan(o) if o.batched => {
            // Later opsets have no sequence_lens nor batch axis: only opset 8 can say it.
            e.at_most(8, "a Scan of opset 8 (batch axis, sequence_lens)")?;
            name_unread_outputs(e);
            let body = e.body(&o.body)?;
            let flags: Vec<i64> = o.scan_input_reverse.iter().map(|&b| b as i64).collect();
            e.simple(
                "Scan",
                vec![
                    a_graph("body", body),
                    a_int("num_scan_inputs", o.num_scan_inputs as i64),
                    a_ints("directions", &flags),
                ],
            )
        }
        Op::Scan(o) => {
            e.need(9)?;
            name_unread_outputs(e);
            let body = e.body(&o.body)?;
            let flags = |v: &[bool]| v.iter().map(|&b| b as i64).collect::<Vec<_>>();
            let mut attrs = vec![
                a_graph("body", body),
                a_int("num_scan_inputs", o.num_scan_inputs as i64),
            ];
            if !o.scan_input_reverse.is_empty() {
                attrs.push(a_ints(
                    "scan_input_directions",
                    &flags(&o.scan_input_reverse),
                ));
            }
            if !o.scan_output_reverse.is_empty() {
                attrs.push(a_ints(
                    "scan_output_directions",
                    &flags(&o.scan_output_reverse),
                ));
            }
            if !o.scan_input_axes.is_empty() {
                attrs.push(a_ints("scan_input_axes", &o.scan_input_axes));
            }
            if !o.scan_output_axes.is_empty() {
                attrs.push(a_ints("scan_output_axes", &o.scan_output_axes));
            }
            e.simple("Scan", attrs)
        }
        _ => unreachable!("control::export is called for control-flow ops only"),
    }
}

/// Gives every output of the node that nothing reads (written "") a fresh name, up to the
/// last one the node has.
fn name_unread_outputs(e: &mut Emit<'_>) {
    for i in 0..e.outs.len() {
        if e.outs[i].is_empty() {
            e.outs[i] = e.fresh("unread");
        }
    }
}
