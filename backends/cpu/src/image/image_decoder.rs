//! ImageDecoder: decoding encoded images the way ONNX's reference (Pillow) does.
//!
//! JPEG goes through libjpeg-turbo's decoder ([`libjpeg`]), as in Pillow, since the
//! pure-Rust decoders round differently; JPEG 2000 through `hayro-jpeg2000`
//! ([`jpeg2000`]); every other format (BMP, PNG, PNM, TIFF, WebP, and JPEGs in CMYK or
//! YCCK) through the `image` crate.

mod jpeg2000;
mod libjpeg;

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::image::{ImageDecoder, PixelFormat};

use crate::args::tensor;

/// The most bytes a decoder may allocate for one image: the `image` crate's default
/// `Limits::max_alloc`, which bounds the formats it decodes, applied to the others too.
const MAX_DECODED_BYTES: usize = 512 << 20;

pub fn run(op: &ImageDecoder, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let encoded = tensor(inputs, 0)?;
    if encoded.dtype() != DType::U8 || encoded.rank() != 1 {
        return Err(Error::compute(format!(
            "encoded_stream must be a 1-D uint8 tensor, got {}{:?}",
            encoded.dtype(),
            encoded.shape()
        )));
    }
    let bytes = encoded.as_slice::<u8>()?;
    let (h, w, rgb) = decode_rgb(&bytes, MAX_DECODED_BYTES)
        .map_err(|e| Error::compute(format!("cannot decode the image: {e}")))?;
    let (channels, data) = to_pixel_format(rgb, op.pixel_format);
    Tensor::from_vec(vec![h, w, channels], data)
}

/// Height, width and the `h * w * 3` RGB bytes of an encoded image, each decoder
/// allocating at most about `max_bytes`.
fn decode_rgb(bytes: &[u8], max_bytes: usize) -> std::result::Result<libjpeg::Rgb, String> {
    if bytes.starts_with(&[0xff, 0xd8]) {
        if let Some(rgb) = libjpeg::decode_rgb(bytes, max_bytes)? {
            return Ok(rgb);
        }
    } else if jpeg2000::is_jpeg2000(bytes) {
        return jpeg2000::decode_rgb(bytes, max_bytes);
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_bytes as u64);
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits);
    let rgb = reader.decode().map_err(|e| e.to_string())?.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok((h, w, rgb.into_raw()))
}

/// The channel count and pixels in `format`. Grey is Pillow's `convert("L")` of the RGB
/// image (ITU-R 601-2 luma, L = R·299/1000 + G·587/1000 + B·114/1000, in its 16-bit fixed
/// point), as ONNX's reference does; a grey JPEG, decoded as Y in all three channels, comes
/// back as its Y.
fn to_pixel_format(rgb: Vec<u8>, format: PixelFormat) -> (usize, Vec<u8>) {
    match format {
        PixelFormat::Rgb => (3, rgb),
        PixelFormat::Bgr => (
            3,
            rgb.chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect(),
        ),
        PixelFormat::Grayscale => (
            1,
            rgb.chunks_exact(3)
                .map(|p| {
                    let l = 19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32;
                    ((l + 0x8000) >> 16) as u8
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(bytes: &[u8]) -> Value {
        Value::Tensor(Tensor::from_vec(vec![bytes.len()], bytes.to_vec()).unwrap())
    }

    fn decode(bytes: &[u8], pixel_format: PixelFormat) -> Result<Tensor> {
        run(&ImageDecoder { pixel_format }, &[Some(&encoded(bytes))])
    }

    /// Each fixture decodes to exactly Pillow's pixels (see testdata/README.md), in RGB,
    /// BGR and grey.
    fn assert_pillow_pixels(file: &[u8], rgb: &[u8], grey: &[u8], shape: [usize; 2]) {
        let [h, w] = shape;
        let got = decode(file, PixelFormat::Rgb).unwrap();
        assert_eq!(got.shape(), &[h, w, 3]);
        assert_eq!(got.to_vec::<u8>().unwrap(), rgb);
        let bgr: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let got = decode(file, PixelFormat::Bgr).unwrap();
        assert_eq!(got.to_vec::<u8>().unwrap(), bgr);
        let got = decode(file, PixelFormat::Grayscale).unwrap();
        assert_eq!(got.shape(), &[h, w, 1]);
        assert_eq!(got.to_vec::<u8>().unwrap(), grey);
    }

    macro_rules! fixture {
        ($name:literal) => {
            (
                &include_bytes!(concat!("image_decoder/testdata/", $name))[..],
                &include_bytes!(concat!("image_decoder/testdata/", $name, ".rgb"))[..],
                &include_bytes!(concat!("image_decoder/testdata/", $name, ".l"))[..],
            )
        };
    }

    #[test]
    fn jpeg_decodes_as_libjpeg_turbo_does() {
        for (file, rgb, grey) in [
            fixture!("420.jpg"),
            fixture!("progressive.jpg"),
            fixture!("grey.jpg"),
        ] {
            assert_pillow_pixels(file, rgb, grey, [10, 13]);
        }
    }

    #[test]
    fn jpeg2000_decodes_losslessly() {
        let (file, rgb, grey) = fixture!("lossless.jp2");
        assert_pillow_pixels(file, rgb, grey, [6, 7]);
    }

    /// Every prefix of each file, and the file with bytes overwritten, decodes or is an
    /// error: libjpeg's `error_exit` comes back as an `Err`, nothing panics or aborts.
    /// (A 1 MiB limit: a corrupt header may claim a large image, slow to decode in debug.)
    #[test]
    fn corrupt_files_are_errors_not_panics() {
        for (file, _, _) in [
            fixture!("420.jpg"),
            fixture!("progressive.jpg"),
            fixture!("lossless.jp2"),
        ] {
            for len in 0..file.len() {
                let _ = decode_rgb(&file[..len], 1 << 20);
            }
            let mut state = 12345u64;
            for _ in 0..300 {
                let mut bad = file.to_vec();
                for _ in 0..3 {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let at = (state >> 33) as usize % bad.len();
                    bad[at] = (state >> 24) as u8;
                }
                let _ = decode_rgb(&bad, 1 << 20);
            }
        }
        let err = decode(&[0xff, 0xd8, 0xff], PixelFormat::Rgb).unwrap_err();
        assert!(err.to_string().contains("cannot decode the image"), "{err}");
    }

    #[test]
    fn sizes_over_the_limit_are_errors() {
        let (jpeg, _, _) = fixture!("420.jpg");
        let err = libjpeg::decode_rgb(jpeg, 13 * 10 * 3 - 1).unwrap_err();
        assert!(err.contains("over 389 bytes"), "{err}");
        assert!(libjpeg::decode_rgb(jpeg, 13 * 10 * 3).unwrap().is_some());
        let (jp2, _, _) = fixture!("lossless.jp2");
        let err = jpeg2000::decode_rgb(jp2, 7 * 6 * 3 * 4 - 1).unwrap_err();
        assert!(err.contains("over"), "{err}");
    }

    /// A progressive JPEG of more than `MAX_SCANS` scans is refused: each scan is a pass
    /// over the whole image. Built by repeating the fixture's last (refinement) scan, which
    /// libjpeg accepts as a no-op... until the limit.
    #[test]
    fn too_many_scans_are_an_error() {
        let (file, _, _) = fixture!("progressive.jpg");
        let sos = file.windows(2).rposition(|m| m == [0xff, 0xda]).unwrap();
        let eoi = file.len() - 2;
        let mut many = file[..eoi].to_vec();
        for _ in 0..libjpeg::MAX_SCANS {
            many.extend_from_slice(&file[sos..eoi]);
        }
        many.extend_from_slice(&file[eoi..]);
        let err = libjpeg::decode_rgb(&many, MAX_DECODED_BYTES).unwrap_err();
        assert!(err.contains("scans"), "{err}");
    }

    #[test]
    fn garbage_bytes_are_an_error() {
        let t = Value::Tensor(Tensor::from_vec(vec![4], vec![1u8, 2, 3, 4]).unwrap());
        let op = ImageDecoder {
            pixel_format: PixelFormat::Rgb,
        };
        let err = run(&op, &[Some(&t)]).unwrap_err();
        assert!(err.to_string().contains("cannot decode"));
    }

    #[test]
    fn pnm_decodes_to_rgb_and_bgr() {
        let mut file = b"P6\n2 1\n255\n".to_vec();
        file.extend_from_slice(&[10, 20, 30, 40, 50, 60]);
        let t = Value::Tensor(Tensor::from_vec(vec![file.len()], file).unwrap());
        let rgb = run(
            &ImageDecoder {
                pixel_format: PixelFormat::Rgb,
            },
            &[Some(&t)],
        )
        .unwrap();
        assert_eq!(rgb.shape(), &[1, 2, 3]);
        assert_eq!(rgb.to_vec::<u8>().unwrap(), vec![10, 20, 30, 40, 50, 60]);
        let bgr = run(
            &ImageDecoder {
                pixel_format: PixelFormat::Bgr,
            },
            &[Some(&t)],
        )
        .unwrap();
        assert_eq!(bgr.to_vec::<u8>().unwrap(), vec![30, 20, 10, 60, 50, 40]);
    }
}
