//! xnpu graphs as QNN graphs: one QNN tensor per xnpu value (graph inputs APP_WRITE, graph
//! outputs APP_READ, constants STATIC, the rest NATIVE), one QNN node per xnpu node, each
//! validated by the backend (`backendValidateOpConfig`) before it is added: an op the
//! backend does not know otherwise passes `graphAddNode` and fails late, at finalize, with a
//! misleading code.

use std::sync::Arc;

use xnpu_core::{Bytes, DType, Error, Result, Tensor, Value, ValueType};
use xnpu_graph::{Graph, Node};

use crate::ffi::{self, Handle};
use crate::{qnn_dtype, slot, Qnn, Strings};

/// How an xnpu op becomes a QNN op (package `qti.aisw`), from the reference's mapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mapping {
    /// xnpu's op name.
    pub op: &'static str,
    /// QNN's type name.
    pub qnn: &'static str,
    pub lowering: Lowering,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lowering {
    /// Same inputs and outputs, no params.
    Direct,
    /// `MatMul` with `transpose_in0`/`transpose_in1` false.
    MatMul,
    /// `Reshape` of input 0; the output's dims give the shape (the shape input is dropped).
    Reshape,
}

/// Every op this backend lowers.
pub const MAPPINGS: &[Mapping] = &[
    m("Add", "ElementWiseAdd", Lowering::Direct),
    m("Sub", "ElementWiseSubtract", Lowering::Direct),
    m("Mul", "ElementWiseMultiply", Lowering::Direct),
    m("Div", "ElementWiseDivide", Lowering::Direct),
    m("Max", "ElementWiseMaximum", Lowering::Direct),
    m("Min", "ElementWiseMinimum", Lowering::Direct),
    m("Relu", "Relu", Lowering::Direct),
    m("Sigmoid", "Sigmoid", Lowering::Direct),
    m("Tanh", "Tanh", Lowering::Direct),
    m("Exp", "ElementWiseExp", Lowering::Direct),
    m("Sqrt", "ElementWiseSquareRoot", Lowering::Direct),
    m("Neg", "ElementWiseNeg", Lowering::Direct),
    m("Abs", "ElementWiseAbs", Lowering::Direct),
    m("MatMul", "MatMul", Lowering::MatMul),
    m("Reshape", "Reshape", Lowering::Reshape),
    m("Flatten", "Reshape", Lowering::Reshape),
    m("Squeeze", "Reshape", Lowering::Reshape),
    m("Unsqueeze", "Reshape", Lowering::Reshape),
];

const fn m(op: &'static str, qnn: &'static str, lowering: Lowering) -> Mapping {
    Mapping { op, qnn, lowering }
}

pub fn mapping(op: &str) -> Option<&'static Mapping> {
    MAPPINGS.iter().find(|m| m.op == op)
}

/// A finalized QNN graph in its own context.
pub struct QnnGraph {
    q: Arc<Qnn>,
    context: Handle,
    graph: Handle,
    /// Per graph input: its QNN tensor, or `None` for an input no QNN node reads (the shape
    /// of a Reshape, which QNN takes from the output's dims).
    inputs: Vec<Option<(ffi::Tensor, DType, Vec<usize>)>>,
    outputs: Vec<(ffi::Tensor, DType, Vec<usize>)>,
    /// Names, dims and static data QNN may point into.
    _strings: Strings,
    _dims: Vec<Vec<u32>>,
    _statics: Vec<Bytes>,
    lock: std::sync::Mutex<()>,
}

// SAFETY: QNN handles may be used from any thread; executions are serialised by `lock`.
unsafe impl Send for QnnGraph {}
// SAFETY: as above.
unsafe impl Sync for QnnGraph {}

impl Drop for QnnGraph {
    fn drop(&mut self) {
        if let Some(f) = self.q.library().table().context_free {
            // SAFETY: the context this graph created; it frees its graphs.
            unsafe { f(self.context, std::ptr::null_mut()) };
        }
    }
}

fn shape_of(g: &Graph, id: usize) -> Result<(DType, Vec<usize>)> {
    let v = &g.values[id];
    let ValueType::Tensor(t) = &v.ty else {
        return Err(Error::unsupported(format!(
            "value \"{}\" has no tensor type known before running",
            v.name
        )));
    };
    let dims = t.shape.as_ref().and_then(|s| s.as_known()).ok_or_else(|| {
        Error::unsupported(format!(
            "value \"{}\" has no static shape (QNN graphs are static)",
            v.name
        ))
    })?;
    Ok((t.dtype, dims.to_vec()))
}

impl QnnGraph {
    /// Builds, validates and finalizes `g` on `q`.
    pub fn build(q: Arc<Qnn>, g: &Graph) -> Result<QnnGraph> {
        let lib = q.library();
        let t = lib.table();
        let mut context: Handle = std::ptr::null_mut();
        // SAFETY: live backend and device, no configs, a valid out-pointer.
        lib.check(
            unsafe {
                slot(t.context_create, "contextCreate")?(
                    q.backend,
                    q.device,
                    std::ptr::null(),
                    &mut context,
                )
            },
            "contextCreate",
        )?;
        let mut out = QnnGraph {
            q: q.clone(),
            context,
            graph: std::ptr::null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            _strings: Strings::default(),
            _dims: Vec::new(),
            _statics: Vec::new(),
            lock: std::sync::Mutex::new(()),
        };
        let name = out
            ._strings
            .add(if g.name.is_empty() { "xnpu" } else { &g.name });
        // SAFETY: a live context, a NUL-terminated name, no configs.
        lib.check(
            unsafe {
                slot(t.graph_create, "graphCreate")?(
                    context,
                    name,
                    std::ptr::null(),
                    &mut out.graph,
                )
            },
            "graphCreate",
        )?;
        let create = slot(t.tensor_create_graph_tensor, "tensorCreateGraphTensor")?;
        let validate = t.backend_validate_op_config;
        let add = slot(t.graph_add_node, "graphAddNode")?;
        let mut tensors: Vec<Option<ffi::Tensor>> = vec![None; g.values.len()];
        let mut tensor = |out: &mut QnnGraph, id: usize| -> Result<ffi::Tensor> {
            if let Some(t) = tensors[id] {
                return Ok(t);
            }
            let v = &g.values[id];
            let (dtype, dims) = match &v.constant {
                Some(c) => (c.dtype(), c.shape().to_vec()),
                None => shape_of(g, id)?,
            };
            let qd = qnn_dtype(dtype).ok_or_else(|| {
                Error::unsupported(format!(
                    "QNN's HTP has no {dtype} tensors (value \"{}\")",
                    v.name
                ))
            })?;
            let kind = if v.constant.is_some() {
                ffi::TENSOR_STATIC
            } else if g.inputs.contains(&id) {
                ffi::TENSOR_APP_WRITE
            } else if g.outputs.contains(&id) {
                ffi::TENSOR_APP_READ
            } else {
                ffi::TENSOR_NATIVE
            };
            let mut d: Vec<u32> = dims.iter().map(|&x| x as u32).collect();
            let dims_ptr = d.as_mut_ptr();
            out._dims.push(d);
            let mut buf = ffi::ClientBuffer {
                data: std::ptr::null_mut(),
                size: 0,
            };
            if let Some(c) = &v.constant {
                let bytes = c.bytes().cloned().unwrap_or_default();
                buf = ffi::ClientBuffer {
                    data: bytes.as_ptr() as *mut _,
                    size: u32::try_from(bytes.len()).map_err(|_| {
                        Error::unsupported(format!("constant \"{}\" is over 4 GiB", v.name))
                    })?,
                };
                out._statics.push(bytes);
            }
            let mut qt = ffi::Tensor {
                version: 1,
                v1: ffi::TensorV1 {
                    id: 0,
                    name: out._strings.add(&format!("v{id}_{}", v.name)),
                    tensor_type: kind,
                    data_format: 0,
                    data_type: qd,
                    quantize: ffi::QuantizeParams::undefined(),
                    rank: dims.len() as u32,
                    dimensions: dims_ptr,
                    mem_type: 0,
                    client_buf: buf,
                },
                _v2_tail: [0; 3],
            };
            // SAFETY: a live graph and a tensor whose pointers stay alive in `out`; QNN
            // writes the tensor's id back.
            lib.check(
                unsafe { create(out.graph, &mut qt) },
                &format!("creating tensor \"{}\"", v.name),
            )?;
            tensors[id] = Some(qt);
            Ok(qt)
        };
        let read: std::collections::HashSet<usize> = g
            .nodes
            .iter()
            .flat_map(node_inputs)
            .chain(g.outputs.iter().copied())
            .collect();
        for &i in &g.inputs {
            let entry = if read.contains(&i) {
                let qt = tensor(&mut out, i)?;
                let (dtype, dims) = shape_of(g, i)?;
                Some((qt, dtype, dims))
            } else {
                None
            };
            out.inputs.push(entry);
        }
        let package = out._strings.add("qti.aisw");
        for node in &g.nodes {
            let op = node.op.name();
            let map = mapping(op).ok_or_else(|| {
                Error::unsupported(format!(
                    "node \"{}\" ({op}): QNN has no lowering for {op}",
                    node.name
                ))
            })?;
            let ins = node_inputs(node);
            let mut in_t = Vec::with_capacity(ins.len());
            for &i in &ins {
                in_t.push(tensor(&mut out, i).map_err(|e| in_node(e, node))?);
            }
            let mut out_t = Vec::new();
            for &o in node.outputs.iter().flatten() {
                out_t.push(tensor(&mut out, o).map_err(|e| in_node(e, node))?);
            }
            let mut params: Vec<ffi::Param> = match map.lowering {
                Lowering::MatMul => ["transpose_in0", "transpose_in1"]
                    .iter()
                    .map(|n| ffi::Param {
                        param_type: ffi::PARAM_SCALAR,
                        name: out._strings.add(n),
                        value: ffi::ParamValue {
                            scalar: ffi::Scalar {
                                data_type: ffi::dtype::BOOL_8,
                                value: 0,
                            },
                        },
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let config = ffi::OpConfig {
                version: 1,
                v1: ffi::OpConfigV1 {
                    name: out._strings.add(&node.name),
                    package,
                    type_name: out._strings.add(map.qnn),
                    num_params: params.len() as u32,
                    params: params.as_mut_ptr(),
                    num_inputs: in_t.len() as u32,
                    inputs: in_t.as_mut_ptr(),
                    num_outputs: out_t.len() as u32,
                    outputs: out_t.as_mut_ptr(),
                },
            };
            let what = format!("node \"{}\" ({op} as {})", node.name, map.qnn);
            if let Some(v) = validate {
                // SAFETY: a live backend and an op config whose pointers are alive.
                lib.check(
                    unsafe { v(q.backend, config) },
                    &format!("validating {what}"),
                )?;
            }
            // SAFETY: as above, on the live graph.
            lib.check(unsafe { add(out.graph, config) }, &format!("adding {what}"))?;
        }
        for &o in &g.outputs {
            let qt = tensor(&mut out, o)?;
            let (dtype, dims) = shape_of(g, o)?;
            out.outputs.push((qt, dtype, dims));
        }
        // SAFETY: a live graph; no profile or signal.
        lib.check(
            unsafe {
                slot(t.graph_finalize, "graphFinalize")?(
                    out.graph,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            },
            "graphFinalize",
        )?;
        Ok(out)
    }

    /// Runs the graph on inputs in graph-input order.
    pub fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::invalid_input(format!(
                "the QNN graph takes {} inputs, {} given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        let mut ins = Vec::with_capacity(inputs.len());
        for (k, (v, bound)) in inputs.iter().zip(&self.inputs).enumerate() {
            let Some((qt, dtype, dims)) = bound else {
                continue;
            };
            let t = v.as_tensor()?;
            if t.dtype() != *dtype || t.shape() != dims.as_slice() {
                return Err(Error::invalid_input(format!(
                    "QNN graph input {k} is {dtype}{dims:?}, given {}{:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            let mut qt = *qt;
            qt.v1.client_buf = ffi::ClientBuffer {
                data: t.raw_bytes().as_ptr() as *mut _,
                size: t.raw_bytes().len() as u32,
            };
            ins.push(qt);
        }
        let mut bufs: Vec<Vec<u64>> = Vec::with_capacity(self.outputs.len());
        let mut outs = Vec::with_capacity(self.outputs.len());
        for (qt, dtype, dims) in &self.outputs {
            let n = dims.iter().product::<usize>() * dtype.size();
            let mut b = vec![0u64; n.div_ceil(8)];
            let mut qt = *qt;
            qt.v1.client_buf = ffi::ClientBuffer {
                data: b.as_mut_ptr().cast(),
                size: n as u32,
            };
            bufs.push(b);
            outs.push(qt);
        }
        let lib = self.q.library();
        let exec = slot(lib.table().graph_execute, "graphExecute")?;
        let _serial = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: a finalized graph; input buffers are read and output buffers written
        // during the call, all alive until it returns.
        lib.check(
            unsafe {
                exec(
                    self.graph,
                    ins.as_ptr(),
                    ins.len() as u32,
                    outs.as_mut_ptr(),
                    outs.len() as u32,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            },
            "graphExecute",
        )?;
        drop(_serial);
        self.outputs
            .iter()
            .zip(bufs)
            .map(|((_, dtype, dims), b)| {
                let n = dims.iter().product::<usize>() * dtype.size();
                let bytes: &[u8] = &bytemuck::cast_slice(&b)[..n];
                Ok(Value::Tensor(Tensor::from_bytes(
                    *dtype,
                    dims.clone(),
                    Bytes::copy_from_slice(bytes),
                )?))
            })
            .collect()
    }
}

/// The values a node's QNN op reads (a Reshape's shape input is dropped).
fn node_inputs(node: &Node) -> Vec<usize> {
    match mapping(node.op.name()).map(|m| m.lowering) {
        Some(Lowering::Reshape) => node.inputs.first().copied().flatten().into_iter().collect(),
        _ => node.inputs.iter().flatten().copied().collect(),
    }
}

fn in_node(e: Error, node: &Node) -> Error {
    e.context(format!("node \"{}\" ({})", node.name, node.op.name()))
}
