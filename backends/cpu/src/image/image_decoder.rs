//! ImageDecoder: decoding encoded images with the `image` crate.

use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::image::{ImageDecoder, PixelFormat};

use crate::args::tensor;

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
    let img = image::load_from_memory(&bytes)
        .map_err(|e| Error::compute(format!("cannot decode the image: {e}")))?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let pixels = rgb.into_raw();
    let (channels, data) = match op.pixel_format {
        PixelFormat::Rgb => (3, pixels),
        PixelFormat::Bgr => (
            3,
            pixels
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect(),
        ),
        PixelFormat::Grayscale => (
            1,
            pixels
                .chunks_exact(3)
                .map(|p| {
                    let l = 19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32;
                    ((l + 0x8000) >> 16) as u8
                })
                .collect(),
        ),
    };
    Tensor::from_vec(vec![h, w, channels], data)
}

#[cfg(test)]
mod tests {
    use super::*;

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
