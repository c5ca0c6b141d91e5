//! The `signal` op family: Fourier transforms, window functions and mel filter banks.

mod dft;
mod mel;
mod stft;
mod window;

pub use dft::Dft;
pub use mel::MelWeightMatrix;
pub use stft::Stft;
pub use window::{Window, WindowKind};

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Dft(Dft),
    Stft(Stft),
    /// HannWindow, HammingWindow or BlackmanWindow, by `kind`.
    Window(Window),
    MelWeightMatrix(MelWeightMatrix),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Dft(_) => "DFT",
            Op::Stft(_) => "STFT",
            Op::Window(op) => op.name(),
            Op::MelWeightMatrix(_) => "MelWeightMatrix",
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
            Op::Dft(op) => op.infer(inputs, n_outputs),
            Op::Stft(op) => op.infer(inputs, n_outputs),
            Op::Window(op) => op.infer(inputs, n_outputs),
            Op::MelWeightMatrix(op) => op.infer(inputs, n_outputs),
        }
    }
}
