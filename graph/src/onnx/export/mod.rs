//! IR → ONNX: the inverse of import. Every IR op is written as the ONNX node (op type,
//! domain, attributes, inputs in ONNX order) that imports back to an equal op, in the form
//! valid at the exported opset. Fused ops without an ONNX form are written as the standard ops
//! they stand for — or, in the exact form for plugins ([`Form::Exact`]), as one node of xnpu's
//! own `ai.xnpu` domain.
//!
//! The exported default-domain opset is the model's own (raised to 7 when it is older, where
//! the model allows it). When an op can only be written at a later opset, the whole model is
//! exported at that opset; ops whose attributes became inputs are rewritten accordingly.
//!
//! Value names are made unique across the whole model (ONNX names are SSA, bodies included);
//! the main graph's input and output names are kept exactly. A body reads the values it
//! captures by the outer value's name.

mod attention;
mod control;
mod elementwise;
mod flex_attention;
mod image;
mod ml;
mod nn;
mod reduce;
mod rnn;
mod sequence;
mod signal;
mod tensor;
mod text;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use prost::Message;
use xnpu_core::{with_numeric_type, DType, Dim, Error, Num, Result, Tensor, ValueType};

use super::ops::{canonical_domain, Lookup, Registry, MAX_ONNX_OPSET};
use super::proto::{
    tensor_proto,
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::ir::{Graph, Model, Node, Op, ValueId};

/// Why one export attempt stopped.
pub(crate) enum Fail {
    /// A node needs at least this version of a domain: export again with it.
    Raise(String, i64),
    /// A node needs an older default opset than the one chosen by raising an old model to 7:
    /// export again at the model's own opset.
    Lower,
    Err(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Err(e)
    }
}

pub(crate) type R<T = ()> = std::result::Result<T, Fail>;

/// The oldest default opset the exporter aims for.
const FLOOR_OPSET: i64 = 7;

/// The domain of xnpu's own ops, for graphs another xnpu reads back (see [`Form::Exact`]).
pub const XNPU_DOMAIN: &str = "ai.xnpu";

/// The model metadata key that marks [`Form::Exact`] (value `exact`): the importer then takes
/// every value's type as written, inferring none.
pub const EXACT_KEY: &str = "xnpu.form";

/// How a model is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Form {
    /// Standard ONNX that other runtimes load: fused ops are written as the standard ops they
    /// stand for.
    #[default]
    Portable,
    /// For another xnpu (a plugin): every IR node of the main graph becomes exactly one ONNX
    /// node, in graph order, and every value keeps its type, unknown ones included
    /// (`value_info`; the model is marked with [`EXACT_KEY`], and the importer infers no
    /// type anew). Ops with no one-node ONNX form are written in the [`XNPU_DOMAIN`] domain,
    /// which xnpu imports.
    Exact,
}

/// A model written in [`Form::Exact`]: the ONNX model, and the name of the ONNX node each
/// main-graph IR node became (by node index), to match answers about nodes back.
pub struct ExactModel {
    pub proto: ModelProto,
    pub node_names: Vec<String>,
}

impl ExactModel {
    /// The model's protobuf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }
}

/// Converts a model to its ONNX protobuf.
pub fn to_model_proto(model: &Model) -> Result<ModelProto> {
    Ok(export(model, Form::Portable, None)?.proto)
}

/// Converts a model to ONNX in [`Form::Exact`]. A graph without a default opset (a
/// partition, whose ops are opset-free) is written at the first opset where every node keeps
/// its own inputs: the newest, then the ones before inputs replaced attributes (axes at 18,
/// 13, ...).
pub fn to_exact(model: &Model) -> Result<ExactModel> {
    if model.opsets.contains_key("") {
        return export(model, Form::Exact, None);
    }
    let mut first_error = None;
    for base in [MAX_ONNX_OPSET, 17, 12, 10, 9, FLOOR_OPSET] {
        match export(model, Form::Exact, Some(base)) {
            Ok(m) => return Ok(m),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least one opset was tried"))
}

/// Exports at the model's default opset, or at `base` when the model has none.
fn export(model: &Model, form: Form, base: Option<i64>) -> Result<ExactModel> {
    let own = model.opsets.get("").copied().or(base);
    let mut opsets: BTreeMap<String, i64> = model
        .opsets
        .iter()
        .map(|(d, v)| (canonical_domain(d).to_string(), *v))
        .collect();
    let base = own.unwrap_or(FLOOR_OPSET);
    let mut floored = base < FLOOR_OPSET;
    opsets.insert(String::new(), base.max(FLOOR_OPSET));
    // Highest version each domain was raised to, kept when falling back below the floor.
    let mut raised: HashMap<String, i64> = HashMap::new();
    for _attempt in 0..100 {
        let mut x = Exporter {
            opsets: opsets.clone(),
            floored,
            used: HashSet::new(),
            node_names: HashSet::new(),
            form,
            main_nodes: Vec::new(),
        };
        match x.main(&model.graph) {
            Ok(graph) => {
                return Ok(ExactModel {
                    proto: x.finish(model, graph),
                    node_names: x.main_nodes,
                })
            }
            Err(Fail::Err(e)) => return Err(e.context(format!("export of {}", model.name))),
            Err(Fail::Raise(domain, v)) => {
                let cur = opsets.get(&domain).copied().unwrap_or(0);
                if v <= cur {
                    return Err(Error::unsupported(format!(
                        "export of {}: internal error: asked to raise {domain:?} to {v}, already {cur}",
                        model.name
                    )));
                }
                if domain.is_empty() && v > MAX_ONNX_OPSET {
                    return Err(Error::unsupported(format!(
                        "export of {}: an op needs opset {v}, newer than {MAX_ONNX_OPSET}",
                        model.name
                    )));
                }
                raised.insert(domain.clone(), v);
                opsets.insert(domain, v);
            }
            Err(Fail::Lower) => {
                floored = false;
                let v = raised.get("").copied().unwrap_or(base).max(base);
                opsets.insert(String::new(), v);
            }
        }
    }
    Err(Error::unsupported(format!(
        "export of {}: no opset satisfies every op (conflicting opset needs)",
        model.name
    )))
}

/// Serializes a model to ONNX protobuf bytes.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>> {
    Ok(to_model_proto(model)?.encode_to_vec())
}

/// Writes a model to an ONNX file.
pub fn save(model: &Model, path: &Path) -> Result<()> {
    let bytes = to_bytes(model)?;
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Writes a model to `path` with the bytes of every tensor of at least `threshold` bytes in
/// one file beside it, `<file name>.data` (ONNX external data, offsets 64-byte aligned):
/// the form for models past protobuf's 2 GiB limit and for readers that take weights from
/// a path. Returns the weights file's path.
pub fn save_with_external_data(
    model: &Model,
    path: &Path,
    threshold: usize,
) -> Result<std::path::PathBuf> {
    use std::io::Write;
    let mut proto = to_model_proto(model)?;
    let file_name = path
        .file_name()
        .map(|n| format!("{}.data", n.to_string_lossy()))
        .ok_or_else(|| Error::invalid_input(format!("{} is not a file path", path.display())))?;
    let data_path = path.with_file_name(&file_name);
    let file = std::fs::File::create(&data_path).map_err(|e| Error::io(&data_path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut offset = 0usize;
    let entry = |key: &str, value: String| StringStringEntryProto {
        key: key.to_string(),
        value,
    };
    let mut tensors: Vec<&mut TensorProto> = Vec::new();
    if let Some(g) = proto.graph.as_mut() {
        tensors.extend(g.initializer.iter_mut());
        for n in g.node.iter_mut() {
            tensors.extend(n.attribute.iter_mut().filter_map(|a| a.t.as_mut()));
        }
    }
    for t in tensors {
        if t.raw_data.len() < threshold.max(1) {
            continue;
        }
        let pad = offset.next_multiple_of(64) - offset;
        out.write_all(&[0u8; 64][..pad])
            .map_err(|e| Error::io(&data_path, e))?;
        offset += pad;
        out.write_all(&t.raw_data)
            .map_err(|e| Error::io(&data_path, e))?;
        t.external_data = vec![
            entry("location", file_name.clone()),
            entry("offset", offset.to_string()),
            entry("length", t.raw_data.len().to_string()),
        ];
        offset += t.raw_data.len();
        t.raw_data = Default::default();
        t.data_location = tensor_proto::DataLocation::External as i32;
    }
    out.flush().map_err(|e| Error::io(&data_path, e))?;
    std::fs::write(path, proto.encode_to_vec()).map_err(|e| Error::io(path, e))?;
    Ok(data_path)
}

/// The first default-domain opset whose ops take `dtype` (1 for the types every opset has).
fn dtype_since(dtype: DType) -> i64 {
    match dtype {
        DType::F8e4m3fn | DType::F8e4m3fnuz | DType::F8e5m2 | DType::F8e5m2fnuz => 19,
        DType::I4 | DType::U4 => 21,
        DType::F4e2m1 => 23,
        DType::F8e8m0 => 24,
        DType::I2 | DType::U2 => 25,
        _ => 1,
    }
}

/// The IR version that goes with a default-domain opset (onnx's version table).
fn ir_version_for(opset: i64) -> i64 {
    match opset {
        // IR 3 would make every input with an initializer default a constant on import
        // (ONNX Runtime and xnpu treat initializers as overridable only from IR 4).
        ..=9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        23 => 11,
        24 => 12,
        25..=27 => 13,
        _ => 14,
    }
}

pub(crate) struct Exporter {
    /// The versions of this attempt, per canonical domain.
    opsets: BTreeMap<String, i64>,
    /// Whether the default opset was raised to the floor (and may be lowered again).
    floored: bool,
    /// Value names taken anywhere in the model.
    used: HashSet<String>,
    node_names: HashSet<String>,
    form: Form,
    /// In [`Form::Exact`], the ONNX node name of each main-graph IR node.
    main_nodes: Vec<String>,
}

impl Exporter {
    fn finish(&self, model: &Model, graph: GraphProto) -> ModelProto {
        let opset = self.opsets.get("").copied().unwrap_or(FLOOR_OPSET);
        let (producer_name, producer_version) = match model.producer.split_once(' ') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (model.producer.clone(), String::new()),
        };
        ModelProto {
            ir_version: model.ir_version.max(ir_version_for(opset)),
            opset_import: self
                .opsets
                .iter()
                .map(|(d, v)| OperatorSetIdProto {
                    domain: d.clone(),
                    version: *v,
                })
                .collect(),
            producer_name: if producer_name.is_empty() {
                "xnpu".to_string()
            } else {
                producer_name
            },
            producer_version,
            graph: Some(graph),
            metadata_props: model
                .metadata
                .iter()
                .filter(|(k, _)| k.as_str() != EXACT_KEY)
                .map(|(k, v)| StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .chain((self.form == Form::Exact).then(|| StringStringEntryProto {
                    key: EXACT_KEY.into(),
                    value: "exact".into(),
                }))
                .collect(),
            ..ModelProto::default()
        }
    }

    /// A name not used yet, `hint` itself when it is free.
    pub(crate) fn fresh(&mut self, hint: &str) -> String {
        let hint = if hint.is_empty() { "v" } else { hint };
        if self.used.insert(hint.to_string()) {
            return hint.to_string();
        }
        let mut k = 1usize;
        loop {
            let n = format!("{hint}__{k}");
            if self.used.insert(n.clone()) {
                return n;
            }
            k += 1;
        }
    }

    fn node_name(&mut self, hint: &str) -> String {
        let hint = if hint.is_empty() { "node" } else { hint };
        if self.node_names.insert(hint.to_string()) {
            return hint.to_string();
        }
        let mut k = 1usize;
        loop {
            let n = format!("{hint}__{k}");
            if self.node_names.insert(n.clone()) {
                return n;
            }
            k += 1;
        }
    }

    fn main(&mut self, g: &Graph) -> R<GraphProto> {
        // The main graph's input and output names are kept exactly; reserve them first.
        let mut fixed: HashMap<ValueId, String> = HashMap::new();
        for &id in g.inputs.iter().chain(&g.outputs) {
            let name = &g.values[id].name;
            if name.is_empty() {
                return Err(Fail::Err(Error::model(format!(
                    "the main graph's value {id} is an input or output but has no name"
                ))));
            }
            if let Some(prev) = fixed.get(&id) {
                if prev == name {
                    continue;
                }
            }
            if !self.used.insert(name.clone()) && !fixed.values().any(|n| n == name) {
                return Err(Fail::Err(Error::model(format!(
                    "two inputs or outputs of the main graph are named \"{name}\""
                ))));
            }
            fixed.insert(id, name.clone());
        }
        self.graph(g, fixed, None)
    }

    /// Exports one graph. `fixed` names values whose names are given (main inputs and
    /// outputs); `outer` is the node owning this body and the names of its graph's values.
    fn graph(
        &mut self,
        g: &Graph,
        mut fixed: HashMap<ValueId, String>,
        outer: Option<(&Node, &[String])>,
    ) -> R<GraphProto> {
        let is_main = outer.is_none();
        if let Some((node, outer_names)) = outer {
            bind_captures(g, node, outer_names, &mut fixed)?;
        }
        let names: Vec<String> = (0..g.values.len())
            .map(|id| match fixed.get(&id) {
                Some(n) => n.clone(),
                None => self.fresh(&g.values[id].name),
            })
            .collect();
        let mut gp = GraphProto {
            name: match (g.name.is_empty(), is_main) {
                (false, _) => g.name.clone(),
                (true, true) => "main".to_string(),
                (true, false) => "body".to_string(),
            },
            ..GraphProto::default()
        };
        write_inputs_and_initializers(g, &names, &mut gp)?;
        if is_main {
            self.constant_outputs(g, &names, &mut gp);
        }
        for node in &g.nodes {
            let before = gp.node.len();
            self.node(g, node, &names, &mut gp)?;
            if self.form == Form::Exact {
                check_exact(node, &names, &gp.node[before..])?;
                if is_main {
                    self.main_nodes.push(gp.node[before].name.clone());
                }
            }
        }
        if self.form == Form::Exact {
            // Every other value keeps its type (an unknown one too, as a value_info without
            // one), so that the reader infers nothing anew.
            let listed: HashSet<ValueId> = g.inputs.iter().chain(&g.outputs).copied().collect();
            for (id, v) in g.values.iter().enumerate() {
                if !listed.contains(&id) && v.constant.is_none() {
                    gp.value_info.push(value_info(&names[id], &v.ty));
                }
            }
        }
        self.outputs(g, &names, is_main, &mut gp);
        Ok(gp)
    }

    /// A constant output of the main graph keeps its name: it is produced by an Identity
    /// (first, as other nodes may read it) of its data under a fresh name.
    fn constant_outputs(&mut self, g: &Graph, names: &[String], gp: &mut GraphProto) {
        let mut done = HashSet::new();
        for &id in &g.outputs {
            if !is_constant(g, id) || !done.insert(id) {
                continue;
            }
            let c = self.fresh(&format!("{}_value", names[id]));
            for init in &mut gp.initializer {
                if init.name == names[id] {
                    init.name = c.clone();
                }
            }
            let nn = self.node_name(&format!("{}_identity", names[id]));
            gp.node.push(identity(c, names[id].clone(), nn));
        }
    }

    /// The graph's outputs. A body must produce its outputs: one that is a constant, an
    /// input, a captured value or a repeat is copied by an Identity.
    fn outputs(&mut self, g: &Graph, names: &[String], is_main: bool, gp: &mut GraphProto) {
        let captured: HashSet<ValueId> = g.captures.iter().map(|c| c.inner).collect();
        let mut seen = HashSet::new();
        for &id in &g.outputs {
            let copy = !is_main
                && (is_constant(g, id)
                    || g.inputs.contains(&id)
                    || captured.contains(&id)
                    || seen.contains(&id));
            let out_name = if copy {
                let out = self.fresh(&format!("{}_out", names[id]));
                let nn = self.node_name(&format!("{out}_identity"));
                gp.node.push(identity(names[id].clone(), out.clone(), nn));
                out
            } else {
                names[id].clone()
            };
            seen.insert(id);
            gp.output.push(value_info(&out_name, &g.values[id].ty));
        }
    }

    fn node(&mut self, g: &Graph, node: &Node, names: &[String], gp: &mut GraphProto) -> R {
        let own = own_inputs(node);
        let name_of = |v: &Option<ValueId>| v.map_or(String::new(), |id| names[id].clone());
        let ins: Vec<String> = node.inputs[..own].iter().map(name_of).collect();
        let outs: Vec<String> = node.outputs.iter().map(name_of).collect();
        let type_of = |v: &Option<ValueId>| v.map(|id| g.values[id].ty.clone());
        let mut e = Emit {
            x: self,
            gp,
            node,
            names,
            ins,
            outs,
            in_types: node.inputs[..own].iter().map(type_of).collect(),
            out_types: node.outputs.iter().map(type_of).collect(),
            base_name: node.name.clone(),
        };
        export_op(&node.op, &mut e).map_err(|f| match f {
            Fail::Err(err) => Fail::Err(err.context(node.describe())),
            other => other,
        })
    }
}

fn export_op(op: &Op, e: &mut Emit<'_>) -> R {
    match op {
        Op::Elementwise(o) => o.export(e),
        Op::Tensor(o) => o.export(e),
        Op::Reduce(o) => o.export(e),
        Op::Nn(o) => o.export(e),
        Op::Rnn(o) => o.export(e),
        Op::Signal(o) => o.export(e),
        Op::Attention(o) => o.export(e),
        Op::Image(o) => o.export(e),
        Op::Ml(o) => o.export(e),
        Op::Sequence(o) => o.export(e),
        Op::Text(o) => o.export(e),
        Op::If(_) | Op::Loop(_) | Op::Scan(_) | Op::SequenceMap(_) => control::export(op, e),
        Op::FlexAttention(o) => flex_attention::export(o, e),
    }
}

/// How an op of the set is written as ONNX: every op the families declare implements it,
/// in its family's file here.
pub(crate) trait OnnxExport {
    /// Writes the node `e` describes as ONNX nodes (usually one).
    fn export(&self, e: &mut Emit<'_>) -> R;
}

/// A family enum's export: each op's own (a callback of `xnpu_ops::all_ops!`).
macro_rules! export_family {
    ($family:ident: $($op:ident)*) => {
        impl OnnxExport for xnpu_ops::$family::Op {
            fn export(&self, e: &mut Emit<'_>) -> R {
                match self {
                    $(xnpu_ops::$family::Op::$op(o) => o.export(e),)*
                }
            }
        }
    };
}

xnpu_ops::all_ops!(export_family!());

/// The outer names of the values a body captures, from the node that owns it.
fn bind_captures(
    g: &Graph,
    node: &Node,
    outer_names: &[String],
    fixed: &mut HashMap<ValueId, String>,
) -> R {
    for cap in &g.captures {
        let outer_id = node
            .inputs
            .get(cap.outer_input)
            .copied()
            .flatten()
            .ok_or_else(|| {
                Error::model(format!(
                    "{}: a body captures \"{}\" through input {}, which the node does not have",
                    node.describe(),
                    cap.name,
                    cap.outer_input
                ))
            })?;
        fixed.insert(cap.inner, outer_names[outer_id].clone());
    }
    Ok(())
}

/// The graph's inputs (with their defaults) and its other constants, as initializers; a
/// captured value is the outer graph's.
fn write_inputs_and_initializers(g: &Graph, names: &[String], gp: &mut GraphProto) -> R {
    for &id in &g.inputs {
        gp.input.push(value_info(&names[id], &g.values[id].ty));
        if let Some(t) = &g.values[id].constant {
            gp.initializer.push(tensor_proto(&names[id], t)?);
        }
    }
    let captured: HashSet<ValueId> = g.captures.iter().map(|c| c.inner).collect();
    for (id, t) in g.constants() {
        if !captured.contains(&id) {
            gp.initializer.push(tensor_proto(&names[id], t)?);
        }
    }
    Ok(())
}

/// Whether `id` is a constant of the graph (a value with data that is not an input).
fn is_constant(g: &Graph, id: ValueId) -> bool {
    g.values[id].constant.is_some() && !g.inputs.contains(&id)
}

/// In [`Form::Exact`], that `node` became exactly one ONNX node (`written`) reading its own
/// inputs and nothing else. Their order may differ where the op's ONNX form orders them
/// otherwise (SkipSimplifiedLayerNormalization has no beta): the importer puts them back.
fn check_exact(node: &Node, names: &[String], written: &[NodeProto]) -> R {
    let mut own: Vec<&str> = node
        .inputs
        .iter()
        .take(own_inputs(node))
        .flatten()
        .map(|&id| names[id].as_str())
        .collect();
    let same = written.len() == 1 && {
        let mut ins: Vec<&str> = written[0]
            .input
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        own.sort_unstable();
        ins.sort_unstable();
        ins == own
    };
    if same {
        return Ok(());
    }
    Err(Fail::Err(Error::unsupported(format!(
        "{} has no one-node ONNX form with its own inputs to write exactly",
        node.describe()
    ))))
}

/// How many of a node's inputs are its own: they come before the values its bodies capture.
fn own_inputs(node: &Node) -> usize {
    node.op
        .subgraphs()
        .iter()
        .flat_map(|b| b.captures.iter().map(|c| c.outer_input))
        .min()
        .unwrap_or(node.inputs.len())
        .min(node.inputs.len())
}

/// What a per-op exporter sees of one IR node, and where it writes ONNX nodes.
pub(crate) struct Emit<'a> {
    x: &'a mut Exporter,
    gp: &'a mut GraphProto,
    node: &'a Node,
    names: &'a [String],
    /// Names of the node's own inputs ("" for an absent one).
    pub ins: Vec<String>,
    /// Names of the node's outputs ("" for an unused one).
    pub outs: Vec<String>,
    in_types: Vec<Option<ValueType>>,
    out_types: Vec<Option<ValueType>>,
    base_name: String,
}

impl Emit<'_> {
    /// The default-domain opset of this export.
    pub fn opset(&self) -> i64 {
        self.x.opsets.get("").copied().unwrap_or(FLOOR_OPSET)
    }

    pub fn domain_version(&self, domain: &str) -> Option<i64> {
        self.x.opsets.get(domain).copied()
    }

    /// Fails unless the default opset is at least `v` (the export is then retried at `v`).
    pub fn need(&self, v: i64) -> R {
        self.need_domain("", v)
    }

    pub fn need_domain(&self, domain: &str, v: i64) -> R {
        match self.x.opsets.get(domain) {
            Some(&cur) if cur >= v => Ok(()),
            _ => Err(Fail::Raise(domain.to_string(), v)),
        }
    }

    /// Fails unless the default opset is at most `v`.
    pub fn at_most(&self, v: i64, what: &str) -> R {
        let cur = self.opset();
        if cur <= v {
            return Ok(());
        }
        if self.x.floored {
            return Err(Fail::Lower);
        }
        Err(Fail::Err(Error::unsupported(format!(
            "{what} can only be written at opset {v} or older, the export uses opset {cur}"
        ))))
    }

    /// The number of own inputs up to the last one given.
    pub fn n_given(&self) -> usize {
        self.ins
            .iter()
            .rposition(|s| !s.is_empty())
            .map_or(0, |i| i + 1)
    }

    /// The type of input `i` when known.
    pub fn in_type(&self, i: usize) -> Option<&ValueType> {
        self.in_types.get(i).and_then(|t| t.as_ref())
    }

    pub fn has(&self, i: usize) -> bool {
        self.ins.get(i).is_some_and(|s| !s.is_empty())
    }

    pub fn input(&self, i: usize) -> String {
        self.ins.get(i).cloned().unwrap_or_default()
    }

    /// The name of output `i` ("" when unused or absent).
    pub fn output(&self, i: usize) -> String {
        self.outs.get(i).cloned().unwrap_or_default()
    }

    pub fn in_dtype(&self, i: usize) -> Option<DType> {
        self.in_types
            .get(i)
            .and_then(|t| t.as_ref())
            .and_then(|t| t.tensor())
            .map(|t| t.dtype)
    }

    /// The rank of input `i` when it is known.
    pub fn in_rank(&self, i: usize) -> Option<usize> {
        self.in_types
            .get(i)
            .and_then(|t| t.as_ref())
            .and_then(|t| t.tensor())
            .and_then(|t| t.shape.as_ref())
            .map(|s| s.0.len())
    }

    /// The known size of input `i`'s last dim.
    pub fn in_last_dim(&self, i: usize) -> Option<usize> {
        self.in_type(i)?.tensor()?.shape.as_ref()?.0.last()?.known()
    }

    pub fn out_dtype(&self, i: usize) -> Option<DType> {
        self.out_types
            .get(i)
            .and_then(|t| t.as_ref())
            .and_then(|t| t.tensor())
            .map(|t| t.dtype)
    }

    pub fn fresh(&mut self, hint: &str) -> String {
        let h = format!(
            "{}_{hint}",
            if self.base_name.is_empty() {
                self.node.op.name()
            } else {
                &self.base_name
            }
        );
        self.x.fresh(&h)
    }

    /// Adds an initializer holding `t` and returns its name.
    pub fn constant(&mut self, hint: &str, t: &Tensor) -> R<String> {
        let name = self.fresh(hint);
        self.gp.initializer.push(tensor_proto(&name, t)?);
        Ok(name)
    }

    pub fn const_i64s(&mut self, hint: &str, v: &[i64]) -> R<String> {
        let t = Tensor::from_vec(vec![v.len()], v.to_vec())?;
        self.constant(hint, &t)
    }

    /// Writes one ONNX node, after checking that the importer knows it at the exported
    /// version of its domain (raising the version when it is too old).
    pub fn add(
        &mut self,
        op_type: &str,
        domain: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) -> R {
        // Trailing absent inputs are left out.
        let mut inputs = inputs;
        while inputs.last().is_some_and(|s| s.is_empty()) {
            inputs.pop();
        }
        // A narrow dtype exists from an opset on: a standard op reading or writing one needs
        // it (the exporter would otherwise lower QuantizeLinear to an opset without INT4).
        if domain.is_empty() {
            let first = self
                .in_types
                .iter()
                .chain(&self.out_types)
                .flatten()
                .filter_map(|t| t.tensor())
                .map(|t| dtype_since(t.dtype))
                .max()
                .unwrap_or(1);
            self.need(first)?;
        }
        let version = self.x.opsets.get(domain).copied();
        match Registry::standard().lookup(domain, op_type, version.unwrap_or(0)) {
            Lookup::Found(_) if version.is_some() => {}
            Lookup::Found(_) => {
                return Err(Fail::Raise(domain.to_string(), 1));
            }
            Lookup::TooOld { first } => return Err(Fail::Raise(domain.to_string(), first)),
            Lookup::Unknown => {
                return Err(Fail::Err(Error::unsupported(format!(
                    "op {op_type} of domain \"{domain}\" cannot be exported"
                ))))
            }
        }
        let hint = if self.base_name.is_empty() {
            outputs
                .iter()
                .find(|o| !o.is_empty())
                .cloned()
                .unwrap_or_default()
        } else {
            self.base_name.clone()
        };
        let name = self.x.node_name(&hint);
        self.gp.node.push(NodeProto {
            input: inputs,
            output: outputs,
            name,
            op_type: op_type.to_string(),
            domain: domain.to_string(),
            attribute,
            ..NodeProto::default()
        });
        Ok(())
    }

    /// Writes the node as `op_type` of `domain` with its own inputs and outputs.
    pub fn in_domain(&mut self, op_type: &str, domain: &str, attrs: Vec<AttributeProto>) -> R {
        let (ins, outs) = (self.ins.clone(), self.outs.clone());
        self.add(op_type, domain, ins, outs, attrs)
    }

    /// Writes the node as `op_type` of the default domain with its own inputs and outputs.
    pub fn simple(&mut self, op_type: &str, attrs: Vec<AttributeProto>) -> R {
        self.in_domain(op_type, "", attrs)
    }

    /// Whether the model is written for another xnpu ([`Form::Exact`]).
    pub fn exact(&self) -> bool {
        self.x.form == Form::Exact
    }

    /// Writes the node as `op_type` of xnpu's own domain ([`XNPU_DOMAIN`]) with its own
    /// inputs and outputs: the one-node form of an op in [`Form::Exact`].
    pub fn xnpu(&mut self, op_type: &str, attrs: Vec<AttributeProto>) -> R {
        self.in_domain(op_type, XNPU_DOMAIN, attrs)
    }

    /// Writes the node as `op_type` of ONNX Runtime's `com.microsoft` domain with its own
    /// inputs and outputs.
    pub fn microsoft(&mut self, op_type: &str, attrs: Vec<AttributeProto>) -> R {
        self.in_domain(op_type, "com.microsoft", attrs)
    }

    /// Exports a body graph of this node.
    pub fn body(&mut self, g: &Graph) -> R<GraphProto> {
        let node = self.node;
        let names = self.names;
        self.x.graph(g, HashMap::new(), Some((node, names)))
    }
}

// ---------- attributes ----------

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ty as i32,
        ..AttributeProto::default()
    }
}

pub(crate) fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: v,
        ..attr(name, AttributeType::Int)
    }
}

pub(crate) fn a_bool(name: &str, v: bool) -> AttributeProto {
    a_int(name, v as i64)
}

pub(crate) fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: v,
        ..attr(name, AttributeType::Float)
    }
}

pub(crate) fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Bytes::from(v.as_bytes().to_vec()),
        ..attr(name, AttributeType::String)
    }
}

pub(crate) fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub(crate) fn a_usizes(name: &str, v: &[usize]) -> AttributeProto {
    a_ints(name, &v.iter().map(|&x| x as i64).collect::<Vec<_>>())
}

pub(crate) fn a_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto {
        floats: v.to_vec(),
        ..attr(name, AttributeType::Floats)
    }
}

pub(crate) fn a_strs(name: &str, v: &[String]) -> AttributeProto {
    AttributeProto {
        strings: v
            .iter()
            .map(|s| Bytes::from(s.as_bytes().to_vec()))
            .collect(),
        ..attr(name, AttributeType::Strings)
    }
}

pub(crate) fn a_tensor(name: &str, t: &Tensor) -> R<AttributeProto> {
    Ok(AttributeProto {
        t: Some(tensor_proto("", t)?),
        ..attr(name, AttributeType::Tensor)
    })
}

pub(crate) fn a_graph(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        g: Some(Box::new(g)),
        ..attr(name, AttributeType::Graph)
    }
}

pub(crate) fn a_type(name: &str, t: &ValueType) -> AttributeProto {
    AttributeProto {
        tp: Some(type_proto_of(t)),
        ..attr(name, AttributeType::TypeProto)
    }
}

// ---------- tensors and types ----------

/// A tensor as a TensorProto: raw little-endian data, or `string_data` for strings.
pub(crate) fn tensor_proto(name: &str, t: &Tensor) -> Result<TensorProto> {
    let mut tp = TensorProto {
        name: name.to_string(),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: t.dtype().onnx_code(),
        ..TensorProto::default()
    };
    if t.dtype() == DType::String {
        tp.string_data = t
            .strings()?
            .iter()
            .map(|s| Bytes::from(s.as_bytes().to_vec()))
            .collect();
    } else if let Some(b) = t.bytes() {
        tp.raw_data = b.clone();
    } else {
        tp.raw_data = Bytes::from(t.raw_bytes().to_vec());
    }
    Ok(tp)
}

/// A scalar of `dtype` holding `v` (converted as `as` does: [`Num::from_f64`]; for bool,
/// nonzero is true).
pub(crate) fn scalar_of(dtype: DType, v: f64) -> Result<Tensor> {
    match dtype {
        DType::Bool => Ok(Tensor::scalar(v != 0.0)),
        DType::String => Err(Error::unsupported(
            "a numeric constant of string type cannot be made",
        )),
        _ => with_numeric_type!(dtype, T => Ok(Tensor::scalar(T::from_f64(v))), _ => Err(
            Error::unsupported(format!("a numeric constant of type {dtype} cannot be made"))
        )),
    }
}

pub(crate) fn type_proto_of(t: &ValueType) -> TypeProto {
    let value = match t {
        ValueType::Unknown => None,
        ValueType::Tensor(tt) => Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: tt.dtype.onnx_code(),
            shape: tt.shape.as_ref().map(|s| TensorShapeProto {
                dim: s
                    .0
                    .iter()
                    .map(|d| Dimension {
                        value: Some(match d {
                            Dim::Known(n) => dimension::Value::DimValue(*n as i64),
                            Dim::Sym(s) => dimension::Value::DimParam(s.clone()),
                        }),
                        denotation: String::new(),
                    })
                    .collect(),
            }),
        })),
        ValueType::Sequence(e) => Some(type_proto::Value::SequenceType(Box::new(
            type_proto::Sequence {
                elem_type: match e.as_ref() {
                    ValueType::Unknown => None,
                    e => Some(Box::new(type_proto_of(e))),
                },
            },
        ))),
        ValueType::Optional(e) => Some(type_proto::Value::OptionalType(Box::new(
            type_proto::Optional {
                elem_type: match e.as_ref() {
                    ValueType::Unknown => None,
                    e => Some(Box::new(type_proto_of(e))),
                },
            },
        ))),
    };
    TypeProto {
        value,
        denotation: String::new(),
    }
}

fn identity(input: String, output: String, name: String) -> NodeProto {
    NodeProto {
        input: vec![input],
        output: vec![output],
        name,
        op_type: "Identity".into(),
        ..NodeProto::default()
    }
}

/// Whether a type is known all the way down (a sequence or optional of an unknown element
/// has no valid TypeProto; such values are written without a type).
fn fully_known(t: &ValueType) -> bool {
    match t {
        ValueType::Unknown => false,
        ValueType::Tensor(_) => true,
        ValueType::Sequence(e) | ValueType::Optional(e) => fully_known(e),
    }
}

fn value_info(name: &str, t: &ValueType) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: fully_known(t).then(|| type_proto_of(t)),
        doc_string: String::new(),
    }
}

#[cfg(test)]
mod tests;
