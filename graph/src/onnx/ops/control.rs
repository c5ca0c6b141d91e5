//! Import of control flow: If, Loop, Scan. Their bodies are imported as nested graphs that
//! may read values of the enclosing graphs (captures).

use xnpu_core::{Error, Result};

use super::{NodeCtx, Registry};
use crate::ir::{If, Loop, Op, Scan, SequenceMap};

pub fn register(r: &mut Registry) {
    r.add("", "If", 1, if_);
    r.add("", "Loop", 1, loop_);
    r.add("", "Scan", 9, scan);
    r.add("", "Scan", 8, scan8);
    r.add("", "SequenceMap", 17, sequence_map);
}

fn sequence_map(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(Op::SequenceMap(Box::new(SequenceMap {
        body: n.graph("body")?,
    })))
}

fn if_(n: &mut NodeCtx<'_>) -> Result<Op> {
    let then_branch = n.graph("then_branch")?;
    let else_branch = n.graph("else_branch")?;
    Ok(Op::If(Box::new(If {
        then_branch,
        else_branch,
    })))
}

fn loop_(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(Op::Loop(Box::new(Loop {
        body: n.graph("body")?,
    })))
}

fn scan(n: &mut NodeCtx<'_>) -> Result<Op> {
    let body = n.graph("body")?;
    let num_scan_inputs = n.int("num_scan_inputs", -1)?;
    // The scan inputs are among the node's inputs and the body's: the count is bounded by
    // what the model has, before anything is sized by it.
    let most = n.n_inputs().min(body.inputs.len());
    let m = usize::try_from(num_scan_inputs)
        .ok()
        .filter(|&m| (1..=most).contains(&m))
        .ok_or_else(|| {
            Error::model(format!(
                "attribute num_scan_inputs is {num_scan_inputs}; it must be from 1 to {most} \
                 (the node has {} inputs, its body {})",
                n.n_inputs(),
                body.inputs.len()
            ))
        })?;
    let n_scan_outputs = body.outputs.len().saturating_sub(body.inputs.len() - m);
    let listed = |name: &str, len: usize| -> Result<Option<Vec<i64>>> {
        match n.ints(name)? {
            Some(v) if v.len() != len => Err(Error::model(format!(
                "attribute {name} has {} entries, the node has {len} scan {}",
                v.len(),
                if name.contains("input") {
                    "inputs"
                } else {
                    "outputs"
                }
            ))),
            v => Ok(v),
        }
    };
    let dirs = |name: &str, len: usize| -> Result<Vec<bool>> {
        Ok(match listed(name, len)? {
            Some(v) => v.iter().map(|&d| d != 0).collect(),
            None => vec![false; len],
        })
    };
    let axes = |name: &str, len: usize| -> Result<Vec<i64>> {
        Ok(listed(name, len)?.unwrap_or_else(|| vec![0; len]))
    };
    Ok(Op::Scan(Box::new(Scan {
        num_scan_inputs: m,
        scan_input_reverse: dirs("scan_input_directions", m)?,
        scan_output_reverse: dirs("scan_output_directions", n_scan_outputs)?,
        scan_input_axes: axes("scan_input_axes", m)?,
        scan_output_axes: axes("scan_output_axes", n_scan_outputs)?,
        body,
        batched: false,
    })))
}

/// Scan-8: (sequence_lens?, state..., scan inputs...), a batch axis first (see
/// [`Scan`]'s `batched`).
fn scan8(n: &mut NodeCtx<'_>) -> Result<Op> {
    let body = n.graph("body")?;
    let num_scan_inputs = n.int("num_scan_inputs", -1)?;
    let explicit = n.n_inputs().saturating_sub(1);
    let most = explicit.min(body.inputs.len());
    let m = usize::try_from(num_scan_inputs)
        .ok()
        .filter(|&m| (1..=most).contains(&m))
        .ok_or_else(|| {
            Error::model(format!(
                "attribute num_scan_inputs is {num_scan_inputs}; it must be from 1 to {most} \
                 (the node has {explicit} inputs after sequence_lens, its body {})",
                body.inputs.len()
            ))
        })?;
    if explicit != body.inputs.len() {
        return Err(Error::model(format!(
            "the node has {explicit} states and scan inputs after sequence_lens, its body {} inputs",
            body.inputs.len()
        )));
    }
    if body.outputs.len() < body.inputs.len() - m {
        return Err(Error::model(format!(
            "the body returns {} outputs for {} states",
            body.outputs.len(),
            body.inputs.len() - m
        )));
    }
    let scan_input_reverse = match n.ints("directions")? {
        Some(v) if v.len() != m => {
            return Err(Error::model(format!(
                "attribute directions has {} entries for {m} scan inputs",
                v.len()
            )))
        }
        Some(v) => v.iter().map(|&d| d != 0).collect(),
        None => vec![false; m],
    };
    Ok(Op::Scan(Box::new(Scan {
        num_scan_inputs: m,
        scan_input_reverse,
        scan_output_reverse: Vec::new(),
        scan_input_axes: Vec::new(),
        scan_output_axes: Vec::new(),
        body,
        batched: true,
    })))
}
