//! Export of the `image` family: resize, grid sampling, RoI ops, NMS, image decoding.

use xnpu_core::{Error, Tensor};
use xnpu_ops::image::{
    self as im, AspectPolicy, CoordMode, GridMode, GridPadding, NearestMode, PixelFormat,
    ResizeInputs, ResizeMode, RoiPool,
};

use super::tensor::resample;
use super::{a_bool, a_float, a_int, a_ints, a_str, Emit, OnnxExport, R};

fn coord_name(c: CoordMode) -> &'static str {
    match c {
        CoordMode::HalfPixel => "half_pixel",
        CoordMode::HalfPixelSymmetric => "half_pixel_symmetric",
        CoordMode::PytorchHalfPixel => "pytorch_half_pixel",
        CoordMode::AlignCorners => "align_corners",
        CoordMode::Asymmetric => "asymmetric",
        CoordMode::TfCropAndResize => "tf_crop_and_resize",
    }
}

fn nearest_name(n: NearestMode) -> &'static str {
    match n {
        NearestMode::RoundPreferFloor => "round_prefer_floor",
        NearestMode::RoundPreferCeil => "round_prefer_ceil",
        NearestMode::Floor => "floor",
        NearestMode::Ceil => "ceil",
    }
}

fn resize(r: &im::Resize, e: &mut Emit<'_>) -> R {
    let plain = r.coord == CoordMode::Asymmetric
        && !r.antialias
        && !r.exclude_outside
        && r.extrapolation_value == 0.0
        && r.axes.is_none()
        && r.keep_aspect_ratio == AspectPolicy::Stretch;
    let nearest = match r.mode {
        ResizeMode::Nearest(NearestMode::Floor) => Some(true),
        ResizeMode::Linear => Some(false),
        _ => None,
    };
    match &r.inputs {
        ResizeInputs::Fixed(scales) if plain && nearest.is_some() => {
            return resample(e, Some(scales), nearest.unwrap_or(true));
        }
        ResizeInputs::Scales if plain && nearest.is_some() => {
            if e.opset() < 9 {
                return e.need(9);
            }
            return resample(e, None, nearest.unwrap_or(true));
        }
        ResizeInputs::RoiScalesSizes => e.need(11)?,
        _ => {
            return Err(Error::unsupported(format!(
                "a Resize with {:?} inputs and these attributes has no ONNX form",
                r.inputs
            ))
            .into())
        }
    }
    let o = e.opset();
    let mut attrs = vec![];
    match r.mode {
        ResizeMode::Nearest(n) => {
            attrs.push(a_str("mode", "nearest"));
            attrs.push(a_str("nearest_mode", nearest_name(n)));
        }
        ResizeMode::Linear => attrs.push(a_str("mode", "linear")),
        ResizeMode::Cubic { a } => {
            attrs.push(a_str("mode", "cubic"));
            attrs.push(a_float("cubic_coeff_a", a));
        }
    }
    if r.coord == CoordMode::HalfPixelSymmetric {
        e.need(19)?;
    }
    attrs.push(a_str("coordinate_transformation_mode", coord_name(r.coord)));
    if r.exclude_outside {
        attrs.push(a_int("exclude_outside", 1));
    }
    if r.extrapolation_value != 0.0 {
        attrs.push(a_float("extrapolation_value", r.extrapolation_value));
    }
    if r.antialias {
        e.need(18)?;
        attrs.push(a_int("antialias", 1));
    }
    if let Some(axes) = &r.axes {
        e.need(18)?;
        attrs.push(a_ints("axes", axes));
    }
    if r.keep_aspect_ratio != AspectPolicy::Stretch {
        e.need(18)?;
        attrs.push(a_str(
            "keep_aspect_ratio_policy",
            match r.keep_aspect_ratio {
                AspectPolicy::NotLarger => "not_larger",
                AspectPolicy::NotSmaller => "not_smaller",
                AspectPolicy::Stretch => "stretch",
            },
        ));
    }
    let mut ins = e.ins.clone();
    if o < 13 && ins.get(1).is_none_or(|s| s.is_empty()) {
        // Resize-11 requires the roi input.
        let roi = e.constant("roi", &Tensor::from_vec(vec![0], Vec::<f32>::new())?)?;
        if ins.len() < 2 {
            ins.resize(2, String::new());
        }
        ins[1] = roi;
    }
    if o < 13 && ins.get(2).is_none_or(|s| s.is_empty()) {
        let scales = e.constant("scales", &Tensor::from_vec(vec![0], Vec::<f32>::new())?)?;
        if ins.len() < 3 {
            ins.resize(3, String::new());
        }
        ins[2] = scales;
    }
    let outs = e.outs.clone();
    e.add("Resize", "", ins, outs, attrs)
}

impl OnnxExport for im::Resize {
    fn export(&self, e: &mut Emit<'_>) -> R {
        resize(self, e)
    }
}

impl OnnxExport for im::GridSample {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let old = e.opset() < 20;
        let mode = match (self.mode, old) {
            (GridMode::Nearest, _) => "nearest",
            (GridMode::Linear, true) => "bilinear",
            (GridMode::Linear, false) => "linear",
            (GridMode::Cubic, true) => "bicubic",
            (GridMode::Cubic, false) => "cubic",
        };
        let padding = match self.padding {
            GridPadding::Zeros => "zeros",
            GridPadding::Border => "border",
            GridPadding::Reflection => "reflection",
        };
        e.simple(
            "GridSample",
            vec![
                a_str("mode", mode),
                a_str("padding_mode", padding),
                a_bool("align_corners", self.align_corners),
            ],
        )
    }
}

impl OnnxExport for im::AffineGrid {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "AffineGrid",
            vec![a_bool("align_corners", self.align_corners)],
        )
    }
}

impl OnnxExport for im::RoiAlign {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![
            a_str(
                "mode",
                match self.mode {
                    RoiPool::Avg => "avg",
                    RoiPool::Max => "max",
                },
            ),
            a_int("output_height", self.output_height as i64),
            a_int("output_width", self.output_width as i64),
            a_int("sampling_ratio", self.sampling_ratio as i64),
            a_float("spatial_scale", self.spatial_scale),
        ];
        if self.half_pixel {
            e.need(16)?;
        }
        if e.opset() >= 16 {
            attrs.push(a_str(
                "coordinate_transformation_mode",
                if self.half_pixel {
                    "half_pixel"
                } else {
                    "output_half_pixel"
                },
            ));
        }
        e.simple("RoiAlign", attrs)
    }
}

impl OnnxExport for im::NonMaxSuppression {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "NonMaxSuppression",
            vec![a_bool("center_point_box", self.center_point_box)],
        )
    }
}

impl OnnxExport for im::ImageDecoder {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "ImageDecoder",
            vec![a_str(
                "pixel_format",
                match self.pixel_format {
                    PixelFormat::Rgb => "RGB",
                    PixelFormat::Bgr => "BGR",
                    PixelFormat::Grayscale => "Grayscale",
                },
            )],
        )
    }
}
