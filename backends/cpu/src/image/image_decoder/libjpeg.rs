//! JPEG decoding with libjpeg-turbo's decoder, as vendored by `mozjpeg-sys` (MozJPEG changes
//! only the encoder) and built by `cc` without SIMD.
//!
//! ONNX's reference ImageDecoder is Pillow, which decodes JPEG with libjpeg-turbo at its
//! defaults: the "islow" integer IDCT, "fancy" (triangular) chroma upsampling and its
//! fixed-point YCbCr→RGB tables. The pure-Rust decoders differ in all three stages by one
//! in a fraction of the pixels (zune-jpeg, which `image` 0.25 uses, in about a quarter of
//! them), so only libjpeg-turbo's own code gives Pillow's pixels.
//!
//! libjpeg reports errors through `error_exit`, which must not return: ours unwinds
//! (`mozjpeg-sys`'s `unwinding` feature compiles the C with `-fexceptions`) with a
//! [`JpegError`] payload that [`decode_rgb`] catches, so a corrupt file is an `Err`.

use std::any::Any;
use std::ffi::{c_char, c_int, c_long, c_ulong, CStr};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mozjpeg_sys as sys;
use sys::J_COLOR_SPACE::{JCS_YCbCr, JCS_GRAYSCALE, JCS_RGB};

/// At most this many scans in a progressive file: each scan makes libjpeg pass over the
/// whole image, so a small file of many tiny scans could take minutes (libjpeg-turbo's own
/// tools offer the same limit, `djpeg -maxscans`, and TurboJPEG's is 500).
pub(super) const MAX_SCANS: c_int = 500;

/// jpeglib.h's JMSG_LENGTH_MAX: the buffer `format_message` writes.
const JMSG_LENGTH_MAX: usize = 200;

/// What `error_exit` unwinds with: libjpeg's message.
struct JpegError(String);

fn fail(message: String) -> ! {
    // `resume_unwind`, not `panic!`: no panic hook runs, nothing is printed.
    resume_unwind(Box::new(JpegError(message)))
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut sys::jpeg_common_struct) {
    let mut buffer = [0 as c_char; JMSG_LENGTH_MAX];
    // SAFETY: `cinfo.err` is the `jpeg_std_error` manager `decode_rgb` installed, whose
    // `format_message` writes at most JMSG_LENGTH_MAX bytes, NUL included, into its
    // buffer. The binding declares that buffer `&[u8; 80]` (sic); the C function writes it, so
    // we call it through a pointer type that says so (same ABI: two pointers).
    let message = unsafe {
        let format: unsafe extern "C-unwind" fn(&mut sys::jpeg_common_struct, *mut c_char) =
            std::mem::transmute((*cinfo.err).format_message.expect("set by jpeg_std_error"));
        format(cinfo, buffer.as_mut_ptr());
        CStr::from_ptr(buffer.as_ptr())
            .to_string_lossy()
            .into_owned()
    };
    fail(message)
}

/// Warnings (corrupt but decodable data) are not printed, as Pillow does not print them.
unsafe extern "C-unwind" fn output_message(_cinfo: &mut sys::jpeg_common_struct) {}

unsafe extern "C-unwind" fn progress_monitor(cinfo: &mut sys::jpeg_common_struct) {
    // SAFETY: only `decode_rgb` installs this monitor, on a `jpeg_decompress_struct`,
    // whose first field is this `jpeg_common_struct`.
    let scans = unsafe {
        (*(cinfo as *mut sys::jpeg_common_struct as *const sys::jpeg_decompress_struct))
            .input_scan_number
    };
    if scans > MAX_SCANS {
        fail(format!("more than {MAX_SCANS} scans"))
    }
}

/// An RGB image: height, width and `height * width * 3` bytes, row-major.
pub(super) type Rgb = (usize, usize, Vec<u8>);

/// Decodes a JPEG to RGB as libjpeg-turbo does at its defaults, or `Ok(None)` when its
/// colour space is not one libjpeg converts to RGB (CMYK, YCCK, unknown). `max_bytes`
/// bounds the RGB output and libjpeg's whole-image buffers (a progressive file's
/// coefficients), each.
pub(super) fn decode_rgb(bytes: &[u8], max_bytes: usize) -> Result<Option<Rgb>, String> {
    // Boxed: libjpeg keeps pointers to all three until `jpeg_destroy_decompress`.
    // SAFETY: these are plain C structs for which all zeroes is a valid value (null
    // pointers, `None` callbacks); `jpeg_std_error` and `jpeg_create_decompress` fill them.
    let mut err: Box<sys::jpeg_error_mgr> =
        Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
    let mut cinfo: Box<sys::jpeg_decompress_struct> =
        Box::new(unsafe { MaybeUninit::zeroed().assume_init() });
    let mut progress = Box::new(sys::jpeg_progress_mgr {
        progress_monitor: Some(progress_monitor),
        pass_counter: 0,
        pass_limit: 0,
        completed_passes: 0,
        total_passes: 0,
    });
    // SAFETY: `err` outlives `cinfo`'s use of it (both dropped at the end of this function,
    // after `jpeg_destroy_decompress`).
    cinfo.common.err = unsafe { sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.output_message = Some(output_message);
    // SAFETY: `cinfo` is zeroed with its error manager set, as jpeg_CreateDecompress wants.
    // It fails (unwinds) only when out of memory, leaving nothing to destroy.
    catch_unwind(AssertUnwindSafe(|| unsafe {
        sys::jpeg_create_decompress(&mut *cinfo)
    }))
    .map_err(message)?;
    cinfo.common.progress = &mut *progress;
    // SAFETY: `cinfo` was created above; `bytes` outlives it; each call follows libjpeg's
    // documented order (read_header, start_decompress, read_scanlines, finish), and every
    // scanline pointer points at a whole row of `out`, which is
    // `output_height * output_width * output_components` bytes long.
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        (*cinfo.common.mem).max_memory_to_use = c_long::try_from(max_bytes).unwrap_or(c_long::MAX);
        let len = c_ulong::try_from(bytes.len()).unwrap_or_else(|_| fail("file too large".into()));
        sys::jpeg_mem_src(&mut cinfo, bytes.as_ptr(), len);
        sys::jpeg_read_header(&mut cinfo, 1);
        if !matches!(cinfo.jpeg_color_space, JCS_GRAYSCALE | JCS_YCbCr | JCS_RGB) {
            return None;
        }
        cinfo.out_color_space = JCS_RGB;
        let (width, height) = (cinfo.image_width as usize, cinfo.image_height as usize);
        let size = width
            .checked_mul(height)
            .and_then(|n| n.checked_mul(3))
            .filter(|&n| n <= max_bytes)
            .unwrap_or_else(|| {
                fail(format!(
                    "a {height}x{width} RGB image is over {max_bytes} bytes"
                ))
            });
        sys::jpeg_start_decompress(&mut cinfo);
        let row = cinfo.output_width as usize * cinfo.output_components as usize;
        if (cinfo.output_height as usize, row) != (height, width * 3) {
            fail(format!(
                "libjpeg decodes to {}x{}x{}, not {height}x{width}x3",
                cinfo.output_height, cinfo.output_width, cinfo.output_components
            ));
        }
        let mut out: Vec<u8> = xnpu_linalg::buf::zeroed(size, "the decoded image")
            .unwrap_or_else(|e| fail(e.to_string()));
        while (cinfo.output_scanline as usize) < height {
            let mut line = out[cinfo.output_scanline as usize * row..].as_mut_ptr();
            if sys::jpeg_read_scanlines(&mut cinfo, &mut line, 1) != 1 {
                fail("libjpeg read no scanline".into());
            }
        }
        sys::jpeg_finish_decompress(&mut cinfo);
        Some((height, width, out))
    }));
    // SAFETY: created above and no longer used; libjpeg frees its own memory here.
    unsafe { sys::jpeg_destroy_decompress(&mut cinfo) };
    result.map_err(message)
}

/// libjpeg's message from an unwind `error_exit` started; any other panic goes on.
fn message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<JpegError>() {
        Ok(e) => e.0,
        Err(other) => resume_unwind(other),
    }
}
