//! Export of the `rnn` family: recurrent layers (RNN, GRU, LSTM).

use xnpu_ops::rnn::{self as rn, Activation, Cell, Direction};
use xnpu_ops::OpDef;

use super::{a_float, a_floats, a_int, a_str, a_strs, Emit, OnnxExport, R};

fn rnn_activation(a: &Activation, alphas: &mut Vec<f32>, betas: &mut Vec<f32>) -> &'static str {
    match *a {
        Activation::Relu => "Relu",
        Activation::Tanh => "Tanh",
        Activation::Sigmoid => "Sigmoid",
        Activation::Affine { alpha, beta } => {
            alphas.push(alpha);
            betas.push(beta);
            "Affine"
        }
        Activation::LeakyRelu { alpha } => {
            alphas.push(alpha);
            "LeakyRelu"
        }
        Activation::ThresholdedRelu { alpha } => {
            alphas.push(alpha);
            "ThresholdedRelu"
        }
        Activation::ScaledTanh { alpha, beta } => {
            alphas.push(alpha);
            betas.push(beta);
            "ScaledTanh"
        }
        Activation::HardSigmoid { alpha, beta } => {
            alphas.push(alpha);
            betas.push(beta);
            "HardSigmoid"
        }
        Activation::Elu { alpha } => {
            alphas.push(alpha);
            "Elu"
        }
        Activation::Softsign => "Softsign",
        Activation::Softplus => "Softplus",
    }
}

impl OnnxExport for rn::Recurrent {
    fn export(&self, e: &mut Emit<'_>) -> R {
        recurrent(self, e)
    }
}

fn recurrent(r: &rn::Recurrent, e: &mut Emit<'_>) -> R {
    let mut attrs = vec![a_str(
        "direction",
        match r.direction {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        },
    )];
    if let Some(h) = r.hidden_size {
        attrs.push(a_int("hidden_size", h as i64));
    }
    let (mut alphas, mut betas) = (vec![], vec![]);
    let names: Vec<String> = r
        .activations
        .iter()
        .map(|a| rnn_activation(a, &mut alphas, &mut betas).to_string())
        .collect();
    attrs.push(a_strs("activations", &names));
    if !alphas.is_empty() {
        attrs.push(a_floats("activation_alpha", &alphas));
    }
    if !betas.is_empty() {
        attrs.push(a_floats("activation_beta", &betas));
    }
    if let Some(c) = r.clip {
        attrs.push(a_float("clip", c));
    }
    if r.batch_first {
        e.need(14)?;
        attrs.push(a_int("layout", 1));
    }
    match r.cell {
        Cell::Rnn => {}
        Cell::Gru {
            linear_before_reset,
        } => {
            if linear_before_reset {
                e.need(3)?;
                attrs.push(a_int("linear_before_reset", 1));
            }
        }
        Cell::Lstm { input_forget } => {
            if input_forget {
                attrs.push(a_int("input_forget", 1));
            }
        }
    }
    e.simple(r.name(), attrs)
}
