//! The `signal` op family: Fourier transforms, window functions and mel filter banks.

mod dft;
mod mel;
mod stft;
mod window;

pub use dft::Dft;
pub use mel::MelWeightMatrix;
pub use stft::Stft;
pub use window::{Window, WindowKind};

/// The `signal` family's ops, declared once: `signal_ops!(cb!(args))` calls
/// `cb!(args signal: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! signal_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* signal:
            Dft Stft Window MelWeightMatrix
        );
    };
}

signal_ops!(family!());
