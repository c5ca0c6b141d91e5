//! The `image` op family: resampling and detection ops on images and feature maps.

mod affine_grid;
mod grid_sample;
mod image_decoder;
mod nms;
mod resize;
mod roi_align;

pub use affine_grid::AffineGrid;
pub use grid_sample::{GridMode, GridPadding, GridSample};
pub use image_decoder::{ImageDecoder, PixelFormat};
pub use nms::NonMaxSuppression;
pub use resize::{AspectPolicy, CoordMode, NearestMode, Resize, ResizeInputs, ResizeMode};
pub use roi_align::{RoiAlign, RoiPool};

/// The `image` family's ops, declared once: `image_ops!(cb!(args))` calls
/// `cb!(args image: Op Op …)`. From this list come [`Op`] (here), the ONNX import and export
/// tables (`xnpu-graph`) and the reference dispatch (`xnpu-backend-cpu`).
#[macro_export]
macro_rules! image_ops {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)* image:
            Resize GridSample AffineGrid RoiAlign NonMaxSuppression ImageDecoder
        );
    };
}

image_ops!(family!());
