//! Graph passes: each a function from graph to graph (`fn(&mut Graph, &Options, &mut Work) ->
//! Result<usize>`, the number of rewrites it made), run as a pipeline chosen by an optimisation
//! level, like ONNX Runtime's levels.
//!
//! | level | passes |
//! |---|---|
//! | `none` | nothing: the graph as imported |
//! | `basic` | constant folding, shape-subgraph simplification, common-subexpression and dead-code elimination |
//! | `all` | `basic`, then Conv+BatchNormalization folding and the fusions (blocked DequantizeLinear+MatMul into MatMulNBits, MatMul+Add, Conv/Gemm+activation, GELU, LayerNorm, RMSNorm, attention) |
//!
//! Passes rewrite the main graph; the graphs ops hold (bodies of control flow,
//! FlexAttention's modifiers) are left as imported, and a node holding one is neither folded
//! nor merged. Every
//! pass keeps the graph's inputs and outputs (names, order, types) unchanged.
//!
//! Every pass takes time linear in the graph (n·log n at most): one sweep over the nodes,
//! indexes built once and updated in place, replacements made in one batch. Each counts its
//! [`Work`], which the [`Report`] shows per pass and tests hold to a small multiple of the
//! graph's size.

pub mod activation;
pub mod attention;
pub mod conv_bn;
pub mod cse;
pub mod dce;
pub mod dq_matmul;
pub mod fold;
pub mod gelu;
pub mod layer_norm;
pub mod matmul_add;
mod pattern;
pub mod rms_norm;
pub mod shape;

use std::fmt;
use std::str::FromStr;

use xnpu_core::{Error, Result, Value};

use crate::ir::{Graph, Model, Node};

/// How much the pipeline does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The graph as imported.
    None,
    /// Semantics-preserving clean-ups: folding, shape simplification, CSE, DCE.
    Basic,
    /// `Basic` and the fusions.
    #[default]
    All,
}

impl FromStr for Level {
    type Err = Error;
    fn from_str(s: &str) -> Result<Level> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "0" => Ok(Level::None),
            "basic" | "1" => Ok(Level::Basic),
            "all" | "2" => Ok(Level::All),
            _ => Err(Error::invalid_input(format!(
                "unknown optimisation level \"{s}\" (expected none, basic or all)"
            ))),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::None => "none",
            Level::Basic => "basic",
            Level::All => "all",
        })
    }
}

/// Computes a node's outputs from constant inputs. The graph crate has no kernels, so the
/// caller (the runtime) passes its reference backend's `run_node`.
pub type Evaluate<'a> = &'a (dyn Fn(&Node, &[Option<&Value>]) -> Result<Vec<Value>> + Sync);

/// What the passes may do.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    pub level: Level,
    /// Without an evaluator, constant folding only folds what shape inference knows
    /// (Constant, Shape and Size of known shapes).
    pub evaluate: Option<Evaluate<'a>>,
    /// A folded constant larger than this is not materialised (it would grow the model).
    pub max_folded_bytes: usize,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            level: Level::All,
            evaluate: None,
            max_folded_bytes: 64 << 20,
        }
    }
}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("level", &self.level)
            .field("evaluate", &self.evaluate.is_some())
            .field("max_folded_bytes", &self.max_folded_bytes)
            .finish()
    }
}

/// The work a pass did, counted so that tests can hold every pass to time linear in the
/// graph (never by the clock): one visit per node a pass looks at (a match attempt, a step of
/// a scan over the nodes), and the graph's size (nodes and values) for each whole-graph step
/// (an index built, dead code removed, uses replaced, a topological sort).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub visits: usize,
}

impl Work {
    /// One node looked at.
    pub fn visit(&mut self) {
        self.visits = self.visits.saturating_add(1);
    }

    /// One step over the whole of `g`.
    pub fn scan(&mut self, g: &Graph) {
        self.visits = self
            .visits
            .saturating_add(g.nodes.len())
            .saturating_add(g.values.len());
    }
}

/// One pass of a pipeline.
pub struct Pass {
    pub name: &'static str,
    pub level: Level,
    pub run: fn(&mut Graph, &Options<'_>, &mut Work) -> Result<usize>,
}

/// The passes in the order they run; a pass runs when its level ≤ the options' level.
pub fn pipeline() -> Vec<Pass> {
    vec![
        Pass {
            name: "constant-folding",
            level: Level::Basic,
            run: fold::run,
        },
        Pass {
            name: "shape-simplification",
            level: Level::Basic,
            run: shape::run,
        },
        Pass {
            name: "cse",
            level: Level::Basic,
            run: cse::run,
        },
        Pass {
            name: "dce",
            level: Level::Basic,
            run: dce::run,
        },
        Pass {
            name: "conv-bn-folding",
            level: Level::All,
            run: conv_bn::run,
        },
        Pass {
            name: "dq-matmul-nbits",
            level: Level::All,
            run: dq_matmul::run,
        },
        Pass {
            name: "matmul-add-fusion",
            level: Level::All,
            run: matmul_add::run,
        },
        Pass {
            name: "gelu-fusion",
            level: Level::All,
            run: gelu::run,
        },
        Pass {
            name: "layer-norm-fusion",
            level: Level::All,
            run: layer_norm::run,
        },
        Pass {
            name: "rms-norm-fusion",
            level: Level::All,
            run: rms_norm::run,
        },
        Pass {
            name: "attention-fusion",
            level: Level::All,
            run: attention::run,
        },
        Pass {
            name: "activation-fusion",
            level: Level::All,
            run: activation::run,
        },
    ]
}

/// What one pass did.
#[derive(Clone, Debug, PartialEq)]
pub struct PassStat {
    pub name: &'static str,
    pub rewrites: usize,
    /// Its [`Work`] over every round, the sort and type inference after it included.
    pub visits: usize,
}

/// What the pipeline did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub level: Level,
    pub nodes_before: usize,
    pub nodes_after: usize,
    pub passes: Vec<PassStat>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "level {}: {} → {} nodes",
            self.level, self.nodes_before, self.nodes_after
        )?;
        let fired: Vec<_> = self
            .passes
            .iter()
            .filter(|p| p.rewrites > 0)
            .map(|p| format!("{} {}", p.name, p.rewrites))
            .collect();
        if !fired.is_empty() {
            write!(f, " ({})", fired.join(", "))?;
        }
        Ok(())
    }
}

/// Runs the pipeline of `options.level` over the model's main graph until nothing changes
/// (at most a few rounds), then re-infers types. Errors name the model and the pass.
pub fn optimize(model: &mut Model, options: &Options<'_>) -> Result<Report> {
    let mut report = Report {
        level: options.level,
        nodes_before: model.graph.nodes.len(),
        ..Default::default()
    };
    let passes: Vec<Pass> = pipeline()
        .into_iter()
        .filter(|p| p.level <= options.level && options.level != Level::None)
        .collect();
    let mut totals = vec![(0usize, Work::default()); passes.len()];
    for _round in 0..4 {
        let mut changed = false;
        for (p, (total, work)) in passes.iter().zip(totals.iter_mut()) {
            let n = (p.run)(&mut model.graph, options, work).map_err(|e| {
                e.context(format!("pass {}", p.name))
                    .context(model.name.clone())
            })?;
            if n > 0 {
                model
                    .graph
                    .toposort()
                    .map_err(|e| e.context(format!("after pass {}", p.name)))?;
                model.graph.infer_types_with(false)?;
                work.scan(&model.graph);
                work.scan(&model.graph);
                changed = true;
            }
            *total += n;
        }
        if !changed {
            break;
        }
    }
    if options.level != Level::None {
        // A last round may have left nodes that nothing reads.
        model.graph.remove_dead();
    }
    report.passes = passes
        .iter()
        .zip(totals)
        .map(|(p, (rewrites, work))| PassStat {
            name: p.name,
            rewrites,
            visits: work.visits,
        })
        .collect();
    report.nodes_after = model.graph.nodes.len();
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests {
    use xnpu_core::{DType, Shape, TensorType, ValueType};

    use crate::ir::{Graph, Node, Op, ValueId};

    pub fn f32_type(dims: &[usize]) -> ValueType {
        ValueType::Tensor(TensorType::new(DType::F32, Shape::known(dims)))
    }

    pub fn relu(name: &str, x: ValueId, y: ValueId) -> Node {
        Node {
            name: name.into(),
            op: Op::Elementwise(xnpu_ops::elementwise::Op::Activation(
                xnpu_ops::elementwise::Activation {
                    kind: xnpu_ops::elementwise::ActivationKind::Relu,
                },
            )),
            inputs: vec![Some(x)],
            outputs: vec![Some(y)],
        }
    }

    /// x → relu → … → y, `n` nodes; returns (graph, x, y).
    pub fn chain(n: usize) -> (Graph, ValueId, ValueId) {
        let mut g = Graph::default();
        let x = g.add_value("x", f32_type(&[4]));
        g.inputs.push(x);
        let mut cur = x;
        for i in 0..n {
            let name = if i + 1 == n {
                "y".to_string()
            } else {
                format!("t{i}")
            };
            let v = g.add_value(name, f32_type(&[4]));
            g.nodes.push(relu(&format!("relu{i}"), cur, v));
            cur = v;
        }
        g.outputs.push(cur);
        (g, x, cur)
    }
}
