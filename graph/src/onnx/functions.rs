//! Model-local functions: what inlining them will cost, measured before anything is
//! expanded. Import replaces each call by the function's body, so a function that calls
//! itself never ends, and functions that each call the next twice double at every level (a
//! 3 KB model expands to 2^39 nodes). Here every function is measured once (memoised, with
//! saturating arithmetic): its nodes, the bodies they carry, and how often it instantiates
//! each graph its callers pass as an attribute. A cycle, nesting past [`MAX_NESTING`] or a
//! total past [`MAX_NODES`] is refused with the chain of functions that leads there.

use std::collections::HashMap;
use std::rc::Rc;

use xnpu_core::{Error, Result};

use super::names::quoted;
use super::ops::{canonical_domain, Registry};
use super::proto::{AttributeProto, FunctionProto, GraphProto, NodeProto};

/// How deep bodies (If, Loop, Scan, SequenceMap) and calls of model-local functions may nest,
/// counted together: each level is a recursion of the importer, so this bounds its stack.
pub const MAX_NESTING: usize = 64;

/// The most nodes a model may have once its functions are inlined, bodies included.
pub const MAX_NODES: u64 = 1 << 22;

/// A function by (canonical domain, name), as calls find it.
pub(crate) type Key = (String, String);

/// `f` or `domain.f`, quoted, for messages.
pub(crate) fn function_name(key: &Key) -> String {
    if key.0.is_empty() {
        quoted(&key.1)
    } else {
        quoted(&format!("{}.{}", key.0, key.1))
    }
}

/// `f → g → h`; a long chain as its first three and last three functions and its length.
fn chain(keys: &[Key]) -> String {
    let names = |ks: &[Key]| ks.iter().map(function_name).collect::<Vec<_>>().join(" → ");
    match keys.len() {
        n if n <= 8 => names(keys),
        n => format!(
            "{} → … → {} ({n} functions)",
            names(&keys[..3]),
            names(&keys[n - 3..])
        ),
    }
}

/// The error for nesting past [`MAX_NESTING`]; `calls` are the functions being inlined there,
/// outermost first.
pub(crate) fn too_deep(calls: &[Key]) -> Error {
    let mut msg = format!(
        "bodies (If, Loop, Scan) and calls of model-local functions nest more than \
         {MAX_NESTING} deep"
    );
    if !calls.is_empty() {
        msg.push_str(&format!(" (inside functions {})", chain(calls)));
    }
    Error::unsupported(msg)
}

/// The error for a function that calls itself: `calls[at..]` lead back to `key`.
pub(crate) fn cycle(calls: &[Key], key: &Key) -> Error {
    Error::model(format!(
        "function {} calls itself: {} → {}",
        function_name(key),
        chain(calls),
        function_name(key)
    ))
}

/// What one function costs each time it is inlined.
struct Cost {
    /// Its nodes and their bodies (the functions they call included).
    base: u64,
    /// For each attribute a node of the body refers to (`ref_attr_name`): how many times the
    /// graph bound to it is imported.
    uses: HashMap<String, u64>,
    /// The nodes of the graphs among its default attribute values, by attribute.
    defaults: HashMap<String, u64>,
}

/// Measures a model's expansion.
pub(crate) struct Expansion<'a> {
    registry: &'a Registry,
    functions: &'a HashMap<Key, &'a FunctionProto>,
    measured: HashMap<Key, Rc<Cost>>,
    /// The functions being measured, outermost first.
    calls: Vec<Key>,
}

impl<'a> Expansion<'a> {
    /// The nodes `graph` has once every call is inlined (bodies included): an error past
    /// [`MAX_NODES`], for a function that calls itself, or nesting past [`MAX_NESTING`].
    pub fn check(
        registry: &'a Registry,
        functions: &'a HashMap<Key, &'a FunctionProto>,
        graph: &GraphProto,
    ) -> Result<u64> {
        let mut e = Expansion {
            registry,
            functions,
            measured: HashMap::new(),
            calls: Vec::new(),
        };
        let n = e.graph(graph, 0)?;
        if n > MAX_NODES {
            let shown = if n == u64::MAX {
                "more than 2^64".to_string()
            } else {
                n.to_string()
            };
            return Err(Error::unsupported(format!(
                "the model has {shown} nodes once its functions are inlined (bodies included), \
                 more than the {MAX_NODES} xnpu imports"
            )));
        }
        Ok(n)
    }

    /// The function a node calls, when it calls one: ops xnpu imports come first, as in
    /// the importer.
    fn callee(&self, node: &NodeProto) -> Option<Key> {
        let domain = canonical_domain(&node.domain);
        if self.registry.knows(domain, &node.op_type) {
            return None;
        }
        let key = (domain.to_string(), node.op_type.clone());
        self.functions.contains_key(&key).then_some(key)
    }

    fn graph(&mut self, g: &GraphProto, depth: usize) -> Result<u64> {
        if depth > MAX_NESTING {
            return Err(too_deep(&self.calls));
        }
        let mut n = 0u64;
        for node in &g.node {
            n = n.saturating_add(self.node(node, depth, None)?);
        }
        Ok(n)
    }

    /// The nodes of the graphs an attribute holds, as bodies one level down.
    fn graphs_of(&mut self, a: &AttributeProto, depth: usize) -> Result<u64> {
        let mut n = 0u64;
        for g in a.g.as_deref().into_iter().chain(&a.graphs) {
            n = n.saturating_add(self.graph(g, depth + 1)?);
        }
        Ok(n)
    }

    /// The nodes one node becomes. `refs` is given for a node at the top of a function's
    /// body, whose references to the function's attributes import resolves (in bodies they
    /// stay unresolved and bring no graph): each is counted there.
    fn node(
        &mut self,
        node: &NodeProto,
        depth: usize,
        mut refs: Option<&mut HashMap<String, u64>>,
    ) -> Result<u64> {
        let Some(key) = self.callee(node) else {
            let mut n = 1u64;
            for a in &node.attribute {
                if a.ref_attr_name.is_empty() {
                    n = n.saturating_add(self.graphs_of(a, depth)?);
                } else if let Some(refs) = refs.as_deref_mut() {
                    add(refs, &a.ref_attr_name, 1);
                }
            }
            return Ok(n);
        };
        let cost = self.function(&key, depth + 1)?;
        let mut n = cost.base;
        for (attr, &uses) in &cost.uses {
            let default = cost.defaults.get(attr).copied().unwrap_or(0);
            let size = match node.attribute.iter().find(|a| a.name == *attr) {
                Some(a) if a.ref_attr_name.is_empty() => self.graphs_of(a, depth + 1)?,
                Some(a) => {
                    // Bound by the enclosing call; where that binds nothing, the default.
                    if let Some(refs) = refs.as_deref_mut() {
                        add(refs, &a.ref_attr_name, uses);
                    }
                    default
                }
                None => default,
            };
            n = n.saturating_add(uses.saturating_mul(size));
        }
        Ok(n)
    }

    /// The cost of a function, measured once.
    fn function(&mut self, key: &Key, depth: usize) -> Result<Rc<Cost>> {
        if let Some(c) = self.measured.get(key) {
            return Ok(c.clone());
        }
        if let Some(at) = self.calls.iter().position(|k| k == key) {
            return Err(cycle(&self.calls[at..], key));
        }
        if depth > MAX_NESTING {
            return Err(too_deep(&self.calls));
        }
        let f = self.functions[key];
        self.calls.push(key.clone());
        let cost = self.measure(f, depth);
        self.calls.pop();
        let cost = Rc::new(cost?);
        self.measured.insert(key.clone(), cost.clone());
        Ok(cost)
    }

    fn measure(&mut self, f: &FunctionProto, depth: usize) -> Result<Cost> {
        let mut uses = HashMap::new();
        let mut base = 0u64;
        for node in &f.node {
            base = base.saturating_add(self.node(node, depth, Some(&mut uses))?);
        }
        let mut defaults = HashMap::new();
        for a in &f.attribute_proto {
            let n = self.graphs_of(a, depth)?;
            if n > 0 {
                defaults.insert(a.name.clone(), n);
            }
        }
        Ok(Cost {
            base,
            uses,
            defaults,
        })
    }
}

fn add(refs: &mut HashMap<String, u64>, name: &str, n: u64) {
    match refs.get_mut(name) {
        Some(u) => *u = u.saturating_add(n),
        None => {
            refs.insert(name.to_string(), n);
        }
    }
}
