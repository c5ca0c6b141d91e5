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

use xnpu_core::{Result, ValueType};

use crate::InferInput;

/// The ops of this family.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Resize(Resize),
    GridSample(GridSample),
    AffineGrid(AffineGrid),
    RoiAlign(RoiAlign),
    NonMaxSuppression(NonMaxSuppression),
    ImageDecoder(ImageDecoder),
}

impl Op {
    /// The op's name as users know it (the ONNX op type where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Resize(_) => "Resize",
            Op::GridSample(_) => "GridSample",
            Op::AffineGrid(_) => "AffineGrid",
            Op::RoiAlign(_) => "RoiAlign",
            Op::NonMaxSuppression(_) => "NonMaxSuppression",
            Op::ImageDecoder(_) => "ImageDecoder",
        }
    }

    /// Output types from input types (and constant inputs). Dims that cannot be known before
    /// run time are left as symbols or the whole type as `ValueType::Unknown`.
    pub fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        match self {
            Op::Resize(op) => op.infer(inputs, n_outputs),
            Op::GridSample(op) => op.infer(inputs, n_outputs),
            Op::AffineGrid(op) => op.infer(inputs, n_outputs),
            Op::RoiAlign(op) => op.infer(inputs, n_outputs),
            Op::NonMaxSuppression(op) => op.infer(inputs, n_outputs),
            Op::ImageDecoder(op) => op.infer(inputs, n_outputs),
        }
    }
}
