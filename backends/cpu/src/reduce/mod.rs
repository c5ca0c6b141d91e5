//! Reference kernels of the `reduce` family. Float kernels read their inputs as f64, compute
//! in f64 and round once to the output dtype.

mod arg_reduce;
mod channel_norm;
mod layer_norm;
mod loss;
mod other_norm;
mod reduce_axes;
mod skip_norm;
pub(crate) mod softmax;

use crate::tensors;
use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::num::store_floats;
use xnpu_core::shape::checked_numel;
use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::reduce::*;

kernel!(Reduce, |o, inputs, _| Ok(tensors(vec![reduce_axes::run(
    o, inputs
)?])));
kernel!(ArgReduce, |o, inputs, _| Ok(tensors(vec![
    arg_reduce::run(o, inputs)?
])));
kernel!(Softmax, |o, inputs, _| Ok(tensors(vec![softmax::run(
    o, inputs
)?])));
kernel!(LayerNormalization, |o, inputs, _| Ok(tensors(
    layer_norm::layer_norm(o, inputs)?
)));
kernel!(RmsNormalization, |o, inputs, n_outputs| Ok(tensors(
    layer_norm::rms_norm(o, inputs, n_outputs)?
)));
kernel!(SkipNormalization, |o, inputs, n_outputs| Ok(tensors(
    skip_norm::run(o, inputs, n_outputs)?
)));
kernel!(BatchNormalization, |o, inputs, n_outputs| Ok(tensors(
    channel_norm::batch_norm(o, inputs, n_outputs)?
)));
kernel!(InstanceNormalization, |o, inputs, _| Ok(tensors(vec![
    channel_norm::instance_norm(o, inputs)?
])));
kernel!(GroupNormalization, |o, inputs, _| Ok(tensors(vec![
    channel_norm::group_norm(o, inputs)?
])));
kernel!(LpNormalization, |o, inputs, _| Ok(tensors(vec![
    other_norm::lp_norm(o, inputs)?
])));
kernel!(Lrn, |o, inputs, _| Ok(tensors(vec![other_norm::lrn(
    o, inputs
)?])));
kernel!(MeanVarianceNormalization, |o, inputs, _| Ok(tensors(vec![
    other_norm::mvn(o, inputs)?
])));
kernel!(NegativeLogLikelihoodLoss, |o, inputs, _| Ok(tensors(vec![
    loss::nll(o, inputs)?
])));
kernel!(SoftmaxCrossEntropyLoss, |o, inputs, _| Ok(tensors(
    loss::sce(o, inputs)?
)));

/// A float tensor of `dtype` from f64 values (rounded once).
pub(crate) fn float_tensor(dtype: DType, shape: Vec<usize>, values: &[f64]) -> Result<Tensor> {
    store_floats(dtype, shape, buf::copied(values, "an output")?)
}

/// Sizes of the dims before `axis`, at `axis`, and after it: a tensor is `outer` blocks of
/// `n` slices-elements strided by `inner`. An error when a product overflows (an empty
/// tensor's other dims may be anything).
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> Result<(usize, usize, usize)> {
    let outer = checked_numel(&shape[..axis.min(shape.len())])?;
    let n = shape.get(axis).copied().unwrap_or(1);
    let inner = checked_numel(shape.get(axis + 1..).unwrap_or(&[]))?;
    Ok((outer, n, inner))
}

/// For each element of a tensor of shape `shape`, the flat index of the element of the
/// `from` tensor that broadcasts onto it (numpy rules, `from` toward `shape` only); the error
/// names the input as `what`.
pub(crate) fn broadcast_index(from: &[usize], shape: &[usize], what: &str) -> Result<Vec<usize>> {
    let idx = BroadcastIndex::new(from, shape).map_err(|_| {
        Error::compute(format!(
            "{what} of shape {from:?} does not broadcast to shape {shape:?}"
        ))
    })?;
    buf::collected(idx, what)
}

/// For each element of a tensor of shape `shape`, the flat index of its group in the reduced
/// tensor (reduced dims, where `reduced[d]`, kept as size 1), and the number of groups: the
/// reduced tensor broadcast back onto `shape`.
pub(crate) fn group_index(shape: &[usize], reduced: &[bool]) -> Result<(Vec<usize>, usize)> {
    let kept: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let n_groups = checked_numel(&kept)?;
    let idx = BroadcastIndex::new(&kept, shape)?;
    Ok((buf::collected(idx, "a reduction's groups")?, n_groups))
}

/// Checks that a per-channel parameter has `c` elements.
pub(crate) fn check_len(v: &[f64], c: usize, what: &str) -> Result<()> {
    if v.len() != c {
        return Err(Error::compute(format!(
            "{what} must have {c} elements (one per channel), got {}",
            v.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_index_repeats_the_smaller_tensor() {
        assert_eq!(
            broadcast_index(&[3], &[2, 3], "x").unwrap(),
            vec![0, 1, 2, 0, 1, 2]
        );
        assert_eq!(
            broadcast_index(&[2, 1], &[2, 2], "x").unwrap(),
            vec![0, 0, 1, 1]
        );
        assert!(broadcast_index(&[2], &[2, 3], "x").is_err());
    }

    #[test]
    fn group_index_maps_elements_to_their_reduction() {
        let (g, n) = group_index(&[2, 3], &[false, true]).unwrap();
        assert_eq!((g, n), (vec![0, 0, 0, 1, 1, 1], 2));
        let (g, n) = group_index(&[2, 3], &[true, false]).unwrap();
        assert_eq!((g, n), (vec![0, 1, 2, 0, 1, 2], 3));
        let (g, n) = group_index(&[2, 0], &[false, true]).unwrap();
        assert_eq!((g, n), (vec![], 2));
    }

    /// Hostile sizes (issue 21): an empty input's other dims may be anything. Reducing it
    /// can still ask for one output per kept position (an error when those cannot be had),
    /// and no loop walks its rows of nothing.
    #[test]
    fn empty_inputs_with_huge_dims_are_answered_or_refused() {
        use crate::Kernel;
        use xnpu_core::Value;
        let run = |op: &dyn Kernel, x: Tensor| {
            let v = Value::Tensor(x);
            op.run(&[Some(&v)], 1)
        };
        let empty = |dims: Vec<usize>| Tensor::from_vec(dims, Vec::<f32>::new()).unwrap();
        let sum = Reduce {
            kind: ReduceKind::Sum,
            axes: Some(vec![1]),
            keepdims: true,
            noop_with_empty_axes: false,
        };
        let e = run(&sum, empty(vec![1 << 62, 0])).unwrap_err().to_string();
        assert!(e.contains("a reduction's output"), "{e}");
        let ln = LayerNormalization {
            axis: 1,
            epsilon: 1e-5,
            stash_type: DType::F32,
        };
        let scale = Value::Tensor(empty(vec![0]));
        let x = Value::Tensor(empty(vec![1 << 62, 0]));
        let e = ln
            .run(&[Some(&x), Some(&scale)], 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("LayerNormalization's means"), "{e}");
        let big = 1usize << 40;
        let softmax = Softmax {
            kind: SoftmaxKind::Softmax,
            axis: 2,
            coerce_2d: false,
        };
        let y = run(&softmax, empty(vec![big, 0, big])).unwrap();
        assert_eq!(y[0].as_tensor().unwrap().shape(), &[big, 0, big]);
        let argmax = ArgReduce {
            kind: ArgKind::Max,
            axis: 0,
            keepdims: false,
            select_last_index: false,
        };
        let y = run(&argmax, empty(vec![big, 0, big])).unwrap();
        assert_eq!(y[0].as_tensor().unwrap().shape(), &[0, big]);
        let lrn = Lrn {
            alpha: 1e-4,
            beta: 0.75,
            bias: 1.0,
            size: 0,
        };
        assert!(run(&lrn, empty(vec![1, 2, 0])).is_err());
    }
}
