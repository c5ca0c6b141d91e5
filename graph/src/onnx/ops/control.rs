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
    if num_scan_inputs < 1 {
        return Err(Error::model("attribute num_scan_inputs must be at least 1"));
    }
    let m = num_scan_inputs as usize;
    let n_scan_outputs = body
        .outputs
        .len()
        .saturating_sub(body.inputs.len() - m.min(body.inputs.len()));
    let dirs = |name: &str, len: usize| -> Result<Vec<bool>> {
        Ok(match n.ints(name)? {
            Some(v) => v.iter().map(|&d| d != 0).collect(),
            None => vec![false; len],
        })
    };
    let axes = |name: &str, len: usize| -> Result<Vec<i64>> {
        Ok(n.ints(name)?.unwrap_or_else(|| vec![0; len]))
    };
    Ok(Op::Scan(Box::new(Scan {
        num_scan_inputs: m,
        scan_input_reverse: dirs("scan_input_directions", m)?,
        scan_output_reverse: dirs("scan_output_directions", n_scan_outputs)?,
        scan_input_axes: axes("scan_input_axes", m)?,
        scan_output_axes: axes("scan_output_axes", n_scan_outputs)?,
        body,
    })))
}

fn scan8(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Err(Error::unsupported(
        "Scan of opset 8 (with a batch axis and sequence_lens) is not supported; re-export with opset 9 or later",
    ))
}
