//! The import table: `(domain, op_type, since opset)` → a function that builds the IR op.
//! Every op of the set implements [`OnnxImport`] in its family's file here (the builders of
//! ONNX Runtime's `com.microsoft` forms live in `contrib.rs`); the table is made from the
//! declarations (`xnpu_ops::all_ops!`), so an op the set declares cannot be left out of it.

mod attention;
mod contrib;
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

use std::collections::HashMap;
use std::sync::OnceLock;

use xnpu_core::Result;

use super::node::NodeCtx;
use crate::ir::Op;

/// ONNX Runtime's contrib domain.
pub(crate) const MS: &str = "com.microsoft";

/// How an op of the set is read from ONNX: the entries it adds to the import table.
pub trait OnnxImport {
    /// Adds every `(domain, op_type, since)` that builds this op, each with its builder.
    fn register(r: &mut Registry);
}

/// Registers every op of one family (a callback of `xnpu_ops::all_ops!`).
macro_rules! register_family {
    ($r:ident; $family:ident: $($op:ident)*) => {
        $(<xnpu_ops::$family::$op as OnnxImport>::register($r);)*
    };
}

/// Builds the IR op for one ONNX node.
pub type Translate = fn(&mut NodeCtx<'_>) -> Result<Op>;

/// The newest `ai.onnx` opset this importer knows.
pub const MAX_ONNX_OPSET: i64 = 28;

/// The domains xnpu imports, with the newest opset known for each.
pub const DOMAINS: &[(&str, i64)] = &[
    ("", MAX_ONNX_OPSET),
    ("ai.onnx.ml", 5),
    ("ai.onnx.preview", 1),
    ("ai.onnx.preview.training", 1),
    ("com.microsoft", 1),
    (super::export::XNPU_DOMAIN, 1),
];

/// The canonical spelling of a domain (`ai.onnx` is the default domain `""`).
pub fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" {
        ""
    } else {
        domain
    }
}

/// What the table says about an op at an opset version.
pub enum Lookup {
    Found(Translate),
    /// The op exists, but only from a later opset.
    TooOld {
        first: i64,
    },
    Unknown,
}

#[derive(Default)]
pub struct Registry {
    map: HashMap<(&'static str, &'static str), Vec<(i64, Translate)>>,
}

impl Registry {
    /// Registers `f` for `op_type` in `domain` from opset `since` on (until a later entry).
    pub fn add(&mut self, domain: &'static str, op_type: &'static str, since: i64, f: Translate) {
        let e = self.map.entry((domain, op_type)).or_default();
        e.push((since, f));
        e.sort_by_key(|(s, _)| *s);
    }

    pub fn lookup(&self, domain: &str, op_type: &str, version: i64) -> Lookup {
        match self.map.get(&(canonical_domain(domain), op_type)) {
            None => Lookup::Unknown,
            Some(entries) => match entries.iter().rev().find(|(s, _)| *s <= version) {
                Some((_, f)) => Lookup::Found(*f),
                None => Lookup::TooOld {
                    first: entries[0].0,
                },
            },
        }
    }

    /// Whether `op_type` of `domain` is in the table at any opset (a node the table does not
    /// know may call a model-local function).
    pub fn knows(&self, domain: &str, op_type: &str) -> bool {
        self.map.contains_key(&(canonical_domain(domain), op_type))
    }

    /// Every registered `(domain, op_type)`, sorted.
    pub fn ops(&self) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = self.map.keys().copied().collect();
        v.sort();
        v
    }

    /// The table of every op xnpu imports.
    pub fn standard() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(|| {
            let mut table = Registry::default();
            let r = &mut table;
            xnpu_ops::all_ops!(register_family!(r;));
            control::register(r);
            flex_attention::register(r);
            table
        })
    }
}
