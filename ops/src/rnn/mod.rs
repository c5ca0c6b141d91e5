//! The `rnn` op family: recurrent layers (RNN, GRU, LSTM).

mod recurrent;

pub use recurrent::{Activation, Cell, Direction, Recurrent};

/// The `rnn` family's ops, declared once: `rnn_ops!(cb!(args))` calls
/// `cb!(args rnn: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! rnn_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* rnn:
            Recurrent
        );
    };
}

rnn_ops!(family!());
