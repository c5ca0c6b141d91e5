//! `XnpuSession`: a model compiled once, from a path or from bytes, and what C asks of it
//! besides running (inputs, outputs, the partition explanation).

use std::ffi::{c_char, c_void, CString};
use std::mem::{offset_of, size_of};
use std::ptr;

use xnpu::core::Bytes;
use xnpu::{Dim, IoInfo, Session, ValueType};

use crate::args::{write_sized, Growable};
use crate::options::{session_options, XnpuSessionOptions};
use crate::status::{c_string, guard, quiet, Call, XnpuStatus};

/// A compiled model. Opaque: made by `xnpu_session_create` or
/// `xnpu_session_create_from_bytes`, freed by `xnpu_session_free`. Several threads may run
/// one session at once.
pub struct XnpuSession {
    pub(crate) session: Session,
    inputs: Vec<IoMeta>,
    outputs: Vec<IoMeta>,
}

// The C ABI's promise that one session may be run from several threads at once.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<XnpuSession>();
};

/// What kind of value a model input or output is (`XnpuIoInfo::kind`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XnpuValueKind {
    Tensor = 0,
    /// An ONNX sequence of tensors (`dtype` is the element's).
    Sequence = 1,
    /// An ONNX optional (`dtype` is the element's, when a tensor).
    Optional = 2,
    /// Not known until the model runs.
    Unknown = 3,
}

/// A model input's or output's name and declared type, filled by `xnpu_session_input_info`
/// and `xnpu_session_output_info`. Set `struct_size = sizeof(XnpuIoInfo)` before the call; the
/// library writes what that size covers and sets `struct_size` to the bytes it wrote. The
/// pointers belong to the session: valid until `xnpu_session_free`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XnpuIoInfo {
    pub struct_size: usize,
    pub name: *const c_char,
    /// `rank` dims; -1 for a symbolic dim (its name in `dim_names`). NULL when `rank` is -1.
    pub dims: *const i64,
    /// `rank` entries: a symbolic dim's name (`batch`), NULL for a number.
    pub dim_names: *const *const c_char,
    /// The ONNX `TensorProto.DataType` code (1 float, 7 int64, …; see `xnpu_dtype_name`), of
    /// the element for a sequence or optional; 0 when unknown.
    pub dtype: i32,
    /// An `XnpuValueKind`.
    pub kind: u32,
    /// The number of dims, or -1 when not known (or not a tensor).
    pub rank: i32,
    /// For an input: 1 when the model gives it a default (an initializer of the same name),
    /// so it may be left out of a run.
    pub has_default: u32,
}

// SAFETY: `#[repr(C)]`, begins with `struct_size: usize`; pointers and numbers only.
unsafe impl Growable for XnpuIoInfo {
    const NAME: &'static str = "XnpuIoInfo";
    const MIN_SIZE: usize = 48;
}

const _: () = {
    assert!(offset_of!(XnpuIoInfo, name) == 8);
    assert!(offset_of!(XnpuIoInfo, dims) == 16);
    assert!(offset_of!(XnpuIoInfo, dim_names) == 24);
    assert!(offset_of!(XnpuIoInfo, dtype) == 32);
    assert!(offset_of!(XnpuIoInfo, kind) == 36);
    assert!(offset_of!(XnpuIoInfo, rank) == 40);
    assert!(offset_of!(XnpuIoInfo, has_default) == 44);
    assert!(size_of::<XnpuIoInfo>() == 48);
};

/// C strings and the array of pointers to them that C reads.
struct CStrings {
    _owned: Vec<Option<CString>>,
    ptrs: Vec<*const c_char>,
}

impl CStrings {
    fn new(strings: Vec<Option<CString>>) -> CStrings {
        let ptrs = strings
            .iter()
            .map(|s| s.as_ref().map_or(ptr::null(), |s| s.as_ptr()))
            .collect();
        CStrings {
            _owned: strings,
            ptrs,
        }
    }
}

// SAFETY: the pointers point into `_owned`'s heap buffers, which live and stay unchanged as
// long as the `CStrings`; nothing writes through them.
unsafe impl Send for CStrings {}
// SAFETY: as for `Send`: shared access only reads.
unsafe impl Sync for CStrings {}

/// An input's or output's `XnpuIoInfo`, with the memory its pointers point into.
struct IoMeta {
    name: CString,
    dims: Vec<i64>,
    dim_names: CStrings,
    dtype: i32,
    kind: XnpuValueKind,
    rank: i32,
    has_default: bool,
}

impl IoMeta {
    fn new(info: &IoInfo) -> IoMeta {
        let (kind, tensor) = match &info.ty {
            ValueType::Tensor(t) => (XnpuValueKind::Tensor, Some(t)),
            ValueType::Sequence(e) => (XnpuValueKind::Sequence, e.tensor()),
            ValueType::Optional(e) => (XnpuValueKind::Optional, e.tensor()),
            ValueType::Unknown => (XnpuValueKind::Unknown, None),
        };
        let shape = tensor
            .and_then(|t| t.shape.as_ref())
            .filter(|_| kind == XnpuValueKind::Tensor);
        let dims: Vec<i64> = shape.map_or(Vec::new(), |s| {
            s.0.iter()
                .map(|d| match d {
                    Dim::Known(n) => i64::try_from(*n).unwrap_or(-1),
                    Dim::Sym(_) => -1,
                })
                .collect()
        });
        let names = shape.map_or(Vec::new(), |s| {
            s.0.iter()
                .map(|d| match d {
                    Dim::Known(_) => None,
                    Dim::Sym(name) => Some(c_string(name)),
                })
                .collect()
        });
        IoMeta {
            name: c_string(&info.name),
            rank: shape.map_or(-1, |s| i32::try_from(s.rank()).unwrap_or(i32::MAX)),
            dims,
            dim_names: CStrings::new(names),
            dtype: tensor.map_or(0, |t| t.dtype.onnx_code()),
            kind,
            has_default: info.has_default,
        }
    }

    fn info(&self) -> XnpuIoInfo {
        let known = self.rank >= 0;
        XnpuIoInfo {
            struct_size: size_of::<XnpuIoInfo>(),
            name: self.name.as_ptr(),
            dims: if known {
                self.dims.as_ptr()
            } else {
                ptr::null()
            },
            dim_names: if known {
                self.dim_names.ptrs.as_ptr()
            } else {
                ptr::null()
            },
            dtype: self.dtype,
            kind: self.kind as u32,
            rank: self.rank,
            has_default: u32::from(self.has_default),
        }
    }
}

impl XnpuSession {
    fn new(session: Session) -> XnpuSession {
        XnpuSession {
            inputs: session.input_infos().iter().map(IoMeta::new).collect(),
            outputs: session.output_infos().iter().map(IoMeta::new).collect(),
            session,
        }
    }
}

/// Loads an ONNX model file (external data is read from its folder) and compiles it.
/// `options` may be NULL (the defaults). On success `*out` is the session, else NULL.
///
/// # Safety
/// `path` is a NUL-terminated string; `options` is NULL or a valid `XnpuSessionOptions`;
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_create(
    path: *const c_char,
    options: *const XnpuSessionOptions,
    out: *mut *mut XnpuSession,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_create");
    guard(call, || {
        // SAFETY: `out` is NULL or writable (this function's contract).
        let out = unsafe { call.out(out, "out") }?;
        *out = ptr::null_mut();
        // SAFETY: `path` is NULL or NUL-terminated; `options` NULL or valid (the contract).
        let (path, options) = unsafe { (call.str(path, "path")?, session_options(call, options)?) };
        let session = Session::load_with(path, options).map_err(|e| call.error(e))?;
        *out = Box::into_raw(Box::new(XnpuSession::new(session)));
        Ok(())
    })
}

/// Compiles an ONNX model held in memory (`len` bytes at `data`, copied: the caller may free
/// them when the call returns). `name` names the model in messages (NULL: `model.onnx`);
/// the model may not use external data. On success `*out` is the session, else NULL.
///
/// # Safety
/// `data` is valid for reads of `len` bytes; `name` is NULL or NUL-terminated; `options` is
/// NULL or a valid `XnpuSessionOptions`; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_create_from_bytes(
    data: *const c_void,
    len: usize,
    name: *const c_char,
    options: *const XnpuSessionOptions,
    out: *mut *mut XnpuSession,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_create_from_bytes");
    guard(call, || {
        // SAFETY: `out` is NULL or writable (this function's contract).
        let out = unsafe { call.out(out, "out") }?;
        *out = ptr::null_mut();
        // SAFETY: `data` has `len` readable bytes, `name` is NULL or NUL-terminated, `options`
        // NULL or valid (this function's contract).
        let (bytes, name, options) = unsafe {
            (
                call.bytes(data.cast(), len, "data")?,
                call.opt_str(name, "name")?,
                session_options(call, options)?,
            )
        };
        if bytes.is_empty() {
            return Err(call.invalid("data is empty (len is 0)"));
        }
        let name = name.unwrap_or("model.onnx");
        let model = xnpu::graph::onnx::load_bytes(Bytes::copy_from_slice(bytes), name, None)
            .map_err(|e| call.error(e))?;
        let session = Session::new(model, options).map_err(|e| call.error(e))?;
        *out = Box::into_raw(Box::new(XnpuSession::new(session)));
        Ok(())
    })
}

/// Frees a session (NULL is ignored). Tensors it returned stay valid.
///
/// # Safety
/// `session` is NULL or a session from this library, not freed before and not being run.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_free(session: *mut XnpuSession) {
    quiet((), || {
        if !session.is_null() {
            // SAFETY: made by `Box::into_raw` in a create function, freed once (the contract).
            drop(unsafe { Box::from_raw(session) });
        }
    })
}

/// `*out`: the number of model inputs (initializers with a default included).
///
/// # Safety
/// `session` is NULL or a live session; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_input_count(
    session: *const XnpuSession,
    out: *mut usize,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_input_count");
    guard(call, || {
        // SAFETY: NULL or valid pointers (this function's contract).
        let (s, out) = unsafe { (call.get(session, "session")?, call.out(out, "out")?) };
        *out = s.inputs.len();
        Ok(())
    })
}

/// `*out`: the number of model outputs.
///
/// # Safety
/// `session` is NULL or a live session; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_output_count(
    session: *const XnpuSession,
    out: *mut usize,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_output_count");
    guard(call, || {
        // SAFETY: NULL or valid pointers (this function's contract).
        let (s, out) = unsafe { (call.get(session, "session")?, call.out(out, "out")?) };
        *out = s.outputs.len();
        Ok(())
    })
}

/// Fills `info` (whose `struct_size` the caller set) for a list of inputs or outputs.
///
/// # Safety
/// `session` is NULL or a live session; `info` is NULL or writable for its `struct_size`.
unsafe fn io_info(
    call: Call,
    session: *const XnpuSession,
    which: fn(&XnpuSession) -> &[IoMeta],
    what: &str,
    index: usize,
    info: *mut XnpuIoInfo,
) -> *mut XnpuStatus {
    guard(call, || {
        // SAFETY: NULL or valid pointers (this function's contract).
        let (s, size) = unsafe { (call.get(session, "session")?, call.out_size(info, "info")?) };
        let list = which(s);
        let meta = list.get(index).ok_or_else(|| {
            call.invalid(format!(
                "index is {index}, but the model has {} {what}s",
                list.len()
            ))
        })?;
        // SAFETY: `info` is writable for `size` bytes (this function's contract).
        unsafe { write_sized(info, meta.info(), size) };
        Ok(())
    })
}

/// Fills `info` with input `index`'s name and declared type.
///
/// # Safety
/// `session` is NULL or a live session; `info` is NULL or an `XnpuIoInfo` whose
/// `struct_size` is set and whose bytes up to it are writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_input_info(
    session: *const XnpuSession,
    index: usize,
    info: *mut XnpuIoInfo,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_input_info");
    // SAFETY: this function's contract is `io_info`'s.
    unsafe { io_info(call, session, |s| &s.inputs, "input", index, info) }
}

/// Fills `info` with output `index`'s name and declared type.
///
/// # Safety
/// As `xnpu_session_input_info`.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_output_info(
    session: *const XnpuSession,
    index: usize,
    info: *mut XnpuIoInfo,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_output_info");
    // SAFETY: this function's contract is `io_info`'s.
    unsafe { io_info(call, session, |s| &s.outputs, "output", index, info) }
}

/// Returns a string made by `text` for the session in `*out`, freed with `xnpu_string_free`.
///
/// # Safety
/// `session` is NULL or a live session; `out` is NULL or writable.
unsafe fn session_string(
    call: Call,
    session: *const XnpuSession,
    out: *mut *mut c_char,
    text: fn(&Session) -> String,
) -> *mut XnpuStatus {
    guard(call, || {
        // SAFETY: NULL or valid pointers (this function's contract).
        let (s, out) = unsafe { (call.get(session, "session")?, call.out(out, "out")?) };
        *out = ptr::null_mut();
        *out = c_string(&text(&s.session)).into_raw();
        Ok(())
    })
}

/// `*out`: where each node runs and why, as JSON in the schema of `docs/explain.md`
/// (`xnpu.explain/1`). Free it with `xnpu_string_free`.
///
/// # Safety
/// `session` is NULL or a live session; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_explain_json(
    session: *const XnpuSession,
    out: *mut *mut c_char,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_explain_json");
    // SAFETY: this function's contract is `session_string`'s.
    unsafe { session_string(call, session, out, |s| s.explanation().to_json()) }
}

/// `*out`: the same as a table for people (`xnpu partition --explain`). Free it with
/// `xnpu_string_free`.
///
/// # Safety
/// `session` is NULL or a live session; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_explain(
    session: *const XnpuSession,
    out: *mut *mut c_char,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_explain");
    // SAFETY: this function's contract is `session_string`'s.
    unsafe { session_string(call, session, out, Session::explain) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu::{Shape, TensorType};

    #[test]
    fn symbolic_dims_read_as_minus_one_with_their_name() {
        let info = IoInfo {
            name: "x".into(),
            ty: ValueType::Tensor(TensorType::new(
                xnpu::DType::F32,
                Shape(vec![Dim::Sym("batch".into()), Dim::Known(3)]),
            )),
            has_default: false,
        };
        let meta = IoMeta::new(&info);
        let c = meta.info();
        assert_eq!((c.rank, c.dtype, c.kind), (2, 1, 0));
        // SAFETY: `c` points into `meta`, alive here; rank 2.
        let (dims, names) = unsafe {
            (
                std::slice::from_raw_parts(c.dims, 2),
                std::slice::from_raw_parts(c.dim_names, 2),
            )
        };
        assert_eq!(dims, [-1, 3]);
        // SAFETY: a C string of `meta`.
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(names[0]) }, c"batch");
        assert!(names[1].is_null());
    }

    #[test]
    fn an_unranked_tensor_has_rank_minus_one_and_no_dims() {
        let info = IoInfo {
            name: "y".into(),
            ty: ValueType::Tensor(TensorType::unranked(xnpu::DType::I64)),
            has_default: true,
        };
        let c = IoMeta::new(&info).info();
        assert_eq!((c.rank, c.dtype, c.has_default), (-1, 7, 1));
        assert!(c.dims.is_null() && c.dim_names.is_null());
    }
}
