//! ONNX model → IR: decode (zero-copy from a memory map), check opsets, import the graph and
//! its bodies with scoped name lookup, inline model-local functions (once `functions` has
//! measured what that costs), infer types. Every error leaves through
//! [`names::escape_error`], so no name from the model reaches a terminal unescaped.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use prost::Message;
use xnpu_core::{Error, Result, ValueType};

use super::functions::{self, Expansion, Key, MAX_NESTING};
use super::names::{self, escaped, quoted};
use super::node::NodeCtx;
use super::ops::{canonical_domain, Lookup, Registry, Translate, DOMAINS};
use super::proto::{AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto};
use super::tensor::{map_file, sparse_to_dense, tensor_from_proto, DataDir};
use super::types::named_value_type;
use crate::ir::{Capture, Graph, Model, Node, Op, ValueId};

/// Loads a model file: memory-maps it, decodes it and imports it. Initializers (and external
/// data next to the model) stay zero-copy slices of the mapped files. Errors start with the
/// file name.
pub fn load(path: &Path) -> Result<Model> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if path.is_dir() {
        return Err(names::escape_error(Error::invalid_input(format!(
            "{}: a folder, not a model file{}",
            path.display(),
            folder_hint(path)
        ))));
    }
    // Its errors start with the path.
    let bytes = map_file(path, "model").map_err(names::escape_error)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    load_bytes(bytes, &name, Some(dir))
}

/// What a folder given as a model probably is.
fn folder_hint(dir: &Path) -> String {
    if dir.join("genai_config.json").is_file() {
        return format!(
            " (a language model folder: `xnpu generate {} --prompt TEXT` runs it)",
            dir.display()
        );
    }
    let mut onnx: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx") && p.is_file())
        .map(|p| p.display().to_string())
        .take(1000)
        .collect();
    onnx.sort();
    const SHOWN: usize = 4;
    match onnx.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        some if some.len() <= SHOWN => format!(" (it holds {})", some.join(", ")),
        many => format!(" (it holds {}, …)", many[..SHOWN].join(", ")),
    }
}

/// Imports a model from bytes. `base_dir` is the folder external data is read from (none for
/// a model that came from memory, which then may not use external data).
pub fn load_bytes(bytes: Bytes, name: &str, base_dir: Option<&Path>) -> Result<Model> {
    let run = || -> Result<Model> {
        if bytes.is_empty() {
            return Err(Error::model("empty (0 bytes), not an ONNX model"));
        }
        let proto = ModelProto::decode(bytes).map_err(|e| decode_error(&e))?;
        let dir = DataDir::new(base_dir)?;
        import_with(&proto, name, &dir, false)
    };
    run().map_err(|e| names::escape_error(e.context(name)))
}

/// prost's limit on how deep protobuf messages nest (its `RECURSION_LIMIT`, the default of
/// protobuf's C++ decoder too).
pub const PROTOBUF_NESTING_LIMIT: usize = 100;

/// A protobuf decoding error as one short sentence. prost writes the path of fields down to
/// the failure, one `Message.field: ` per level, innermost first (past the nesting limit, a
/// hundred of them); here the path reads from the top, shortened to its first levels and
/// the last, with its depth.
fn decode_error(e: &prost::DecodeError) -> Error {
    let text = e.to_string();
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let mut path = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        let is_field = head.split_once('.').is_some_and(|(m, f)| {
            !m.is_empty()
                && !f.is_empty()
                && head
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        });
        if !is_field {
            break;
        }
        path.push(head);
        rest = tail;
    }
    path.reverse();
    let at = match path.len() {
        0 => String::new(),
        n if n <= 6 => format!(" at {}", path.join(" > ")),
        n => format!(
            " at {} > … > {} ({n} levels down)",
            path[..4].join(" > "),
            path[n - 1]
        ),
    };
    if rest == "recursion limit reached" {
        Error::model(format!(
            "not a valid ONNX model: its protobuf messages nest deeper than the decoder's \
             limit of {PROTOBUF_NESTING_LIMIT} levels{at}"
        ))
    } else {
        Error::model(format!("not a valid ONNX model (protobuf: {rest}{at})"))
    }
}

/// Imports a graph a host sent to a plugin (a partition to compile, a graph to claim): in
/// the exact form when it is marked so ([`super::export::EXACT_KEY`]: types taken as
/// written, xnpu's own `ai.xnpu` ops allowed), otherwise as any model. Model files never get
/// the exact form's trust: [`load`] and [`load_bytes`] infer every type and refuse `ai.xnpu`.
pub fn load_sent_bytes(bytes: Bytes, name: &str) -> Result<Model> {
    let run = || -> Result<Model> {
        let proto = ModelProto::decode(bytes).map_err(|e| decode_error(&e))?;
        let exact = proto
            .metadata_props
            .iter()
            .any(|kv| kv.key == super::export::EXACT_KEY && kv.value == "exact");
        import_with(&proto, name, &DataDir::new(None)?, exact)
    };
    run().map_err(|e| names::escape_error(e.context(name)))
}

/// Imports a decoded model.
pub fn import_model(proto: &ModelProto, name: &str, dir: &DataDir) -> Result<Model> {
    import_with(proto, name, dir, false).map_err(names::escape_error)
}

/// Imports a decoded model, in the exact form or not.
fn import_with(proto: &ModelProto, name: &str, dir: &DataDir, exact: bool) -> Result<Model> {
    let opsets = opsets_of(&proto.opset_import, true)?;
    let gp = proto
        .graph
        .as_ref()
        .ok_or_else(|| Error::model("the model has no graph"))?;
    let functions: HashMap<Key, &FunctionProto> = proto
        .functions
        .iter()
        .map(|f| ((canonical_domain(&f.domain).to_string(), f.name.clone()), f))
        .collect();
    let registry = Registry::standard();
    Expansion::check(registry, &functions, gp)?;
    let cx = ImportCx {
        registry,
        dir,
        functions,
        exact,
        calls: RefCell::default(),
    };
    let mut graph = cx.graph(gp, None, &opsets, 0)?;
    if proto.ir_version < 4 {
        // Before IR version 4 every initializer had to be listed as a graph input as well;
        // such inputs are weights, not inputs a caller overrides (ONNX Runtime draws the same
        // line), so they stay constants that passes may fold.
        let values = &graph.values;
        graph.inputs.retain(|&v| values[v].constant.is_none());
    }
    Ok(Model {
        name: name.to_string(),
        graph,
        opsets: opsets.into_iter().collect(),
        ir_version: proto.ir_version,
        producer: format!("{} {}", proto.producer_name, proto.producer_version)
            .trim()
            .to_string(),
        metadata: proto
            .metadata_props
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect::<BTreeMap<_, _>>(),
    })
}

type Opsets = HashMap<String, i64>;

fn opsets_of(imports: &[super::proto::OperatorSetIdProto], check_newest: bool) -> Result<Opsets> {
    let mut opsets = HashMap::new();
    for o in imports {
        let domain = canonical_domain(&o.domain).to_string();
        if check_newest {
            if let Some((_, newest)) = DOMAINS.iter().find(|(d, _)| *d == domain) {
                if o.version > *newest {
                    let shown = if domain.is_empty() {
                        "ai.onnx"
                    } else {
                        &domain
                    };
                    return Err(Error::unsupported(format!(
                        "the model imports opset {} of {shown}, newer than the newest xnpu supports ({newest})",
                        o.version
                    )));
                }
            }
        }
        opsets.insert(domain, o.version);
    }
    if imports.is_empty() {
        // IR version < 3 models have no opset imports; they are opset 1.
        opsets.insert(String::new(), 1);
    }
    Ok(opsets)
}

struct ImportCx<'m> {
    registry: &'static Registry,
    dir: &'m DataDir,
    functions: HashMap<Key, &'m FunctionProto>,
    /// Written in the exact form (`export::Form::Exact`): every type is as written, none
    /// inferred.
    exact: bool,
    /// The functions being inlined, outermost first (for cycles and nesting errors).
    calls: RefCell<Vec<Key>>,
}

/// The values visible while importing one graph, with its enclosing graphs behind it.
struct Scope<'p> {
    graph: RefCell<Graph>,
    names: RefCell<HashMap<String, ValueId>>,
    /// Types declared in value_info, applied when the value is produced.
    declared: HashMap<String, ValueType>,
    /// The graph's inputs, for the lookups of bodies (an input with an initializer default is
    /// captured, not copied in as a constant).
    inputs: RefCell<HashSet<ValueId>>,
    parent: Option<&'p Scope<'p>>,
}

impl Scope<'_> {
    /// Finds a value by name, capturing it from an enclosing graph when needed. A constant
    /// of an enclosing graph is copied in instead of captured.
    fn lookup(&self, name: &str) -> Option<ValueId> {
        if let Some(&id) = self.names.borrow().get(name) {
            return Some(id);
        }
        let parent = self.parent?;
        let outer = parent.lookup(name)?;
        let pg = parent.graph.borrow();
        let info = &pg.values[outer];
        let is_input = parent.inputs.borrow().contains(&outer);
        let mut g = self.graph.borrow_mut();
        let id = g.add_value(name, info.ty.clone());
        if info.constant.is_some() && !is_input {
            g.values[id].constant = info.constant.clone();
        } else {
            g.captures.push(Capture {
                name: name.to_string(),
                inner: id,
                outer_input: usize::MAX,
            });
        }
        self.names.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }

    fn define(&self, name: &str, ty: ValueType) -> Result<ValueId> {
        if self.names.borrow().contains_key(name) {
            return Err(Error::model(format!(
                "value {} is defined twice",
                quoted(name)
            )));
        }
        let ty = self.declared.get(name).cloned().unwrap_or(ty);
        let id = self.graph.borrow_mut().add_value(name, ty);
        self.names.borrow_mut().insert(name.to_string(), id);
        Ok(id)
    }
}

/// The error for an op that exists only from a later opset than the model's.
fn too_old(node: &NodeProto, domain: &str, version: i64, first: i64) -> Error {
    Error::unsupported(format!(
        "{} is supported from opset {first} of {}, the model uses opset {version}",
        escaped(&node.op_type),
        if domain.is_empty() { "ai.onnx" } else { domain }
    ))
}

/// The error for an op (or a domain) xnpu does not import.
fn unknown_op(node: &NodeProto, domain: &str, version: i64) -> Error {
    let known_domain = DOMAINS.iter().any(|(d, _)| *d == domain);
    Error::unsupported(if known_domain {
        format!(
            "op {} of domain \"{}\" (opset {version}) is not supported",
            escaped(&node.op_type),
            if domain.is_empty() { "ai.onnx" } else { domain }
        )
    } else {
        format!(
            "domain {} is not supported (op {})",
            quoted(domain),
            escaped(&node.op_type)
        )
    })
}

/// The values a node reads, by name (`None` for an absent optional input).
fn node_inputs(node: &NodeProto, scope: &Scope<'_>) -> Result<Vec<Option<ValueId>>> {
    node.input
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if name.is_empty() {
                return Ok(None);
            }
            scope.lookup(name).map(Some).ok_or_else(|| {
                Error::model(format!(
                    "input {i} {} is not produced by an earlier node, an initializer or a graph \
                     input",
                    quoted(name)
                ))
            })
        })
        .collect()
}

/// The inputs in the order a builder asked for (`order[k]` is the given input at `k`).
fn rearranged(given: &[Option<ValueId>], order: &[Option<usize>]) -> Vec<Option<ValueId>> {
    let mut inputs: Vec<Option<ValueId>> = order
        .iter()
        .map(|i| i.and_then(|i| given.get(i).copied().flatten()))
        .collect();
    while inputs.last().is_some_and(Option::is_none) {
        inputs.pop();
    }
    inputs
}

/// Binds what the op's bodies capture to extra inputs of the node, after its `own` inputs.
fn bind_captures(
    op: &mut Op,
    inputs: &mut Vec<Option<ValueId>>,
    own: usize,
    scope: &Scope<'_>,
) -> Result<()> {
    // Where each outer value already is among the extra inputs.
    let mut bound: HashMap<ValueId, usize> = HashMap::new();
    for (k, v) in inputs.iter().enumerate().skip(own) {
        if let Some(v) = v {
            bound.entry(*v).or_insert(k);
        }
    }
    for body in op.subgraphs_mut() {
        for cap in &mut body.captures {
            let outer = scope.lookup(&cap.name).ok_or_else(|| {
                Error::model(format!(
                    "a body reads {}, which is not defined",
                    quoted(&cap.name)
                ))
            })?;
            cap.outer_input = *bound.entry(outer).or_insert_with(|| {
                inputs.push(Some(outer));
                inputs.len() - 1
            });
        }
    }
    Ok(())
}

fn node_label(node: &NodeProto, index: usize) -> String {
    let name = if !node.name.is_empty() {
        quoted(&node.name)
    } else if let Some(o) = node.output.iter().find(|o| !o.is_empty()) {
        quoted(o)
    } else {
        format!("\"#{index}\"")
    };
    format!("node {name} ({})", escaped(&node.op_type))
}

impl<'m> ImportCx<'m> {
    /// Imports a graph: the main graph (`depth` 0) or a body `depth` levels of bodies and
    /// function calls down.
    fn graph(
        &self,
        gp: &GraphProto,
        parent: Option<&Scope<'_>>,
        opsets: &Opsets,
        depth: usize,
    ) -> Result<Graph> {
        if depth > MAX_NESTING {
            return Err(functions::too_deep(&self.calls.borrow()));
        }
        let mut declared = HashMap::new();
        for vi in gp.value_info.iter().chain(&gp.output) {
            match &vi.r#type {
                Some(tp) => {
                    let ty = named_value_type(tp, &vi.name)
                        .map_err(|e| e.context(format!("value {}", quoted(&vi.name))))?;
                    declared.insert(vi.name.clone(), ty);
                }
                None if self.exact => {
                    declared.insert(vi.name.clone(), ValueType::Unknown);
                }
                None => {}
            }
        }
        let scope = Scope {
            graph: RefCell::new(Graph {
                name: gp.name.clone(),
                ..Graph::default()
            }),
            names: RefCell::default(),
            declared,
            inputs: RefCell::default(),
            parent,
        };

        for tp in &gp.initializer {
            let t = tensor_from_proto(tp, self.dir).map_err(|e| e.context("initializer"))?;
            let ty = ValueType::Tensor(xnpu_core::TensorType::new(
                t.dtype(),
                xnpu_core::Shape::known(t.shape()),
            ));
            let id = scope.define(&tp.name, ty)?;
            scope.graph.borrow_mut().values[id].constant = Some(t);
        }
        for sp in &gp.sparse_initializer {
            let (name, t) =
                sparse_to_dense(sp, self.dir).map_err(|e| e.context("sparse initializer"))?;
            let ty = ValueType::Tensor(xnpu_core::TensorType::new(
                t.dtype(),
                xnpu_core::Shape::known(t.shape()),
            ));
            let id = scope.define(&name, ty)?;
            scope.graph.borrow_mut().values[id].constant = Some(t);
        }
        for vi in &gp.input {
            let ty = match &vi.r#type {
                Some(tp) => named_value_type(tp, &vi.name)
                    .map_err(|e| e.context(format!("graph input {}", quoted(&vi.name))))?,
                None => ValueType::Unknown,
            };
            let existing = scope.names.borrow().get(&vi.name).copied();
            let id = match existing {
                // An input that is also an initializer: the initializer is its default.
                Some(id) => id,
                None => scope.define(&vi.name, ty)?,
            };
            scope.graph.borrow_mut().inputs.push(id);
            scope.inputs.borrow_mut().insert(id);
        }

        for (i, node) in gp.node.iter().enumerate() {
            self.node(node, &scope, opsets, depth)
                .map_err(|e| e.context(node_label(node, i)))?;
        }

        for vi in &gp.output {
            let id = scope.lookup(&vi.name).ok_or_else(|| {
                Error::model(format!(
                    "graph output {} is not produced by any node, initializer or input",
                    quoted(&vi.name)
                ))
            })?;
            scope.graph.borrow_mut().outputs.push(id);
        }
        let mut g = scope.graph.into_inner();
        if !self.exact {
            g.infer_types_with(parent.is_none())?;
        }
        Ok(g)
    }

    fn node(
        &self,
        node: &NodeProto,
        scope: &Scope<'_>,
        opsets: &Opsets,
        depth: usize,
    ) -> Result<()> {
        let domain = canonical_domain(&node.domain);
        if domain == super::export::XNPU_DOMAIN && !self.exact {
            return Err(Error::unsupported(format!(
                "op {} of domain \"{domain}\": that domain holds xnpu's own ops in graphs sent \
                 to plugins; a model file cannot use it",
                escaped(&node.op_type)
            )));
        }
        let version = *opsets.get(domain).ok_or_else(|| {
            Error::model(format!(
                "the node's domain {} is not imported by the model",
                quoted(&node.domain)
            ))
        })?;
        let translate = match self.registry.lookup(domain, &node.op_type, version) {
            Lookup::Found(f) => f,
            Lookup::TooOld { first } => return Err(too_old(node, domain, version, first)),
            Lookup::Unknown => {
                let key = (domain.to_string(), node.op_type.clone());
                return match self.functions.get(&key) {
                    Some(f) => self.inline_function(node, key, f, scope, opsets, depth),
                    None => Err(unknown_op(node, domain, version)),
                };
            }
        };
        let given = node_inputs(node, scope)?;
        let (mut op, arrangement) =
            self.translate(translate, node, version, &given, scope, opsets, depth)?;
        let mut inputs = match arrangement {
            Some(order) => rearranged(&given, &order),
            None => given,
        };
        bind_captures(&mut op, &mut inputs, node.input.len(), scope)?;
        let mut outputs = Vec::with_capacity(node.output.len());
        for name in &node.output {
            outputs.push(if name.is_empty() {
                None
            } else {
                Some(scope.define(name, ValueType::Unknown)?)
            });
        }
        let name = if node.name.is_empty() {
            node.output
                .iter()
                .find(|o| !o.is_empty())
                .cloned()
                .unwrap_or_default()
        } else {
            node.name.clone()
        };
        scope.graph.borrow_mut().nodes.push(Node {
            name,
            op,
            inputs,
            outputs,
        });
        Ok(())
    }

    /// Builds the IR op with the node's builder, which sees its inputs' types and constants;
    /// also the input order the builder asked for, if it rearranged them. Its bodies are
    /// imported one level below `depth`.
    #[allow(clippy::too_many_arguments)]
    fn translate(
        &self,
        translate: Translate,
        node: &NodeProto,
        version: i64,
        inputs: &[Option<ValueId>],
        scope: &Scope<'_>,
        opsets: &Opsets,
        depth: usize,
    ) -> Result<(Op, Option<Vec<Option<usize>>>)> {
        let (input_types, input_consts) = {
            let g = scope.graph.borrow();
            inputs
                .iter()
                .map(|v| match v {
                    Some(id) => (
                        Some(g.values[*id].ty.clone()),
                        g.values[*id].constant.clone(),
                    ),
                    None => (None, None),
                })
                .unzip()
        };
        let subgraph = |gp: &GraphProto| self.graph(gp, Some(scope), opsets, depth + 1);
        let mut ctx = NodeCtx {
            node,
            opset: version,
            input_types,
            input_consts,
            dir: self.dir,
            subgraph: &subgraph,
            arrangement: None,
        };
        let op = translate(&mut ctx)?;
        Ok((op, ctx.arrangement.take()))
    }

    /// Replaces a call of a model-local function by its body, with names made unique and
    /// attribute references resolved. `Expansion::check` measured the whole model first;
    /// the cycle and depth checks here hold the importer to what it measured.
    fn inline_function(
        &self,
        node: &NodeProto,
        key: Key,
        f: &FunctionProto,
        scope: &Scope<'_>,
        outer_opsets: &Opsets,
        depth: usize,
    ) -> Result<()> {
        {
            let calls = self.calls.borrow();
            if let Some(at) = calls.iter().position(|k| *k == key) {
                return Err(functions::cycle(&calls[at..], &key));
            }
            if depth + 1 > MAX_NESTING {
                return Err(functions::too_deep(&calls));
            }
        }
        self.calls.borrow_mut().push(key);
        let done = self.inline_body(node, f, scope, outer_opsets, depth + 1);
        self.calls.borrow_mut().pop();
        done
    }

    fn inline_body(
        &self,
        node: &NodeProto,
        f: &FunctionProto,
        scope: &Scope<'_>,
        outer_opsets: &Opsets,
        depth: usize,
    ) -> Result<()> {
        let mut opsets = opsets_of(&f.opset_import, true)?;
        for (d, v) in outer_opsets {
            opsets.entry(d.clone()).or_insert(*v);
        }
        let prefix = format!(
            "{}::{}",
            node.output
                .first()
                .map(String::as_str)
                .unwrap_or(&node.name),
            f.name
        );
        let mut rename: HashMap<&str, String> = HashMap::new();
        for (i, name) in f.input.iter().enumerate() {
            rename.insert(name, node.input.get(i).cloned().unwrap_or_default());
        }
        for (i, name) in f.output.iter().enumerate() {
            rename.insert(name, node.output.get(i).cloned().unwrap_or_default());
        }
        let map = |n: &str| -> String {
            if n.is_empty() {
                return String::new();
            }
            rename
                .get(n)
                .cloned()
                .unwrap_or_else(|| format!("{prefix}::{n}"))
        };
        let attr_value = |name: &str| -> Option<&AttributeProto> {
            node.attribute
                .iter()
                .find(|a| a.name == name)
                .or_else(|| f.attribute_proto.iter().find(|a| a.name == name))
        };
        for (i, inner) in f.node.iter().enumerate() {
            let mut n = inner.clone();
            n.input = n.input.iter().map(|s| map(s)).collect();
            n.output = n.output.iter().map(|s| map(s)).collect();
            n.attribute = n
                .attribute
                .into_iter()
                .filter_map(|a| {
                    if a.ref_attr_name.is_empty() {
                        return Some(a);
                    }
                    attr_value(&a.ref_attr_name).map(|v| AttributeProto {
                        name: a.name.clone(),
                        ..v.clone()
                    })
                })
                .collect();
            self.node(&n, scope, &opsets, depth).map_err(|e| {
                e.context(format!(
                    "function {} {}",
                    quoted(&f.name),
                    node_label(inner, i)
                ))
            })?;
        }
        Ok(())
    }
}
