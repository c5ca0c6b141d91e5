//! QDQ node units as integer ops. A QDQ model (ONNX Runtime's quantiser, or
//! `xnpu::quantize::quantize_static`) writes each quantised op as
//! `DequantizeLinear → op → QuantizeLinear`, per-tensor scales and zero points on the
//! DequantizeLinears of its inputs and weights and on the QuantizeLinear of its output. The
//! graph QNN gets has the op read the quantised tensors themselves and write the
//! QuantizeLinear's output, so that HTP runs it as fixed point (its uint8/int8 kernels)
//! instead of dequantising to float around it. A float bias becomes int32 at scale
//! `input scale × weight scale` when lowered.
//!
//! [`fold`] rewrites the partition's graph before lowering; QuantizeLinears and
//! DequantizeLinears it does not fold (at the graph's edges, or around ops outside the
//! unit set) stay QNN Quantize / Dequantize nodes.

use std::collections::{HashMap, HashSet};

use xnpu_core::{DType, Shape, Tensor, TensorType, ValueType};
use xnpu_graph::{Graph, Node, Op};
use xnpu_ops::elementwise::{self as ew, ActivationKind, BinaryKind};
use xnpu_ops::nn::{self, AutoPad, FusedActivation, GlobalKind};
use xnpu_ops::reduce::{self as rd, SoftmaxKind};
use xnpu_ops::tensor as tn;

/// Which inputs of a unit's op must be quantised values, and which is a bias (float, or
/// dequantised from a constant) that the lowering requantises to int32.
struct Unit {
    quantised: Vec<usize>,
    bias: Option<usize>,
}

fn plain_activation(a: &FusedActivation) -> bool {
    matches!(
        a,
        FusedActivation::Activation(ActivationKind::Relu) | FusedActivation::Clip { .. }
    )
}

/// The unit shape of `node` when its op runs as fixed point on HTP here, or `None`.
fn unit(node: &Node) -> Option<Unit> {
    let all = || Unit {
        quantised: (0..node.inputs.len()).collect(),
        bias: None,
    };
    let weighted = || Unit {
        quantised: vec![0, 1],
        bias: Some(2),
    };
    let unpadded = |w: &nn::Window| {
        w.pads.iter().all(|&p| p == 0)
            && !w.ceil_mode
            && matches!(w.auto_pad, AutoPad::NotSet | AutoPad::Valid)
    };
    match &node.op {
        Op::Nn(nn::Op::Conv(_)) => Some(weighted()),
        Op::Nn(nn::Op::FusedConv(f)) if plain_activation(&f.activation) => Some(weighted()),
        Op::Nn(nn::Op::Gemm(g)) if g.alpha == 1.0 && g.beta == 1.0 && !g.trans_a => {
            Some(weighted())
        }
        Op::Nn(nn::Op::FusedGemm(f))
            if f.gemm.alpha == 1.0
                && f.gemm.beta == 1.0
                && !f.gemm.trans_a
                && plain_activation(&f.activation) =>
        {
            Some(weighted())
        }
        Op::Nn(nn::Op::Pool(p))
            if unpadded(&p.window) && !matches!(p.kind, nn::PoolKind::Lp { .. }) =>
        {
            Some(Unit {
                quantised: vec![0],
                bias: None,
            })
        }
        Op::Elementwise(ew::Op::Binary(b)) if b.kind == BinaryKind::Add => Some(all()),
        Op::Elementwise(ew::Op::Activation(a)) if a.kind == ActivationKind::Relu => Some(all()),
        Op::Tensor(tn::Op::Concat(_)) => Some(all()),
        Op::Nn(nn::Op::GlobalPool(p)) if p.kind == GlobalKind::Average => Some(all()),
        Op::Reduce(rd::Op::Softmax(s)) if s.kind == SoftmaxKind::Softmax => Some(all()),
        Op::Tensor(tn::Op::Reshape(_) | tn::Op::Flatten(_)) => Some(Unit {
            quantised: vec![0],
            bias: None,
        }),
        _ => None,
    }
}

fn is_quantize(op: &Op) -> bool {
    matches!(op, Op::Nn(nn::Op::QuantizeLinear(_)))
}

fn is_dequantize(op: &Op) -> bool {
    matches!(op, Op::Nn(nn::Op::DequantizeLinear(_)))
}

/// Who writes each value (node index) and who reads it.
struct Links {
    producer: HashMap<usize, usize>,
    consumers: HashMap<usize, Vec<usize>>,
}

impl Links {
    fn of(g: &Graph) -> Links {
        let mut producer: HashMap<usize, usize> = HashMap::new();
        let mut consumers: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            for o in n.outputs.iter().flatten() {
                producer.insert(*o, i);
            }
            for v in n.inputs.iter().flatten() {
                consumers.entry(*v).or_default().push(i);
            }
        }
        Links {
            producer,
            consumers,
        }
    }

    /// The quantised source of a DequantizeLinear's output `id`.
    fn dequantised(
        &self,
        g: &Graph,
        quant: &HashMap<usize, (f32, i32)>,
        id: usize,
    ) -> Option<usize> {
        let d = &g.nodes[*self.producer.get(&id)?];
        let src = d.inputs.first().copied().flatten()?;
        (is_dequantize(&d.op) && quant.contains_key(&src)).then_some(src)
    }
}

/// `g` with its QDQ node units folded (see the module), or `None` when none folds.
/// `quant` is `crate::graph::quantized_values(g)`.
pub fn fold(g: &Graph, quant: &HashMap<usize, (f32, i32)>) -> Option<Graph> {
    let links = Links::of(g);
    let mut out = g.clone();
    let mut dropped: HashSet<usize> = HashSet::new();
    for i in 0..g.nodes.len() {
        if let Some(q) = fold_unit(g, quant, &links, &mut out, i) {
            dropped.insert(q);
        }
    }
    let dequantised = dequantise_constant_reads(g, &links, &mut out, &dropped);
    if dropped.is_empty() && !dequantised {
        return None;
    }
    drop_unread_dequantizers(&out, &mut dropped);
    let nodes = std::mem::take(&mut out.nodes);
    out.nodes = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, n)| n)
        .collect();
    Some(out)
}

/// Folds node `i` of `g` in `out` when it is a QDQ unit: the op reads the quantised
/// sources of its DequantizeLinears and writes its QuantizeLinear's output. Returns that
/// QuantizeLinear's index (to drop).
fn fold_unit(
    g: &Graph,
    quant: &HashMap<usize, (f32, i32)>,
    links: &Links,
    out: &mut Graph,
    i: usize,
) -> Option<usize> {
    let n = &g.nodes[i];
    let u = unit(n)?;
    let outs: Vec<usize> = n.outputs.iter().flatten().copied().collect();
    let [o] = outs[..] else { return None };
    if g.outputs.contains(&o) {
        return None;
    }
    let Some([c]) = links.consumers.get(&o).map(|c| &c[..]) else {
        return None;
    };
    let qn = &g.nodes[*c];
    let q_out = qn.outputs.first().copied().flatten()?;
    if !is_quantize(&qn.op) || !quant.contains_key(&q_out) {
        return None;
    }
    let mut inputs = n.inputs.clone();
    for &k in &u.quantised {
        match n.inputs.get(k).copied().flatten() {
            Some(v) => inputs[k] = Some(links.dequantised(g, quant, v)?),
            None if k == 0 => return None,
            None => {}
        }
    }
    if let Some(b) = u.bias.and_then(|k| n.inputs.get(k).copied().flatten()) {
        let float = g.values[b]
            .constant
            .as_ref()
            .is_some_and(|c| c.dtype() == DType::F32);
        if !float {
            // Dequantised from a constant: the unit reads the float values.
            let t = dequantized_constant(g, b).and_then(|(d, _)| dequantize(g, d))?;
            inputs[2] = Some(float_constant(out, b, t));
        }
    }
    let node = &mut out.nodes[i];
    node.inputs = inputs;
    for slot in node.outputs.iter_mut() {
        if *slot == Some(o) {
            *slot = Some(q_out);
        }
    }
    Some(*c)
}

/// What nodes other than DequantizeLinears (and the `dropped` ones) read from
/// DequantizeLinears of constants (weights of ops left float, BatchNormalization
/// statistics), made float constants in `out`, as their lowerings take constants.
/// Whether any was.
fn dequantise_constant_reads(
    g: &Graph,
    links: &Links,
    out: &mut Graph,
    dropped: &HashSet<usize>,
) -> bool {
    let mut changed = false;
    for i in 0..out.nodes.len() {
        if dropped.contains(&i) || is_dequantize(&out.nodes[i].op) {
            continue;
        }
        for k in 0..out.nodes[i].inputs.len() {
            let Some(v) = out.nodes[i].inputs[k] else {
                continue;
            };
            // Only DequantizeLinear outputs (the producer map, not a scan per input).
            let from_dq = links
                .producer
                .get(&v)
                .is_some_and(|&p| is_dequantize(&g.nodes[p].op));
            if !from_dq {
                continue;
            }
            if let Some(t) = dequantized_constant(g, v).and_then(|(d, _)| dequantize(g, d)) {
                let id = float_constant(out, v, t);
                out.nodes[i].inputs[k] = Some(id);
                changed = true;
            }
        }
    }
    changed
}

/// Adds to `dropped` the DequantizeLinears of `out` that nothing (not dropped) reads any
/// more.
fn drop_unread_dequantizers(out: &Graph, dropped: &mut HashSet<usize>) {
    let read: HashSet<usize> = out
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .flat_map(|(_, n)| n.inputs.iter().flatten().copied())
        .chain(out.outputs.iter().copied())
        .collect();
    for (i, n) in out.nodes.iter().enumerate() {
        if is_dequantize(&n.op) && n.outputs.iter().flatten().all(|o| !read.contains(o)) {
            dropped.insert(i);
        }
    }
}

/// When value `id` is the output of a DequantizeLinear whose inputs are all constants
/// (scale a scalar, or 1-D along its axis; no blocks): that node's index and its
/// quantised input.
pub fn dequantized_constant(g: &Graph, id: usize) -> Option<(usize, usize)> {
    let (i, d) = g
        .nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.outputs.first().copied().flatten() == Some(id))?;
    let Op::Nn(nn::Op::DequantizeLinear(dq)) = &d.op else {
        return None;
    };
    let x = d.inputs.first().copied().flatten()?;
    let c = g.values[x].constant.as_ref()?;
    let s = g.values[d.inputs.get(1).copied().flatten()?]
        .constant
        .as_ref()?;
    let zp_const = d
        .inputs
        .get(2)
        .copied()
        .flatten()
        .is_none_or(|z| g.values[z].constant.is_some());
    let axis = usize::try_from(if dq.axis < 0 {
        dq.axis + c.rank() as i64
    } else {
        dq.axis
    })
    .ok()?;
    let per_axis = s.rank() == 1 && c.shape().get(axis) == Some(&s.len());
    (zp_const && dq.block_size == 0 && (s.len() == 1 || per_axis)).then_some((i, x))
}

/// The float values of a DequantizeLinear of constants (see [`dequantized_constant`]).
fn dequantize(g: &Graph, node: usize) -> Option<Tensor> {
    let d = &g.nodes[node];
    let Op::Nn(nn::Op::DequantizeLinear(dq)) = &d.op else {
        return None;
    };
    let c = g.values[d.inputs.first().copied().flatten()?]
        .constant
        .as_ref()?;
    let s = g.values[d.inputs.get(1).copied().flatten()?]
        .constant
        .as_ref()?
        .to_f64_vec()
        .ok()?;
    let z = match d.inputs.get(2).copied().flatten() {
        Some(z) => g.values[z].constant.as_ref()?.to_f64_vec().ok()?,
        None => vec![0.0],
    };
    let x = c.to_f64_vec().ok()?;
    let dims = c.shape();
    let axis = if dq.axis < 0 {
        dq.axis + dims.len() as i64
    } else {
        dq.axis
    } as usize;
    let inner: usize = dims.get(axis + 1..).map_or(1, |d| d.iter().product());
    let n = dims.get(axis).copied().unwrap_or(1).max(1);
    let v: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let k = if s.len() == 1 { 0 } else { (i / inner) % n };
            let zp = z.get(k).or(z.first()).copied().unwrap_or(0.0);
            ((q - zp) * s[k]) as f32
        })
        .collect();
    Tensor::from_vec(dims.to_vec(), v).ok()
}

/// Adds `t` as a new float constant value named after `like`.
fn float_constant(g: &mut Graph, like: usize, t: Tensor) -> usize {
    let ty = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(t.shape())));
    let id = g.add_value(format!("{}_float", g.values[like].name), ty);
    g.values[id].constant = Some(t);
    id
}
