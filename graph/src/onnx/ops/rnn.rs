//! Import of the `rnn` family.

use xnpu_core::{Error, Result};
use xnpu_ops::rnn::{self as rn, Activation, Cell, Direction, Recurrent};

use super::{NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::rnn::Recurrent {
    fn register(r: &mut Registry) {
        r.add("", "RNN", 1, rnn);
        r.add("", "GRU", 1, gru);
        r.add("", "LSTM", 1, lstm);
    }
}

fn rnn(n: &mut NodeCtx<'_>) -> Result<Op> {
    recurrent(n, Cell::Rnn)
}

fn gru(n: &mut NodeCtx<'_>) -> Result<Op> {
    let linear_before_reset = n.opset() >= 3 && n.int("linear_before_reset", 0)? != 0;
    recurrent(
        n,
        Cell::Gru {
            linear_before_reset,
        },
    )
}

fn lstm(n: &mut NodeCtx<'_>) -> Result<Op> {
    let input_forget = n.int("input_forget", 0)? != 0;
    recurrent(n, Cell::Lstm { input_forget })
}

fn recurrent(n: &mut NodeCtx<'_>, cell: Cell) -> Result<Op> {
    // GRU-1 spells the default "foward".
    let direction = match n.string("direction", "forward")?.as_str() {
        "forward" | "foward" => Direction::Forward,
        "reverse" => Direction::Reverse,
        "bidirectional" => Direction::Bidirectional,
        d => {
            return Err(Error::model(format!(
                "attribute \"direction\" must be forward, reverse or bidirectional, got \"{d}\""
            )))
        }
    };
    let hidden_size = match n.opt_int("hidden_size")? {
        None => None,
        Some(h) if h > 0 => Some(
            usize::try_from(h)
                .map_err(|_| Error::model("attribute \"hidden_size\" is too large"))?,
        ),
        Some(h) => {
            return Err(Error::model(format!(
                "attribute \"hidden_size\" must be positive, got {h}"
            )))
        }
    };
    let per_dir = cell.activations();
    let dirs = direction.count();
    let activations = match n.strings("activations")? {
        None => {
            let d = cell.default_activations();
            d.iter().cycle().take(per_dir * dirs).copied().collect()
        }
        Some(names) => {
            let names: Vec<String> = if names.len() == per_dir && dirs == 2 {
                names.iter().chain(names.iter()).cloned().collect()
            } else if names.len() == 2 * per_dir && dirs == 1 {
                // Both directions' functions for a one-direction op: the form of the
                // schema's own default (RNN's is ["Tanh", "Tanh"], which ONNX Runtime writes
                // out in full); the forward direction's are the first.
                names[..per_dir].to_vec()
            } else {
                names
            };
            if names.len() != per_dir * dirs {
                return Err(Error::model(format!(
                    "attribute \"activations\" must have {} names ({per_dir} per direction), got {}",
                    per_dir * dirs,
                    names.len()
                )));
            }
            let mut alphas = n
                .floats("activation_alpha")?
                .unwrap_or_default()
                .into_iter();
            let mut betas = n.floats("activation_beta")?.unwrap_or_default().into_iter();
            names
                .iter()
                .map(|name| {
                    Activation::parse(name, &mut alphas, &mut betas).ok_or_else(|| {
                        Error::unsupported(format!(
                            "activation function \"{name}\" is not supported"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    let clip = match n.opt_float("clip")? {
        Some(c) if c <= 0.0 || c.is_nan() => {
            return Err(Error::model(format!(
                "attribute \"clip\" must be positive, got {c}"
            )))
        }
        c => c,
    };
    let layout = if n.opset() >= 14 {
        n.int("layout", 0)?
    } else {
        0
    };
    if !(layout == 0 || layout == 1) {
        return Err(Error::model(format!(
            "attribute \"layout\" must be 0 or 1, got {layout}"
        )));
    }
    // Opset 1's output_sequence only makes Y optional; Y is always computed.
    Ok(Op::Rnn(rn::Op::Recurrent(Recurrent {
        cell,
        direction,
        hidden_size,
        activations,
        clip,
        batch_first: layout == 1,
    })))
}
