//! Reading the graph ONNX Runtime hands over (`OrtGraph`, borrowed for one call) into owned
//! ONNX protos that xnpu's importer takes: nodes with their attributes, initializers with
//! their data, inputs and outputs with their types.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_void};
use std::ptr;

use bytes::Bytes;
use xnpu::graph::onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::ort::{
    text, Api, Fail, OrtGraph, OrtNode, OrtOpAttr, OrtOpAttrType, OrtValue, OrtValueInfo, R,
};

/// A value's type as ONNX Runtime knows it: element type (ONNX's numbering) and dims
/// (a number, or a symbol, or unknown); `None` when it is not a tensor or has no type.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub elem_type: i32,
    /// `None` when the rank is unknown.
    pub dims: Option<Vec<Dim>>,
}

/// A tensor's contents as ONNX Runtime holds them.
pub enum TensorData<'a> {
    /// Borrowed from ONNX Runtime for the call.
    Bytes(&'a [u8]),
    Strings(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Known(i64),
    Symbol(String),
    Unknown,
}

/// One node of the graph, owned.
pub struct NodeDesc {
    pub ptr: *const OrtNode,
    /// A name unique in the graph (ONNX Runtime's, or `_ort_node_<id>` where it has none or
    /// repeats one): xnpu's imported node carries it, which maps answers back.
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Value names; "" for an absent optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The types of the outputs (for cutting the graph at a node xnpu cannot read).
    pub output_types: Vec<Option<TensorInfo>>,
    /// Values of enclosing graphs that the node's bodies read.
    pub implicit_inputs: Vec<String>,
    /// The attributes (bodies included, as graph attributes), or why they could not be read
    /// (the node is then refused).
    pub attributes: Result<Vec<AttributeProto>, String>,
    /// The EP ONNX Runtime already gave the node to (ours in an earlier pass, or another).
    pub ep: String,
    /// Inputs and outputs that are not tensors (sequences, optionals, maps).
    pub non_tensor: Vec<String>,
}

/// A graph, owned: what xnpu needs of it.
pub struct GraphDesc {
    pub name: String,
    pub ir_version: i64,
    pub opsets: Vec<(String, i64)>,
    /// Graph inputs that are not initializers, with their types.
    pub inputs: Vec<(String, Option<TensorInfo>)>,
    pub outputs: Vec<(String, Option<TensorInfo>)>,
    /// Initializers by name, or why one could not be read.
    pub initializers: Vec<(String, Result<TensorProto, String>)>,
    pub nodes: Vec<NodeDesc>,
}

/// The count-then-fill pattern of ONNX Runtime's list getters.
pub(crate) fn list<T: Copy>(
    api: &Api,
    what: &str,
    count: impl FnOnce(*mut usize) -> crate::ort::OrtStatusPtr,
    fill: impl FnOnce(*mut T, usize) -> crate::ort::OrtStatusPtr,
    empty: T,
) -> R<Vec<T>> {
    let mut n = 0usize;
    api.check(count(&mut n), what)?;
    let mut v = vec![empty; n];
    if n > 0 {
        api.check(fill(v.as_mut_ptr(), n), what)?;
    }
    Ok(v)
}

impl Api {
    /// The name of a value (`""` for a NULL value info: an absent optional input).
    pub fn value_name(&self, vi: *const OrtValueInfo) -> R<String> {
        if vi.is_null() {
            return Ok(String::new());
        }
        let mut p: *const c_char = ptr::null();
        // SAFETY: a value info of the graph being read; `p` receives a string it owns.
        self.check(
            unsafe { (self.ort.GetValueInfoName)(vi, &mut p) },
            "GetValueInfoName",
        )?;
        // SAFETY: NULL or a string alive for the call.
        Ok(unsafe { text(p) })
    }

    /// The tensor type of a value: `Ok(None)` when it has no type, `Err(())` inside when
    /// it is not a tensor.
    pub fn value_kind(&self, vi: *const OrtValueInfo) -> R<Result<Option<TensorInfo>, ()>> {
        if vi.is_null() {
            return Ok(Ok(None));
        }
        let mut ti = ptr::null();
        // SAFETY: a live value info; `ti` receives type info it owns.
        let s = unsafe { (self.ort.GetValueInfoTypeInfo)(vi, &mut ti) };
        if !s.0.is_null() || ti.is_null() {
            self.ignore(s);
            return Ok(Ok(None));
        }
        let mut onnx_type = 0i32;
        // SAFETY: live type info; ONNXType is an i32 enum, read as i32 (a value this build
        // does not know is then no UB).
        let s =
            unsafe { (self.ort.GetOnnxTypeFromTypeInfo)(ti, (&mut onnx_type as *mut i32).cast()) };
        self.check(s, "GetOnnxTypeFromTypeInfo")?;
        match onnx_type {
            0 => return Ok(Ok(None)),
            1 => {}
            _ => return Ok(Err(())),
        }
        let mut info = ptr::null();
        // SAFETY: tensor type info; `info` is borrowed from it.
        let s = unsafe { (self.ort.CastTypeInfoToTensorInfo)(ti, &mut info) };
        self.check(s, "CastTypeInfoToTensorInfo")?;
        if info.is_null() {
            return Ok(Ok(None));
        }
        // SAFETY: a live tensor info.
        unsafe { self.tensor_info(info) }.map(|t| Ok(Some(t)))
    }

    /// The tensor type of a value, `None` when it has none or is not a tensor.
    pub fn value_type(&self, vi: *const OrtValueInfo) -> R<Option<TensorInfo>> {
        Ok(self.value_kind(vi)?.unwrap_or(None))
    }

    /// Element type and dims of a tensor info.
    ///
    /// # Safety
    /// `info` is a live `OrtTensorTypeAndShapeInfo`.
    pub unsafe fn tensor_info(
        &self,
        info: *const ort_sys::OrtTensorTypeAndShapeInfo,
    ) -> R<TensorInfo> {
        let mut elem = 0i32;
        // SAFETY: live info (the contract); the element type is an i32 enum read as i32.
        let s = unsafe { (self.ort.GetTensorElementType)(info, (&mut elem as *mut i32).cast()) };
        self.check(s, "GetTensorElementType")?;
        // SAFETY: as above.
        if !unsafe { (self.ort.TensorTypeAndShape_HasShape)(info) } {
            return Ok(TensorInfo {
                elem_type: elem,
                dims: None,
            });
        }
        let mut n = 0usize;
        // SAFETY: as above.
        self.check(
            unsafe { (self.ort.GetDimensionsCount)(info, &mut n) },
            "GetDimensionsCount",
        )?;
        let mut dims = vec![0i64; n];
        let mut syms: Vec<*const c_char> = vec![ptr::null(); n];
        if n > 0 {
            // SAFETY: `n` slots each.
            self.check(
                unsafe { (self.ort.GetDimensions)(info, dims.as_mut_ptr(), n) },
                "GetDimensions",
            )?;
            // SAFETY: as above.
            self.check(
                unsafe { (self.ort.GetSymbolicDimensions)(info, syms.as_mut_ptr(), n) },
                "GetSymbolicDimensions",
            )?;
        }
        let dims = dims
            .into_iter()
            .zip(syms)
            .map(|(d, s)| {
                // SAFETY: NULL or a string the info owns.
                let sym = unsafe { text(s) };
                if d >= 0 {
                    Dim::Known(d)
                } else if !sym.is_empty() {
                    Dim::Symbol(sym)
                } else {
                    Dim::Unknown
                }
            })
            .collect();
        Ok(TensorInfo {
            elem_type: elem,
            dims: Some(dims),
        })
    }

    /// A tensor's element type, dims and contents on the path of every run: ONNX Runtime's
    /// references to its element type and dims (no info object made and freed), the bytes
    /// borrowed; strings through [`Api::tensor_value`].
    ///
    /// # Safety
    /// `v` is a live `OrtValue` holding a tensor in host memory, alive for `'a`.
    pub unsafe fn run_input<'a>(&self, v: *const OrtValue) -> R<(i32, Vec<usize>, TensorData<'a>)> {
        let (mut elem, mut dims, mut rank) = (0i32, ptr::null::<i64>(), 0usize);
        // SAFETY: a live value (the contract); the element type is an i32 enum read as i32,
        // the dims are borrowed from the value.
        let s = unsafe {
            (self.ort.GetTensorElementTypeAndShapeDataReference)(
                v,
                (&mut elem as *mut i32).cast(),
                &mut dims,
                &mut rank,
            )
        };
        self.check(s, "GetTensorElementTypeAndShapeDataReference")?;
        let dims: &[i64] = if rank == 0 || dims.is_null() {
            &[]
        } else {
            // SAFETY: `rank` dims at `dims`, owned by the live value.
            unsafe { std::slice::from_raw_parts(dims, rank) }
        };
        let shape: Vec<usize> = dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| Fail::invalid("a negative dim")))
            .collect::<R<_>>()?;
        let dtype = xnpu::graph::onnx::types::dtype(elem)
            .map_err(|e| Fail::new(ort_sys::OrtErrorCode::ORT_NOT_IMPLEMENTED, e.to_string()))?;
        if dtype == xnpu::DType::String {
            // SAFETY: the caller's contract.
            let (_, shape, data) = unsafe { self.tensor_value(v) }?;
            return Ok((elem, shape, data));
        }
        let len = xnpu::core::shape::checked_nbytes(dtype, &shape).map_err(Fail::from)?;
        // SAFETY: the caller's contract.
        let bytes = unsafe { self.borrow_bytes(v, len) }?;
        Ok((elem, shape, TensorData::Bytes(bytes)))
    }

    /// The `len` bytes of a (non-string) tensor's buffer, borrowed.
    ///
    /// # Safety
    /// `v` is a live `OrtValue` holding a tensor of `len` bytes in host memory, alive for `'a`.
    unsafe fn borrow_bytes<'a>(&self, v: *const OrtValue, len: usize) -> R<&'a [u8]> {
        if len == 0 {
            return Ok(&[]);
        }
        let mut data: *const c_void = ptr::null();
        // SAFETY: a live tensor; `data` receives its buffer.
        self.check(
            unsafe { (self.ort.GetTensorData)(v, &mut data) },
            "GetTensorData",
        )?;
        if data.is_null() {
            return Err(Fail::ep("ONNX Runtime gave a tensor with no data"));
        }
        // SAFETY: ONNX Runtime's buffer of this dtype and shape holds `len` bytes, alive as
        // long as the value (the caller's `'a`).
        Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
    }

    /// A tensor value's type, shape and contents (bytes borrowed, strings copied).
    ///
    /// # Safety
    /// `v` is a live `OrtValue` holding a tensor in host memory, alive for `'a`.
    pub unsafe fn tensor_value<'a>(
        &self,
        v: *const OrtValue,
    ) -> R<(TensorInfo, Vec<usize>, TensorData<'a>)> {
        let mut info = ptr::null_mut();
        // SAFETY: a live value (the contract); `info` is ours to release.
        self.check(
            unsafe { (self.ort.GetTensorTypeAndShape)(v, &mut info) },
            "GetTensorTypeAndShape",
        )?;
        // SAFETY: the info just made.
        let ti = unsafe { self.tensor_info(info) };
        // SAFETY: made above, released once.
        unsafe { (self.ort.ReleaseTensorTypeAndShapeInfo)(info) };
        let ti = ti?;
        let dtype = xnpu::graph::onnx::types::dtype(ti.elem_type)
            .map_err(|e| Fail::new(ort_sys::OrtErrorCode::ORT_NOT_IMPLEMENTED, e.to_string()))?;
        let shape: Vec<usize> = ti
            .dims
            .iter()
            .flatten()
            .map(|d| match d {
                Dim::Known(n) => usize::try_from(*n).map_err(|_| Fail::invalid("a negative dim")),
                _ => Err(Fail::invalid("a tensor value with an unknown dim")),
            })
            .collect::<R<_>>()?;
        if dtype == xnpu::DType::String {
            let n = xnpu::core::shape::checked_numel(&shape).map_err(Fail::from)?;
            let mut total = 0usize;
            // SAFETY: a live string tensor.
            self.check(
                unsafe { (self.ort.GetStringTensorDataLength)(v, &mut total) },
                "GetStringTensorDataLength",
            )?;
            let mut buf = vec![0u8; total];
            let mut offsets = vec![0usize; n];
            if n > 0 {
                // SAFETY: buffers of the sizes ONNX Runtime gave.
                self.check(
                    unsafe {
                        (self.ort.GetStringTensorContent)(
                            v,
                            buf.as_mut_ptr().cast(),
                            total,
                            offsets.as_mut_ptr(),
                            n,
                        )
                    },
                    "GetStringTensorContent",
                )?;
            }
            let strings = (0..n)
                .map(|k| {
                    let start = offsets[k].min(total);
                    let end = offsets
                        .get(k + 1)
                        .copied()
                        .unwrap_or(total)
                        .clamp(start, total);
                    String::from_utf8_lossy(&buf[start..end]).into_owned()
                })
                .collect();
            return Ok((ti, shape, TensorData::Strings(strings)));
        }
        let len = xnpu::core::shape::checked_nbytes(dtype, &shape).map_err(Fail::from)?;
        // SAFETY: the caller's contract.
        let bytes = unsafe { self.borrow_bytes(v, len) }?;
        Ok((ti, shape, TensorData::Bytes(bytes)))
    }

    fn attribute(&self, attr: *const OrtOpAttr) -> R<Option<AttributeProto>> {
        let mut name = ptr::null();
        // SAFETY: a live attribute of the node being read.
        self.check(
            unsafe { (self.ort.OpAttr_GetName)(attr, &mut name) },
            "OpAttr_GetName",
        )?;
        // SAFETY: a string the attribute owns.
        let name = unsafe { text(name) };
        let mut ty = 0i32;
        // SAFETY: as above; the type is an i32 enum read as i32.
        let s = unsafe { (self.ort.OpAttr_GetType)(attr, (&mut ty as *mut i32).cast()) };
        self.check(s, "OpAttr_GetType")?;
        let read = |t: OrtOpAttrType| -> R<Vec<u8>> {
            let mut need = 0usize;
            // SAFETY: a size probe: no buffer, ONNX Runtime writes the size it needs.
            let s = unsafe { (self.ort.ReadOpAttr)(attr, t, ptr::null_mut(), 0, &mut need) };
            self.ignore(s);
            let mut buf = vec![0u8; need];
            if need > 0 {
                let mut got = 0usize;
                // SAFETY: a buffer of the size asked for.
                let s = unsafe {
                    (self.ort.ReadOpAttr)(attr, t, buf.as_mut_ptr().cast(), need, &mut got)
                };
                self.check(s, "ReadOpAttr")?;
                buf.truncate(got.min(need));
            }
            Ok(buf)
        };
        let words = |b: &[u8]| -> Vec<[u8; 8]> {
            b.chunks_exact(8)
                .map(|c| c.try_into().unwrap_or([0; 8]))
                .collect()
        };
        let mut a = AttributeProto {
            name,
            ..Default::default()
        };
        use xnpu::graph::onnx::proto::AttributeType as T;
        match ty {
            1 => {
                a.r#type = T::Int as i32;
                a.i = words(&read(OrtOpAttrType::ORT_OP_ATTR_INT)?)
                    .first()
                    .map(|w| i64::from_ne_bytes(*w))
                    .unwrap_or(0);
            }
            2 => {
                a.r#type = T::Ints as i32;
                a.ints = words(&read(OrtOpAttrType::ORT_OP_ATTR_INTS)?)
                    .into_iter()
                    .map(i64::from_ne_bytes)
                    .collect();
            }
            3 => {
                a.r#type = T::Float as i32;
                let b = read(OrtOpAttrType::ORT_OP_ATTR_FLOAT)?;
                a.f = b
                    .get(..4)
                    .map(|w| f32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
                    .unwrap_or(0.0);
            }
            4 => {
                a.r#type = T::Floats as i32;
                a.floats = read(OrtOpAttrType::ORT_OP_ATTR_FLOATS)?
                    .chunks_exact(4)
                    .map(|w| f32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
                    .collect();
            }
            5 => {
                a.r#type = T::String as i32;
                // The bytes as they are (a binary EPContext blob is a string too).
                a.s = Bytes::from(read(OrtOpAttrType::ORT_OP_ATTR_STRING)?);
            }
            6 => {
                a.r#type = T::Strings as i32;
                let b = read(OrtOpAttrType::ORT_OP_ATTR_STRINGS)?;
                let body = b.strip_suffix(&[0]).unwrap_or(&b);
                a.strings = if b.is_empty() {
                    Vec::new()
                } else {
                    body.split(|&c| c == 0)
                        .map(Bytes::copy_from_slice)
                        .collect()
                };
            }
            7 => return Ok(None), // a body: the caller marks the node
            8 => {
                a.r#type = T::Tensor as i32;
                let mut v = ptr::null_mut();
                // SAFETY: a tensor attribute; `v` is ours to release.
                let s = unsafe { (self.ort.OpAttr_GetTensorAttributeAsOrtValue)(attr, &mut v) };
                self.check(s, "OpAttr_GetTensorAttributeAsOrtValue")?;
                // SAFETY: the value just made, alive until released below.
                let t = unsafe { self.tensor_value(v) }.map(|(ti, _, d)| tensor_proto("", &ti, &d));
                // SAFETY: made above, released once.
                unsafe { (self.ort.ReleaseValue)(v) };
                a.t = Some(t?);
            }
            other => {
                return Err(Fail::new(
                    ort_sys::OrtErrorCode::ORT_NOT_IMPLEMENTED,
                    format!(
                        "attribute \"{}\" has a type ({other}) xnpu cannot read from ONNX Runtime",
                        a.name
                    ),
                ))
            }
        }
        Ok(Some(a))
    }

    fn node(&self, node: *const OrtNode) -> R<NodeDesc> {
        let s = |f: unsafe extern "system" fn(
            *const OrtNode,
            *mut *const c_char,
        ) -> crate::ort::OrtStatusPtr,
                 what: &str|
         -> R<String> {
            let mut p = ptr::null();
            // SAFETY: a live node of the graph being read.
            self.check(unsafe { f(node, &mut p) }, what)?;
            // SAFETY: a string the node owns.
            Ok(unsafe { text(p) })
        };
        let name = s(self.ort.Node_GetName, "Node_GetName")?;
        let op_type = s(self.ort.Node_GetOperatorType, "Node_GetOperatorType")?;
        let domain = s(self.ort.Node_GetDomain, "Node_GetDomain")?;
        let ep = s(self.ort.Node_GetEpName, "Node_GetEpName")?;
        let o = self.ort;
        // SAFETY (the closures below): a live node; arrays sized by the count just read.
        let inputs = list(
            self,
            "Node_GetInputs",
            |n| unsafe { (o.Node_GetNumInputs)(node, n) },
            |p, n| unsafe { (o.Node_GetInputs)(node, p, n) },
            ptr::null(),
        )?;
        let outputs = list(
            self,
            "Node_GetOutputs",
            |n| unsafe { (o.Node_GetNumOutputs)(node, n) },
            |p, n| unsafe { (o.Node_GetOutputs)(node, p, n) },
            ptr::null(),
        )?;
        let implicit = list(
            self,
            "Node_GetImplicitInputs",
            |n| unsafe { (o.Node_GetNumImplicitInputs)(node, n) },
            |p, n| unsafe { (o.Node_GetImplicitInputs)(node, p, n) },
            ptr::null(),
        )?;
        let attrs = list(
            self,
            "Node_GetAttributes",
            |n| unsafe { (o.Node_GetNumAttributes)(node, n) },
            |p, n| unsafe { (o.Node_GetAttributes)(node, p, n) },
            ptr::null(),
        )?;
        let mut attributes: Result<Vec<AttributeProto>, String> = attrs
            .iter()
            .filter_map(|&a| match self.attribute(a) {
                Ok(Some(a)) => Some(Ok(a)),
                Ok(None) => None, // a body: read below
                Err(e) => Some(Err(e.message)),
            })
            .collect();
        let mut n_sub = 0usize;
        // SAFETY: a live node.
        self.check(
            unsafe { (o.Node_GetNumSubgraphs)(node, &mut n_sub) },
            "Node_GetNumSubgraphs",
        )?;
        if n_sub > 0 {
            let mut graphs: Vec<*const OrtGraph> = vec![ptr::null(); n_sub];
            let mut names: Vec<*const c_char> = vec![ptr::null(); n_sub];
            // SAFETY: arrays of the count just read.
            self.check(
                unsafe {
                    (o.Node_GetSubgraphs)(node, graphs.as_mut_ptr(), n_sub, names.as_mut_ptr())
                },
                "Node_GetSubgraphs",
            )?;
            for (g, an) in graphs.into_iter().zip(names) {
                // SAFETY: a string the node owns.
                let an = unsafe { text(an) };
                let body = self.read_graph(g).and_then(|d| {
                    let all: Vec<usize> = (0..d.nodes.len()).collect();
                    d.check_readable()?;
                    Ok(d.to_graph_proto(&all, None, None))
                });
                match (&mut attributes, body) {
                    (Ok(list), Ok(gp)) => list.push(AttributeProto {
                        name: an,
                        r#type: xnpu::graph::onnx::proto::AttributeType::Graph as i32,
                        g: Some(Box::new(gp)),
                        ..Default::default()
                    }),
                    (Ok(_), Err(e)) => {
                        attributes = Err(format!("its body \"{an}\" cannot be read: {}", e.message))
                    }
                    (Err(_), _) => {}
                }
            }
        }
        let mut non_tensor = Vec::new();
        let mut output_types = Vec::with_capacity(outputs.len());
        for &v in &outputs {
            match self.value_kind(v)? {
                Ok(t) => output_types.push(t),
                Err(()) => {
                    non_tensor.push(self.value_name(v)?);
                    output_types.push(None);
                }
            }
        }
        for &v in &inputs {
            if let Err(()) = self.value_kind(v)? {
                non_tensor.push(self.value_name(v)?);
            }
        }
        Ok(NodeDesc {
            ptr: node,
            name,
            op_type,
            domain,
            inputs: inputs
                .iter()
                .map(|&v| self.value_name(v))
                .collect::<R<_>>()?,
            outputs: outputs
                .iter()
                .map(|&v| self.value_name(v))
                .collect::<R<_>>()?,
            output_types,
            implicit_inputs: implicit
                .iter()
                .map(|&v| self.value_name(v))
                .collect::<R<_>>()?,
            attributes,
            ep,
            non_tensor,
        })
    }

    /// Reads a whole graph. `with_data`: read the initializers' bytes (else only types).
    pub fn read_graph(&self, graph: *const OrtGraph) -> R<GraphDesc> {
        let o = self.ort;
        let mut name = ptr::null();
        // SAFETY: a live graph (ONNX Runtime's callback argument).
        self.check(
            unsafe { (o.Graph_GetName)(graph, &mut name) },
            "Graph_GetName",
        )?;
        // SAFETY: a string the graph owns.
        let name = unsafe { text(name) };
        let mut ir_version = 0i64;
        // SAFETY: as above.
        self.check(
            unsafe { (o.Graph_GetOnnxIRVersion)(graph, &mut ir_version) },
            "Graph_GetOnnxIRVersion",
        )?;
        let mut n = 0usize;
        // SAFETY: as above.
        self.check(
            unsafe { (o.Graph_GetNumOperatorSets)(graph, &mut n) },
            "Graph_GetNumOperatorSets",
        )?;
        let mut domains: Vec<*const c_char> = vec![ptr::null(); n];
        let mut versions = vec![0i64; n];
        if n > 0 {
            // SAFETY: arrays of the count just read.
            self.check(
                unsafe {
                    (o.Graph_GetOperatorSets)(graph, domains.as_mut_ptr(), versions.as_mut_ptr(), n)
                },
                "Graph_GetOperatorSets",
            )?;
        }
        let opsets = domains
            .into_iter()
            .zip(versions)
            // SAFETY: strings the graph owns.
            .map(|(d, v)| (unsafe { text(d) }, v))
            .collect();
        // SAFETY (the closures below): a live graph; arrays sized by the count just read.
        let inits = list(
            self,
            "Graph_GetInitializers",
            |n| unsafe { (o.Graph_GetNumInitializers)(graph, n) },
            |p, n| unsafe { (o.Graph_GetInitializers)(graph, p, n) },
            ptr::null(),
        )?;
        let mut initializers = Vec::with_capacity(inits.len());
        for &vi in &inits {
            let iname = self.value_name(vi)?;
            let mut v = ptr::null();
            // SAFETY: an initializer's value info; `v` is borrowed from the graph.
            let s = unsafe { (o.ValueInfo_GetInitializerValue)(vi, &mut v) };
            let t = self
                .check(s, "ValueInfo_GetInitializerValue")
                .and_then(|()| {
                    if v.is_null() {
                        return Err(Fail::ep("no value"));
                    }
                    // SAFETY: the graph's initializer value, alive for the call.
                    let (ti, _, d) = unsafe { self.tensor_value(v) }?;
                    Ok(tensor_proto(&iname, &ti, &d))
                });
            initializers.push((iname, t.map_err(|f| f.message)));
        }
        let init_names: std::collections::HashSet<&str> =
            initializers.iter().map(|(n, _)| n.as_str()).collect();
        let ins = list(
            self,
            "Graph_GetInputs",
            |n| unsafe { (o.Graph_GetNumInputs)(graph, n) },
            |p, n| unsafe { (o.Graph_GetInputs)(graph, p, n) },
            ptr::null(),
        )?;
        let mut inputs = Vec::new();
        for &vi in &ins {
            let n = self.value_name(vi)?;
            if !init_names.contains(n.as_str()) {
                inputs.push((n, self.value_type(vi)?));
            }
        }
        let outs = list(
            self,
            "Graph_GetOutputs",
            |n| unsafe { (o.Graph_GetNumOutputs)(graph, n) },
            |p, n| unsafe { (o.Graph_GetOutputs)(graph, p, n) },
            ptr::null(),
        )?;
        let outputs = outs
            .iter()
            .map(|&vi| Ok((self.value_name(vi)?, self.value_type(vi)?)))
            .collect::<R<_>>()?;
        let node_ptrs = list(
            self,
            "Graph_GetNodes",
            |n| unsafe { (o.Graph_GetNumNodes)(graph, n) },
            |p, n| unsafe { (o.Graph_GetNodes)(graph, p, n) },
            ptr::null(),
        )?;
        let mut nodes: Vec<NodeDesc> = node_ptrs.iter().map(|&n| self.node(n)).collect::<R<_>>()?;
        let mut seen = std::collections::HashSet::new();
        for (i, nd) in nodes.iter_mut().enumerate() {
            if nd.name.is_empty() || !seen.insert(nd.name.clone()) {
                let mut id = i;
                // SAFETY: a live node.
                let s = unsafe { (o.Node_GetId)(nd.ptr, &mut id) };
                self.ignore(s);
                nd.name = format!("_ort_node_{id}");
                seen.insert(nd.name.clone());
            }
        }
        Ok(GraphDesc {
            name,
            ir_version,
            opsets,
            inputs,
            outputs,
            initializers,
            nodes,
        })
    }
}

/// An ONNX tensor proto holding a copy of `data`.
pub fn tensor_proto(name: &str, ti: &TensorInfo, data: &TensorData<'_>) -> TensorProto {
    let mut t = TensorProto {
        name: name.to_string(),
        data_type: ti.elem_type,
        dims: ti
            .dims
            .iter()
            .flatten()
            .map(|d| match d {
                Dim::Known(n) => *n,
                _ => 0,
            })
            .collect(),
        ..Default::default()
    };
    match data {
        TensorData::Bytes(b) => t.raw_data = Bytes::copy_from_slice(b),
        TensorData::Strings(v) => {
            t.string_data = v
                .iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        }
    }
    t
}

/// A value info proto of a tensor type (no type when unknown).
pub fn value_info(name: &str, ti: Option<&TensorInfo>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: ti.map(|ti| TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: ti.elem_type,
                shape: ti.dims.as_ref().map(|dims| TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: match d {
                                Dim::Known(n) => Some(dimension::Value::DimValue(*n)),
                                Dim::Symbol(s) => Some(dimension::Value::DimParam(s.clone())),
                                Dim::Unknown => None,
                            },
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl GraphDesc {
    /// An error when an initializer cannot be read (bodies must be whole).
    pub fn check_readable(&self) -> R<()> {
        match self.initializers.iter().find(|(_, t)| t.is_err()) {
            Some((n, Err(e))) => Err(Fail::ep(format!("initializer \"{n}\": {e}"))),
            _ => Ok(()),
        }
    }

    /// The graph holding the nodes `keep` (indices into `nodes`), in order. Values those nodes
    /// read from nodes left out become graph inputs, typed as ONNX Runtime typed them;
    /// `inputs`/`outputs`, when given, replace the graph's own lists (names), in that order.
    pub fn to_graph_proto(
        &self,
        keep: &[usize],
        inputs: Option<&[String]>,
        outputs: Option<&[String]>,
    ) -> GraphProto {
        let kept: HashSet<usize> = keep.iter().copied().collect();
        let mut types: HashMap<&str, Option<&TensorInfo>> = HashMap::new();
        for (n, t) in self.inputs.iter().chain(&self.outputs) {
            types.insert(n, t.as_ref());
        }
        let mut cut: Vec<ValueInfoProto> = Vec::new();
        for (i, nd) in self.nodes.iter().enumerate() {
            for (o, t) in nd.outputs.iter().zip(&nd.output_types) {
                if !o.is_empty() {
                    types.insert(o, t.as_ref());
                    if !kept.contains(&i) {
                        cut.push(value_info(o, t.as_ref()));
                    }
                }
            }
        }
        let typed = |names: &[String]| -> Vec<ValueInfoProto> {
            names
                .iter()
                .map(|n| value_info(n, types.get(n.as_str()).copied().flatten()))
                .collect()
        };
        let input = match inputs {
            Some(names) => typed(names),
            None => self
                .inputs
                .iter()
                .map(|(n, t)| value_info(n, t.as_ref()))
                .chain(cut)
                .collect(),
        };
        let output = match outputs {
            Some(names) => typed(names),
            None => self
                .outputs
                .iter()
                .map(|(n, t)| value_info(n, t.as_ref()))
                .collect(),
        };
        let node = keep
            .iter()
            .map(|&i| {
                let nd = &self.nodes[i];
                NodeProto {
                    input: nd.inputs.clone(),
                    output: nd.outputs.clone(),
                    name: nd.name.clone(),
                    op_type: nd.op_type.clone(),
                    domain: nd.domain.clone(),
                    attribute: nd.attributes.clone().unwrap_or_default(),
                    ..Default::default()
                }
            })
            .collect();
        GraphProto {
            node,
            name: self.name.clone(),
            initializer: self
                .initializers
                .iter()
                .filter_map(|(_, t)| t.as_ref().ok().cloned())
                .collect(),
            input,
            output,
            ..Default::default()
        }
    }

    /// [`GraphDesc::to_graph_proto`] as a model, with the graph's opsets.
    pub fn to_model(
        &self,
        keep: &[usize],
        inputs: Option<&[String]>,
        outputs: Option<&[String]>,
    ) -> ModelProto {
        ModelProto {
            ir_version: self.ir_version.max(3),
            opset_import: self
                .opsets
                .iter()
                .map(|(d, v)| OperatorSetIdProto {
                    domain: d.clone(),
                    version: *v,
                })
                .collect(),
            producer_name: "onnxruntime (via xnpu's execution provider)".into(),
            graph: Some(self.to_graph_proto(keep, inputs, outputs)),
            ..Default::default()
        }
    }
}
