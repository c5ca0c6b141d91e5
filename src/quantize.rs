//! Static quantisation from calibration inputs: the form most NPU deployments ship (QDQ
//! models with uint8 activations and weights), made from an fp32 model and a few inputs the
//! user gives.
//!
//! [`quantize_static`] optimises the model (level `all`: BatchNormalization folded into
//! Convs, activations fused), runs it on the reference CPU backend over every calibration
//! input set, records the range of each float activation, and returns a QDQ model:
//! - every float graph input and every float activation a node produces (graph outputs
//!   excepted, whose type is the
//!   model's contract) is followed by QuantizeLinear → DequantizeLinear, uint8, per tensor,
//!   with `scale = (max - min) / 255` and `zero_point = round(-min / scale)` over a range
//!   that always includes 0;
//! - every float weight of Conv, ConvTranspose, MatMul and Gemm (input 1; fused forms
//!   too) becomes a uint8
//!   constant read through DequantizeLinear, quantised the same way over its own range.
//!
//! Backends that compute in integers (QNN's HTP) then run those tensors as fixed point;
//! the reference backend runs the QDQ model as written, which is what the quantised
//! model means.

use std::collections::HashMap;

use xnpu_core::{DType, Error, Result, Tensor, TensorType, Value, ValueType};
use xnpu_graph::ir::{Graph, Node, Op};
use xnpu_graph::{passes, Model};
use xnpu_ops::nn::{DequantizeLinear, Op as Nn, QuantizeLinear};

/// Per-tensor uint8 parameters for the range `[lo, hi]` (widened to include 0).
pub fn uint8_params(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

fn quantize_u8(x: &[f32], scale: f32, zp: u8) -> Vec<u8> {
    x.iter()
        .map(|&v| ((v / scale).round() + f32::from(zp)).clamp(0.0, 255.0) as u8)
        .collect()
}

fn is_f32(ty: &ValueType) -> bool {
    matches!(
        ty,
        ValueType::Tensor(TensorType {
            dtype: DType::F32,
            ..
        })
    )
}

/// The QDQ model of `model` calibrated on `calibration` (input sets in model-input order;
/// `None` uses an input's default). Fails when no input set is given or one fails to run.
pub fn quantize_static(model: &Model, calibration: &[Vec<Option<Value>>]) -> Result<Model> {
    if calibration.is_empty() {
        return Err(Error::invalid_input(format!(
            "{}: static quantisation needs at least one calibration input set",
            model.name
        )));
    }
    let optimised = optimised(model)?;
    let model = &optimised;
    let watched = watched_values(&model.graph);
    let range = calibrate(model, &watched, calibration)?;
    let mut q = model.clone();
    let g = &mut q.graph;
    let mut added = quantize_activations(g, &watched, &range);
    quantize_weights(g, &mut added)?;
    g.nodes.extend(added);
    g.toposort()
        .map_err(|e| e.context(format!("{}: inserting Q/DQ", model.name)))?;
    g.remove_dead();
    Ok(q)
}

/// The optimised model (BatchNormalization folded into Convs, activations fused), so that
/// each quantised op is what a backend runs.
fn optimised(model: &Model) -> Result<Model> {
    let mut optimised = model.clone();
    passes::optimize(
        &mut optimised,
        &passes::Options {
            level: passes::Level::All,
            evaluate: Some(&evaluate),
            ..passes::Options::default()
        },
    )?;
    Ok(optimised)
}

/// The values to quantise, sorted: float graph inputs (without a default) and float
/// activations produced by nodes, graph outputs excepted.
fn watched_values(g: &Graph) -> Vec<usize> {
    let mut watched: Vec<usize> = g
        .inputs
        .iter()
        .copied()
        .filter(|&v| g.values[v].constant.is_none())
        .chain(
            g.nodes
                .iter()
                .flat_map(|n| n.outputs.iter().flatten().copied()),
        )
        .filter(|&v| !g.outputs.contains(&v) && is_f32(&g.values[v].ty))
        .collect();
    watched.sort_unstable();
    watched.dedup();
    watched
}

/// The range (min, max of the finite values) of each watched value over the calibration
/// input sets, run on the reference CPU backend.
fn calibrate(
    model: &Model,
    watched: &[usize],
    calibration: &[Vec<Option<Value>>],
) -> Result<HashMap<usize, (f32, f32)>> {
    let g = &model.graph;
    let mut probe = g.clone();
    probe.outputs.extend(watched);
    let mut range: HashMap<usize, (f32, f32)> = HashMap::new();
    for (k, inputs) in calibration.iter().enumerate() {
        let out = xnpu_backend_cpu::run_graph(&probe, inputs, &[])
            .map_err(|e| e.context(format!("{}: calibration input set {k}", model.name)))?;
        for (i, &v) in watched.iter().enumerate() {
            let Ok(t) = out[g.outputs.len() + i].as_tensor() else {
                continue;
            };
            let Ok(x) = t.to_vec::<f32>() else { continue };
            let r = range.entry(v).or_insert((f32::INFINITY, f32::NEG_INFINITY));
            for &x in x.iter().filter(|x| x.is_finite()) {
                r.0 = r.0.min(x);
                r.1 = r.1.max(x);
            }
        }
    }
    Ok(range)
}

/// Activations: v → Q → DQ for each watched value with a finite range, every reader of v
/// reading the DQ output. Returns the Q and DQ nodes (not yet in the graph).
fn quantize_activations(
    g: &mut Graph,
    watched: &[usize],
    range: &HashMap<usize, (f32, f32)>,
) -> Vec<Node> {
    let shape_of = |g: &Graph, v: usize| match &g.values[v].ty {
        ValueType::Tensor(t) => t.shape.clone(),
        _ => None,
    };
    let mut added: Vec<Node> = Vec::new();
    // Readers move to the dequantised values in one sweep at the end (one per value would
    // sweep the graph once per activation).
    let mut moved = Vec::new();
    for &v in watched {
        let Some(&(lo, hi)) = range.get(&v) else {
            continue;
        };
        if !lo.is_finite() || !hi.is_finite() {
            continue;
        }
        let (scale, zp) = uint8_params(lo, hi);
        let name = g.values[v].name.clone();
        let s = add_constant(g, format!("{name}_scale"), Tensor::scalar(scale));
        let z = add_constant(g, format!("{name}_zero_point"), Tensor::scalar(zp));
        let shape = shape_of(g, v);
        let qv = g.add_value(
            format!("{name}_quantized"),
            ValueType::Tensor(TensorType {
                dtype: DType::U8,
                shape: shape.clone(),
            }),
        );
        let dq = g.add_value(
            format!("{name}_dequantized"),
            ValueType::Tensor(TensorType {
                dtype: DType::F32,
                shape,
            }),
        );
        moved.push((v, dq));
        added.push(q_node(&name, v, s, z, qv));
        added.push(dq_node(&name, qv, s, z, dq));
    }
    g.replace_uses_all(&moved);
    added
}

/// The (node, weight) pairs to quantise: constant float input 1 of Conv, ConvTranspose,
/// MatMul, Gemm (and their fused forms).
fn float_weights(g: &Graph) -> Vec<(usize, usize)> {
    let mut weights: Vec<(usize, usize)> = Vec::new();
    for (n, node) in g.nodes.iter().enumerate() {
        if matches!(
            node.op.name(),
            "Conv" | "ConvTranspose" | "MatMul" | "Gemm" | "FusedConv" | "FusedGemm" | "MatMulBias"
        ) {
            if let Some(w) = node.inputs.get(1).copied().flatten() {
                if g.values[w]
                    .constant
                    .as_ref()
                    .is_some_and(|t| t.dtype() == DType::F32)
                {
                    weights.push((n, w));
                }
            }
        }
    }
    weights
}

/// Weights: each float weight becomes a uint8 constant read through DequantizeLinear
/// (one per weight, shared by the nodes that read it); the DQ nodes go to `added`.
fn quantize_weights(g: &mut Graph, added: &mut Vec<Node>) -> Result<()> {
    let mut done: HashMap<usize, usize> = HashMap::new();
    for (n, w) in float_weights(g) {
        let dq = match done.get(&w) {
            Some(&dq) => dq,
            None => {
                let t = g.values[w]
                    .constant
                    .clone()
                    .unwrap_or_else(|| Tensor::scalar(0f32));
                let x = t.to_vec::<f32>()?;
                let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (scale, zp) = uint8_params(lo, hi);
                let name = g.values[w].name.clone();
                let qt = Tensor::from_vec(t.shape().to_vec(), quantize_u8(&x, scale, zp))?;
                let qv = add_constant(g, format!("{name}_quantized"), qt);
                let s = add_constant(g, format!("{name}_scale"), Tensor::scalar(scale));
                let z = add_constant(g, format!("{name}_zero_point"), Tensor::scalar(zp));
                let dq = g.add_value(format!("{name}_dequantized"), g.values[w].ty.clone());
                added.push(dq_node(&name, qv, s, z, dq));
                done.insert(w, dq);
                dq
            }
        };
        g.nodes[n].inputs[1] = Some(dq);
    }
    Ok(())
}

fn evaluate(node: &Node, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    xnpu_backend_cpu::run_node(node, inputs)
}

/// A constant value typed by its tensor.
fn add_constant(g: &mut Graph, name: String, t: Tensor) -> usize {
    let ty = ValueType::Tensor(TensorType {
        dtype: t.dtype(),
        shape: Some(xnpu_core::Shape::known(t.shape())),
    });
    let v = g.add_value(name, ty);
    g.values[v].constant = Some(t);
    v
}

fn q_node(name: &str, x: usize, s: usize, z: usize, y: usize) -> Node {
    Node {
        name: format!("{name}_QuantizeLinear"),
        op: Op::Nn(Nn::QuantizeLinear(QuantizeLinear {
            axis: 1,
            block_size: 0,
            saturate: true,
            output_dtype: None,
            precision: None,
        })),
        inputs: vec![Some(x), Some(s), Some(z)],
        outputs: vec![Some(y)],
    }
}

fn dq_node(name: &str, x: usize, s: usize, z: usize, y: usize) -> Node {
    Node {
        name: format!("{name}_DequantizeLinear"),
        op: Op::Nn(Nn::DequantizeLinear(DequantizeLinear {
            axis: 1,
            block_size: 0,
            output_dtype: None,
        })),
        inputs: vec![Some(x), Some(s), Some(z)],
        outputs: vec![Some(y)],
    }
}
