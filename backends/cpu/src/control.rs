//! Control flow: If, Loop, Scan and SequenceMap run their bodies with the interpreter.

use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Result, Tensor, Value, ValueType};
use xnpu_graph::ir::{Graph, If, Loop, Scan, SequenceMap};
use xnpu_linalg::buf;

use crate::args::{opt_tensor, tensor};
use crate::exec::run_graph;

/// The values a body captures, taken from the node's extra inputs.
pub(crate) fn captured(body: &Graph, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    body.captures
        .iter()
        .map(|c| {
            inputs
                .get(c.outer_input)
                .copied()
                .flatten()
                .cloned()
                .ok_or_else(|| Error::compute(format!("captured value \"{}\" is absent", c.name)))
        })
        .collect()
}

fn scalar_bool(t: &Tensor, what: &str) -> Result<bool> {
    if t.len() != 1 {
        return Err(Error::compute(format!(
            "{what} must have one element, got shape {:?}",
            t.shape()
        )));
    }
    Ok(t.to_f64_vec()?[0] != 0.0)
}

pub fn run_if(op: &If, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let cond = scalar_bool(tensor(inputs, 0)?, "the condition")?;
    let branch = if cond {
        &op.then_branch
    } else {
        &op.else_branch
    };
    run_graph(branch, &[], &captured(branch, inputs)?)
        .map_err(|e| e.context(if cond { "then_branch" } else { "else_branch" }))
}

pub fn run_loop(op: &Loop, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let body = &op.body;
    if body.inputs.len() < 2 {
        return Err(Error::model(
            "a Loop body needs at least 2 inputs (iteration, condition)",
        ));
    }
    let n_carried = body.inputs.len() - 2;
    let n_scan = body
        .outputs
        .len()
        .checked_sub(1 + n_carried)
        .ok_or_else(|| Error::model("a Loop body returns fewer outputs than it carries"))?;
    let max_trip = match opt_tensor(inputs, 0)? {
        Some(t) => Some(t.to_i64_vec()?.first().copied().unwrap_or(0)),
        None => None,
    };
    let has_cond = inputs.get(1).copied().flatten().is_some();
    let mut cond = match opt_tensor(inputs, 1)? {
        Some(t) => scalar_bool(t, "the loop condition")?,
        None => true,
    };
    let mut carried: Vec<Value> = (0..n_carried)
        .map(|k| {
            inputs
                .get(2 + k)
                .copied()
                .flatten()
                .cloned()
                .ok_or_else(|| Error::compute(format!("loop-carried input {k} is absent")))
        })
        .collect::<Result<_>>()?;
    let caps = captured(body, inputs)?;
    let mut scans: Vec<Vec<Tensor>> = vec![Vec::new(); n_scan];
    let mut i: i64 = 0;
    while max_trip.is_none_or(|m| i < m) && cond {
        // A cancelled run or one past its time stops here, whatever the body holds.
        xnpu_core::run::check().map_err(|e| e.context(format!("iteration {i}")))?;
        let mut args = Vec::with_capacity(body.inputs.len());
        args.push(Some(Value::Tensor(Tensor::scalar(i))));
        args.push(Some(Value::Tensor(Tensor::scalar(cond))));
        args.extend(carried.iter().cloned().map(Some));
        let mut outs =
            run_graph(body, &args, &caps).map_err(|e| e.context(format!("iteration {i}")))?;
        let rest = outs.split_off(1);
        if has_cond {
            cond = scalar_bool(outs[0].as_tensor()?, "the body's condition")?;
        }
        let mut rest = rest.into_iter();
        carried = rest.by_ref().take(n_carried).collect();
        for (k, v) in rest.enumerate() {
            scans[k].push(
                v.into_tensor()
                    .map_err(|e| e.context(format!("scan output {k}")))?,
            );
        }
        i += 1;
        if max_trip.is_none() && !has_cond {
            return Err(Error::model(
                "a Loop with neither trip count nor condition never ends",
            ));
        }
    }
    let mut result = carried;
    for (k, items) in scans.into_iter().enumerate() {
        let out = body.outputs[1 + n_carried + k];
        result.push(Value::Tensor(stack(&items, &body.values[out].ty)?));
    }
    Ok(result)
}

/// The number of states a Scan carries (its body's inputs less its scan inputs), checked
/// against the body's outputs, which return them first.
fn scan_states(op: &Scan) -> Result<usize> {
    let body = &op.body;
    let n_state = body
        .inputs
        .len()
        .checked_sub(op.num_scan_inputs)
        .ok_or_else(|| Error::model("num_scan_inputs is larger than the body's inputs"))?;
    if body.outputs.len() < n_state {
        return Err(Error::model(
            "the Scan body returns fewer outputs than its state",
        ));
    }
    Ok(n_state)
}

pub fn run_scan(op: &Scan, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    if op.batched {
        return run_scan8(op, inputs);
    }
    let body = &op.body;
    let m = op.num_scan_inputs;
    let n_state = scan_states(op)?;
    let state: Vec<Value> = (0..n_state)
        .map(|i| crate::args::input(inputs, i).cloned())
        .collect::<Result<_>>()?;
    let scan_in: Vec<&Tensor> = (0..m)
        .map(|j| tensor(inputs, n_state + j))
        .collect::<Result<_>>()?;
    let mut axes = Vec::with_capacity(m);
    let mut len = None;
    for (j, t) in scan_in.iter().enumerate() {
        let axis = normalize_axis(op.scan_input_axes.get(j).copied().unwrap_or(0), t.rank())?;
        let l = t.shape()[axis];
        if *len.get_or_insert(l) != l {
            return Err(Error::compute(format!(
                "scan inputs have different lengths ({} and {l})",
                len.unwrap_or(0)
            )));
        }
        axes.push(axis);
    }
    let len = len.unwrap_or(0);
    let caps = captured(body, inputs)?;
    let (state, outs) = scan_steps(
        body,
        &caps,
        state,
        &scan_in,
        &axes,
        &op.scan_input_reverse,
        len,
    )?;
    let mut result = state;
    for (k, mut items) in outs.into_iter().enumerate() {
        if op.scan_output_reverse.get(k).copied().unwrap_or(false) {
            items.reverse();
        }
        let out = body.outputs[n_state + k];
        let stacked = stack(&items, &body.values[out].ty)?;
        let axis = op.scan_output_axes.get(k).copied().unwrap_or(0);
        let axis = normalize_axis(axis, stacked.rank())?;
        result.push(Value::Tensor(move_axis0(&stacked, axis)?));
    }
    Ok(result)
}

/// The states and scan outputs of one scan: `len` steps over `scan_in` (each scanned along
/// its axis in `axes`, the first `len` slices, reversed within those where `reverse` says).
/// The body returns at least `state.len()` outputs ([`scan_states`]).
fn scan_steps(
    body: &Graph,
    caps: &[Value],
    mut state: Vec<Value>,
    scan_in: &[&Tensor],
    axes: &[usize],
    reverse: &[bool],
    len: usize,
) -> Result<(Vec<Value>, Vec<Vec<Tensor>>)> {
    let n_state = state.len();
    let k_out = body.outputs.len().saturating_sub(n_state);
    let mut outs: Vec<Vec<Tensor>> = vec![Vec::new(); k_out];
    for step in 0..len {
        xnpu_core::run::check().map_err(|e| e.context(format!("step {step}")))?;
        let mut args: Vec<Option<Value>> = state.iter().cloned().map(Some).collect();
        for (j, t) in scan_in.iter().enumerate() {
            let idx = if reverse.get(j).copied().unwrap_or(false) {
                len - 1 - step
            } else {
                step
            };
            args.push(Some(Value::Tensor(take_along(t, axes[j], idx)?)));
        }
        let mut res =
            run_graph(body, &args, caps).map_err(|e| e.context(format!("step {step}")))?;
        let scans = res.split_off(n_state);
        state = res;
        for (k, v) in scans.into_iter().enumerate() {
            outs[k].push(v.into_tensor()?);
        }
    }
    Ok((state, outs))
}

/// Scan-8 (`op.batched`): one scan per batch entry, over its `sequence_lens` slices of axis 1;
/// the results stacked along a new batch axis, scan outputs zero past an entry's length.
fn run_scan8(op: &Scan, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let body = &op.body;
    let m = op.num_scan_inputs;
    let n_state = scan_states(op)?;
    let states: Vec<&Tensor> = (0..n_state)
        .map(|i| tensor(inputs, 1 + i))
        .collect::<Result<_>>()?;
    let scans: Vec<&Tensor> = (0..m)
        .map(|j| tensor(inputs, 1 + n_state + j))
        .collect::<Result<_>>()?;
    let (mut batch, mut max_len) = (None, None);
    for (i, t) in states.iter().chain(&scans).enumerate() {
        let is_scan = i >= n_state;
        let need = if is_scan { 2 } else { 1 };
        if t.rank() < need {
            return Err(Error::compute(format!(
                "Scan-8's {} {} has rank {}; it needs a batch axis{}",
                if is_scan { "scan input" } else { "state" },
                if is_scan { i - n_state } else { i },
                t.rank(),
                if is_scan { " and a sequence axis" } else { "" }
            )));
        }
        let b = t.shape()[0];
        if *batch.get_or_insert(b) != b {
            return Err(Error::compute(format!(
                "Scan-8's inputs disagree on the batch size ({} and {b})",
                batch.unwrap_or(0)
            )));
        }
        if is_scan {
            let l = t.shape()[1];
            if *max_len.get_or_insert(l) != l {
                return Err(Error::compute(format!(
                    "Scan-8's scan inputs have different lengths ({} and {l})",
                    max_len.unwrap_or(0)
                )));
            }
        }
    }
    let (batch, max_len) = (batch.unwrap_or(0), max_len.unwrap_or(0));
    let lens: Vec<usize> = match opt_tensor(inputs, 0)? {
        None => vec![max_len; batch],
        Some(t) => {
            let v = t.to_i64_vec()?;
            if v.len() != batch {
                return Err(Error::compute(format!(
                    "Scan-8's sequence_lens has {} entries for a batch of {batch}",
                    v.len()
                )));
            }
            v.iter()
                .map(|&l| {
                    usize::try_from(l)
                        .ok()
                        .filter(|&l| l <= max_len)
                        .ok_or_else(|| {
                            Error::compute(format!(
                                "Scan-8's sequence_lens holds {l}; each must be from 0 to the \
                             sequence length {max_len}"
                            ))
                        })
                })
                .collect::<Result<_>>()?
        }
    };
    let caps = captured(body, inputs)?;
    let k_out = body.outputs.len().saturating_sub(n_state);
    let mut final_states: Vec<Vec<Tensor>> = vec![Vec::new(); n_state];
    // Per scan output, per batch entry: its items (fewer than max_len when sequence_lens says).
    let mut outs: Vec<Vec<Vec<Tensor>>> = vec![Vec::new(); k_out];
    for (b, &len) in lens.iter().enumerate() {
        let state = states
            .iter()
            .map(|t| take_along(t, 0, b).map(Value::Tensor))
            .collect::<Result<Vec<_>>>()?;
        let scan_in = scans
            .iter()
            .map(|t| take_along(t, 0, b))
            .collect::<Result<Vec<_>>>()?;
        let scan_in: Vec<&Tensor> = scan_in.iter().collect();
        let axes = vec![0; scan_in.len()];
        let (state, items) = scan_steps(
            body,
            &caps,
            state,
            &scan_in,
            &axes,
            &op.scan_input_reverse,
            len,
        )
        .map_err(|e| e.context(format!("batch entry {b}")))?;
        for (i, v) in state.into_iter().enumerate() {
            final_states[i].push(v.into_tensor()?);
        }
        for (k, v) in items.into_iter().enumerate() {
            outs[k].push(v);
        }
    }
    let mut result = Vec::with_capacity(n_state + k_out);
    for (i, items) in final_states.iter().enumerate() {
        result.push(Value::Tensor(stack(
            items,
            &body.values[body.outputs[i]].ty,
        )?));
    }
    for (k, per_batch) in outs.into_iter().enumerate() {
        let ty = &body.values[body.outputs[n_state + k]].ty;
        // An entry shorter than max_len is padded with zeros shaped like any item.
        let like = per_batch.iter().flatten().next().cloned();
        let mut rows = Vec::with_capacity(per_batch.len());
        for mut items in per_batch {
            if items.len() < max_len {
                let Some(like) = &like else {
                    return Err(Error::compute(
                        "Scan-8 ran no step in any batch entry, so its scan outputs have no shape",
                    ));
                };
                let zero = Tensor::zeros(like.dtype(), like.shape().to_vec())?;
                items.resize(max_len, zero);
            }
            rows.push(stack(&items, ty)?);
        }
        let seq_ty = match ty.tensor() {
            Some(t) => ValueType::Tensor(xnpu_core::TensorType {
                dtype: t.dtype,
                shape: t.shape.as_ref().map(|s| {
                    let mut d = vec![xnpu_core::Dim::Known(max_len)];
                    d.extend(s.0.iter().cloned());
                    xnpu_core::Shape(d)
                }),
            }),
            None => ValueType::Unknown,
        };
        result.push(Value::Tensor(stack(&rows, &seq_ty)?));
    }
    Ok(result.into_iter().collect())
}

pub fn run_sequence_map(op: &SequenceMap, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let body = &op.body;
    let n_explicit = body.inputs.len();
    let first = crate::args::input(inputs, 0)?.as_sequence()?;
    let len = first.len();
    for k in 1..n_explicit {
        if let Value::Sequence { items, .. } = crate::args::input(inputs, k)? {
            if items.len() != len {
                return Err(Error::compute(format!(
                    "input {k} is a sequence of {} elements, the first input has {len}",
                    items.len()
                )));
            }
        }
    }
    let caps = captured(body, inputs)?;
    let mut outs: Vec<Vec<Tensor>> = vec![Vec::new(); body.outputs.len()];
    for i in 0..len {
        let args = (0..n_explicit)
            .map(|k| {
                Ok(Some(match crate::args::input(inputs, k)? {
                    Value::Sequence { items, .. } => Value::Tensor(items[i].clone()),
                    v => v.clone(),
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let res = run_graph(body, &args, &caps).map_err(|e| e.context(format!("element {i}")))?;
        for (k, v) in res.into_iter().enumerate() {
            outs[k].push(
                v.into_tensor()
                    .map_err(|e| e.context(format!("body output {k}")))?,
            );
        }
    }
    Ok(outs
        .into_iter()
        .enumerate()
        .map(|(k, items)| Value::Sequence {
            elem: body.values[body.outputs[k]].ty.clone(),
            items,
        })
        .collect())
}

/// Bytes per element of `t` for byte-wise copies (0 for strings, which are copied apart);
/// packed elements share bytes and are refused.
fn elem_bytes(t: &Tensor) -> Result<usize> {
    t.dtype()
        .elem_bytes()
        .ok_or_else(|| Error::unsupported(format!("{} tensors cannot be sliced", t.dtype())))
}

/// The slice at `idx` along `axis`, with that axis removed.
fn take_along(t: &Tensor, axis: usize, idx: usize) -> Result<Tensor> {
    let shape = t.shape();
    let mut out_shape = shape.to_vec();
    out_shape.remove(axis);
    // An empty tensor's other dims may multiply past a usize; its slice is empty too.
    if t.is_empty() {
        return Tensor::zeros(t.dtype(), out_shape);
    }
    // Every dim is at least 1 here, so these products are at most the tensor's length.
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    if t.dtype() == DType::String {
        let s = t.strings()?;
        let v = buf::collected(
            (0..outer * inner).map(|i| s[((i / inner) * n + idx) * inner + i % inner].clone()),
            "a scan input's slice",
        )?;
        return Tensor::from_strings(out_shape, v);
    }
    let es = elem_bytes(t)?;
    let src = t.raw_bytes();
    let mut dst = buf::reserved(outer * inner * es, "a scan input's slice")?;
    for o in 0..outer {
        let start = ((o * n + idx) * inner) * es;
        dst.extend_from_slice(&src[start..start + inner * es]);
    }
    Tensor::from_bytes(t.dtype(), out_shape, dst.into())
}

/// Stacks equal-shaped tensors along a new first axis. With no items, the shape comes from
/// the body's declared output type.
fn stack(items: &[Tensor], ty: &ValueType) -> Result<Tensor> {
    let Some(first) = items.first() else {
        let (dtype, dims) = match ty.tensor() {
            Some(t) => (
                t.dtype,
                t.shape
                    .as_ref()
                    .and_then(|s| s.as_known())
                    .unwrap_or_default(),
            ),
            None => (DType::F32, vec![]),
        };
        let mut shape = vec![0];
        shape.extend(dims);
        return Tensor::zeros(dtype, shape);
    };
    for (i, t) in items.iter().enumerate() {
        if t.shape() != first.shape() || t.dtype() != first.dtype() {
            return Err(Error::compute(format!(
                "scan output of iteration {i} is {}{:?}, the first was {}{:?}",
                t.dtype(),
                t.shape(),
                first.dtype(),
                first.shape()
            )));
        }
    }
    let mut shape = vec![items.len()];
    shape.extend_from_slice(first.shape());
    let total = buf::count(&shape, "a scan output")?;
    if first.dtype() == DType::String {
        let mut v = buf::reserved(total, "a scan output")?;
        for t in items {
            v.extend(t.strings()?.iter().cloned());
        }
        return Tensor::from_strings(shape, v);
    }
    let len = first
        .raw_bytes()
        .len()
        .checked_mul(items.len())
        .ok_or_else(|| Error::compute("a scan output's size overflows".to_string()))?;
    let mut bytes = buf::reserved(len, "a scan output")?;
    for t in items {
        bytes.extend_from_slice(t.raw_bytes());
    }
    Tensor::from_bytes(first.dtype(), shape, bytes.into())
}

/// Moves axis 0 of `t` to position `axis`.
fn move_axis0(t: &Tensor, axis: usize) -> Result<Tensor> {
    if axis == 0 {
        return Ok(t.clone());
    }
    let shape = t.shape();
    let n = shape[0];
    let mut out_shape = shape[1..].to_vec();
    out_shape.insert(axis, n);
    // An empty tensor's other dims may multiply past a usize; nothing moves.
    if t.is_empty() {
        return Tensor::zeros(t.dtype(), out_shape);
    }
    // Every dim is at least 1 here, so these products are at most the tensor's length.
    let mid: usize = shape[1..=axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    // out[m][k][i] = in[k][m][i] where m indexes the dims before `axis`.
    if t.dtype() == DType::String {
        let s = t.strings()?;
        let mut v = buf::reserved(s.len(), "a scan output")?;
        for m in 0..mid {
            for k in 0..n {
                let start = (k * mid + m) * inner;
                v.extend(s[start..start + inner].iter().cloned());
            }
        }
        return Tensor::from_strings(out_shape, v);
    }
    let es = elem_bytes(t)?;
    let src = t.raw_bytes();
    let mut dst = buf::reserved(src.len(), "a scan output")?;
    for m in 0..mid {
        for k in 0..n {
            let start = ((k * mid + m) * inner) * es;
            dst.extend_from_slice(&src[start..start + inner * es]);
        }
    }
    Tensor::from_bytes(t.dtype(), out_shape, dst.into())
}
