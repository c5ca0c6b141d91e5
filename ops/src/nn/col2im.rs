use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// Col2Im (opset 18): the inverse of im2col (PyTorch `fold`). The input is
/// `[N, C * prod(block_shape), L]`, one column of `prod(block_shape)` values per block
/// position, L being the number of block positions that fit the padded image
/// (`image_shape` input, with the window geometry of a Conv: strides, dilations, pads);
/// each value is added to the image element it came from, positions in the padding dropped.
/// The output is `[N, C, image_shape...]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Col2Im {
    /// Empty = all 1.
    pub dilations: Vec<usize>,
    /// Empty = all 0; `[begin..., end...]`.
    pub pads: Vec<usize>,
    /// Empty = all 1.
    pub strides: Vec<usize>,
}

impl OpDef for Col2Im {
    const NAMES: &'static [&'static str] = &["Col2Im"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let x = input(inputs, 0).and_then(|x| x.shape());
        let image = input(inputs, 1)
            .and_then(|x| x.value)
            .map(|v| v.to_i64_vec());
        let block = input(inputs, 2)
            .and_then(|x| x.value)
            .map(|v| v.to_i64_vec());
        let shape = match (x, image, block) {
            (Some(x), Some(Ok(image)), Some(Ok(block))) => {
                if x.rank() != 3 {
                    return Err(Error::model(format!(
                        "Col2Im input must be [N, C * prod(block_shape), L], got shape {x}"
                    )));
                }
                if image.iter().chain(&block).any(|&d| d < 0) {
                    return Err(Error::model(format!(
                        "image_shape {image:?} and block_shape {block:?} must not be negative"
                    )));
                }
                let bl = block
                    .iter()
                    .try_fold(1usize, |p, &d| p.checked_mul(usize::try_from(d).ok()?))
                    .ok_or_else(|| {
                        Error::model(format!("the product of block_shape {block:?} overflows"))
                    })?;
                let c = match &x.0[1] {
                    Dim::Known(c) if bl > 0 && *c % bl == 0 => Dim::Known(*c / bl),
                    Dim::Known(c) => {
                        return Err(Error::model(format!(
                            "Col2Im input dim 1 ({c}) is not a multiple of prod(block_shape) = {bl}"
                        )))
                    }
                    d => Dim::Sym(format!("{d}/{bl}")),
                };
                let mut out = vec![x.0[0].clone(), c];
                out.extend(image.iter().map(|&d| Dim::Known(d as usize)));
                Some(Shape(out))
            }
            _ => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::{DType, Tensor, TensorType};

    #[test]
    fn a_block_shape_whose_product_overflows_is_an_error() {
        let x = ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[1, 4, 1])));
        let image = Tensor::from_vec(vec![2], vec![4i64, 4]).unwrap();
        let block = Tensor::from_vec(vec![2], vec![1i64 << 40, 1 << 40]).unwrap();
        let ity = ValueType::Tensor(TensorType::new(DType::I64, Shape::known(&[2])));
        let ins = [
            Some(InferInput {
                ty: &x,
                value: None,
            }),
            Some(InferInput {
                ty: &ity,
                value: Some(&image),
            }),
            Some(InferInput {
                ty: &ity,
                value: Some(&block),
            }),
        ];
        let err = Col2Im::default().infer(&ins, 1).unwrap_err().to_string();
        assert!(err.contains("the product of block_shape"), "{err}");
    }
}
