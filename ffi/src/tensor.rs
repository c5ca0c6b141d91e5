//! `XnpuTensor`: an output the library allocated (`xnpu_session_run`), read with accessors
//! and freed by the caller with `xnpu_tensor_free`; and `xnpu_dtype_name`.

use std::ffi::{c_char, c_void, CString};
use std::ptr;
use std::sync::OnceLock;

use xnpu::{DType, Tensor};

use crate::status::{c_string, quiet};

/// A model output the library allocated. Opaque: read it with `xnpu_tensor_name`,
/// `xnpu_tensor_dtype`, `xnpu_tensor_rank`, `xnpu_tensor_dims`, `xnpu_tensor_data` and
/// `xnpu_tensor_byte_len`; free it with `xnpu_tensor_free`. It does not depend on the session
/// that made it (which may be freed first).
pub struct XnpuTensor {
    name: CString,
    tensor: Tensor,
    dims: Vec<i64>,
    /// A copy of the elements when the tensor's own bytes are not aligned for its dtype (a
    /// constant of a memory-mapped model, say), so that C may read them as `float *`.
    aligned: Option<Vec<u64>>,
}

impl XnpuTensor {
    pub(crate) fn new(name: &str, tensor: Tensor) -> XnpuTensor {
        let bytes = tensor.raw_bytes();
        let align = tensor.dtype().elem_bytes().unwrap_or(1).clamp(1, 8);
        let aligned = (!(bytes.as_ptr() as usize).is_multiple_of(align)).then(|| {
            let mut words = vec![0u64; bytes.len().div_ceil(8)];
            // SAFETY: `words` holds at least `bytes.len()` bytes; the two do not overlap.
            unsafe {
                ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr().cast(), bytes.len())
            };
            words
        });
        XnpuTensor {
            name: c_string(name),
            dims: tensor
                .shape()
                .iter()
                .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
                .collect(),
            tensor,
            aligned,
        }
    }

    fn data(&self) -> *const c_void {
        match &self.aligned {
            Some(words) => words.as_ptr().cast(),
            None => self.tensor.raw_bytes().as_ptr().cast(),
        }
    }
}

/// Reads a field of a tensor, `default` for NULL.
///
/// # Safety
/// `t` is NULL or a live tensor.
unsafe fn read<T>(t: *const XnpuTensor, default: T, f: impl FnOnce(&XnpuTensor) -> T) -> T {
    // SAFETY: NULL or a live tensor (this function's contract).
    quiet(None, || unsafe { t.as_ref() }.map(f)).unwrap_or(default)
}

/// The output's name (NULL for NULL). Valid until `xnpu_tensor_free(t)`.
///
/// # Safety
/// `t` is NULL or a live tensor.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_name(t: *const XnpuTensor) -> *const c_char {
    // SAFETY: this function's contract.
    unsafe { read(t, ptr::null(), |t| t.name.as_ptr()) }
}

/// The ONNX `TensorProto.DataType` code of the elements (0 for NULL).
///
/// # Safety
/// `t` is NULL or a live tensor.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_dtype(t: *const XnpuTensor) -> i32 {
    // SAFETY: this function's contract.
    unsafe { read(t, 0, |t| t.tensor.dtype().onnx_code()) }
}

/// The number of dims (0 for a scalar, and for NULL).
///
/// # Safety
/// `t` is NULL or a live tensor.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_rank(t: *const XnpuTensor) -> usize {
    // SAFETY: this function's contract.
    unsafe { read(t, 0, |t| t.dims.len()) }
}

/// The dims, `xnpu_tensor_rank(t)` of them (NULL for NULL). Valid until `xnpu_tensor_free(t)`.
///
/// # Safety
/// `t` is NULL or a live tensor.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_dims(t: *const XnpuTensor) -> *const i64 {
    // SAFETY: this function's contract.
    unsafe { read(t, ptr::null(), |t| t.dims.as_ptr()) }
}

/// The elements, row-major, little-endian, aligned for their dtype; `xnpu_tensor_byte_len(t)`
/// bytes (NULL for NULL). Read-only; valid until `xnpu_tensor_free(t)`.
///
/// # Safety
/// `t` is NULL or a live tensor.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_data(t: *const XnpuTensor) -> *const c_void {
    // SAFETY: this function's contract.
    unsafe { read(t, ptr::null(), XnpuTensor::data) }
}

/// The size of the elements in bytes (0 for NULL).
///
/// # Safety
/// `t` is NULL or a live tensor.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_byte_len(t: *const XnpuTensor) -> usize {
    // SAFETY: this function's contract.
    unsafe { read(t, 0, |t| t.tensor.raw_bytes().len()) }
}

/// Frees a tensor (NULL is ignored).
///
/// # Safety
/// `t` is NULL or a tensor from `xnpu_session_run`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn xnpu_tensor_free(t: *mut XnpuTensor) {
    quiet((), || {
        if !t.is_null() {
            // SAFETY: made by `Box::into_raw` in `xnpu_session_run`, freed once (the contract).
            drop(unsafe { Box::from_raw(t) });
        }
    })
}

/// xnpu's short name of an ONNX `TensorProto.DataType` code (`f32` for 1, `i64` for 7,
/// `i4` for 22), or NULL for a code xnpu has no dtype for. Static: never freed.
#[no_mangle]
pub extern "C" fn xnpu_dtype_name(dtype: i32) -> *const c_char {
    static NAMES: OnceLock<Vec<(i32, CString)>> = OnceLock::new();
    quiet(ptr::null(), || {
        let names = NAMES.get_or_init(|| {
            DType::ALL
                .iter()
                .map(|d| (d.onnx_code(), c_string(d.name())))
                .collect()
        });
        names
            .iter()
            .find(|(code, _)| *code == dtype)
            .map_or(ptr::null(), |(_, name)| name.as_ptr())
    })
}
