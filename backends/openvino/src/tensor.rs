//! Tensors across the boundary: OpenVINO's element-type numbering, the dims of an
//! `ov_shape_t`, host-pointer tensors over xnpu's own buffers, aligned buffers that become a
//! tensor's bytes without a copy, and reading a request's tensors back.

use std::ffi::c_void;

use xnpu_core::{Bytes, DType, Error, Result, Tensor};

use crate::ffi::{Api, OvShape, P};

/// Frees an ov_tensor_t when dropped.
pub(crate) struct OvTensor<'a>(pub(crate) &'a Api, pub(crate) P);

impl Drop for OvTensor<'_> {
    fn drop(&mut self) {
        // SAFETY: a tensor handle this code created or received, freed once.
        unsafe { (self.0.ov_tensor_free)(self.1) };
    }
}

/// A buffer of 8-byte-aligned storage that becomes a tensor's bytes without a copy.
pub(crate) struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    pub(crate) fn zeroed(len: usize) -> Aligned {
        Aligned {
            words: vec![0u64; len.div_ceil(8)],
            len,
        }
    }

    /// An aligned copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> Aligned {
        let mut buf = Aligned::zeroed(bytes.len());
        bytemuck::cast_slice_mut::<u64, u8>(&mut buf.words)[..bytes.len()].copy_from_slice(bytes);
        buf
    }

    /// An aligned copy of `bytes` read from a file: an allocation that fails is an error.
    pub(crate) fn try_copy_of(bytes: &[u8]) -> Result<Aligned> {
        let n = bytes.len().div_ceil(8);
        let mut words: Vec<u64> = Vec::new();
        words
            .try_reserve_exact(n)
            .map_err(|_| Error::compute(format!("cannot allocate {} bytes", bytes.len())))?;
        words.resize(n, 0);
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Ok(Aligned {
            words,
            len: bytes.len(),
        })
    }

    /// The start of the storage, which stays put when the `Aligned` itself moves.
    pub(crate) fn ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr().cast()
    }
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }
}

/// A tensor of element type `ty` and shape `dims` over host memory at `ptr` (OpenVINO copies
/// the shape, not the bytes).
///
/// # Safety
/// `ptr` holds the tensor's bytes, alive and unmoved while OpenVINO may read or write them
/// (until the infer that uses the tensor returns).
pub(crate) unsafe fn host_tensor<'a>(
    api: &'a Api,
    ty: i32,
    dims: &mut [i64],
    ptr: *mut c_void,
    what: impl FnOnce() -> String,
) -> Result<OvTensor<'a>> {
    let shape = OvShape {
        rank: dims.len() as i64,
        dims: dims.as_mut_ptr(),
    };
    let mut h: P = std::ptr::null_mut();
    // SAFETY: `ptr` per the contract; `shape` points to `dims`, alive for the call.
    api.call(what, || unsafe {
        (api.ov_tensor_create_from_host_ptr)(ty, shape, ptr, &mut h)
    })?;
    Ok(OvTensor(api, h))
}

/// The dims of a filled `ov_shape_t`.
///
/// # Safety
/// `shape` was filled by the library (its `dims` holds `rank` values).
pub(crate) unsafe fn shape_dims(shape: &OvShape) -> Vec<usize> {
    if shape.rank <= 0 || shape.dims.is_null() {
        return Vec::new();
    }
    // SAFETY: per the contract.
    unsafe { std::slice::from_raw_parts(shape.dims, shape.rank as usize) }
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect()
}

/// OpenVINO's element type (`ov_element_type_e` of `ov_common.h`, 2025.1+ numbering) of a
/// dtype.
pub(crate) fn ov_type(d: DType) -> Option<i32> {
    Some(match d {
        DType::Bool => 1,
        DType::Bf16 => 2,
        DType::F16 => 3,
        DType::F32 => 4,
        DType::F64 => 5,
        DType::I8 => 7,
        DType::I16 => 8,
        DType::I32 => 9,
        DType::I64 => 10,
        DType::U8 => 16,
        DType::U16 => 17,
        DType::U32 => 18,
        DType::U64 => 19,
        // I4/U4 packed two per byte, low nibble first, as ONNX packs them (shared/reference
        // openvino.md: a round trip). The float codes measured by the conformance cases
        // DequantizeLinear e4m3fn/e5m2/float4e2m1 on OpenVINO (the reference's "F8E5M3" at
        // 22 is F8E5M2).
        DType::I4 => 6,
        DType::U4 => 14,
        DType::F8e4m3fn => 21,
        DType::F8e5m2 => 22,
        DType::F4e2m1 => 24,
        DType::F8e8m0 => 25,
        DType::String => return None,
        // OpenVINO has no FNUZ float8 nor signed 2-bit type (its U2 is not ONNX's UINT2
        // packing order, unverified).
        DType::F8e4m3fnuz | DType::F8e5m2fnuz | DType::I2 | DType::U2 => return None,
    })
}

pub(crate) fn from_ov_type(t: i32) -> Option<DType> {
    DType::ALL.iter().copied().find(|&d| ov_type(d) == Some(t))
}

/// Where the request's input (or output) `i` keeps its data (NULL while it has none).
pub(crate) fn tensor_data(api: &Api, req: P, i: usize, input: bool) -> Result<*mut c_void> {
    let mut h: P = std::ptr::null_mut();
    let get = if input {
        api.ov_infer_request_get_input_tensor_by_index
    } else {
        api.ov_infer_request_get_output_tensor_by_index
    };
    // SAFETY: live request, valid out-pointer.
    api.call(
        || format!("reading the request's tensor {i}"),
        || unsafe { get(req, i, &mut h) },
    )?;
    let h = OvTensor(api, h);
    let mut data = std::ptr::null_mut::<c_void>();
    // SAFETY: a live tensor and a valid out-pointer. An empty dynamic tensor may have no
    // data: that is a NULL, not an error.
    let _ = api.call(
        || format!("tensor {i}'s data"),
        || unsafe { (api.ov_tensor_data)(h.1, &mut data) },
    );
    Ok(data)
}

/// Copies output `i` out of the request (an output whose shape is known only after a run).
pub(crate) fn read_output(api: &Api, req: P, i: usize) -> Result<Tensor> {
    let mut h: P = std::ptr::null_mut();
    // SAFETY: live request, valid out-pointer.
    api.call(
        || format!("reading output {i}"),
        || unsafe { (api.ov_infer_request_get_output_tensor_by_index)(req, i, &mut h) },
    )?;
    let h = OvTensor(api, h);
    let (mut ty, mut n, mut data) = (0, 0usize, std::ptr::null_mut::<c_void>());
    let mut shape = OvShape {
        rank: 0,
        dims: std::ptr::null_mut(),
    };
    // SAFETY: a live tensor and valid out-pointers.
    api.call(
        || format!("output {i}'s type"),
        || unsafe { (api.ov_tensor_get_element_type)(h.1, &mut ty) },
    )?;
    // SAFETY: as above.
    api.call(
        || format!("output {i}'s size"),
        || unsafe { (api.ov_tensor_get_byte_size)(h.1, &mut n) },
    )?;
    // SAFETY: as above.
    api.call(
        || format!("output {i}'s data"),
        || unsafe { (api.ov_tensor_data)(h.1, &mut data) },
    )?;
    // SAFETY: as above; the shape is freed right after reading it.
    api.call(
        || format!("output {i}'s shape"),
        || unsafe { (api.ov_tensor_get_shape)(h.1, &mut shape) },
    )?;
    // SAFETY: filled by ov_tensor_get_shape.
    let dims = unsafe { shape_dims(&shape) };
    // SAFETY: as above; freed once.
    unsafe { (api.ov_shape_free)(&mut shape) };
    let dtype = from_ov_type(ty).ok_or_else(|| {
        Error::unsupported(format!(
            "OpenVINO returned element type {ty}, which xnpu has not"
        ))
    })?;
    let bytes = if n == 0 || data.is_null() {
        &[][..]
    } else {
        // SAFETY: `n` bytes of the request's output, valid until the next infer.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) }
    };
    Tensor::from_bytes(dtype, dims, Bytes::copy_from_slice(bytes))
}
