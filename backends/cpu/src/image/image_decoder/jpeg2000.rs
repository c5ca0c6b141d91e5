//! JPEG 2000 decoding with `hayro-jpeg2000`, a pure-Rust decoder.
//!
//! Pillow (ONNX's reference) decodes JPEG 2000 with OpenJPEG. Pillow saves JPEG 2000
//! losslessly by default (the reversible 5/3 wavelet), so there any conforming decoder
//! gives the same pixels; for lossy files the two may differ by rounding.

use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};

use super::libjpeg::Rgb;

/// The JP2 file signature box and the raw codestream's SOC + SIZ markers.
pub(super) fn is_jpeg2000(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x00\x00\x00\x0cjP  \r\n\x87\n") || bytes.starts_with(b"\xff\x4f\xff\x51")
}

/// Decodes to RGB: grey replicated into the three channels, an alpha channel dropped.
/// `max_bytes` bounds the decoder's working set, taken as four bytes (an `f32`) per sample
/// of every channel, alpha included, checked before decoding.
pub(super) fn decode_rgb(bytes: &[u8], max_bytes: usize) -> Result<Rgb, String> {
    let image = Image::new(bytes, &DecodeSettings::default()).map_err(|e| e.to_string())?;
    let (width, height) = (image.width() as usize, image.height() as usize);
    let color = usize::from(image.color_space().num_channels());
    let channels = color + usize::from(image.has_alpha());
    if !matches!(color, 1 | 3) {
        return Err(format!(
            "a JPEG 2000 image in {:?} (not grey nor RGB) has no RGB conversion here",
            image.color_space()
        ));
    }
    width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels.max(3) * 4))
        .filter(|&n| n <= max_bytes)
        .ok_or_else(|| {
            format!("a {height}x{width}x{channels} JPEG 2000 image is over {max_bytes} bytes")
        })?;
    let mut context = DecoderContext::default();
    let decoded = image.decode(&mut context).map_err(|e| e.to_string())?;
    let samples = decoded.data_u8();
    if samples.len() != width * height * channels {
        return Err(format!(
            "the JPEG 2000 decoder gave {} samples for {height}x{width}x{channels}",
            samples.len()
        ));
    }
    let rgb = samples
        .chunks_exact(channels)
        .flat_map(|p| {
            if color == 1 {
                [p[0]; 3]
            } else {
                [p[0], p[1], p[2]]
            }
        })
        .collect();
    Ok((height, width, rgb))
}
