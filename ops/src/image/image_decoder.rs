use xnpu_core::{DType, Error, Result, ValueType};

use crate::infer::{input, tensor_type};
use crate::{InferInput, OpDef};

/// The channel layout ImageDecoder produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// `[H, W, 3]`, red, green, blue.
    Rgb,
    /// `[H, W, 3]`, blue, green, red.
    Bgr,
    /// `[H, W, 1]`, luma `(19595 R + 38470 G + 7471 B + 2^15) >> 16` of the RGB pixels
    /// (ITU-R 601-2, as Pillow computes it).
    Grayscale,
}

/// ImageDecoder (ONNX opset 20): decodes one encoded image (a 1-D uint8 tensor holding a
/// BMP, JPEG, PNG, PNM, TIFF or WebP file) to uint8 pixels `[H, W, C]` per `pixel_format`.
/// The alpha channel, if any, is dropped; 16-bit samples are scaled to 8 bits.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDecoder {
    pub pixel_format: PixelFormat,
}

impl OpDef for ImageDecoder {
    const NAMES: &'static [&'static str] = &["ImageDecoder"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let x = input(inputs, 0).ok_or_else(|| Error::model("input encoded_stream is required"))?;
        if let Some(d) = x.dtype() {
            if d != DType::U8 {
                return Err(Error::model(format!(
                    "encoded_stream must be uint8, got {d}"
                )));
            }
        }
        Ok(vec![tensor_type(Some(DType::U8), None)])
    }
}
