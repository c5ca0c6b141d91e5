//! Reference kernels of the `reduce` family. Every kernel reads its inputs as f64, works on
//! groups of elements (those that share their coordinates outside some axes), and rounds the
//! results back to the input's dtype once.

mod groups;
mod loss;
mod norm;

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::infer::normalize_axis;
use xnpu_ops::reduce::{ArgReduce, Op, Reduce, ReduceKind, Softmax, SoftmaxKind};

use crate::args::{opt_tensor, tensor};
pub(crate) use groups::{from_f64, groups, normalize_axes};

/// Runs one op of the family on its inputs (`None` is an absent optional input) and returns
/// at least `n_outputs` values, in op order.
pub fn run(op: &Op, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>> {
    let outs = match op {
        Op::Reduce(o) => vec![reduce(o, inputs)?],
        Op::ArgReduce(o) => vec![arg_reduce(o, tensor(inputs, 0)?)?],
        Op::Softmax(o) => vec![softmax(o, tensor(inputs, 0)?)?],
        Op::LayerNorm(o) => norm::layer_norm(o, inputs)?,
        Op::RmsNorm(o) => vec![norm::rms_norm(o, inputs)?],
        Op::BatchNorm(o) => norm::batch_norm(o, inputs)?,
        Op::InstanceNorm(o) => vec![norm::instance_norm(o, inputs)?],
        Op::GroupNorm(o) => vec![norm::group_norm(o, inputs)?],
        Op::LpNorm(o) => vec![norm::lp_norm(o, tensor(inputs, 0)?)?],
        Op::Lrn(o) => vec![norm::lrn(o, tensor(inputs, 0)?)?],
        Op::Mvn(o) => vec![norm::mvn(o, tensor(inputs, 0)?)?],
        Op::Loss(o) => loss::loss(o, inputs)?,
    };
    let _ = n_outputs;
    Ok(outs.into_iter().map(Value::Tensor).collect())
}

fn check_numeric(t: &Tensor) -> Result<()> {
    if t.dtype() == DType::String {
        return Err(Error::compute("string tensors cannot be reduced"));
    }
    Ok(())
}

fn combine(kind: ReduceKind, v: impl Iterator<Item = f64> + Clone) -> f64 {
    match kind {
        ReduceKind::Max => v.fold(
            f64::NEG_INFINITY,
            |a, b| if b > a || b.is_nan() { b } else { a },
        ),
        ReduceKind::Min => v.fold(
            f64::INFINITY,
            |a, b| if b < a || b.is_nan() { b } else { a },
        ),
        ReduceKind::Sum => v.sum(),
        ReduceKind::Mean => {
            let n = v.clone().count();
            v.sum::<f64>() / n as f64
        }
        ReduceKind::Prod => v.product(),
        ReduceKind::L1 => v.map(f64::abs).sum(),
        ReduceKind::L2 => v.map(|x| x * x).sum::<f64>().sqrt(),
        ReduceKind::LogSum => v.sum::<f64>().ln(),
        ReduceKind::LogSumExp => {
            let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
            if m.is_infinite() {
                return m;
            }
            m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
        }
        ReduceKind::SumSquare => v.map(|x| x * x).sum(),
    }
}

fn reduce(op: &Reduce, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    check_numeric(x)?;
    let axes = match (&op.axes, opt_tensor(inputs, 1)?) {
        (Some(a), _) => a.clone(),
        (None, Some(t)) => t.to_i64_vec()?,
        (None, None) => vec![],
    };
    if axes.is_empty() && op.noop_with_empty_axes {
        return Ok(x.clone());
    }
    let rank = x.rank();
    let axes = if axes.is_empty() {
        (0..rank).collect()
    } else {
        normalize_axes(&axes, rank)?
    };
    let data = x.to_f64_vec()?;
    let (kept, groups) = groups(x.shape(), &axes);
    let out: Vec<f64> = groups
        .iter()
        .map(|g| combine(op.kind, g.iter().map(|&i| data[i])))
        // For bool, an empty Max is false and an empty Min is true.
        .map(|v| {
            if x.dtype() == DType::Bool {
                v.clamp(0.0, 1.0)
            } else {
                v
            }
        })
        .collect();
    let shape = out_shape(x.shape(), &axes, op.keepdims, kept);
    from_f64(x.dtype(), shape, &out)
}

/// The output shape of a reduction: reduced axes as 1, or removed.
fn out_shape(shape: &[usize], axes: &[usize], keepdims: bool, kept: Vec<usize>) -> Vec<usize> {
    if keepdims {
        kept
    } else {
        shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect()
    }
}

fn arg_reduce(op: &ArgReduce, x: &Tensor) -> Result<Tensor> {
    check_numeric(x)?;
    let axis = normalize_axis(op.axis, x.rank())?;
    if x.shape()[axis] == 0 {
        return Err(Error::compute(format!(
            "{} over axis {axis} of size 0 has no answer",
            if op.max { "ArgMax" } else { "ArgMin" }
        )));
    }
    let data = x.to_f64_vec()?;
    let (kept, groups) = groups(x.shape(), &[axis]);
    let out: Vec<i64> = groups
        .iter()
        .map(|g| {
            let mut best = 0;
            for (k, &i) in g.iter().enumerate() {
                let (v, b) = (data[i], data[g[best]]);
                let better = if op.max { v > b } else { v < b };
                if better || (op.select_last_index && v == b) {
                    best = k;
                }
            }
            best as i64
        })
        .collect();
    Tensor::from_vec(out_shape(x.shape(), &[axis], op.keepdims, kept), out)
}

fn softmax(op: &Softmax, x: &Tensor) -> Result<Tensor> {
    check_numeric(x)?;
    let rank = x.rank();
    let axis = normalize_axis(op.axis, rank)?;
    let axes: Vec<usize> = if op.coerce_2d {
        (axis..rank).collect()
    } else {
        vec![axis]
    };
    let data = x.to_f64_vec()?;
    let mut out = vec![0.0; data.len()];
    let (_, groups) = groups(x.shape(), &axes);
    for g in &groups {
        let m = g.iter().map(|&i| data[i]).fold(f64::NEG_INFINITY, f64::max);
        match op.kind {
            SoftmaxKind::Hardmax => {
                if let Some(&first) = g.iter().find(|&&i| data[i] == m) {
                    out[first] = 1.0;
                }
            }
            SoftmaxKind::Softmax | SoftmaxKind::LogSoftmax => {
                let sum: f64 = g.iter().map(|&i| (data[i] - m).exp()).sum();
                for &i in g {
                    out[i] = if op.kind == SoftmaxKind::Softmax {
                        (data[i] - m).exp() / sum
                    } else {
                        data[i] - m - sum.ln()
                    };
                }
            }
        }
    }
    from_f64(x.dtype(), x.shape().to_vec(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor::from_vec(shape, v).unwrap()
    }

    #[test]
    fn reduce_sum_keeps_or_drops_axes() {
        let x = t(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]);
        let op = Reduce {
            kind: ReduceKind::Sum,
            axes: Some(vec![1]),
            keepdims: false,
            noop_with_empty_axes: false,
        };
        let y = reduce(&op, &[Some(&Value::Tensor(x.clone()))]).unwrap();
        assert_eq!(y.shape(), &[2]);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![6., 15.]);
        let op = Reduce {
            keepdims: true,
            axes: Some(vec![-2]),
            ..op
        };
        let y = reduce(&op, &[Some(&Value::Tensor(x))]).unwrap();
        assert_eq!(y.shape(), &[1, 3]);
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![5., 7., 9.]);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_argmax_breaks_ties_first() {
        let x = t(vec![2, 2], vec![1000., 1000., 0., 1.]);
        let y = softmax(
            &Softmax {
                kind: SoftmaxKind::Softmax,
                axis: -1,
                coerce_2d: false,
            },
            &x,
        )
        .unwrap();
        let v = y.to_vec::<f32>().unwrap();
        assert!((v[0] - 0.5).abs() < 1e-6 && (v[2] + v[3] - 1.0).abs() < 1e-6);
        let a = arg_reduce(
            &ArgReduce {
                max: true,
                axis: 1,
                keepdims: false,
                select_last_index: false,
            },
            &x,
        )
        .unwrap();
        assert_eq!(a.to_vec::<i64>().unwrap(), vec![0, 1]);
    }

    #[test]
    fn bad_axis_is_an_error() {
        let x = t(vec![2], vec![1., 2.]);
        let op = Reduce {
            kind: ReduceKind::Max,
            axes: Some(vec![3]),
            keepdims: true,
            noop_with_empty_axes: false,
        };
        assert!(reduce(&op, &[Some(&Value::Tensor(x))]).is_err());
    }
}
