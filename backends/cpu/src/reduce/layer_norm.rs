//! LayerNormalization and RMSNormalization.

use xnpu_core::shape::{checked_numel, normalize_axis};
use xnpu_core::{Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::reduce::{LayerNormalization, RmsNormalization};

use super::{broadcast_index, float_tensor};
use crate::args::{floats, opt_tensor, tensor};

/// Rows (the dims before `axis`) and columns (the dims from `axis` on) of `shape`, or an
/// error when a product overflows (an empty tensor's other dims may be anything).
fn rows_cols(shape: &[usize], axis: usize) -> Result<(usize, usize)> {
    Ok((
        checked_numel(&shape[..axis])?,
        checked_numel(&shape[axis..])?,
    ))
}

pub(super) fn layer_norm(
    op: &LayerNormalization,
    inputs: &[Option<&Value>],
) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let scale = tensor(inputs, 1)?;
    let bias = opt_tensor(inputs, 2)?;
    let shape = x.shape();
    let axis = normalize_axis(op.axis, shape.len())?;
    let (rows, cols) = rows_cols(shape, axis)?;
    let xv = floats(x, "X")?;
    let sv = floats(scale, "Scale")?;
    let si = broadcast_index(scale.shape(), shape, "Scale")?;
    let b = match bias {
        Some(b) => Some((floats(b, "B")?, broadcast_index(b.shape(), shape, "B")?)),
        None => None,
    };
    let eps = op.epsilon as f64;
    let mut y = buf::zeroed::<f64>(xv.len(), "LayerNormalization's output")?;
    // One statistic a row: as many rows of nothing as an empty input's dims say.
    let mut means = buf::reserved(rows, "LayerNormalization's means")?;
    let mut inv_stds = buf::reserved(rows, "LayerNormalization's inverse deviations")?;
    for r in 0..rows {
        let row = &xv[r * cols..(r + 1) * cols];
        let mean = row.iter().sum::<f64>() / cols as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / cols as f64;
        let inv = 1.0 / (var + eps).sqrt();
        for (c, v) in row.iter().enumerate() {
            let k = r * cols + c;
            let shift = b.as_ref().map_or(0.0, |(bv, bi)| bv[bi[k]]);
            y[k] = (v - mean) * inv * sv[si[k]] + shift;
        }
        means.push(mean);
        inv_stds.push(inv);
    }
    let stat_shape: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if i < axis { d } else { 1 })
        .collect();
    Ok(vec![
        float_tensor(x.dtype(), shape.to_vec(), &y)?,
        float_tensor(op.stash_type, stat_shape.clone(), &means)?,
        float_tensor(op.stash_type, stat_shape, &inv_stds)?,
    ])
}

/// Y, and the inverse RMS of each row (`[..axis, 1, ..]`, f32: the second output of ONNX
/// Runtime's SimplifiedLayerNormalization).
pub(super) fn rms_norm(
    op: &RmsNormalization,
    inputs: &[Option<&Value>],
    n_outputs: usize,
) -> Result<Vec<Tensor>> {
    let x = tensor(inputs, 0)?;
    let scale = tensor(inputs, 1)?;
    let shape = x.shape();
    let axis = normalize_axis(op.axis, shape.len())?;
    let (rows, cols) = rows_cols(shape, axis)?;
    let xv = floats(x, "X")?;
    let sv = floats(scale, "scale")?;
    let si = broadcast_index(scale.shape(), shape, "scale")?;
    let eps = op.epsilon as f64;
    let mut y = buf::zeroed::<f64>(xv.len(), "RMSNormalization's output")?;
    let mut invs = buf::reserved(rows, "RMSNormalization's inverse roots")?;
    for r in 0..rows {
        let row = &xv[r * cols..(r + 1) * cols];
        let mean_sq = row.iter().map(|v| v * v).sum::<f64>() / cols as f64;
        let inv = 1.0 / (mean_sq + eps).sqrt();
        invs.push(inv);
        for (c, v) in row.iter().enumerate() {
            let k = r * cols + c;
            y[k] = v * inv * sv[si[k]];
        }
    }
    let mut out = vec![float_tensor(scale.dtype(), shape.to_vec(), &y)?];
    if n_outputs > 1 {
        let stat: Vec<usize> = (0..shape.len())
            .map(|i| if i < axis { shape[i] } else { 1 })
            .collect();
        out.push(float_tensor(xnpu_core::DType::F32, stat, &invs)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_normalizes_each_row() {
        let x = Tensor::from_vec(vec![2, 2], vec![1f32, 3., 2., 2.]).unwrap();
        let s = Tensor::from_vec(vec![2], vec![1f32, 2.]).unwrap();
        let op = LayerNormalization {
            axis: -1,
            epsilon: 0.0,
            stash_type: xnpu_core::DType::F32,
        };
        let out = layer_norm(&op, &[Some(&Value::Tensor(x)), Some(&Value::Tensor(s))]).unwrap();
        assert_eq!(out[0].to_vec::<f32>().unwrap()[..2], [-1.0, 2.0]);
        assert_eq!(out[1].to_vec::<f32>().unwrap(), vec![2.0, 2.0]);
        assert_eq!(out[1].shape(), &[2, 1]);
    }

    #[test]
    fn scale_that_does_not_broadcast_is_an_error() {
        let x = Tensor::from_vec(vec![2, 2], vec![1f32; 4]).unwrap();
        let s = Tensor::from_vec(vec![3], vec![1f32; 3]).unwrap();
        let op = RmsNormalization {
            axis: -1,
            epsilon: 1e-5,
            stash_type: xnpu_core::DType::F32,
        };
        assert!(rms_norm(&op, &[Some(&Value::Tensor(x)), Some(&Value::Tensor(s))], 1).is_err());
    }
}
