//! Import of the `image` family.

use xnpu_core::{Error, Result};
use xnpu_ops::image::{
    self as im, AffineGrid, AspectPolicy, CoordMode, GridMode, GridPadding, GridSample,
    ImageDecoder, NearestMode, NonMaxSuppression, PixelFormat, Resize, ResizeInputs, ResizeMode,
    RoiAlign, RoiPool,
};

use super::{NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::image::Resize {
    fn register(r: &mut Registry) {
        r.add("", "Resize", 10, resize);
    }
}

impl OnnxImport for xnpu_ops::image::GridSample {
    fn register(r: &mut Registry) {
        r.add("", "GridSample", 16, grid_sample);
    }
}

impl OnnxImport for xnpu_ops::image::AffineGrid {
    fn register(r: &mut Registry) {
        r.add("", "AffineGrid", 20, affine_grid);
    }
}

impl OnnxImport for xnpu_ops::image::RoiAlign {
    fn register(r: &mut Registry) {
        r.add("", "RoiAlign", 10, roi_align);
    }
}

impl OnnxImport for xnpu_ops::image::NonMaxSuppression {
    fn register(r: &mut Registry) {
        r.add("", "NonMaxSuppression", 10, non_max_suppression);
    }
}

impl OnnxImport for xnpu_ops::image::ImageDecoder {
    fn register(r: &mut Registry) {
        r.add("", "ImageDecoder", 20, image_decoder);
    }
}

fn op(o: im::Op) -> Op {
    Op::Image(o)
}

/// A string attribute that must be one of the values `parse` accepts.
fn choice<T>(
    n: &NodeCtx<'_>,
    name: &str,
    default: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T> {
    let s = n.string(name, default)?;
    parse(&s).ok_or_else(|| Error::model(format!("attribute \"{name}\" has unknown value \"{s}\"")))
}

fn resize(n: &mut NodeCtx<'_>) -> Result<Op> {
    let opset = n.opset();
    let mode_name = n.string("mode", "nearest")?;
    if opset < 11 {
        // Resize-10: (X, scales), nearest or linear, asymmetric coordinates.
        let mode = match mode_name.as_str() {
            "nearest" => ResizeMode::Nearest(NearestMode::Floor),
            "linear" => ResizeMode::Linear,
            m => {
                return Err(Error::model(format!(
                    "attribute \"mode\" must be nearest or linear, got \"{m}\""
                )))
            }
        };
        return Ok(op(im::Op::Resize(Resize {
            mode,
            coord: CoordMode::Asymmetric,
            antialias: false,
            exclude_outside: false,
            extrapolation_value: 0.0,
            axes: None,
            keep_aspect_ratio: AspectPolicy::Stretch,
            inputs: ResizeInputs::Scales,
        })));
    }
    let mode = match mode_name.as_str() {
        "nearest" => ResizeMode::Nearest(choice(
            n,
            "nearest_mode",
            "round_prefer_floor",
            NearestMode::parse,
        )?),
        "linear" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic {
            a: n.float("cubic_coeff_a", -0.75)?,
        },
        m => {
            return Err(Error::model(format!(
                "attribute \"mode\" must be nearest, linear or cubic, got \"{m}\""
            )))
        }
    };
    let coord = choice(
        n,
        "coordinate_transformation_mode",
        "half_pixel",
        CoordMode::parse,
    )?;
    if coord == CoordMode::HalfPixelSymmetric && opset < 19 {
        return Err(Error::model(
            "coordinate_transformation_mode half_pixel_symmetric needs opset 19",
        ));
    }
    let (antialias, axes, keep_aspect_ratio) = if opset >= 18 {
        let antialias = n.int("antialias", 0)? != 0;
        if antialias && matches!(mode, ResizeMode::Nearest(_)) {
            return Err(Error::model(
                "antialias is only defined for linear and cubic modes",
            ));
        }
        let policy = choice(n, "keep_aspect_ratio_policy", "stretch", |s| match s {
            "stretch" => Some(AspectPolicy::Stretch),
            "not_larger" => Some(AspectPolicy::NotLarger),
            "not_smaller" => Some(AspectPolicy::NotSmaller),
            _ => None,
        })?;
        (antialias, n.ints("axes")?, policy)
    } else {
        (false, None, AspectPolicy::Stretch)
    };
    Ok(op(im::Op::Resize(Resize {
        mode,
        coord,
        antialias,
        exclude_outside: n.int("exclude_outside", 0)? != 0,
        extrapolation_value: n.float("extrapolation_value", 0.0)?,
        axes,
        keep_aspect_ratio,
        inputs: ResizeInputs::RoiScalesSizes,
    })))
}

/// Upsample (deprecated): nearest (floor) or linear resampling with asymmetric coordinates.
pub(super) fn upsample(n: &mut NodeCtx<'_>) -> Result<Op> {
    let opset = n.opset();
    let mode = match n.string("mode", "nearest")?.as_str() {
        "nearest" => ResizeMode::Nearest(NearestMode::Floor),
        "linear" | "bilinear" => ResizeMode::Linear,
        m => {
            return Err(Error::model(format!(
                "attribute \"mode\" must be nearest or linear, got \"{m}\""
            )))
        }
    };
    let inputs = if opset >= 9 {
        ResizeInputs::Scales
    } else if opset >= 7 {
        ResizeInputs::Fixed(
            n.floats("scales")?
                .ok_or_else(|| Error::model("required attribute \"scales\" is missing"))?,
        )
    } else {
        let h = n.float("height_scale", 1.0)?;
        let w = n.float("width_scale", 1.0)?;
        ResizeInputs::Fixed(vec![1.0, 1.0, h, w])
    };
    Ok(op(im::Op::Resize(Resize {
        mode,
        coord: CoordMode::Asymmetric,
        antialias: false,
        exclude_outside: false,
        extrapolation_value: 0.0,
        axes: None,
        keep_aspect_ratio: AspectPolicy::Stretch,
        inputs,
    })))
}

fn grid_sample(n: &mut NodeCtx<'_>) -> Result<Op> {
    // Opset 16 spells the modes bilinear and bicubic.
    let mode = if n.opset() < 20 {
        choice(n, "mode", "bilinear", |s| match s {
            "nearest" => Some(GridMode::Nearest),
            "bilinear" => Some(GridMode::Linear),
            "bicubic" => Some(GridMode::Cubic),
            _ => None,
        })?
    } else {
        choice(n, "mode", "linear", |s| match s {
            "nearest" => Some(GridMode::Nearest),
            "linear" => Some(GridMode::Linear),
            "cubic" => Some(GridMode::Cubic),
            _ => None,
        })?
    };
    let padding = choice(n, "padding_mode", "zeros", |s| match s {
        "zeros" => Some(GridPadding::Zeros),
        "border" => Some(GridPadding::Border),
        "reflection" => Some(GridPadding::Reflection),
        _ => None,
    })?;
    Ok(op(im::Op::GridSample(GridSample {
        mode,
        padding,
        align_corners: n.int("align_corners", 0)? != 0,
    })))
}

fn affine_grid(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(im::Op::AffineGrid(AffineGrid {
        align_corners: n.int("align_corners", 0)? != 0,
    })))
}

/// A positive INT attribute as a size.
fn positive(n: &NodeCtx<'_>, name: &str, default: i64) -> Result<usize> {
    let v = n.int(name, default)?;
    if v < 1 {
        return Err(Error::model(format!(
            "attribute \"{name}\" must be positive, got {v}"
        )));
    }
    usize::try_from(v).map_err(|_| Error::model(format!("attribute \"{name}\" is too large")))
}

fn roi_align(n: &mut NodeCtx<'_>) -> Result<Op> {
    let mode = choice(n, "mode", "avg", |s| match s {
        "avg" => Some(RoiPool::Avg),
        "max" => Some(RoiPool::Max),
        _ => None,
    })?;
    // Opset 10 has no coordinate_transformation_mode and behaves as output_half_pixel.
    let half_pixel = n.opset() >= 16
        && choice(
            n,
            "coordinate_transformation_mode",
            "half_pixel",
            |s| match s {
                "half_pixel" => Some(true),
                "output_half_pixel" => Some(false),
                _ => None,
            },
        )?;
    let sampling_ratio = n.int("sampling_ratio", 0)?;
    if sampling_ratio < 0 {
        return Err(Error::model(format!(
            "attribute \"sampling_ratio\" must be >= 0, got {sampling_ratio}"
        )));
    }
    Ok(op(im::Op::RoiAlign(RoiAlign {
        mode,
        output_height: positive(n, "output_height", 1)?,
        output_width: positive(n, "output_width", 1)?,
        sampling_ratio: usize::try_from(sampling_ratio)
            .map_err(|_| Error::model("attribute \"sampling_ratio\" is too large"))?,
        spatial_scale: n.float("spatial_scale", 1.0)?,
        half_pixel,
    })))
}

fn non_max_suppression(n: &mut NodeCtx<'_>) -> Result<Op> {
    let c = n.int("center_point_box", 0)?;
    if !(c == 0 || c == 1) {
        return Err(Error::model(format!(
            "attribute \"center_point_box\" must be 0 or 1, got {c}"
        )));
    }
    Ok(op(im::Op::NonMaxSuppression(NonMaxSuppression {
        center_point_box: c == 1,
    })))
}

fn image_decoder(n: &mut NodeCtx<'_>) -> Result<Op> {
    let pixel_format = choice(n, "pixel_format", "RGB", |s| match s {
        "RGB" => Some(PixelFormat::Rgb),
        "BGR" => Some(PixelFormat::Bgr),
        "Grayscale" => Some(PixelFormat::Grayscale),
        _ => None,
    })?;
    Ok(op(im::Op::ImageDecoder(ImageDecoder { pixel_format })))
}
