//! Reference kernels of the `rnn` family.

mod recurrent;

use xnpu_ops::rnn::*;

kernel!(Recurrent, |o, inputs, _| recurrent::run(o, inputs));
