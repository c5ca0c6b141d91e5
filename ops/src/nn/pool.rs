use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use super::window::Window;
use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// What a pool computes over each window.
#[derive(Clone, Debug, PartialEq)]
pub enum PoolKind {
    /// The mean. Pad positions inside the declared pads count as zeros when
    /// `count_include_pad`, otherwise only input elements count; positions past the end
    /// padding (from `ceil_mode`) never count.
    Average { count_include_pad: bool },
    /// The maximum of the input elements in the window. The optional second output holds
    /// the flat index (over the whole input `[N, C, spatial...]`) of the maximum, the first
    /// one in window order on ties, with the spatial part row-major or, when
    /// `column_major` (storage_order = 1), column-major.
    Max { column_major: bool },
    /// `(sum |x|^p)^(1/p)` over the input elements in the window (pads add nothing).
    Lp { p: f64 },
}

/// AveragePool (opsets 1, 7, 10, 11, 19, 22), MaxPool (1, 8, 10, 11, 12, 22) and LpPool
/// (1, 2, 11, 18, 22): a window reduction over the spatial dims of X `[N, C, in...]` giving
/// `[N, C, out...]`, with `window.kernel_shape` always set; geometry as in [`Window`].
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub kind: PoolKind,
    pub window: Window,
}

impl OpDef for Pool {
    const NAMES: &'static [&'static str] = &["AveragePool", "MaxPool", "LpPool"];

    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Average { .. } => "AveragePool",
            PoolKind::Max { .. } => "MaxPool",
            PoolKind::Lp { .. } => "LpPool",
        }
    }

    fn infer(&self, inputs: &[Option<InferInput<'_>>], n_outputs: usize) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let shape = match input(inputs, 0).and_then(|x| x.shape()) {
            None => None,
            Some(x) => {
                let k = self.window.kernel_shape.as_deref().unwrap_or(&[]);
                if x.rank() != k.len() + 2 {
                    return Err(Error::model(format!(
                        "the input must be [N, C] plus {} spatial dims (kernel_shape {k:?}), got shape {x}",
                        k.len()
                    )));
                }
                let mut out = x.0[..2].to_vec();
                out.extend(self.window.infer_dims(&x.0[2..], None));
                Some(Shape(out))
            }
        };
        let mut outs = vec![tensor_type(dtype, shape.clone())];
        if n_outputs > 1 {
            outs.push(tensor_type(Some(DType::I64), shape));
        }
        Ok(outs)
    }
}

/// What a global pool computes over all spatial positions.
#[derive(Clone, Debug, PartialEq)]
pub enum GlobalKind {
    Average,
    Max,
    Lp { p: f64 },
}

/// GlobalAveragePool, GlobalMaxPool (opsets 1, 22) and GlobalLpPool (1, 2, 22): the pool
/// over all spatial dims of X `[N, C, spatial...]`, giving `[N, C, 1, ...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalPool {
    pub kind: GlobalKind,
}

impl OpDef for GlobalPool {
    const NAMES: &'static [&'static str] = &["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"];

    fn name(&self) -> &'static str {
        match self.kind {
            GlobalKind::Average => "GlobalAveragePool",
            GlobalKind::Max => "GlobalMaxPool",
            GlobalKind::Lp { .. } => "GlobalLpPool",
        }
    }

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let shape = match input(inputs, 0).and_then(|x| x.shape()) {
            None => None,
            Some(x) if x.rank() < 2 => {
                return Err(Error::model(format!(
                    "the input must be [N, C, spatial...], got shape {x}"
                )))
            }
            Some(x) => {
                let mut out = x.0[..2].to_vec();
                out.extend((2..x.rank()).map(|_| Dim::Known(1)));
                Some(Shape(out))
            }
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}

/// MaxUnpool (opsets 9, 11, 22): scatters X `[N, C, in...]` into zeros at the flat indices I
/// (same shape as X, as produced by MaxPool) of an output `[N, C, out...]` where
/// `out = (in - 1) * stride - pad_begin - pad_end + kernel`, or the optional `output_shape`
/// input. Indices are positions in the default-size output, which is then placed at the
/// start of a larger `output_shape` output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaxUnpool {
    pub kernel_shape: Vec<usize>,
    /// Empty = all 1.
    pub strides: Vec<usize>,
    /// Empty = all 0; `[begin..., end...]`.
    pub pads: Vec<usize>,
}

impl MaxUnpool {
    /// The default output spatial size for input spatial size `input`.
    pub fn default_out(&self, input: &[usize]) -> Result<Vec<usize>> {
        let n = self.kernel_shape.len();
        if input.len() != n {
            return Err(Error::compute(format!(
                "the input has {} spatial dims, kernel_shape {:?} has {n}",
                input.len(),
                self.kernel_shape
            )));
        }
        (0..n)
            .map(|i| {
                let s = self.strides.get(i).copied().unwrap_or(1);
                let pb = self.pads.get(i).copied().unwrap_or(0);
                let pe = self.pads.get(n + i).copied().unwrap_or(0);
                let full = (input[i].max(1) - 1)
                    .checked_mul(s)
                    .and_then(|f| f.checked_add(self.kernel_shape[i]))
                    .ok_or_else(|| {
                        Error::compute(format!(
                            "spatial dim {i}: the unpooled size of an input of {} with stride {s} and kernel {} overflows",
                            input[i], self.kernel_shape[i]
                        ))
                    })?;
                pb.checked_add(pe)
                    .and_then(|p| full.checked_sub(p))
                    .ok_or_else(|| {
                        Error::compute(format!(
                            "spatial dim {i}: pads {pb} + {pe} exceed the unpooled size {full}"
                        ))
                    })
            })
            .collect()
    }
}

impl OpDef for MaxUnpool {
    const NAMES: &'static [&'static str] = &["MaxUnpool"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        if let Some(v) = input(inputs, 2).and_then(|x| x.value) {
            if let Ok(dims) = v.to_i64_vec() {
                if dims.iter().all(|&d| d >= 0) {
                    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
                    return Ok(vec![tensor_type(dtype, Some(Shape::known(&dims)))]);
                }
            }
            return Ok(vec![tensor_type(dtype, None)]);
        }
        if input(inputs, 2).is_some() {
            return Ok(vec![tensor_type(dtype, None)]);
        }
        let shape = input(inputs, 0).and_then(|x| x.shape()).and_then(|x| {
            let spatial: Option<Vec<usize>> = x.0.get(2..)?.iter().map(Dim::known).collect();
            let out = self.default_out(&spatial?).ok()?;
            let mut dims = x.0[..2].to_vec();
            dims.extend(out.into_iter().map(Dim::Known));
            Some(Shape(dims))
        });
        Ok(vec![tensor_type(dtype, shape)])
    }
}

/// MaxRoiPool (opsets 1, 22): for each region `[batch, x1, y1, x2, y2]` of `rois`
/// `[R, 5]` (coordinates scaled by `spatial_scale` and rounded), the max over each of a
/// `pooled_shape` grid of bins of X `[N, C, H, W]`, giving `[R, C, ph, pw]`; an empty bin
/// gives 0. Bin `(i, j)` covers rows `floor(i * h / ph)` to `ceil((i + 1) * h / ph)` of the
/// region (h = max(y2 - y1 + 1, 1)), clipped to the input, and likewise for columns; the
/// region arithmetic (scaling, rounding half away from zero, bin bounds) is done in f32.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxRoiPool {
    pub pooled_shape: [usize; 2],
    pub spatial_scale: f32,
}

impl OpDef for MaxRoiPool {
    const NAMES: &'static [&'static str] = &["MaxRoiPool"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = input(inputs, 0).and_then(|x| x.dtype());
        let shape = match (
            input(inputs, 0).and_then(|x| x.shape()),
            input(inputs, 1).and_then(|x| x.shape()),
        ) {
            (Some(x), Some(r)) if x.rank() == 4 && r.rank() == 2 => Some(Shape(vec![
                r.0[0].clone(),
                x.0[1].clone(),
                Dim::Known(self.pooled_shape[0]),
                Dim::Known(self.pooled_shape[1]),
            ])),
            _ => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpool_sizes_that_overflow_are_an_error() {
        let op = MaxUnpool {
            kernel_shape: vec![2],
            strides: vec![usize::MAX / 2],
            pads: vec![],
        };
        let err = op.default_out(&[4]).unwrap_err().to_string();
        assert!(err.contains("overflows"), "{err}");
        let op = MaxUnpool {
            kernel_shape: vec![2],
            strides: vec![],
            pads: vec![usize::MAX, 1],
        };
        let err = op.default_out(&[4]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pads {} + 1 exceed", usize::MAX)),
            "{err}"
        );
    }
}
