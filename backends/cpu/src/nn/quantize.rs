//! QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear.

use xnpu_core::narrow;
use xnpu_core::num::{round_to, store_floats};
use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::nn::{DequantizeLinear, QuantizeLinear};

use xnpu_linalg::buf;

use super::num::{int_range, ints_from_f64, ints_i32, numel};
use crate::args::{opt_tensor, tensor};

/// Which scale / zero point an element of x uses.
#[derive(Debug, PartialEq)]
enum ParamMap {
    /// One for the whole tensor.
    Tensor,
    /// One per index along the axis: `inner` is the product of the dims after it.
    Axis { size: usize, inner: usize },
    /// Blocks of `block` along the axis.
    Block {
        size: usize,
        inner: usize,
        block: usize,
        blocks: usize,
    },
}

impl ParamMap {
    fn new(x: &[usize], axis: i64, block: usize, p: &[usize]) -> Result<ParamMap> {
        let plen = numel(p)?;
        if plen == 1 {
            return Ok(ParamMap::Tensor);
        }
        let a = normalize_axis(axis, x.len())?;
        let size = x[a];
        let inner = numel(&x[a + 1..])?;
        if block == 0 {
            if p.len() != 1 || p[0] != size {
                return Err(Error::compute(format!(
                    "a per-axis scale must be 1-D of length {size} (dim {a} of x {x:?}), got shape {p:?}"
                )));
            }
            return Ok(ParamMap::Axis { size, inner });
        }
        let blocks = size.div_ceil(block);
        let fits = p.len() == x.len()
            && p.iter()
                .zip(x)
                .enumerate()
                .all(|(d, (&pd, &xd))| if d == a { pd == blocks } else { pd == xd });
        if !fits {
            return Err(Error::compute(format!(
                "a blocked scale for x {x:?}, axis {a}, block_size {block} must have shape {:?}, got {p:?}",
                x.iter()
                    .enumerate()
                    .map(|(d, &v)| if d == a { blocks } else { v })
                    .collect::<Vec<_>>()
            )));
        }
        Ok(ParamMap::Block {
            size,
            inner,
            block,
            blocks,
        })
    }

    fn index(&self, i: usize) -> usize {
        match *self {
            ParamMap::Tensor => 0,
            ParamMap::Axis { size, inner } => (i / inner) % size,
            ParamMap::Block {
                size,
                inner,
                block,
                blocks,
            } => {
                let outer = i / (size * inner);
                let a = (i / inner) % size;
                let r = i % inner;
                (outer * blocks + a / block) * inner + r
            }
        }
    }
}

/// The zero point as f64 values (zeros when absent), checked against the scale's shape.
fn zero_points(zp: Option<&Tensor>, scale: &Tensor) -> Result<Vec<f64>> {
    match zp {
        None => Ok(vec![0.0; scale.len().max(1)]),
        Some(z) => {
            if z.len() != scale.len() {
                return Err(Error::compute(format!(
                    "the zero point has shape {:?}, the scale {:?}; they must match",
                    z.shape(),
                    scale.shape()
                )));
            }
            z.to_f64_vec()
        }
    }
}

pub fn quantize_linear(op: &QuantizeLinear, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let scale = tensor(inputs, 1)?;
    let zp = opt_tensor(inputs, 2)?;
    let out_dtype = op.out_dtype(zp.map(|z| z.dtype()));
    if let (Some(z), Some(o)) = (zp, op.output_dtype) {
        if z.dtype() != o {
            return Err(Error::compute(format!(
                "output_dtype {o} differs from the zero point's dtype {}",
                z.dtype()
            )));
        }
    }
    let map = ParamMap::new(x.shape(), op.axis, op.block_size, scale.shape())?;
    let (xd, sd) = (x.dtype(), scale.dtype());
    let div = match op.precision {
        Some(p) => p,
        None if xd == sd && xd.is_float() => xd,
        None if xd.is_float() && sd.is_float() => DType::F32,
        None => DType::F64,
    };
    let xv = x.to_f64_vec()?;
    let sv = scale.to_f64_vec()?;
    let zv = zero_points(zp, scale)?;
    if narrow::is_narrow_float(out_dtype) {
        // Float8 takes no zero point (it must be 0); float4 adds it, as ONNX's reference does.
        if out_dtype != DType::F4e2m1 {
            float_zero_point_is_zero(&zv)?;
        }
        return narrow::from_codes(out_dtype, x.shape().to_vec(), |i| {
            let p = map.index(i);
            let mut q = round_to(div, round_to(div, xv[i]) / round_to(div, sv[p]));
            if out_dtype == DType::F4e2m1 {
                q = round_to(div, q + zv[p]);
            }
            narrow::float_code(out_dtype, q, op.saturate, narrow::RoundMode::Up).unwrap_or(0)
        })
        .map(|t| vec![t.into()]);
    }
    let (lo, hi) = int_range(out_dtype)?;
    let y = buf::collected(
        xv.iter().enumerate().map(|(i, &v)| {
            let p = map.index(i);
            let q = round_to(div, round_to(div, v) / round_to(div, sv[p]));
            (q.round_ties_even() + zv[p]).clamp(lo, hi)
        }),
        "QuantizeLinear's output",
    )?;
    Ok(vec![
        ints_from_f64(out_dtype, x.shape().to_vec(), &y)?.into()
    ])
}

pub fn dequantize_linear(op: &DequantizeLinear, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let scale = tensor(inputs, 1)?;
    let zp = opt_tensor(inputs, 2)?;
    if let Some(z) = zp {
        if z.dtype() != x.dtype() {
            return Err(Error::compute(format!(
                "the zero point is {}, x is {}; they must match",
                z.dtype(),
                x.dtype()
            )));
        }
    }
    let out_dtype = op.output_dtype.unwrap_or(scale.dtype());
    if !out_dtype.is_float() {
        return Err(Error::compute(format!(
            "the output must be a float type, got {out_dtype}"
        )));
    }
    let map = ParamMap::new(x.shape(), op.axis, op.block_size, scale.shape())?;
    let sv = scale.to_f64_vec()?;
    let mut zv = zero_points(zp, scale)?;
    let xv: Vec<f32> = if narrow::is_narrow_float(x.dtype()) {
        // The narrow floats: their exact value; float8 takes no zero point (it must be 0),
        // float4's is ignored, as ONNX's reference does.
        if x.dtype() == DType::F4e2m1 {
            zv.iter_mut().for_each(|z| *z = 0.0);
        } else {
            float_zero_point_is_zero(&zv)?;
        }
        narrow::widen(x)?.to_vec::<f32>()?
    } else {
        buf::collected(
            ints_i32(x)?.iter().map(|&v| v as f32),
            "DequantizeLinear's input",
        )?
    };
    let y = buf::collected(
        xv.iter().enumerate().map(|(i, &v)| {
            let p = map.index(i);
            (v - zv[p] as f32) * sv[p] as f32
        }),
        "DequantizeLinear's output",
    )?;
    Ok(vec![
        store_floats::<f32>(out_dtype, x.shape().to_vec(), y)?.into()
    ])
}

/// A float8 zero point must be zero (ONNX: float8 types take none).
fn float_zero_point_is_zero(zv: &[f64]) -> Result<()> {
    if zv.iter().any(|&z| z != 0.0) {
        return Err(Error::compute(
            "a float8 zero point must be 0 (float8 quantization has no zero point)",
        ));
    }
    Ok(())
}

pub fn dynamic_quantize_linear(inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    if x.dtype() != DType::F32 {
        return Err(Error::compute(format!(
            "DynamicQuantizeLinear needs f32 input, got {}",
            x.dtype()
        )));
    }
    let v = x.as_slice::<f32>()?;
    let max = v.iter().copied().fold(0.0f32, f32::max);
    let min = v.iter().copied().fold(0.0f32, f32::min);
    let scale = if max == min { 1.0 } else { max - min } / 255.0f32;
    let zp = (0.0f32 - min / scale).clamp(0.0, 255.0).round_ties_even();
    let y = buf::collected(
        v.iter()
            .map(|&a| ((a / scale).round_ties_even() + zp).clamp(0.0, 255.0) as u8),
        "DynamicQuantizeLinear's output",
    )?;
    Ok(vec![
        Tensor::from_vec(x.shape().to_vec(), y)?.into(),
        Tensor::scalar(scale).into(),
        Tensor::scalar(zp as u8).into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_parameters_repeat_along_the_axis() {
        // x [2, 5], axis 1, block 2 -> scale [2, 3]
        let m = ParamMap::new(&[2, 5], 1, 2, &[2, 3]).unwrap();
        let idx: Vec<usize> = (0..10).map(|i| m.index(i)).collect();
        assert_eq!(idx, vec![0, 0, 1, 1, 2, 3, 3, 4, 4, 5]);
        assert!(ParamMap::new(&[2, 5], 1, 2, &[2, 2]).is_err());
    }

    #[test]
    fn per_axis_parameters_follow_the_axis() {
        let m = ParamMap::new(&[2, 3, 2], 1, 0, &[3]).unwrap();
        let idx: Vec<usize> = (0..12).map(|i| m.index(i)).collect();
        assert_eq!(idx, vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        let err = ParamMap::new(&[2, 3], 1, 0, &[2]).unwrap_err();
        assert!(err.to_string().contains("length 3"), "{err}");
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let op = QuantizeLinear {
            axis: 1,
            block_size: 0,
            saturate: true,
            output_dtype: None,
            precision: None,
        };
        let x = Value::from(Tensor::from_vec(vec![4], vec![0.5f32, 1.5, 2.5, 1000.0]).unwrap());
        let s = Value::from(Tensor::scalar(1.0f32));
        let out = quantize_linear(&op, &[Some(&x), Some(&s)]).unwrap();
        assert_eq!(
            out[0].as_tensor().unwrap().to_vec::<u8>().unwrap(),
            vec![0, 2, 2, 255]
        );
    }
}
