//! RNN, GRU and LSTM, step by step in f64.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::rnn::{Activation, Cell, Direction, Recurrent};

use crate::args::{opt_tensor, tensor};

fn activate(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Affine { alpha, beta } => alpha as f64 * x + beta as f64,
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha as f64 * x
            }
        }
        Activation::ThresholdedRelu { alpha } => {
            if x > alpha as f64 {
                x
            } else {
                0.0
            }
        }
        Activation::ScaledTanh { alpha, beta } => alpha as f64 * (beta as f64 * x).tanh(),
        Activation::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
        Activation::Elu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha as f64 * (x.exp() - 1.0)
            }
        }
        Activation::Softsign => x / (1.0 + x.abs()),
        Activation::Softplus => {
            // ln(1 + e^x) without overflow for large x.
            if x > 30.0 {
                x
            } else {
                x.exp().ln_1p()
            }
        }
    }
}

/// An optional input as f64 values of an exact shape (zeros when absent).
fn values_or_zeros(
    inputs: &[Option<&Value>],
    i: usize,
    name: &str,
    dtype: DType,
    shape: &[usize],
) -> Result<Vec<f64>> {
    match opt_tensor(inputs, i)? {
        None => buf::zeroed(buf::count(shape, name)?, name),
        Some(t) => {
            if t.dtype() != dtype || t.shape() != shape {
                return Err(Error::compute(format!(
                    "{name} must be {dtype}{shape:?}, got {}{:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            t.to_f64_vec()
        }
    }
}

/// `y[j] = sum_k m[j, k] * v[k]` for a row-major `m` with `v.len()` columns.
fn mat_vec(m: &[f64], v: &[f64], y: &mut [f64]) {
    let cols = v.len();
    for (j, yj) in y.iter_mut().enumerate() {
        *yj = m[j * cols..(j + 1) * cols]
            .iter()
            .zip(v)
            .map(|(a, b)| a * b)
            .sum();
    }
}

/// A float tensor from f64 values.
fn float_tensor(dtype: DType, shape: Vec<usize>, v: Vec<f64>) -> Result<Tensor> {
    xnpu_core::with_float_type!(dtype, T => {
        let v = buf::collected(
            v.into_iter().map(|x| <T as num_traits::NumCast>::from(x).unwrap_or_else(<T as num_traits::Float>::nan)),
            "an output of the layer",
        )?;
        Tensor::from_vec(shape, v)
    }, _ => Err(Error::compute(format!("expected a float dtype, got {dtype}"))))
}

/// Runs the layer; returns `Y`, `Y_h` and for LSTM `Y_c`.
pub fn run(op: &Recurrent, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let layer = Layer::read(op, inputs)?;
    let mut out = Outputs::new(layer.dims, layer.is_lstm)?;
    // With a hidden size of 0 every output is empty, and X (then [seq, batch, 0]) may have
    // any number of steps and batches: there is nothing to run.
    if layer.dims.hidden > 0 {
        for d in 0..layer.dims.dirs {
            layer.run_direction(d, &mut out)?;
        }
    }
    out.into_values(op, layer.dtype, layer.dims)
}

/// The layer's sizes, checked against X, W, R and the op.
#[derive(Clone, Copy)]
struct Dims {
    seq: usize,
    batch: usize,
    n_in: usize,
    dirs: usize,
    gates: usize,
    hidden: usize,
    batch_first: bool,
}

impl Dims {
    /// Checks the dtypes and shapes of X, W and R, hidden_size and the number of
    /// activations.
    fn check(op: &Recurrent, x: &Tensor, w: &Tensor, r: &Tensor) -> Result<Dims> {
        let dtype = x.dtype();
        if !dtype.is_float() || w.dtype() != dtype || r.dtype() != dtype {
            return Err(Error::compute(format!(
                "X, W and R must have the same float dtype, got {}, {} and {}",
                dtype,
                w.dtype(),
                r.dtype()
            )));
        }
        let xs = x.shape();
        if xs.len() != 3 {
            return Err(Error::compute(format!("X must have rank 3, got {xs:?}")));
        }
        let (seq, batch, n_in) = if op.batch_first {
            (xs[1], xs[0], xs[2])
        } else {
            (xs[0], xs[1], xs[2])
        };
        let dirs = op.direction.count();
        let gates = op.cell.gates();
        let rs = r.shape();
        // Checked: an empty R's hidden size may be anything.
        if rs.len() != 3 || rs[0] != dirs || rs[2].checked_mul(gates) != Some(rs[1]) {
            return Err(Error::compute(format!(
                "R must be [{dirs}, {gates}*hidden, hidden], got {rs:?}"
            )));
        }
        let hidden = rs[2];
        if let Some(h) = op.hidden_size {
            if h != hidden {
                return Err(Error::compute(format!(
                    "hidden_size is {h} but R has hidden size {hidden}"
                )));
            }
        }
        let gh = gates * hidden;
        if w.shape() != [dirs, gh, n_in] {
            return Err(Error::compute(format!(
                "W must be [{dirs}, {gh}, {n_in}], got {:?}",
                w.shape()
            )));
        }
        let per_dir = op.cell.activations();
        if op.activations.len() != per_dir * dirs {
            return Err(Error::compute(format!(
                "expected {} activation functions, got {}",
                per_dir * dirs,
                op.activations.len()
            )));
        }
        Ok(Dims {
            seq,
            batch,
            n_in,
            dirs,
            gates,
            hidden,
            batch_first: op.batch_first,
        })
    }

    /// Rows of W and R per direction: gates × hidden (R's dim 1, so no overflow).
    fn gh(&self) -> usize {
        self.gates * self.hidden
    }

    /// The shape of initial_h, initial_c, Y_h and Y_c.
    fn state_shape(&self) -> [usize; 3] {
        if self.batch_first {
            [self.batch, self.dirs, self.hidden]
        } else {
            [self.dirs, self.batch, self.hidden]
        }
    }

    /// The row of X holding step `t` of batch `b`.
    fn x_row(&self, t: usize, b: usize) -> usize {
        if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        }
    }

    /// Where direction `d`, batch `b` starts in a state tensor.
    fn state_at(&self, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            b * self.dirs + d
        } else {
            d * self.batch + b
        };
        row * self.hidden
    }

    /// Where step `t` of direction `d`, batch `b` starts in Y.
    fn y_at(&self, t: usize, d: usize, b: usize) -> usize {
        let row = if self.batch_first {
            (b * self.seq + t) * self.dirs + d
        } else {
            (t * self.dirs + d) * self.batch + b
        };
        row * self.hidden
    }
}

/// The layer's inputs as f64, checked.
struct Layer<'a> {
    op: &'a Recurrent,
    dims: Dims,
    dtype: DType,
    is_lstm: bool,
    xv: Vec<f64>,
    wv: Vec<f64>,
    rv: Vec<f64>,
    bv: Vec<f64>,
    /// Valid steps per batch, when sequence_lens is given (else every batch has `seq`).
    lens: Option<Vec<usize>>,
    h0: Vec<f64>,
    /// initial_c and the peepholes P (LSTM only, else empty).
    c0: Vec<f64>,
    pv: Vec<f64>,
}

impl<'a> Layer<'a> {
    /// Checks and reads the inputs (optional ones as zeros when absent).
    fn read(op: &'a Recurrent, inputs: &[Option<&Value>]) -> Result<Layer<'a>> {
        let x = tensor(inputs, 0)?;
        let w = tensor(inputs, 1)?;
        let r = tensor(inputs, 2)?;
        let dims = Dims::check(op, x, w, r)?;
        let dtype = x.dtype();
        let (dirs, hidden) = (dims.dirs, dims.hidden);
        let is_lstm = matches!(op.cell, Cell::Lstm { .. });
        let state_shape = dims.state_shape();
        let xv = x.to_f64_vec()?;
        let wv = w.to_f64_vec()?;
        let rv = r.to_f64_vec()?;
        let bv = values_or_zeros(inputs, 3, "B", dtype, &[dirs, 2 * dims.gh()])?;
        let lens = sequence_lens(opt_tensor(inputs, 4)?, dims.seq, dims.batch)?;
        let h0 = values_or_zeros(inputs, 5, "initial_h", dtype, &state_shape)?;
        let (c0, pv) = if is_lstm {
            (
                values_or_zeros(inputs, 6, "initial_c", dtype, &state_shape)?,
                values_or_zeros(inputs, 7, "P", dtype, &[dirs, 3 * hidden])?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Layer {
            op,
            dims,
            dtype,
            is_lstm,
            xv,
            wv,
            rv,
            bv,
            lens,
            h0,
            c0,
            pv,
        })
    }

    /// Runs direction `d` over every batch, writing Y, Y_h and Y_c (whose allocation bounds
    /// the steps run: `hidden` is not 0).
    fn run_direction(&self, d: usize, out: &mut Outputs) -> Result<()> {
        let (op, dims) = (self.op, self.dims);
        let (gh, hidden, n_in) = (dims.gh(), dims.hidden, dims.n_in);
        let reverse = op.direction == Direction::Reverse || d == 1;
        let cell = CellParams::new(self, d);
        let mut xw = buf::zeroed(gh, "the layer's gates")?;
        let mut hr = buf::zeroed(gh, "the layer's gates")?;
        // Three rows of hidden values (GRU's z, r and candidate gates).
        let mut scratch = buf::zeroed(3 * hidden, "the layer's gates")?;
        let mut h = buf::zeroed(hidden, "the layer's state")?;
        let mut c = buf::zeroed(if self.is_lstm { hidden } else { 0 }, "the layer's state")?;
        for b in 0..dims.batch {
            let len = self.lens.as_ref().map_or(dims.seq, |l| l[b]);
            let s = dims.state_at(d, b);
            h.copy_from_slice(&self.h0[s..s + hidden]);
            if self.is_lstm {
                c.copy_from_slice(&self.c0[s..s + hidden]);
            }
            for step in 0..len {
                let t = if reverse { len - 1 - step } else { step };
                let row = dims.x_row(t, b);
                mat_vec(cell.w, &self.xv[row * n_in..(row + 1) * n_in], &mut xw);
                mat_vec(cell.r, &h, &mut hr);
                cell.step(&xw, &hr, &mut h, &mut c, &mut scratch);
                let o = dims.y_at(t, d, b);
                out.y[o..o + hidden].copy_from_slice(&h);
            }
            out.y_h[s..s + hidden].copy_from_slice(&h);
            if self.is_lstm {
                out.y_c[s..s + hidden].copy_from_slice(&c);
            }
        }
        Ok(())
    }
}

/// sequence_lens when given (each at most `seq`); `None` (every batch has `seq` steps)
/// without it.
fn sequence_lens(t: Option<&Tensor>, seq: usize, batch: usize) -> Result<Option<Vec<usize>>> {
    let Some(t) = t else {
        return Ok(None);
    };
    let v = t.to_i64_vec()?;
    if v.len() != batch {
        return Err(Error::compute(format!(
            "sequence_lens must have {batch} values, got {}",
            v.len()
        )));
    }
    v.into_iter()
        .map(|l| {
            usize::try_from(l)
                .ok()
                .filter(|&l| l <= seq)
                .ok_or_else(|| {
                    Error::compute(format!(
                        "sequence length {l} is out of range for a sequence of {seq}"
                    ))
                })
        })
        .collect::<Result<_>>()
        .map(Some)
}

/// One direction's weights, biases, peepholes and activations: what a step of the cell
/// reads.
struct CellParams<'a> {
    op: &'a Recurrent,
    hidden: usize,
    /// W and R, `[gates * hidden, n_in]` and `[gates * hidden, hidden]`.
    w: &'a [f64],
    r: &'a [f64],
    /// The input and recurrence biases.
    wb: &'a [f64],
    rb: &'a [f64],
    /// Peepholes (LSTM only, else empty).
    p: &'a [f64],
    acts: &'a [Activation],
}

impl<'a> CellParams<'a> {
    /// Direction `d`'s slices of the layer's inputs.
    fn new(layer: &'a Layer, d: usize) -> CellParams<'a> {
        let dims = layer.dims;
        let (gh, hidden, n_in) = (dims.gh(), dims.hidden, dims.n_in);
        let per_dir = layer.op.cell.activations();
        let (wb, rb) = layer.bv[d * 2 * gh..(d + 1) * 2 * gh].split_at(gh);
        CellParams {
            op: layer.op,
            hidden,
            w: &layer.wv[d * gh * n_in..(d + 1) * gh * n_in],
            r: &layer.rv[d * gh * hidden..(d + 1) * gh * hidden],
            wb,
            rb,
            p: if layer.is_lstm {
                &layer.pv[d * 3 * hidden..(d + 1) * 3 * hidden]
            } else {
                &[]
            },
            acts: &layer.op.activations[d * per_dir..(d + 1) * per_dir],
        }
    }

    fn clip(&self, v: f64) -> f64 {
        match self.op.clip {
            Some(c) => v.clamp(-(c as f64), c as f64),
            None => v,
        }
    }

    /// The first activation (f), after clipping.
    fn f(&self, v: f64) -> f64 {
        activate(self.acts[0], self.clip(v))
    }

    /// The second activation (g) of GRU and LSTM, after clipping; RNN has only f.
    fn g(&self, v: f64) -> f64 {
        let g_act = self.acts.get(1).copied().unwrap_or(self.acts[0]);
        activate(g_act, self.clip(v))
    }

    /// One step of the cell: the new `h` (and `c` for LSTM) from `xw = W x` and `hr = R h`;
    /// `scratch` holds `3 * hidden` values.
    fn step(&self, xw: &[f64], hr: &[f64], h: &mut [f64], c: &mut [f64], scratch: &mut [f64]) {
        match self.op.cell {
            Cell::Rnn => {
                let (wb, rb) = (self.wb, self.rb);
                for j in 0..self.hidden {
                    h[j] = self.f(xw[j] + hr[j] + wb[j] + rb[j]);
                }
            }
            Cell::Gru {
                linear_before_reset,
            } => self.gru_step(linear_before_reset, xw, hr, h, scratch),
            Cell::Lstm { input_forget } => self.lstm_step(input_forget, xw, hr, h, c),
        }
    }

    /// A GRU step (gates z, r, h); `scratch` holds the z and r gates and `(r * H) Rh^T`.
    fn gru_step(
        &self,
        linear_before_reset: bool,
        xw: &[f64],
        hr: &[f64],
        h: &mut [f64],
        scratch: &mut [f64],
    ) {
        let (hidden, wb, rb) = (self.hidden, self.wb, self.rb);
        let (z_, r_, h_) = (0, hidden, 2 * hidden);
        let (z, rest) = scratch.split_at_mut(hidden);
        let (rg, rr) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            z[j] = self.f(xw[z_ + j] + hr[z_ + j] + wb[z_ + j] + rb[z_ + j]);
            rg[j] = self.f(xw[r_ + j] + hr[r_ + j] + wb[r_ + j] + rb[r_ + j]);
        }
        if linear_before_reset {
            for j in 0..hidden {
                let cand = self.g(xw[h_ + j] + rg[j] * (hr[h_ + j] + rb[h_ + j]) + wb[h_ + j]);
                h[j] = (1.0 - z[j]) * cand + z[j] * h[j];
            }
        } else {
            // (r * H) Rh^T, with r * H in place of r.
            for (r, &hj) in rg.iter_mut().zip(&*h) {
                *r *= hj;
            }
            mat_vec(&self.r[h_ * hidden..], rg, &mut rr[..hidden]);
            for j in 0..hidden {
                let cand = self.g(xw[h_ + j] + rr[j] + rb[h_ + j] + wb[h_ + j]);
                h[j] = (1.0 - z[j]) * cand + z[j] * h[j];
            }
        }
    }

    /// An LSTM step (gates i, o, f, c, with peepholes).
    fn lstm_step(&self, input_forget: bool, xw: &[f64], hr: &[f64], h: &mut [f64], c: &mut [f64]) {
        let (hidden, wb, rb, p) = (self.hidden, self.wb, self.rb, self.p);
        let hh = |v: f64| activate(self.acts[2], v);
        let (i_, o_, f_, c_) = (0, hidden, 2 * hidden, 3 * hidden);
        let pre = |k: usize| xw[k] + hr[k] + wb[k] + rb[k];
        for j in 0..hidden {
            let ig = self.f(pre(i_ + j) + p[j] * c[j]);
            let fg = if input_forget {
                1.0 - ig
            } else {
                self.f(pre(f_ + j) + p[2 * hidden + j] * c[j])
            };
            let cg = self.g(pre(c_ + j));
            c[j] = fg * c[j] + ig * cg;
            let og = self.f(pre(o_ + j) + p[hidden + j] * c[j]);
            h[j] = og * hh(c[j]);
        }
    }
}

/// Y, Y_h and Y_c (LSTM only, else empty), filled direction by direction.
struct Outputs {
    y: Vec<f64>,
    y_h: Vec<f64>,
    y_c: Vec<f64>,
}

impl Outputs {
    /// Zeroed outputs (steps past a batch's sequence length stay zero). X's steps and
    /// batches are unbounded when it is empty: the sizes are checked and allocated fallibly.
    fn new(dims: Dims, is_lstm: bool) -> Result<Outputs> {
        let (seq, dirs, batch, hidden) = (dims.seq, dims.dirs, dims.batch, dims.hidden);
        let zeros = |dims: &[usize], what: &str| buf::zeroed(buf::count(dims, what)?, what);
        Ok(Outputs {
            y: zeros(&[seq, dirs, batch, hidden], "the layer's output Y")?,
            y_h: zeros(&[dirs, batch, hidden], "the layer's output Y_h")?,
            y_c: zeros(
                &[dirs, batch, if is_lstm { hidden } else { 0 }],
                "the layer's output Y_c",
            )?,
        })
    }

    /// The output values in `dtype`: Y, Y_h and for LSTM Y_c.
    fn into_values(self, op: &Recurrent, dtype: DType, dims: Dims) -> Result<Vec<Value>> {
        let (seq, dirs, batch, hidden) = (dims.seq, dims.dirs, dims.batch, dims.hidden);
        let state_shape = dims.state_shape();
        let y_shape = if op.batch_first {
            vec![batch, seq, dirs, hidden]
        } else {
            vec![seq, dirs, batch, hidden]
        };
        let mut out = vec![
            Value::Tensor(float_tensor(dtype, y_shape, self.y)?),
            Value::Tensor(float_tensor(dtype, state_shape.to_vec(), self.y_h)?),
        ];
        if matches!(op.cell, Cell::Lstm { .. }) {
            out.push(Value::Tensor(float_tensor(
                dtype,
                state_shape.to_vec(),
                self.y_c,
            )?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_lens_are_optional_and_must_fit_the_sequence() {
        assert_eq!(sequence_lens(None, 3, 2).unwrap(), None);
        let lens = Tensor::from_vec(vec![2], vec![1i32, 3]).unwrap();
        assert_eq!(sequence_lens(Some(&lens), 3, 2).unwrap(), Some(vec![1, 3]));
        let e = sequence_lens(Some(&lens), 2, 2).unwrap_err();
        assert!(
            e.to_string().contains("sequence length 3 is out of range"),
            "{e}"
        );
        let e = sequence_lens(Some(&lens), 3, 1).unwrap_err();
        assert!(e.to_string().contains("must have 1 values"), "{e}");
    }

    fn rnn(direction: Direction) -> Recurrent {
        Recurrent {
            cell: Cell::Rnn,
            direction,
            hidden_size: Some(1),
            activations: vec![
                Activation::Affine {
                    alpha: 1.0,
                    beta: 0.0
                };
                direction.count()
            ],
            clip: None,
            batch_first: false,
        }
    }

    fn vals(shape: Vec<usize>, v: Vec<f32>) -> Value {
        Value::Tensor(Tensor::from_vec(shape, v).unwrap())
    }

    #[test]
    fn linear_rnn_accumulates_and_respects_sequence_lens() {
        // h_t = x_t + h_{t-1}; batch 0 has length 3, batch 1 length 1.
        let x = vals(vec![3, 2, 1], vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
        let w = vals(vec![1, 1, 1], vec![1.0]);
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let lens = Value::Tensor(Tensor::from_vec(vec![2], vec![3i32, 1]).unwrap());
        let out = run(
            &rnn(Direction::Forward),
            &[Some(&x), Some(&w), Some(&r), None, Some(&lens)],
        )
        .unwrap();
        let y = out[0].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![1.0, 10.0, 3.0, 0.0, 6.0, 0.0]);
        let y_h = out[1].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y_h, vec![6.0, 10.0]);
    }

    #[test]
    fn reverse_direction_starts_at_the_last_valid_step() {
        let x = vals(vec![3, 1, 1], vec![1.0, 2.0, 3.0]);
        let w = vals(vec![1, 1, 1], vec![1.0]);
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let out = run(&rnn(Direction::Reverse), &[Some(&x), Some(&w), Some(&r)]).unwrap();
        let y = out[0].as_tensor().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(y, vec![6.0, 5.0, 3.0]);
    }

    #[test]
    fn wrong_weight_shape_is_an_error() {
        let x = vals(vec![1, 1, 2], vec![1.0, 2.0]);
        let w = vals(vec![1, 1, 1], vec![1.0]);
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let err = run(&rnn(Direction::Forward), &[Some(&x), Some(&w), Some(&r)]).unwrap_err();
        assert!(err.to_string().contains("W must be"));
    }

    /// Hostile sizes (issue 21): an empty X may have any number of steps and batches, and an
    /// empty R any hidden size.
    #[test]
    fn huge_empty_dims_are_answered_or_refused() {
        let empty = |shape: Vec<usize>| vals(shape, vec![]);
        let layer = Recurrent {
            hidden_size: None,
            ..rnn(Direction::Forward)
        };
        // 2^62 steps of no input, hidden size 1: Y needs 2^62 values.
        let (x, w) = (empty(vec![1 << 62, 1, 0]), empty(vec![1, 1, 0]));
        let r = vals(vec![1, 1, 1], vec![1.0]);
        let e = run(&layer, &[Some(&x), Some(&w), Some(&r)]).unwrap_err();
        assert!(e.to_string().contains("the layer's output Y"), "{e}");
        // Hidden size 0: every output is empty, whatever the steps and batches.
        let (x, w, r) = (
            empty(vec![1 << 40, 1 << 20, 0]),
            empty(vec![1, 0, 0]),
            empty(vec![1, 0, 0]),
        );
        let out = run(&layer, &[Some(&x), Some(&w), Some(&r)]).unwrap();
        assert_eq!(
            out[0].as_tensor().unwrap().shape(),
            &[1 << 40, 1, 1 << 20, 0]
        );
        // 4 gates x 2^62 wraps to 0 rows.
        let lstm = Recurrent {
            cell: Cell::Lstm {
                input_forget: false,
            },
            hidden_size: None,
            activations: Cell::Lstm {
                input_forget: false,
            }
            .default_activations(),
            ..rnn(Direction::Forward)
        };
        let (x, w, r) = (
            vals(vec![1, 1, 1], vec![1.0]),
            empty(vec![1, 0, 1]),
            empty(vec![1, 0, 1 << 62]),
        );
        let e = run(&lstm, &[Some(&x), Some(&w), Some(&r)]).unwrap_err();
        assert!(e.to_string().contains("R must be"), "{e}");
    }

    #[test]
    fn gru_step_matches_the_formula_with_and_without_linear_before_reset() {
        // hidden 1, one input: W = [z, r, h] rows, R likewise, B = [Wb; Rb], initial_h 0.5.
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let x = vals(vec![1, 1, 1], vec![1.0]);
        let w = vals(vec![1, 3, 1], vec![0.5, 0.25, 1.0]);
        let r = vals(vec![1, 3, 1], vec![0.1, 0.2, 0.3]);
        let b = vals(vec![1, 6], vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.4]);
        let h0 = vals(vec![1, 1, 1], vec![0.5]);
        let z = sig(0.5 + 0.1 * 0.5);
        let rg = sig(0.25 + 0.2 * 0.5);
        for linear_before_reset in [false, true] {
            let cell = Cell::Gru {
                linear_before_reset,
            };
            let gru = Recurrent {
                cell,
                hidden_size: None,
                activations: cell.default_activations(),
                ..rnn(Direction::Forward)
            };
            let inputs = [Some(&x), Some(&w), Some(&r), Some(&b), None, Some(&h0)];
            let out = run(&gru, &inputs).unwrap();
            let y = out[0].as_tensor().unwrap().to_vec::<f32>().unwrap();
            let cand = if linear_before_reset {
                (1.0 + rg * (0.3 * 0.5 + 0.4)).tanh()
            } else {
                (1.0 + 0.3 * (rg * 0.5) + 0.4).tanh()
            };
            let want = (1.0 - z) * cand + z * 0.5;
            assert!((y[0] as f64 - want).abs() < 1e-6, "{y:?} vs {want}");
        }
    }
}
