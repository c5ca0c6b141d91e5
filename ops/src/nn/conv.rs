use xnpu_core::{DType, Dim, Error, Result, Shape, ValueType};

use super::window::Window;
use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// The output shape `[N, M, out...]` of a convolution of X `[N, C, in...]` by a weight
/// `[M, C / group, k...]` (when both shapes are known in rank).
fn conv_shape(
    window: &Window,
    group: usize,
    x: Option<&Shape>,
    w: Option<&Shape>,
) -> Result<Option<Shape>> {
    let (Some(x), Some(w)) = (x, w) else {
        return Ok(None);
    };
    if x.rank() < 3 {
        return Err(Error::model(format!(
            "the input must be [N, C, spatial...] (rank >= 3), got shape {x}"
        )));
    }
    if w.rank() != x.rank() {
        return Err(Error::model(format!(
            "the weight {w} must have the input's rank {}",
            x.rank()
        )));
    }
    if let (Dim::Known(c), Dim::Known(wc)) = (&x.0[1], &w.0[1]) {
        let need = wc.checked_mul(group).ok_or_else(|| {
            Error::model(format!(
                "the weight {w} with group {group} needs more channels than a usize counts"
            ))
        })?;
        if *c != need {
            return Err(Error::model(format!(
                "the input has {c} channels, the weight {w} with group {group} needs {need}"
            )));
        }
    }
    let kernel: Option<Vec<usize>> = w.0[2..].iter().map(Dim::known).collect();
    let mut out = vec![x.0[0].clone(), w.0[0].clone()];
    out.extend(window.infer_dims(&x.0[2..], kernel.as_deref()));
    Ok(Some(Shape(out)))
}

macro_rules! conv_op {
    ($(#[$doc:meta])* $name:ident, weight = $w:expr, dtype = |$inputs:ident| $dtype:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name {
            pub window: Window,
            pub group: usize,
        }

        impl OpDef for $name {
            const NAMES: &'static [&'static str] = &[stringify!($name)];

            fn infer(
                &self,
                $inputs: &[Option<InferInput<'_>>],
                _n_outputs: usize,
            ) -> Result<Vec<ValueType>> {
                let shape = conv_shape(
                    &self.window,
                    self.group,
                    input($inputs, 0).and_then(|x| x.shape()),
                    input($inputs, $w).and_then(|x| x.shape()),
                )?;
                Ok(vec![tensor_type($dtype, shape)])
            }
        }
    };
}

conv_op!(
    /// Conv (opsets 1, 11, 22): cross-correlation of X `[N, C, in...]` with W
    /// `[M, C / group, k...]` plus an optional bias B `[M]`, giving `[N, M, out...]`. The
    /// channels are split into `group` groups, output channel m seeing input group
    /// `m / (M / group)`. Window geometry (strides, pads or auto_pad, dilations) as in
    /// [`Window`]; padding reads zeros. Products are accumulated in at least f32.
    Conv,
    weight = 1,
    dtype = |inputs| input(inputs, 0).and_then(|x| x.dtype())
);

conv_op!(
    /// ConvInteger (opset 10): Conv of `X - x_zero_point` by `W - w_zero_point` computed in
    /// i32 (no bias). X and W are u8 or i8; `x_zero_point` is a scalar, `w_zero_point` a
    /// scalar or one per output channel. Padding reads `x_zero_point` (a zero after the
    /// shift). The output is i32.
    ConvInteger,
    weight = 1,
    dtype = |inputs| Some(DType::I32)
);

conv_op!(
    /// QLinearConv (opset 10): a quantized Conv. With `X' = X - x_zero_point` and
    /// `W' = W - w_zero_point` (i32, `w_zero_point` scalar or per output channel) and the
    /// optional i32 bias B, `Y = saturate(round_half_even((conv(X', W') + B) * (x_scale *
    /// w_scale / y_scale) + y_zero_point))` in the dtype of `y_zero_point` (u8 or i8);
    /// `w_scale` may be per output channel. The scale factor is computed in f32, the rest in
    /// f64.
    QLinearConv,
    weight = 3,
    dtype = |inputs| input(inputs, 7)
        .and_then(|x| x.dtype())
        .or_else(|| input(inputs, 0).and_then(|x| x.dtype()))
);

/// DeformConv (opsets 19, 22): a Conv (no auto_pad) whose sampling positions are moved by
/// learned offsets. `offset` is `[N, offset_group * prod(k) * n_spatial, out...]`: for each
/// offset group, kernel position and spatial dim, the displacement of the sample taken for
/// each output position. Samples at fractional positions are interpolated (bilinear in 2-D,
/// multilinear in general) with zeros outside the input. The optional `mask`
/// `[N, offset_group * prod(k), out...]` scales each sample; B `[M]` is an optional bias.
/// Input channel c uses offset group `c / (C / offset_group)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeformConv {
    pub window: Window,
    pub group: usize,
    pub offset_group: usize,
}

impl OpDef for DeformConv {
    const NAMES: &'static [&'static str] = &["DeformConv"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let shape = conv_shape(
            &self.window,
            self.group,
            input(inputs, 0).and_then(|x| x.shape()),
            input(inputs, 1).and_then(|x| x.shape()),
        )?;
        Ok(vec![tensor_type(
            input(inputs, 0).and_then(|x| x.dtype()),
            shape,
        )])
    }
}
