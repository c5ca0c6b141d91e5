//! Control-flow ops. They hold graphs, so they live beside the IR rather than in `ops`.

use super::{Graph, ValueId};

/// A value of an enclosing graph read by a body: the body's value `inner` is bound, at run
/// time, to input `outer_input` of the node that owns the body.
#[derive(Clone, Debug, PartialEq)]
pub struct Capture {
    pub name: String,
    pub inner: ValueId,
    pub outer_input: usize,
}

/// If (ONNX opsets 1, 11, 13, 16, 19, 21, 23): runs `then_branch` when the single-element
/// boolean condition is true, else `else_branch`; the node's outputs are the branch's outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct If {
    pub then_branch: Graph,
    pub else_branch: Graph,
}

/// Loop (ONNX opsets 1, 11, 13, 16, 19, 21, 23): inputs are (max trip count M?, condition?,
/// loop-carried v_initial...). The body takes (iteration number, condition, carried...) and
/// returns (condition, carried..., scan outputs...). The node returns the final carried
/// values, then each scan output stacked along a new first axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    pub body: Graph,
}

/// SequenceMap (ONNX opset 17): runs `body` once per element of the first input sequence.
/// Each additional input is passed whole when it is a tensor and element by element when it
/// is a sequence (of the same length). Output k is the sequence of the body's k-th outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceMap {
    pub body: Graph,
}

/// Scan (ONNX opsets 8, 9, 11, 16, 19, 21, 23). Opset ≥ 9 form: inputs are (state...,
/// scan inputs...); the body runs once per slice along each scan input's axis.
///
/// Opset 8 form (`batched`): inputs are (sequence_lens?, state..., scan inputs...), where
/// every state has a leading batch axis and every scan input is `[batch, sequence, ...]`; the
/// scan runs once per batch entry `b` over the first `sequence_lens[b]` slices of axis 1 (all
/// of them without `sequence_lens`; reversed within those for a reverse input). Outputs: the
/// final states `[batch, ...]` and the scan outputs `[batch, sequence, ...]`, zero past an
/// entry's length. The axes lists are empty and `scan_input_reverse` holds `directions`.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub body: Graph,
    pub num_scan_inputs: usize,
    /// Per scan input: false forward, true reverse.
    pub scan_input_reverse: Vec<bool>,
    pub scan_output_reverse: Vec<bool>,
    /// Per scan input, the (possibly negative) axis that is scanned.
    pub scan_input_axes: Vec<i64>,
    pub scan_output_axes: Vec<i64>,
    /// The opset 8 form (see above).
    pub batched: bool,
}
