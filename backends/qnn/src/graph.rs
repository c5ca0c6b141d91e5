//! xnpu graphs as QNN graphs: one QNN tensor per xnpu value (graph inputs APP_WRITE, graph
//! outputs APP_READ, constants STATIC, the rest NATIVE), one QNN node per xnpu node, each
//! validated by the backend (`backendValidateOpConfig`) before it is added: an op the
//! backend does not know otherwise passes `graphAddNode` and fails late, at finalize, with a
//! misleading code.

use std::path::Path;
use std::sync::Arc;

use xnpu_core::shape::checked_nbytes;
use xnpu_core::{Bytes, DType, Error, ErrorKind, Result, Tensor, Value, ValueType};
use xnpu_graph::{Graph, Node, Op};
use xnpu_ops::nn;

use crate::ffi::{self, Handle};
use crate::{qnn_dtype, slot, Qnn, Strings};

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
    /// Whether the graph came from a saved context binary instead of being built.
    loaded_from_cache: bool,
    /// The QNN op types of the nodes added, in order (empty for a graph reloaded from a
    /// context binary).
    ops: Vec<String>,
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
        // QDQ node units become integer ops; the encodings are read before folding (the
        // folded QuantizeLinears are gone from the folded graph).
        let quant = quantized_values(g);
        let folded = crate::qdq::fold(g, &quant);
        let g = folded.as_ref().unwrap_or(g);
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
        let mut out = QnnGraph::empty(q.clone(), context, false);
        let name = out._strings.add(graph_name(g));
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
        let mut b = Builder {
            lib,
            backend: q.backend,
            graph: out.graph,
            g,
            tensors: vec![None; g.values.len()],
            out: &mut out,
            natives: 0,
            package: std::ptr::null(),
            quant,
            nhwc: std::collections::HashMap::new(),
        };
        b.package = b.out._strings.add("qti.aisw");
        let read: std::collections::HashSet<usize> = g
            .nodes
            .iter()
            .flat_map(node_inputs)
            .chain(g.outputs.iter().copied())
            .collect();
        let mut inputs = Vec::with_capacity(g.inputs.len());
        for &i in &g.inputs {
            inputs.push(if read.contains(&i) {
                let qt = b.value(i)?;
                let (dtype, dims) = shape_of(g, i)?;
                Some((qt, dtype, dims))
            } else {
                None
            });
        }
        for node in &g.nodes {
            crate::lower::lower(&mut b, node).map_err(|e| in_node(e, node))?;
        }
        let mut outputs = Vec::with_capacity(g.outputs.len());
        for &o in &g.outputs {
            let qt = b.value(o)?;
            let (dtype, dims) = shape_of(g, o)?;
            outputs.push((qt, dtype, dims));
        }
        drop(b);
        out.inputs = inputs;
        out.outputs = outputs;
        // SAFETY: a live graph; no profile or signal.
        lib.check_as(
            unsafe {
                slot(t.graph_finalize, "graphFinalize")?(
                    out.graph,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            },
            "graphFinalize",
            ErrorKind::Unsupported,
        )?;
        Ok(out)
    }

    /// Whether this graph was reloaded from a saved context binary.
    /// The QNN op types of the nodes this graph was built from, in order (empty when it was
    /// reloaded from a context binary).
    pub fn qnn_ops(&self) -> &[String] {
        &self.ops
    }

    pub fn loaded_from_cache(&self) -> bool {
        self.loaded_from_cache
    }

    /// Builds `g`, or reloads it from a context binary saved in `dir` by an earlier build
    /// of the same graph (the file's name hashes the graph as ONNX with the library and SoC).
    /// The file is sealed with `xnpu_core::blob`: it is used only when whole and made by the
    /// same library build (path, build id, core API version) for the same SoC; otherwise it
    /// is rebuilt and replaced. A new build is saved there (atomically). A cache that cannot
    /// be read or written only costs the rebuild.
    pub fn build_cached(q: Arc<Qnn>, g: &Graph, dir: Option<&Path>) -> Result<QnnGraph> {
        let Some(dir) = dir else {
            return QnnGraph::build(q, g);
        };
        let key = cache_key(&q, g)?;
        let file = dir.join(format!("{key}.qnnctx"));
        let compat = cache_compat(&q);
        let compat: Vec<(&str, &str)> = compat.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Ok(bytes) = xnpu_core::blob::read_file(&file, MAX_CONTEXT_FILE) {
            match xnpu_core::blob::open(CONTEXT_KIND, &compat, &bytes) {
                Ok(payload) => {
                    if let Some((ids, bin)) = split_context(payload) {
                        if let Ok(reloaded) = QnnGraph::from_binary(q.clone(), g, bin, ids) {
                            return Ok(reloaded);
                        }
                    }
                }
                Err(why) => tracing::warn!("{}: {why}; building the graph again", file.display()),
            }
        }
        let built = QnnGraph::build(q, g)?;
        if let Ok(payload) = built.context_payload() {
            let sealed = xnpu_core::blob::seal(CONTEXT_KIND, &compat, &payload);
            let _ = std::fs::create_dir_all(dir)
                .and_then(|_| xnpu_core::blob::write_atomically(&file, &sealed));
        }
        Ok(built)
    }

    /// The finalized context as a binary, after the ids of the graph's I/O tensors: `u32`
    /// length of the ids text, the text (inputs' ids, then outputs', a line each), the binary.
    fn context_payload(&self) -> std::io::Result<Vec<u8>> {
        let lib = self.q.library();
        let t = lib.table();
        let (Some(size_of), Some(get)) = (t.context_get_binary_size, t.context_get_binary) else {
            return Err(std::io::Error::other(
                "no contextGetBinary in this QNN library",
            ));
        };
        let mut size = 0u64;
        // SAFETY: a live, finalized context and a valid out-pointer.
        if unsafe { size_of(self.context, &mut size) } != 0 {
            return Err(std::io::Error::other("contextGetBinarySize failed"));
        }
        let size = usize::try_from(size).map_err(std::io::Error::other)?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(size).map_err(std::io::Error::other)?;
        buf.resize(size, 0u8);
        let mut written = 0u64;
        // SAFETY: `buf` holds `size` writable bytes.
        if unsafe {
            get(
                self.context,
                buf.as_mut_ptr().cast(),
                size as u64,
                &mut written,
            )
        } != 0
        {
            return Err(std::io::Error::other("contextGetBinary failed"));
        }
        buf.truncate(written as usize);
        let list = |it: &mut dyn Iterator<Item = Option<u32>>| {
            it.map(|i| i.map_or("-".to_string(), |i| i.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let text = format!(
            "{}\n{}\n",
            list(
                &mut self
                    .inputs
                    .iter()
                    .map(|i| i.as_ref().map(|(t, _, _)| t.v1.id))
            ),
            list(&mut self.outputs.iter().map(|(t, _, _)| Some(t.v1.id)))
        );
        let mut out = Vec::with_capacity(4 + text.len() + buf.len());
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Recreates a context from a saved binary and retrieves its graph; the I/O tensors are
    /// described again from `g` with the ids the build gave them.
    fn from_binary(q: Arc<Qnn>, g: &Graph, bin: &[u8], ids: &str) -> Result<QnnGraph> {
        let lib = q.library();
        let t = lib.table();
        let mut context: Handle = std::ptr::null_mut();
        let create = slot(t.context_create_from_binary, "contextCreateFromBinary")?;
        // SAFETY: live backend and device; the binary is read during the call.
        lib.check(
            unsafe {
                create(
                    q.backend,
                    q.device,
                    std::ptr::null(),
                    bin.as_ptr().cast(),
                    bin.len() as u64,
                    &mut context,
                    std::ptr::null_mut(),
                )
            },
            "contextCreateFromBinary",
        )?;
        let mut out = QnnGraph::empty(q.clone(), context, true);
        let name = out._strings.add(graph_name(g));
        let retrieve = slot(t.graph_retrieve, "graphRetrieve")?;
        // SAFETY: a live context and a NUL-terminated graph name.
        lib.check(
            unsafe { retrieve(context, name, &mut out.graph) },
            "graphRetrieve",
        )?;
        let mut lines = ids.lines();
        let parse = |line: Option<&str>| -> Result<Vec<Option<u32>>> {
            line.unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s == "-" {
                        Ok(None)
                    } else {
                        s.parse()
                            .map(Some)
                            .map_err(|_| Error::compute(format!("a QNN cache id file has \"{s}\"")))
                    }
                })
                .collect()
        };
        let (in_ids, out_ids) = (parse(lines.next())?, parse(lines.next())?);
        let quant = quantized_values(g);
        if in_ids.len() != g.inputs.len() || out_ids.len() != g.outputs.len() {
            return Err(Error::compute(
                "a QNN cache id file does not match the graph",
            ));
        }
        for (&v, id) in g.inputs.iter().zip(in_ids) {
            let entry = match id {
                Some(id) => {
                    let (dtype, dims) = shape_of(g, v)?;
                    let name = format!("v{v}_{}", g.values[v].name);
                    let q = quant.get(&v).copied();
                    let mut qt = out.tensor(&name, ffi::TENSOR_APP_WRITE, dtype, &dims, q)?;
                    qt.v1.id = id;
                    Some((qt, dtype, dims))
                }
                None => None,
            };
            out.inputs.push(entry);
        }
        for (&v, id) in g.outputs.iter().zip(out_ids) {
            let id = id.ok_or_else(|| Error::compute("a QNN cache id file lacks an output"))?;
            let (dtype, dims) = shape_of(g, v)?;
            let name = format!("v{v}_{}", g.values[v].name);
            let q = quant.get(&v).copied();
            let mut qt = out.tensor(&name, ffi::TENSOR_APP_READ, dtype, &dims, q)?;
            qt.v1.id = id;
            out.outputs.push((qt, dtype, dims));
        }
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
            let n = checked_nbytes(*dtype, dims)?;
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
                let n = checked_nbytes(*dtype, dims)?;
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

/// The values a node's QNN ops read as graph tensors (constants folded into params, and a
/// Reshape's shape, are not).
fn node_inputs(node: &Node) -> Vec<usize> {
    crate::lower::reads(node)
}

fn in_node(e: Error, node: &Node) -> Error {
    e.context(node.describe())
}

/// QNN's data type and quantisation for a tensor: a quantised value (a QDQ model's) is
/// fixed point with its scale and offset; anything else is plain.
fn tensor_type(dtype: DType, quant: Option<(f32, i32)>) -> Result<(u32, ffi::QuantizeParams)> {
    if let Some((scale, zero_point)) = quant {
        let qd = match dtype {
            DType::U8 => ffi::dtype::UFIXED_POINT_8,
            DType::I8 => ffi::dtype::SFIXED_POINT_8,
            DType::U16 => ffi::dtype::UFIXED_POINT_16,
            DType::I32 => ffi::dtype::SFIXED_POINT_32,
            other => {
                return Err(Error::unsupported(format!(
                    "QNN's HTP has no quantised {other} tensors (u8, i8 or u16)"
                )))
            }
        };
        return Ok((qd, ffi::QuantizeParams::scale_offset(scale, zero_point)));
    }
    let qd = qnn_dtype(dtype)
        .ok_or_else(|| Error::unsupported(format!("QNN's HTP has no {dtype} tensors")))?;
    Ok((qd, ffi::QuantizeParams::undefined()))
}

/// The quantised values of a QDQ model with per-tensor constant scales and zero points:
/// each QuantizeLinear's output and each DequantizeLinear's input.
pub fn quantized_values(g: &Graph) -> std::collections::HashMap<usize, (f32, i32)> {
    let scalar_f32 = |id: Option<usize>| -> Option<f32> {
        let t = g.values[id?].constant.as_ref()?;
        (t.len() == 1).then(|| t.to_vec::<f32>().ok()?.first().copied())?
    };
    let zero_point = |id: Option<usize>| -> Option<i32> {
        let Some(id) = id else { return Some(0) };
        let t = g.values[id].constant.as_ref()?;
        if t.len() != 1 {
            return None;
        }
        let b = *t.raw_bytes().first()?;
        Some(match t.dtype() {
            DType::U8 => i32::from(b),
            DType::I8 => i32::from(b as i8),
            DType::U16 => i32::from(u16::from_le_bytes(t.raw_bytes().get(..2)?.try_into().ok()?)),
            _ => return None,
        })
    };
    let mut out = std::collections::HashMap::new();
    for n in &g.nodes {
        let quantized = match &n.op {
            Op::Nn(nn::Op::QuantizeLinear(_)) => n.outputs.first().copied().flatten(),
            Op::Nn(nn::Op::DequantizeLinear(_)) => n.inputs.first().copied().flatten(),
            _ => continue,
        };
        let scale = scalar_f32(n.inputs.get(1).copied().flatten());
        let zp = zero_point(n.inputs.get(2).copied().flatten());
        if let (Some(v), Some(s), Some(z)) = (quantized, scale, zp) {
            out.insert(v, (s, z));
        }
    }
    out
}

/// The name a graph is created and retrieved under.
fn graph_name(g: &Graph) -> &str {
    if g.name.is_empty() {
        "xnpu"
    } else {
        &g.name
    }
}

impl QnnGraph {
    /// A graph in `context`, with no tensors described yet.
    fn empty(q: Arc<Qnn>, context: Handle, loaded_from_cache: bool) -> QnnGraph {
        QnnGraph {
            q,
            context,
            graph: std::ptr::null_mut(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            _strings: Strings::default(),
            _dims: Vec::new(),
            _statics: Vec::new(),
            lock: std::sync::Mutex::new(()),
            loaded_from_cache,
            ops: Vec::new(),
        }
    }

    /// A tensor's description (id 0, no data), its name and dims kept alive in `self`.
    fn tensor(
        &mut self,
        name: &str,
        kind: u32,
        dtype: DType,
        dims: &[usize],
        quant: Option<(f32, i32)>,
    ) -> Result<ffi::Tensor> {
        let (qd, qparams) =
            tensor_type(dtype, quant).map_err(|e| e.context(format!("\"{name}\"")))?;
        let mut d: Vec<u32> = dims
            .iter()
            .map(|&x| u32::try_from(x))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::unsupported(format!("\"{name}\" has a dim over 2^32")))?;
        let dims_ptr = d.as_mut_ptr();
        self._dims.push(d);
        Ok(ffi::Tensor {
            version: 1,
            v1: ffi::TensorV1 {
                id: 0,
                name: self._strings.add(name),
                tensor_type: kind,
                data_format: 0,
                data_type: qd,
                quantize: qparams,
                rank: dims.len() as u32,
                dimensions: dims_ptr,
                mem_type: 0,
                client_buf: ffi::ClientBuffer {
                    data: std::ptr::null_mut(),
                    size: 0,
                },
            },
            _v2_tail: [0; 3],
        })
    }
}

/// What a saved context is: kind and the largest file read back.
const CONTEXT_KIND: &str = "qnn-context";
const MAX_CONTEXT_FILE: u64 = 8 << 30;

/// What a saved context binary is valid for: the library (path and build), its core API
/// version and the SoC.
fn cache_compat(q: &Qnn) -> Vec<(&'static str, String)> {
    let lib = q.library();
    let core = lib.providers().first().map(|p| p.core).unwrap_or_default();
    vec![
        ("library", lib.path().display().to_string()),
        ("build", lib.build_id().unwrap_or_default().to_string()),
        (
            "core",
            format!("{}.{}.{}", core.major, core.minor, core.patch),
        ),
        ("soc", q.soc().to_string()),
    ]
}

/// The ids text and the binary of a saved context's payload.
fn split_context(payload: &[u8]) -> Option<(&str, &[u8])> {
    let n = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(n).filter(|&e| e <= payload.len())?;
    Some((std::str::from_utf8(&payload[4..end]).ok()?, &payload[end..]))
}

/// The cache key of a graph on a QNN instance: FNV-1a over the graph as ONNX, the library's
/// path and build id, its core API version and the SoC.
fn cache_key(q: &Qnn, g: &Graph) -> Result<String> {
    let onnx = xnpu_graph::onnx::to_bytes(&xnpu_graph::Model {
        name: g.name.clone(),
        graph: g.clone(),
        ..Default::default()
    })?;
    let lib = q.library();
    let core = lib.providers().first().map(|p| p.core).unwrap_or_default();
    let meta = format!(
        "{}|{}|{}.{}.{}|soc {}",
        lib.path().display(),
        lib.build_id().unwrap_or_default(),
        core.major,
        core.minor,
        core.patch,
        q.soc()
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in onnx.iter().chain(meta.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}

/// A QNN op parameter.
pub enum Param {
    Bool(&'static str, bool),
    U32(&'static str, u32),
    I32(&'static str, i32),
    F32(&'static str, f32),
    /// A UINT_32 tensor parameter (`stride`, `pad_amount`, `perm`, `axes`).
    U32s(&'static str, Vec<usize>, Vec<u32>),
    /// An INT_32 tensor parameter (`ranges`).
    I32s(&'static str, Vec<usize>, Vec<i32>),
}

/// What a lowering uses to put QNN tensors and nodes into the graph being built.
pub struct Builder<'a> {
    lib: &'a crate::QnnLibrary,
    backend: Handle,
    graph: Handle,
    /// The xnpu graph being lowered.
    pub g: &'a Graph,
    tensors: Vec<Option<ffi::Tensor>>,
    out: &'a mut QnnGraph,
    natives: usize,
    package: *const std::ffi::c_char,
    /// Per-tensor scale and zero point of the quantised values of a QDQ model.
    quant: std::collections::HashMap<usize, (f32, i32)>,
    /// NCHW values an NHWC op made, as their NHWC tensors: the Transpose to NCHW is added
    /// only when something reads the NCHW value.
    nhwc: std::collections::HashMap<usize, ffi::Tensor>,
}

impl Builder<'_> {
    /// Dtype and dims of an xnpu value (a constant's, else its static type).
    pub fn info(&self, id: usize) -> Result<(DType, Vec<usize>)> {
        match &self.g.values[id].constant {
            Some(c) => Ok((c.dtype(), c.shape().to_vec())),
            None => shape_of(self.g, id),
        }
    }

    /// The per-tensor scale and zero point of a quantised value of a QDQ model.
    pub fn quant_of(&self, id: usize) -> Option<(f32, i32)> {
        self.quant.get(&id).copied()
    }

    /// A new intermediate tensor of the dtype (and quantisation) of xnpu value `id`.
    pub fn native_as(&mut self, id: usize, dims: &[usize]) -> Result<ffi::Tensor> {
        let (dtype, _) = self.info(id)?;
        let quant = self.quant_of(id);
        self.natives += 1;
        let name = format!("xnpu_tmp{}", self.natives);
        self.create(&name, ffi::TENSOR_NATIVE, dtype, dims, None, quant)
    }

    /// An xnpu value's constant, if it has one.
    pub fn constant(&self, id: usize) -> Option<&Tensor> {
        self.g.values[id].constant.as_ref()
    }

    /// The QNN tensor of an xnpu value: APP_WRITE for graph inputs, APP_READ for graph
    /// outputs, STATIC for constants, NATIVE otherwise. Created on first use.
    pub fn value(&mut self, id: usize) -> Result<ffi::Tensor> {
        if let Some(t) = self.tensors[id] {
            return Ok(t);
        }
        if let Some(t) = self.nhwc.get(&id).copied() {
            let y = self.create_value(id)?;
            self.add(
                &format!("v{id}/to_nchw"),
                "Transpose",
                vec![Param::U32s("perm", vec![4], vec![0, 3, 1, 2])],
                &[t],
                &[y],
            )?;
            return Ok(y);
        }
        self.create_value(id)
    }

    /// Records that NCHW value `id` exists as the NHWC tensor `t` (see [`Builder::value`]).
    pub fn defer_nchw(&mut self, id: usize, t: ffi::Tensor) {
        self.nhwc.insert(id, t);
    }

    /// The NHWC tensor of an NCHW value an NHWC op made, if any.
    pub fn nhwc_of(&self, id: usize) -> Option<ffi::Tensor> {
        self.nhwc.get(&id).copied()
    }

    fn create_value(&mut self, id: usize) -> Result<ffi::Tensor> {
        let v = &self.g.values[id];
        let (dtype, dims) = self.info(id)?;
        let kind = if v.constant.is_some() {
            ffi::TENSOR_STATIC
        } else if self.g.inputs.contains(&id) {
            ffi::TENSOR_APP_WRITE
        } else if self.g.outputs.contains(&id) {
            ffi::TENSOR_APP_READ
        } else {
            ffi::TENSOR_NATIVE
        };
        let data = v
            .constant
            .as_ref()
            .map(|c| c.bytes().cloned().unwrap_or_default());
        let name = format!("v{id}_{}", v.name);
        let quant = self.quant.get(&id).copied();
        let t = self.create(&name, kind, dtype, &dims, data, quant)?;
        self.tensors[id] = Some(t);
        Ok(t)
    }

    /// A new intermediate tensor (between the QNN nodes one xnpu node becomes).
    pub fn native(&mut self, dtype: DType, dims: &[usize]) -> Result<ffi::Tensor> {
        self.natives += 1;
        let name = format!("xnpu_tmp{}", self.natives);
        self.create(&name, ffi::TENSOR_NATIVE, dtype, dims, None, None)
    }

    /// A new STATIC tensor holding `bytes` (weights rearranged for QNN, for example).
    pub fn static_data(
        &mut self,
        dtype: DType,
        dims: &[usize],
        bytes: Bytes,
    ) -> Result<ffi::Tensor> {
        self.static_quantized(dtype, dims, bytes, None)
    }

    /// A new STATIC tensor holding `bytes`, fixed point with `quant` when given.
    pub fn static_quantized(
        &mut self,
        dtype: DType,
        dims: &[usize],
        bytes: Bytes,
        quant: Option<(f32, i32)>,
    ) -> Result<ffi::Tensor> {
        self.natives += 1;
        let name = format!("xnpu_static{}", self.natives);
        self.create(&name, ffi::TENSOR_STATIC, dtype, dims, Some(bytes), quant)
    }

    /// Creates a graph tensor (with `data` for a STATIC one) and returns it with the id
    /// QNN gave it.
    fn create(
        &mut self,
        name: &str,
        kind: u32,
        dtype: DType,
        dims: &[usize],
        data: Option<Bytes>,
        quant: Option<(f32, i32)>,
    ) -> Result<ffi::Tensor> {
        let mut qt = self.out.tensor(name, kind, dtype, dims, quant)?;
        if let Some(bytes) = data {
            qt.v1.client_buf = ffi::ClientBuffer {
                data: bytes.as_ptr() as *mut _,
                size: u32::try_from(bytes.len())
                    .map_err(|_| Error::unsupported(format!("\"{name}\" is over 4 GiB")))?,
            };
            self.out._statics.push(bytes);
        }
        let create = slot(
            self.lib.table().tensor_create_graph_tensor,
            "tensorCreateGraphTensor",
        )?;
        // SAFETY: a live graph and a tensor whose pointers stay alive in the QnnGraph; QNN
        // writes the tensor's id back.
        self.lib.check(
            unsafe { create(self.graph, &mut qt) },
            &format!("creating tensor \"{name}\""),
        )?;
        Ok(qt)
    }

    /// Validates one QNN node with the backend and adds it.
    pub fn add(
        &mut self,
        name: &str,
        qnn_type: &str,
        params: Vec<Param>,
        inputs: &[ffi::Tensor],
        outputs: &[ffi::Tensor],
    ) -> Result<()> {
        let mut ps = Vec::with_capacity(params.len());
        for p in params {
            ps.push(self.param(p)?);
        }
        let mut ins = inputs.to_vec();
        let mut outs = outputs.to_vec();
        let config = ffi::OpConfig {
            version: 1,
            v1: ffi::OpConfigV1 {
                name: self.out._strings.add(name),
                package: self.package,
                type_name: self.out._strings.add(qnn_type),
                num_params: ps.len() as u32,
                params: ps.as_mut_ptr(),
                num_inputs: ins.len() as u32,
                inputs: ins.as_mut_ptr(),
                num_outputs: outs.len() as u32,
                outputs: outs.as_mut_ptr(),
            },
        };
        let t = self.lib.table();
        if let Some(v) = t.backend_validate_op_config {
            // SAFETY: a live backend and an op config whose pointers are alive.
            self.lib.check_as(
                unsafe { v(self.backend, config) },
                &format!("validating {qnn_type} \"{name}\""),
                ErrorKind::Unsupported,
            )?;
        }
        let add = slot(t.graph_add_node, "graphAddNode")?;
        // SAFETY: as above, on the live graph.
        self.lib.check(
            unsafe { add(self.graph, config) },
            &format!("adding {qnn_type} \"{name}\""),
        )?;
        self.out.ops.push(qnn_type.to_string());
        Ok(())
    }

    fn param(&mut self, p: Param) -> Result<ffi::Param> {
        let scalar = |out: &mut QnnGraph, name: &str, data_type: u32, value: u64| ffi::Param {
            param_type: ffi::PARAM_SCALAR,
            name: out._strings.add(name),
            value: ffi::ParamValue {
                scalar: ffi::Scalar { data_type, value },
            },
        };
        Ok(match p {
            Param::Bool(n, v) => scalar(self.out, n, ffi::dtype::BOOL_8, u64::from(v)),
            Param::U32(n, v) => scalar(self.out, n, ffi::dtype::UINT_32, u64::from(v)),
            Param::I32(n, v) => scalar(self.out, n, ffi::dtype::INT_32, u64::from(v as u32)),
            Param::F32(n, v) => scalar(self.out, n, ffi::dtype::FLOAT_32, u64::from(v.to_bits())),
            Param::U32s(n, dims, v) => {
                let bytes = Bytes::copy_from_slice(bytemuck::cast_slice(&v));
                let t = self.static_data(DType::U32, &dims, bytes)?;
                self.tensor_param(n, t)
            }
            Param::I32s(n, dims, v) => {
                let bytes = Bytes::copy_from_slice(bytemuck::cast_slice(&v));
                let t = self.static_data(DType::I32, &dims, bytes)?;
                self.tensor_param(n, t)
            }
        })
    }

    fn tensor_param(&mut self, name: &str, t: ffi::Tensor) -> ffi::Param {
        ffi::Param {
            param_type: ffi::PARAM_TENSOR,
            name: self.out._strings.add(name),
            value: ffi::ParamValue { tensor: t },
        }
    }
}
