use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// Which way a recurrent layer walks the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    /// Both, as two directions: forward is direction 0, reverse is direction 1.
    Bidirectional,
}

impl Direction {
    pub fn count(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            _ => 1,
        }
    }
}

/// An activation function of a recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `max(x, 0)`
    Relu,
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// `alpha * x + beta`
    Affine {
        alpha: f32,
        beta: f32,
    },
    /// `x` if `x >= 0`, else `alpha * x`
    LeakyRelu {
        alpha: f32,
    },
    /// `x` if `x > alpha`, else 0
    ThresholdedRelu {
        alpha: f32,
    },
    /// `alpha * tanh(beta * x)`
    ScaledTanh {
        alpha: f32,
        beta: f32,
    },
    /// `clamp(alpha * x + beta, 0, 1)`
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x` if `x >= 0`, else `alpha * (e^x - 1)`
    Elu {
        alpha: f32,
    },
    /// `x / (1 + |x|)`
    Softsign,
    /// `ln(1 + e^x)`
    Softplus,
}

impl Activation {
    /// The activation for an ONNX name (case-insensitive), taking its parameters from
    /// `alphas`/`betas` when it has any (in order), defaults otherwise.
    pub fn parse(
        name: &str,
        alphas: &mut impl Iterator<Item = f32>,
        betas: &mut impl Iterator<Item = f32>,
    ) -> Option<Activation> {
        let mut alpha = |d: f32| alphas.next().unwrap_or(d);
        Some(match name.to_ascii_lowercase().as_str() {
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "affine" => Activation::Affine {
                alpha: alpha(1.0),
                beta: betas.next().unwrap_or(0.0),
            },
            "leakyrelu" => Activation::LeakyRelu { alpha: alpha(0.01) },
            "thresholdedrelu" => Activation::ThresholdedRelu { alpha: alpha(1.0) },
            "scaledtanh" => Activation::ScaledTanh {
                alpha: alpha(1.0),
                beta: betas.next().unwrap_or(1.0),
            },
            "hardsigmoid" => Activation::HardSigmoid {
                alpha: alpha(0.2),
                beta: betas.next().unwrap_or(0.5),
            },
            "elu" => Activation::Elu { alpha: alpha(1.0) },
            "softsign" => Activation::Softsign,
            "softplus" => Activation::Softplus,
            _ => return None,
        })
    }
}

/// The cell of a recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// `H = f(X W^T + H R^T + Wb + Rb)`; one gate; activations `[f]` (default Tanh).
    Rnn,
    /// Gates `z, r, h` (in that order in `W`, `R`, `B`); activations `[f, g]` (default
    /// Sigmoid, Tanh):
    /// `z = f(X Wz^T + H Rz^T + Wbz + Rbz)`, `r` likewise,
    /// `h = g(X Wh^T + (r * H) Rh^T + Rbh + Wbh)`, or with `linear_before_reset`
    /// `h = g(X Wh^T + r * (H Rh^T + Rbh) + Wbh)`; then `H = (1 - z) * h + z * H`.
    Gru { linear_before_reset: bool },
    /// Gates `i, o, f, c` (in that order in `W`, `R`, `B`), peepholes `P = [Pi, Po, Pf]`;
    /// activations `[f, g, h]` (default Sigmoid, Tanh, Tanh):
    /// `i = f(X Wi^T + H Ri^T + Pi * C + Wbi + Rbi)`, `f = f(... + Pf * C ...)` (or
    /// `1 - i` with `input_forget`), `c = g(...)`, `C = f * C + i * c`,
    /// `o = f(... + Po * C ...)` with the new `C`, and `H = o * h(C)`.
    Lstm { input_forget: bool },
}

impl Cell {
    /// Number of gates stacked in `W` and `R`.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }

    /// Number of activation functions per direction.
    pub fn activations(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 2,
            Cell::Lstm { .. } => 3,
        }
    }

    pub fn default_activations(self) -> Vec<Activation> {
        match self {
            Cell::Rnn => vec![Activation::Tanh],
            Cell::Gru { .. } => vec![Activation::Sigmoid, Activation::Tanh],
            Cell::Lstm { .. } => vec![Activation::Sigmoid, Activation::Tanh, Activation::Tanh],
        }
    }
}

/// RNN, GRU and LSTM (ONNX opsets 1/3, 7, 14, 22): a recurrent layer over a sequence.
///
/// Inputs: `X` `[seq, batch, input]`, `W` `[dirs, gates*hidden, input]`,
/// `R` `[dirs, gates*hidden, hidden]`, optional `B` `[dirs, 2*gates*hidden]` (`Wb` then
/// `Rb`, default 0), `sequence_lens` `[batch]` (default `seq`), `initial_h`
/// `[dirs, batch, hidden]` (default 0), and for LSTM `initial_c` (like `initial_h`) and `P`
/// `[dirs, 3*hidden]` (default 0). With `batch_first` (ONNX `layout = 1`), `X` is
/// `[batch, seq, input]` and the states `[batch, dirs, hidden]`.
///
/// Outputs: `Y` `[seq, dirs, batch, hidden]` (`[batch, seq, dirs, hidden]` batch first), the
/// hidden state of every step (0 past a batch entry's length), `Y_h` `[dirs, batch, hidden]`,
/// the last hidden state, and for LSTM `Y_c`, the last cell state. The reverse direction
/// walks each batch entry from its last valid step to the first. Batch entries of length 0
/// keep their initial states.
///
/// `activations` holds the cell's activation functions per direction (forward first). With
/// `clip`, gate inputs are clamped to `[-clip, clip]` before their activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Recurrent {
    pub cell: Cell,
    pub direction: Direction,
    /// The `hidden_size` attribute, when given (it must then match `R`).
    pub hidden_size: Option<usize>,
    /// `cell.activations()` functions per direction, `direction.count()` times.
    pub activations: Vec<Activation>,
    pub clip: Option<f32>,
    pub batch_first: bool,
}

impl OpDef for Recurrent {
    const NAMES: &'static [&'static str] = &["RNN", "GRU", "LSTM"];

    fn name(&self) -> &'static str {
        match self.cell {
            Cell::Rnn => "RNN",
            Cell::Gru { .. } => "GRU",
            Cell::Lstm { .. } => "LSTM",
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input X is required"))?;
        let dtype = x.dtype();
        if let Some(d) = dtype {
            if !d.is_float() {
                return Err(Error::model(format!(
                    "{} needs float input, got {d}",
                    self.name()
                )));
            }
        }
        if let Some(r) = x.rank() {
            if r != 3 {
                return Err(Error::model(format!("X must have rank 3, got {r}")));
            }
        }
        let hidden = self.hidden_size.map(Dim::Known).or_else(|| {
            input(inputs, 2)
                .and_then(|r| r.shape())
                .filter(|s| s.rank() == 3)
                .map(|s| s.0[2].clone())
        });
        let dirs = Dim::Known(self.direction.count());
        let (seq, batch) = match x.shape() {
            Some(s) if s.rank() == 3 => {
                if self.batch_first {
                    (Some(s.0[1].clone()), Some(s.0[0].clone()))
                } else {
                    (Some(s.0[0].clone()), Some(s.0[1].clone()))
                }
            }
            _ => (None, None),
        };
        let y = match (&seq, &batch, &hidden) {
            (Some(s), Some(b), Some(h)) => Some(Shape(if self.batch_first {
                vec![b.clone(), s.clone(), dirs.clone(), h.clone()]
            } else {
                vec![s.clone(), dirs.clone(), b.clone(), h.clone()]
            })),
            _ => None,
        };
        let state = match (&batch, &hidden) {
            (Some(b), Some(h)) => Some(Shape(if self.batch_first {
                vec![b.clone(), dirs, h.clone()]
            } else {
                vec![dirs, b.clone(), h.clone()]
            })),
            _ => None,
        };
        let mut out = vec![tensor_type(dtype, y)];
        let n_states = if matches!(self.cell, Cell::Lstm { .. }) {
            2
        } else {
            1
        };
        for _ in 0..n_states {
            out.push(tensor_type(dtype, state.clone()));
        }
        out.truncate(n_outputs.max(1));
        Ok(out)
    }
}
