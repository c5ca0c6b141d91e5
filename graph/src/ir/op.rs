//! The IR's op: an enum over the op families of `xnpu-ops`, plus the ops that hold graphs
//! (control flow and FlexAttention).

use xnpu_core::{Result, ValueType};
use xnpu_ops::InferInput;

use super::{FlexAttention, Graph, If, Loop, Scan, SequenceMap};

/// A typed op. Attributes were parsed at import; nothing is looked up by string at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Elementwise(xnpu_ops::elementwise::Op),
    Tensor(xnpu_ops::tensor::Op),
    Reduce(xnpu_ops::reduce::Op),
    Nn(xnpu_ops::nn::Op),
    Rnn(xnpu_ops::rnn::Op),
    Signal(xnpu_ops::signal::Op),
    Attention(xnpu_ops::attention::Op),
    Image(xnpu_ops::image::Op),
    Ml(xnpu_ops::ml::Op),
    Sequence(xnpu_ops::sequence::Op),
    Text(xnpu_ops::text::Op),
    If(Box<If>),
    Loop(Box<Loop>),
    Scan(Box<Scan>),
    SequenceMap(Box<SequenceMap>),
    FlexAttention(Box<FlexAttention>),
}

/// Adds a family's op names to `$set` (a callback of `xnpu_ops::all_ops!`).
macro_rules! family_names {
    ($set:ident; $family:ident: $($op:ident)*) => {
        $set.extend(xnpu_ops::$family::Op::names());
    };
}

impl Op {
    /// Every name an IR op goes by (what capability tables and `--explain` use): the names
    /// the families declare, and the ops that hold graphs.
    pub fn names() -> &'static std::collections::BTreeSet<&'static str> {
        static NAMES: std::sync::OnceLock<std::collections::BTreeSet<&'static str>> =
            std::sync::OnceLock::new();
        NAMES.get_or_init(|| {
            let mut set = std::collections::BTreeSet::from([
                "If",
                "Loop",
                "Scan",
                "SequenceMap",
                "FlexAttention",
            ]);
            xnpu_ops::all_ops!(family_names!(set;));
            set
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Elementwise(o) => o.name(),
            Op::Tensor(o) => o.name(),
            Op::Reduce(o) => o.name(),
            Op::Nn(o) => o.name(),
            Op::Rnn(o) => o.name(),
            Op::Signal(o) => o.name(),
            Op::Attention(o) => o.name(),
            Op::Image(o) => o.name(),
            Op::Ml(o) => o.name(),
            Op::Sequence(o) => o.name(),
            Op::Text(o) => o.name(),
            Op::If(_) => "If",
            Op::Loop(_) => "Loop",
            Op::Scan(_) => "Scan",
            Op::SequenceMap(_) => "SequenceMap",
            Op::FlexAttention(_) => "FlexAttention",
        }
    }

    /// Whether the outputs differ from run to run (see `xnpu_ops::OpDef::RANDOM`).
    pub fn is_random(&self) -> bool {
        match self {
            Op::Elementwise(o) => o.is_random(),
            Op::Tensor(o) => o.is_random(),
            Op::Reduce(o) => o.is_random(),
            Op::Nn(o) => o.is_random(),
            Op::Rnn(o) => o.is_random(),
            Op::Signal(o) => o.is_random(),
            Op::Attention(o) => o.is_random(),
            Op::Image(o) => o.is_random(),
            Op::Ml(o) => o.is_random(),
            Op::Sequence(o) => o.is_random(),
            Op::Text(o) => o.is_random(),
            Op::If(_) | Op::Loop(_) | Op::Scan(_) | Op::SequenceMap(_) | Op::FlexAttention(_) => {
                false
            }
        }
    }

    /// Whether a run may draw random values: a random op (see [`Op::is_random`]), or a
    /// Dropout without a seed (in training mode it drops at random; with a seed its draws
    /// are the same every run). Never folded into a constant nor merged with an equal node.
    pub fn may_draw(&self) -> bool {
        self.is_random()
            || matches!(self, Op::Tensor(xnpu_ops::tensor::Op::Dropout(d)) if d.seed.is_none())
    }

    /// The graphs an op holds: the bodies of control flow, FlexAttention's modifiers.
    pub fn subgraphs(&self) -> Vec<&Graph> {
        match self {
            Op::If(o) => vec![&o.then_branch, &o.else_branch],
            Op::Loop(o) => vec![&o.body],
            Op::Scan(o) => vec![&o.body],
            Op::SequenceMap(o) => vec![&o.body],
            Op::FlexAttention(o) => o.modifiers().map(|(_, g)| g).collect(),
            _ => vec![],
        }
    }

    pub fn subgraphs_mut(&mut self) -> Vec<&mut Graph> {
        match self {
            Op::If(o) => vec![&mut o.then_branch, &mut o.else_branch],
            Op::Loop(o) => vec![&mut o.body],
            Op::Scan(o) => vec![&mut o.body],
            Op::SequenceMap(o) => vec![&mut o.body],
            Op::FlexAttention(o) => o.score_mod.iter_mut().chain(&mut o.prob_mod).collect(),
            _ => vec![],
        }
    }

    /// Output types from input types. See each family's `infer`.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        match self {
            Op::Elementwise(o) => o.infer(inputs, n_outputs),
            Op::Tensor(o) => o.infer(inputs, n_outputs),
            Op::Reduce(o) => o.infer(inputs, n_outputs),
            Op::Nn(o) => o.infer(inputs, n_outputs),
            Op::Rnn(o) => o.infer(inputs, n_outputs),
            Op::Signal(o) => o.infer(inputs, n_outputs),
            Op::Attention(o) => o.infer(inputs, n_outputs),
            Op::Image(o) => o.infer(inputs, n_outputs),
            Op::Ml(o) => o.infer(inputs, n_outputs),
            Op::Sequence(o) => o.infer(inputs, n_outputs),
            Op::Text(o) => o.infer(inputs, n_outputs),
            Op::If(o) => Ok(o
                .then_branch
                .outputs
                .iter()
                .map(|&v| o.then_branch.values[v].ty.clone())
                .collect()),
            Op::SequenceMap(o) => Ok(o
                .body
                .outputs
                .iter()
                .map(|&v| ValueType::Sequence(Box::new(o.body.values[v].ty.clone())))
                .collect()),
            Op::Loop(_) | Op::Scan(_) => Ok(vec![ValueType::Unknown; n_outputs]),
            Op::FlexAttention(o) => o.infer(inputs),
        }
    }
}
