//! Running a session from C: inputs are the caller's memory (`XnpuInput`, copied for the
//! run), outputs either written into the caller's buffers (`xnpu_session_run_into`) or
//! returned as tensors the library allocated (`xnpu_session_run`).

use std::collections::HashSet;
use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::ptr;

use xnpu::core::shape::checked_nbytes;
use xnpu::core::Bytes;
use xnpu::{DType, Tensor, Value};

use crate::args::{member, write_sized, Growable};
use crate::session::XnpuSession;
use crate::status::{guard, Call, Failure, XnpuCode, XnpuStatus};
use crate::tensor::XnpuTensor;

/// One input of a run, in the caller's memory (copied by the run; the caller keeps it).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XnpuInput {
    /// `sizeof(XnpuInput)`; in an array, every element's.
    pub struct_size: usize,
    /// The model input's name.
    pub name: *const c_char,
    /// `rank` dims (may be NULL when `rank` is 0).
    pub shape: *const i64,
    /// The elements, row-major, little-endian (any alignment).
    pub data: *const c_void,
    /// The size of `data` in bytes: exactly what `dtype` and `shape` need.
    pub byte_len: usize,
    /// The ONNX `TensorProto.DataType` code (1 float, 7 int64, …). Strings cannot cross.
    pub dtype: i32,
    pub rank: u32,
}

// SAFETY: `#[repr(C)]`, begins with `struct_size: usize`; pointers and numbers only.
unsafe impl Growable for XnpuInput {
    const NAME: &'static str = "XnpuInput";
    const MIN_SIZE: usize = 48;
}

const _: () = {
    assert!(offset_of!(XnpuInput, name) == 8);
    assert!(offset_of!(XnpuInput, shape) == 16);
    assert!(offset_of!(XnpuInput, data) == 24);
    assert!(offset_of!(XnpuInput, byte_len) == 32);
    assert!(offset_of!(XnpuInput, dtype) == 40);
    assert!(offset_of!(XnpuInput, rank) == 44);
    assert!(size_of::<XnpuInput>() == 48);
};

/// Where `xnpu_session_run_into` writes one output: the caller fills the fields marked *in*,
/// the library the fields marked *out* (also when the buffer is too small, so that the caller
/// learns the size to allocate).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XnpuOutputBuffer {
    /// `sizeof(XnpuOutputBuffer)`; in an array, every element's.
    pub struct_size: usize,
    /// *In*: the model output's name.
    pub name: *const c_char,
    /// *In*: where the elements go (row-major, little-endian).
    pub data: *mut c_void,
    /// *In*: the bytes available at `data`.
    pub capacity: usize,
    /// *In*: where the dims go (NULL: not wanted).
    pub dims: *mut i64,
    /// *In*: the number of `int64_t` available at `dims`.
    pub dims_capacity: usize,
    /// *Out*: the bytes written (or, when `capacity` is too small, needed).
    pub byte_len: usize,
    /// *Out*: the ONNX `TensorProto.DataType` code of the elements.
    pub dtype: i32,
    /// *Out*: the number of dims.
    pub rank: u32,
}

// SAFETY: `#[repr(C)]`, begins with `struct_size: usize`; pointers and numbers only.
unsafe impl Growable for XnpuOutputBuffer {
    const NAME: &'static str = "XnpuOutputBuffer";
    const MIN_SIZE: usize = 64;
}

const _: () = {
    assert!(offset_of!(XnpuOutputBuffer, name) == 8);
    assert!(offset_of!(XnpuOutputBuffer, data) == 16);
    assert!(offset_of!(XnpuOutputBuffer, capacity) == 24);
    assert!(offset_of!(XnpuOutputBuffer, dims) == 32);
    assert!(offset_of!(XnpuOutputBuffer, dims_capacity) == 40);
    assert!(offset_of!(XnpuOutputBuffer, byte_len) == 48);
    assert!(offset_of!(XnpuOutputBuffer, dtype) == 56);
    assert!(offset_of!(XnpuOutputBuffer, rank) == 60);
    assert!(size_of::<XnpuOutputBuffer>() == 64);
};

/// The inputs of a run as named values (the caller's bytes copied).
///
/// # Safety
/// `inputs` is NULL or `n` valid `XnpuInput`s of the first one's `struct_size` whose
/// pointers point to what they say.
unsafe fn read_inputs<'a>(
    call: Call,
    inputs: *const XnpuInput,
    n: usize,
) -> Result<Vec<(&'a str, Value)>, Failure> {
    // SAFETY: this function's contract.
    let list = unsafe { call.read_array(inputs, n, "inputs") }?.items;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (k, (input, _)) in list.iter().enumerate() {
        // SAFETY: the strings and arrays of a valid `XnpuInput` (this function's contract).
        let (name, tensor) = unsafe { input_tensor(call, &format!("inputs[{k}]"), input) }?;
        if !seen.insert(name) {
            return Err(Failure::new(
                XnpuCode::InvalidInput,
                format!("{}: input \"{name}\" is given twice (inputs[{k}])", call.0),
            ));
        }
        out.push((name, Value::Tensor(tensor)));
    }
    Ok(out)
}

/// One input's name and tensor.
///
/// # Safety
/// `input`'s pointers are NULL or point to what they say, alive for `'a`.
unsafe fn input_tensor<'a>(
    call: Call,
    arg: &str,
    input: &XnpuInput,
) -> Result<(&'a str, Tensor), Failure> {
    // SAFETY: NULL or NUL-terminated (this function's contract).
    let name = unsafe { call.str(input.name, &member(arg, "name")) }?;
    let at = format!("{arg} (\"{name}\")");
    let dtype = match DType::from_onnx(input.dtype) {
        Ok(DType::String) | Err(_) => {
            let what = DType::from_onnx(input.dtype).map_or_else(|n| n, |d| d.row().onnx_name);
            return Err(Failure::new(
                XnpuCode::Unsupported,
                format!(
                    "{}: {at}: dtype {} ({what}) cannot cross the C ABI (numbers and booleans \
                     only)",
                    call.0, input.dtype
                ),
            ));
        }
        Ok(d) => d,
    };
    let rank = input.rank as usize;
    let shape: &[i64] = if rank == 0 {
        &[]
    } else if input.shape.is_null() {
        return Err(call.invalid(format!(
            "{} is NULL but {} is {rank}",
            member(arg, "shape"),
            member(arg, "rank")
        )));
    } else {
        // SAFETY: `rank` dims at `shape` (this function's contract); `rank` < 2^32 elements
        // of 8 bytes fit `isize` on the 64-bit targets this ABI is for.
        unsafe { std::slice::from_raw_parts(input.shape, rank) }
    };
    let dims = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            usize::try_from(d).map_err(|_| {
                call.invalid(format!(
                    "{}[{i}] is {d} (a dim is at least 0)",
                    member(arg, "shape")
                ))
            })
        })
        .collect::<Result<Vec<usize>, Failure>>()?;
    let need = checked_nbytes(dtype, &dims).map_err(|e| call.invalid(format!("{at}: {e}")))?;
    if input.byte_len != need {
        return Err(Failure::new(
            XnpuCode::InvalidInput,
            format!(
                "{}: {at}: {dtype}{dims:?} takes {need} bytes, but {} is {}",
                call.0,
                member(arg, "byte_len"),
                input.byte_len
            ),
        ));
    }
    // SAFETY: `byte_len` readable bytes at `data` (this function's contract).
    let data = unsafe { call.bytes(input.data.cast(), need, &member(arg, "data")) }?;
    let tensor =
        Tensor::from_bytes(dtype, dims, Bytes::copy_from_slice(data)).map_err(|e| call.error(e))?;
    Ok((name, tensor))
}

/// The position of output `name`, or an error listing the outputs.
fn output_index(call: Call, s: &XnpuSession, name: &str, arg: &str) -> Result<usize, Failure> {
    let infos = s.session.output_infos();
    infos.iter().position(|i| i.name == name).ok_or_else(|| {
        let known: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
        Failure::new(
            XnpuCode::InvalidInput,
            format!(
                "{}: {arg} is \"{name}\", but the model has no such output (outputs: {})",
                call.0,
                known.join(", ")
            ),
        )
    })
}

/// Runs the session and returns its outputs' tensors in model order, with their names.
fn run(
    call: Call,
    s: &XnpuSession,
    options: Option<&xnpu::RunOptions>,
    inputs: Vec<(&str, Value)>,
) -> Result<Vec<(String, Tensor)>, Failure> {
    let outputs = s
        .session
        .run_with(inputs, options)
        .map_err(|e| call.error(e))?;
    outputs
        .into_iter()
        .map(|(name, value)| match value {
            Value::Tensor(t) if t.dtype() != DType::String => Ok((name, t)),
            other => Err(Failure::new(
                XnpuCode::Unsupported,
                format!(
                    "{}: output \"{name}\" is {}, which cannot cross the C ABI (tensors of \
                     numbers and booleans only)",
                    call.0,
                    other.describe()
                ),
            )),
        })
        .collect()
}

/// Runs the model and returns outputs the library allocates. `output_names` chooses which
/// (`n_outputs` names); NULL asks for every output in model order, and `n_outputs` must then
/// be `xnpu_session_output_count`. On success `outputs[i]` is a tensor the caller frees with
/// `xnpu_tensor_free`; on failure every `outputs[i]` is NULL.
///
/// Inputs not given use the model's default when it has one. Several threads may run one
/// session at once.
///
/// # Safety
/// `session` is a live session; `inputs` is NULL (with `n_inputs` 0) or `n_inputs` valid
/// `XnpuInput`s; `output_names` is NULL or `n_outputs` NUL-terminated strings; `outputs` is
/// writable for `n_outputs` pointers.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_run(
    session: *const XnpuSession,
    inputs: *const XnpuInput,
    n_inputs: usize,
    output_names: *const *const c_char,
    outputs: *mut *mut XnpuTensor,
    n_outputs: usize,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_run");
    // SAFETY: this function's contract, with no run options.
    unsafe {
        session_run(
            call,
            session,
            ptr::null(),
            inputs,
            n_inputs,
            output_names,
            outputs,
            n_outputs,
        )
    }
}

/// [`xnpu_session_run`] with run options (NULL: none): a time limit, and cancellation by
/// `xnpu_run_options_terminate` from another thread. A stopped run fails with
/// `XNPU_CODE_CANCELLED`.
///
/// # Safety
/// As [`xnpu_session_run`]; `options` is NULL or live run options.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_run_with(
    session: *const XnpuSession,
    options: *const XnpuRunOptions,
    inputs: *const XnpuInput,
    n_inputs: usize,
    output_names: *const *const c_char,
    outputs: *mut *mut XnpuTensor,
    n_outputs: usize,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_run_with");
    // SAFETY: this function's contract.
    unsafe {
        session_run(
            call,
            session,
            options,
            inputs,
            n_inputs,
            output_names,
            outputs,
            n_outputs,
        )
    }
}

/// The body of [`xnpu_session_run`] and [`xnpu_session_run_with`].
///
/// # Safety
/// As [`xnpu_session_run_with`].
#[allow(clippy::too_many_arguments)]
unsafe fn session_run(
    call: Call,
    session: *const XnpuSession,
    options: *const XnpuRunOptions,
    inputs: *const XnpuInput,
    n_inputs: usize,
    output_names: *const *const c_char,
    outputs: *mut *mut XnpuTensor,
    n_outputs: usize,
) -> *mut XnpuStatus {
    guard(call, || {
        // SAFETY: NULL or live run options (the caller's contract).
        let options = unsafe { run_options(options) };
        if n_outputs > 0 && outputs.is_null() {
            return Err(call.invalid(format!("outputs is NULL but n_outputs is {n_outputs}")));
        }
        let slots: &mut [*mut XnpuTensor] = if n_outputs == 0 {
            &mut []
        } else {
            // SAFETY: `n_outputs` writable pointers at `outputs`, not NULL (checked above).
            unsafe { std::slice::from_raw_parts_mut(outputs, n_outputs) }
        };
        slots.fill(ptr::null_mut());
        // SAFETY: NULL or a live session (this function's contract).
        let s = unsafe { call.get(session, "session") }?;
        let wanted: Vec<usize> = if output_names.is_null() {
            let count = s.session.output_infos().len();
            if n_outputs != count {
                return Err(call.invalid(format!(
                    "output_names is NULL (every output) but n_outputs is {n_outputs}, and \
                     the model has {count} outputs"
                )));
            }
            (0..count).collect()
        } else {
            // SAFETY: `n_outputs` string pointers at `output_names` (this function's contract).
            let names = unsafe { std::slice::from_raw_parts(output_names, n_outputs) };
            names
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    let arg = format!("output_names[{k}]");
                    // SAFETY: NULL or NUL-terminated (this function's contract).
                    let name = unsafe { call.str(p, &arg) }?;
                    output_index(call, s, name, &arg)
                })
                .collect::<Result<_, _>>()?
        };
        // SAFETY: this function's contract.
        let inputs = unsafe { read_inputs(call, inputs, n_inputs) }?;
        let results = run(call, s, options.as_ref(), inputs)?;
        let made: Vec<*mut XnpuTensor> = wanted
            .iter()
            .map(|&i| {
                let (name, t) = &results[i];
                Box::into_raw(Box::new(XnpuTensor::new(name, t.clone())))
            })
            .collect();
        slots.copy_from_slice(&made);
        Ok(())
    })
}

/// Runs the model and writes the outputs named in `outputs` into the caller's buffers
/// (outputs not named are computed and dropped). Every buffer's *out* fields are written, also
/// when one is too small; the elements are written only when every buffer is large enough.
/// Several threads may run one session at once.
///
/// # Safety
/// `session` is a live session; `inputs` is NULL (with `n_inputs` 0) or `n_inputs` valid
/// `XnpuInput`s; `outputs` is NULL (with `n_outputs` 0) or `n_outputs` `XnpuOutputBuffer`s of
/// the first one's `struct_size`, whose `data` and `dims` are writable for `capacity` bytes
/// and `dims_capacity` dims.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_run_into(
    session: *const XnpuSession,
    inputs: *const XnpuInput,
    n_inputs: usize,
    outputs: *mut XnpuOutputBuffer,
    n_outputs: usize,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_run_into");
    // SAFETY: this function's contract, with no run options.
    unsafe {
        session_run_into(
            call,
            session,
            ptr::null(),
            inputs,
            n_inputs,
            outputs,
            n_outputs,
        )
    }
}

/// [`xnpu_session_run_into`] with run options (NULL: none), as [`xnpu_session_run_with`].
///
/// # Safety
/// As [`xnpu_session_run_into`]; `options` is NULL or live run options.
#[no_mangle]
pub unsafe extern "C" fn xnpu_session_run_into_with(
    session: *const XnpuSession,
    options: *const XnpuRunOptions,
    inputs: *const XnpuInput,
    n_inputs: usize,
    outputs: *mut XnpuOutputBuffer,
    n_outputs: usize,
) -> *mut XnpuStatus {
    let call = Call("xnpu_session_run_into_with");
    // SAFETY: this function's contract.
    unsafe { session_run_into(call, session, options, inputs, n_inputs, outputs, n_outputs) }
}

/// The body of [`xnpu_session_run_into`] and [`xnpu_session_run_into_with`].
///
/// # Safety
/// As [`xnpu_session_run_into_with`].
unsafe fn session_run_into(
    call: Call,
    session: *const XnpuSession,
    options: *const XnpuRunOptions,
    inputs: *const XnpuInput,
    n_inputs: usize,
    outputs: *mut XnpuOutputBuffer,
    n_outputs: usize,
) -> *mut XnpuStatus {
    guard(call, || {
        // SAFETY: NULL or live run options (the caller's contract).
        let options = unsafe { run_options(options) };
        // SAFETY: NULL or a live session; `outputs` as the contract says.
        let (s, array) = unsafe {
            (
                call.get(session, "session")?,
                call.read_array(outputs.cast_const(), n_outputs, "outputs")?,
            )
        };
        let (buffers, stride) = (array.items, array.stride);
        let mut wanted = Vec::with_capacity(buffers.len());
        for (k, (b, _)) in buffers.iter().enumerate() {
            let arg = format!("outputs[{k}].name");
            // SAFETY: NULL or NUL-terminated (this function's contract).
            let name = unsafe { call.str(b.name, &arg) }?;
            wanted.push(output_index(call, s, name, &arg)?);
        }
        // SAFETY: this function's contract.
        let inputs = unsafe { read_inputs(call, inputs, n_inputs) }?;
        let results = run(call, s, options.as_ref(), inputs)?;
        let mut first_failure = None;
        for (k, ((b, at), &i)) in buffers.iter().zip(&wanted).enumerate() {
            let (name, t) = &results[i];
            let bytes = t.raw_bytes();
            let mut filled = *b;
            filled.byte_len = bytes.len();
            filled.dtype = t.dtype().onnx_code();
            filled.rank = u32::try_from(t.rank()).unwrap_or(u32::MAX);
            let too_small = if b.capacity < bytes.len() {
                Some(format!(
                    "output \"{name}\" ({}{:?}) takes {} bytes, but outputs[{k}].capacity is {}",
                    t.dtype(),
                    t.shape(),
                    bytes.len(),
                    b.capacity
                ))
            } else if !b.dims.is_null() && b.dims_capacity < t.rank() {
                Some(format!(
                    "output \"{name}\" has {} dims, but outputs[{k}].dims_capacity is {}",
                    t.rank(),
                    b.dims_capacity
                ))
            } else if b.data.is_null() && !bytes.is_empty() {
                Some(format!("outputs[{k}].data is NULL"))
            } else {
                None
            };
            // SAFETY: `at` is element `k` of the caller's array, writable for `stride` bytes.
            unsafe { write_sized(*at, filled, stride) };
            if let (Some(why), None) = (too_small, &first_failure) {
                first_failure = Some(why);
            }
        }
        if let Some(why) = first_failure {
            return Err(call.invalid(why));
        }
        for (b, &i) in buffers.iter().map(|(b, _)| b).zip(&wanted) {
            let t = &results[i].1;
            let bytes = t.raw_bytes();
            if !bytes.is_empty() {
                // SAFETY: `data` is writable for `capacity` ≥ `bytes.len()` bytes (checked
                // above; the contract), and is the caller's memory, apart from ours.
                unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), b.data.cast(), bytes.len()) };
            }
            if !b.dims.is_null() {
                for (j, &d) in t.shape().iter().enumerate() {
                    // SAFETY: `dims` is writable for `dims_capacity` ≥ rank dims (checked).
                    unsafe {
                        b.dims
                            .add(j)
                            .write_unaligned(i64::try_from(d).unwrap_or(i64::MAX))
                    };
                }
            }
        }
        Ok(())
    })
}

/// Options of runs: a time limit and a cancellation flag, shared by every run given them.
/// Made by `xnpu_run_options_create`, freed by `xnpu_run_options_free` (after the runs using
/// them end). Any thread may call `xnpu_run_options_terminate` while runs use them.
pub struct XnpuRunOptions {
    inner: std::sync::Mutex<xnpu::RunOptions>,
}

/// A copy of the options `p` holds (None for NULL): clones share the cancellation flag.
///
/// # Safety
/// `p` is NULL or live run options.
unsafe fn run_options(p: *const XnpuRunOptions) -> Option<xnpu::RunOptions> {
    // SAFETY: NULL or live (the caller's contract).
    let o = unsafe { p.as_ref() }?;
    Some(o.inner.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Makes run options (no time limit, not cancelled) into `*out`.
///
/// # Safety
/// `out` is writable for one pointer.
#[no_mangle]
pub unsafe extern "C" fn xnpu_run_options_create(out: *mut *mut XnpuRunOptions) -> *mut XnpuStatus {
    let call = Call("xnpu_run_options_create");
    guard(call, || {
        if out.is_null() {
            return Err(call.invalid("out is NULL"));
        }
        let o = Box::new(XnpuRunOptions {
            inner: std::sync::Mutex::new(xnpu::RunOptions::new()),
        });
        // SAFETY: `out` is writable (this function's contract), not NULL (checked).
        unsafe { out.write(Box::into_raw(o)) };
        Ok(())
    })
}

/// Sets the time limit of each run given these options, in milliseconds (0: none). Applies
/// to runs started afterwards.
///
/// # Safety
/// `options` is live run options.
#[no_mangle]
pub unsafe extern "C" fn xnpu_run_options_set_timeout(
    options: *mut XnpuRunOptions,
    milliseconds: u64,
) -> *mut XnpuStatus {
    let call = Call("xnpu_run_options_set_timeout");
    guard(call, || {
        // SAFETY: NULL or live (this function's contract).
        let o = unsafe { options.as_ref() }.ok_or_else(|| call.invalid("options is NULL"))?;
        let mut inner = o.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner = if milliseconds == 0 {
            inner.clone().no_timeout()
        } else {
            inner
                .clone()
                .timeout(std::time::Duration::from_millis(milliseconds))
        };
        Ok(())
    })
}

/// Cancels the runs using these options, from any thread: each stops at its next check and
/// fails with `XNPU_CODE_CANCELLED`; later runs fail at once until
/// `xnpu_run_options_reset`.
///
/// # Safety
/// `options` is live run options.
#[no_mangle]
pub unsafe extern "C" fn xnpu_run_options_terminate(
    options: *const XnpuRunOptions,
) -> *mut XnpuStatus {
    let call = Call("xnpu_run_options_terminate");
    guard(call, || {
        // SAFETY: NULL or live (this function's contract).
        let o = unsafe { run_options(options) }.ok_or_else(|| call.invalid("options is NULL"))?;
        o.terminate();
        Ok(())
    })
}

/// Lets runs given these options go on again after `xnpu_run_options_terminate`.
///
/// # Safety
/// `options` is live run options.
#[no_mangle]
pub unsafe extern "C" fn xnpu_run_options_reset(options: *const XnpuRunOptions) -> *mut XnpuStatus {
    let call = Call("xnpu_run_options_reset");
    guard(call, || {
        // SAFETY: NULL or live (this function's contract).
        let o = unsafe { run_options(options) }.ok_or_else(|| call.invalid("options is NULL"))?;
        o.reset();
        Ok(())
    })
}

/// Frees run options (NULL is ignored). No run may be using them.
///
/// # Safety
/// `options` is NULL or run options from `xnpu_run_options_create`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn xnpu_run_options_free(options: *mut XnpuRunOptions) {
    if options.is_null() {
        return;
    }
    // SAFETY: a box this library made, freed once (this function's contract). Dropping it
    // cannot panic.
    drop(unsafe { Box::from_raw(options) });
}
