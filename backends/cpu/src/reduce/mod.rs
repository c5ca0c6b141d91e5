//! Reference kernels of the `reduce` family. Float kernels read their inputs as f64, compute
//! in f64 and round once to the output dtype.

mod arg_reduce;
mod channel_norm;
mod layer_norm;
mod loss;
mod other_norm;
mod reduce_axes;
mod skip_norm;
mod softmax;

use crate::tensors;
use xnpu_core::broadcast::BroadcastIndex;
use xnpu_core::num::store_floats;
use xnpu_core::shape::checked_numel;
use xnpu_core::{DType, Error, Result, Tensor};
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
    store_floats(dtype, shape, values.to_vec())
}

/// Sizes of the dims before `axis`, at `axis`, and after it: a tensor is `outer` blocks of
/// `n` slices-elements strided by `inner`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let n = shape.get(axis).copied().unwrap_or(1);
    let inner = shape.get(axis + 1..).map_or(1, |s| s.iter().product());
    (outer, n, inner)
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
    Ok(idx.collect())
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
    Ok((BroadcastIndex::new(&kept, shape)?.collect(), n_groups))
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
}
