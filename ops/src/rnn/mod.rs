//! The `rnn` op family: recurrent layers (RNN, GRU, LSTM).

mod recurrent;

pub use recurrent::{Activation, Cell, Direction, Recurrent};

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// RNN, GRU or LSTM, by `cell`.
    Recurrent(Recurrent),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Recurrent(op) => op.name(),
        }
    }

    /// Output types from input types (and constant inputs). Dims that cannot be known before
    /// run time are left as symbols or the whole type as `ValueType::Unknown`.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        match self {
            Op::Recurrent(op) => op.infer(inputs, n_outputs),
        }
    }
}
