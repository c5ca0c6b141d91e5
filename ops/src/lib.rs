//! xnpu-ops: the operator set, the contract every backend is tested against.
//!
//! Sits after `core` on the path of a model (`core` ← `ops` ← `graph` ← backends ← `xnpu`).
//! Each op is a struct of typed attributes (parsed once at import, never looked up by string
//! at run time) with a doc comment that states its semantics, and an [`OpDef`]: its names and
//! shape function. Ops are grouped in families, one module each.
//!
//! **An op is declared once**: its family's list macro (`nn_ops!`, `tensor_ops!`, …, all
//! reached through [`all_ops!`]) names it, and every layer derives what it needs from that
//! list — the family's `Op` enum and its `name`/`infer` here, the ONNX import and export
//! registrations in `xnpu-graph`, the reference dispatch in `xnpu-backend-cpu`. A layer that
//! lacks the op's trait impl does not compile. See `docs/adding-an-op.md`.
//!
//! This crate must never depend on the IR, the ONNX importer, or any backend.

use xnpu_core::{Result, Tensor, ValueType};

/// What every op of the set declares: the names it goes by and its shape function. The
/// semantics are the struct's doc comment, the contract every backend is tested against.
pub trait OpDef: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Every name the op goes by (an op with a `kind` has one per kind); capability tables
    /// and `--explain` use these. The first is the name of a default-constructed op.
    const NAMES: &'static [&'static str];

    /// Whether the outputs differ from run to run (random ops): never folded into constants
    /// nor merged with an equal node.
    const RANDOM: bool = false;

    /// This op's name (the ONNX op type where there is one).
    fn name(&self) -> &'static str {
        Self::NAMES[0]
    }

    /// Output types from input types (and constant inputs). Dims that cannot be known before
    /// run time are left as symbols, or the whole type as `ValueType::Unknown`.
    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>>;

    /// The output values when they are known before run time without computing on data (a
    /// Constant's value, the Shape of an input whose dims are all known), so that type
    /// inference can follow shape chains. The default: not known.
    fn fold(&self, inputs: &[Option<InferInput<'_>>]) -> Option<Vec<Tensor>> {
        let _ = inputs;
        None
    }
}

/// The family enum and its dispatch from a family's op list (`family!(nn: MatMul Conv …)`).
macro_rules! family {
    ($family:ident: $($op:ident)*) => {
        /// The ops of this family, one variant per op struct (declared by the family's list
        /// macro, see the crate docs).
        #[derive(Clone, Debug, PartialEq)]
        pub enum Op {
            $($op($op),)*
        }

        impl Op {
            /// The op's name as users know it (the ONNX op type where there is one).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Op::$op(o) => $crate::OpDef::name(o),)*
                }
            }

            /// Output types from input types (and constant inputs); see [`OpDef::infer`].
            ///
            /// [`OpDef::infer`]: $crate::OpDef::infer
            pub fn infer(
                &self,
                inputs: &[Option<$crate::InferInput<'_>>],
                n_outputs: usize,
            ) -> xnpu_core::Result<Vec<xnpu_core::ValueType>> {
                match self {
                    $(Op::$op(o) => $crate::OpDef::infer(o, inputs, n_outputs),)*
                }
            }

            /// Outputs known before run time; see [`OpDef::fold`].
            ///
            /// [`OpDef::fold`]: $crate::OpDef::fold
            pub fn fold(
                &self,
                inputs: &[Option<$crate::InferInput<'_>>],
            ) -> Option<Vec<xnpu_core::Tensor>> {
                match self {
                    $(Op::$op(o) => $crate::OpDef::fold(o, inputs),)*
                }
            }

            /// Whether the op's outputs differ from run to run; see [`OpDef::RANDOM`].
            ///
            /// [`OpDef::RANDOM`]: $crate::OpDef::RANDOM
            pub fn is_random(&self) -> bool {
                match self {
                    $(Op::$op(_) => <$op as $crate::OpDef>::RANDOM,)*
                }
            }

            /// Every name an op of this family goes by.
            pub fn names() -> impl Iterator<Item = &'static str> {
                [$(<$op as $crate::OpDef>::NAMES,)*].into_iter().flatten().copied()
            }
        }

        $(
            impl From<$op> for Op {
                fn from(o: $op) -> Op {
                    Op::$op(o)
                }
            }
        )*
    };
}

/// Calls `cb!(args family: Op Op …)` once per family of the op set, in one list: what a
/// layer uses to derive its per-op table (import, export, kernels) from the declarations.
#[macro_export]
macro_rules! all_ops {
    ($cb:ident!($($args:tt)*)) => {
        $crate::attention_ops!($cb!($($args)*));
        $crate::elementwise_ops!($cb!($($args)*));
        $crate::image_ops!($cb!($($args)*));
        $crate::ml_ops!($cb!($($args)*));
        $crate::nn_ops!($cb!($($args)*));
        $crate::reduce_ops!($cb!($($args)*));
        $crate::rnn_ops!($cb!($($args)*));
        $crate::sequence_ops!($cb!($($args)*));
        $crate::signal_ops!($cb!($($args)*));
        $crate::tensor_ops!($cb!($($args)*));
        $crate::text_ops!($cb!($($args)*));
    };
}

pub mod infer;

pub mod attention;
pub mod elementwise;
pub mod image;
pub mod ml;
pub mod nn;
pub mod reduce;
pub mod rnn;
pub mod sequence;
pub mod signal;
pub mod tensor;
pub mod text;

pub use infer::InferInput;
