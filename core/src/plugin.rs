//! The plugin C ABI: what crosses between the xnpu runtime and a backend built as a shared
//! library (`cdylib`) and loaded at run time. See `docs/plugin-abi.md`.
//!
//! Rules (those of durable plugin ABIs: PJRT, ONNX Runtime's plugin EPs, Vulkan's loader):
//! - A plugin exports one symbol, [`ENTRY_SYMBOL`], of type [`EntryFn`], returning a static
//!   [`PluginApi`] table.
//! - Every struct that crosses begins with a [`Header`]: its size in bytes and the ABI
//!   version it was built against. Fields are only ever appended; a reader uses a field only
//!   when the struct's size covers it. A different major version is refused.
//! - Graphs cross as ONNX bytes; values as [`AbiValue`] (host pointers, dtype, shape);
//!   errors as a code and an owned message the other side frees.
//! - Nothing unwinds across the boundary: plugin entry points catch panics and return them
//!   as errors (see `xnpu_graph::plugin`).

use std::ffi::{c_char, c_void};

use crate::{DType, Error, Result, Shape, Tensor, TensorType, Value, ValueType};

/// The ABI's major version: a plugin with another major is refused.
pub const ABI_MAJOR: u16 = 1;
/// The ABI's minor version: fields added at the end of structs since 1.0.
pub const ABI_MINOR: u16 = 0;
/// The one symbol a plugin exports.
pub const ENTRY_SYMBOL: &[u8] = b"xnpu_plugin_entry\0";

/// Size and version of the struct it begins.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
}

impl Header {
    pub const fn of<T>() -> Header {
        Header {
            struct_size: std::mem::size_of::<T>() as u32,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
        }
    }
}

/// Status codes returned by every plugin function (0 is success).
pub mod code {
    pub const OK: i32 = 0;
    pub const MODEL: i32 = 1;
    pub const UNSUPPORTED: i32 = 2;
    pub const INVALID_INPUT: i32 = 3;
    pub const COMPUTE: i32 = 4;
    pub const IO: i32 = 5;
    /// The plugin panicked; the panic was caught at the boundary.
    pub const PANIC: i32 = 6;
}

/// The error code of an [`Error`].
pub fn error_code(e: &Error) -> i32 {
    match e.kind() {
        crate::error::ErrorKind::Model => code::MODEL,
        crate::error::ErrorKind::Unsupported => code::UNSUPPORTED,
        crate::error::ErrorKind::InvalidInput => code::INVALID_INPUT,
        crate::error::ErrorKind::Compute => code::COMPUTE,
        crate::error::ErrorKind::Io => code::IO,
    }
}

/// An [`Error`] from a code and message received from the other side.
pub fn error_from_code(code: i32, message: String) -> Error {
    match code {
        code::MODEL => Error::model(message),
        code::UNSUPPORTED => Error::unsupported(message),
        code::INVALID_INPUT => Error::invalid_input(message),
        code::PANIC => Error::compute(format!("the plugin panicked: {message}")),
        _ => Error::compute(message),
    }
}

/// An opaque backend or executable owned by the plugin.
pub type Handle = *mut c_void;

/// Where a function writes its error message: a NUL-terminated string allocated by the
/// plugin, freed by the host with [`PluginApi::free_string`].
pub type ErrorOut = *mut *mut c_char;

/// `entry(host_major, host_minor) -> table`: called once per load.
pub type EntryFn = unsafe extern "C" fn(host_major: u16, host_minor: u16) -> *const PluginApi;

/// The function table a plugin returns (ABI 1.0 layout; later minors append fields). Every
/// function is nullable, and the host checks each before it calls it.
#[repr(C)]
pub struct PluginApi {
    pub header: Header,
    /// The plugin's name and version (NUL-terminated, static).
    pub name: *const c_char,
    pub version: *const c_char,
    /// Creates a backend from a configuration string (UTF-8, may be empty).
    pub create_backend: Option<
        unsafe extern "C" fn(
            config: *const u8,
            config_len: usize,
            out: *mut Handle,
            err: ErrorOut,
        ) -> i32,
    >,
    pub destroy_backend: Option<unsafe extern "C" fn(backend: Handle)>,
    /// The backend's name, device kind (0 cpu, 1 gpu, 2 npu), whether it needs static
    /// shapes, and its capability table as JSON (`xnpu_graph::backend::CapabilityTable`).
    pub describe:
        Option<unsafe extern "C" fn(backend: Handle, out: *mut BackendInfo, err: ErrorOut) -> i32>,
    /// Compiles a partition given as ONNX bytes.
    pub compile: Option<
        unsafe extern "C" fn(
            backend: Handle,
            onnx: *const u8,
            onnx_len: usize,
            out: *mut Handle,
            err: ErrorOut,
        ) -> i32,
    >,
    pub destroy_executable: Option<unsafe extern "C" fn(executable: Handle)>,
    /// Runs an executable: `inputs` in the partition's input order; on success `*outputs`
    /// points to `*n_outputs` values owned by the plugin until `release_outputs`.
    pub run: Option<
        unsafe extern "C" fn(
            executable: Handle,
            inputs: *const AbiValue,
            n_inputs: usize,
            outputs: *mut *const AbiValue,
            n_outputs: *mut usize,
            outputs_owner: *mut Handle,
            err: ErrorOut,
        ) -> i32,
    >,
    pub release_outputs: Option<unsafe extern "C" fn(outputs_owner: Handle)>,
    pub free_string: Option<unsafe extern "C" fn(s: *mut c_char)>,
}

/// The minimum size of a [`PluginApi`] a host accepts (the 1.0 layout).
pub const PLUGIN_API_MIN_SIZE: usize = std::mem::size_of::<PluginApi>();

/// What [`PluginApi::describe`] writes. Strings are owned by the plugin and live as long as
/// the backend.
#[repr(C)]
pub struct BackendInfo {
    pub header: Header,
    pub name: *const c_char,
    pub kind: u32,
    pub needs_static_shapes: u8,
    pub capabilities_json: *const u8,
    pub capabilities_len: usize,
}

/// A string slice (UTF-8, not NUL-terminated).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AbiStr {
    pub ptr: *const u8,
    pub len: usize,
}

/// Kinds of [`AbiValue`].
pub mod kind {
    pub const TENSOR: u32 = 0;
    pub const SEQUENCE: u32 = 1;
    pub const OPTIONAL_NONE: u32 = 2;
    pub const OPTIONAL_SOME: u32 = 3;
}

/// A value crossing the boundary, borrowed for the duration of a call (inputs) or until
/// released (outputs). A tensor is `dtype` (ONNX code) + `shape` + `data` (little-endian
/// elements, `byte_len` bytes) or `strings` for string tensors. A sequence lists its
/// tensors in `items`; an optional has zero or one item. `dtype` of a sequence or optional
/// is its element dtype (so an empty one stays typed).
#[repr(C)]
pub struct AbiValue {
    pub header: Header,
    pub kind: u32,
    pub dtype: i32,
    pub rank: usize,
    pub shape: *const i64,
    pub data: *const u8,
    pub byte_len: usize,
    pub strings: *const AbiStr,
    pub n_strings: usize,
    pub items: *const AbiValue,
    pub n_items: usize,
}

/// An [`AbiValue`] over a host [`Value`], with the arrays it points into. The pointers stay
/// valid while this lives (boxed slices do not move when the struct does).
pub struct ExportedValue {
    pub abi: AbiValue,
    _shape: Box<[i64]>,
    _strings: Box<[AbiStr]>,
    _items: Box<[AbiValue]>,
    _children: Vec<ExportedValue>,
}

// SAFETY: the raw pointers point into data owned by this struct or by the `Value` it was
// made from (which the caller keeps alive); nothing is shared mutably.
unsafe impl Send for ExportedValue {}

fn tensor_parts(t: &Tensor) -> (Box<[i64]>, Box<[AbiStr]>) {
    let shape: Box<[i64]> = t.shape().iter().map(|&d| d as i64).collect();
    let strings: Box<[AbiStr]> = match t.strings() {
        Ok(s) => s
            .iter()
            .map(|s| AbiStr {
                ptr: s.as_ptr(),
                len: s.len(),
            })
            .collect(),
        Err(_) => Box::new([]),
    };
    (shape, strings)
}

fn elem_dtype(ty: &ValueType) -> i32 {
    match ty {
        ValueType::Tensor(t) => t.dtype.onnx_code(),
        ValueType::Sequence(e) | ValueType::Optional(e) => elem_dtype(e),
        ValueType::Unknown => 0,
    }
}

impl ExportedValue {
    /// Describes `v` for the other side. `v` must outlive the result.
    pub fn new(v: &Value) -> ExportedValue {
        match v {
            Value::Tensor(t) => ExportedValue::tensor(t),
            Value::Sequence { elem, items } => {
                let children: Vec<ExportedValue> =
                    items.iter().map(ExportedValue::tensor).collect();
                Self::with_children(kind::SEQUENCE, elem_dtype(elem), children)
            }
            Value::Optional { elem, value } => {
                let children: Vec<ExportedValue> =
                    value.iter().map(|v| ExportedValue::new(v)).collect();
                let k = if children.is_empty() {
                    kind::OPTIONAL_NONE
                } else {
                    kind::OPTIONAL_SOME
                };
                Self::with_children(k, elem_dtype(elem), children)
            }
        }
    }

    /// Describes a tensor; `t` must outlive the result.
    pub fn tensor(t: &Tensor) -> ExportedValue {
        let (shape, strings) = tensor_parts(t);
        let data = t.raw_bytes();
        ExportedValue {
            abi: AbiValue {
                header: Header::of::<AbiValue>(),
                kind: kind::TENSOR,
                dtype: t.dtype().onnx_code(),
                rank: shape.len(),
                shape: shape.as_ptr(),
                data: data.as_ptr(),
                byte_len: data.len(),
                strings: strings.as_ptr(),
                n_strings: strings.len(),
                items: std::ptr::null(),
                n_items: 0,
            },
            _shape: shape,
            _strings: strings,
            _items: Box::new([]),
            _children: Vec::new(),
        }
    }

    fn with_children(k: u32, dtype: i32, children: Vec<ExportedValue>) -> ExportedValue {
        // Copies of the children's descriptors; their own arrays stay in `children`.
        let items: Box<[AbiValue]> = children
            .iter()
            .map(|c| AbiValue { ..copy_abi(&c.abi) })
            .collect();
        ExportedValue {
            abi: AbiValue {
                header: Header::of::<AbiValue>(),
                kind: k,
                dtype,
                rank: 0,
                shape: std::ptr::null(),
                data: std::ptr::null(),
                byte_len: 0,
                strings: std::ptr::null(),
                n_strings: 0,
                items: items.as_ptr(),
                n_items: items.len(),
            },
            _shape: Box::new([]),
            _strings: Box::new([]),
            _items: items,
            _children: children,
        }
    }
}

impl AbiValue {
    /// A second descriptor of the same value (same pointers).
    pub fn alias(&self) -> AbiValue {
        copy_abi(self)
    }
}

fn copy_abi(a: &AbiValue) -> AbiValue {
    AbiValue {
        header: a.header,
        kind: a.kind,
        dtype: a.dtype,
        rank: a.rank,
        shape: a.shape,
        data: a.data,
        byte_len: a.byte_len,
        strings: a.strings,
        n_strings: a.n_strings,
        items: a.items,
        n_items: a.n_items,
    }
}

/// A slice from a pointer and length that may be null when the length is 0.
///
/// # Safety
/// When `len > 0`, `ptr` must point to `len` valid `T`s that outlive `'a`.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: the caller guarantees `ptr` points to `len` valid elements.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fn dtype_of(code: i32) -> Result<DType> {
    DType::from_onnx(code).map_err(|name| {
        Error::invalid_input(format!(
            "a value of data type {name} crossed the plugin boundary"
        ))
    })
}

/// Copies a value received from the other side into an owned [`Value`].
///
/// # Safety
/// `v` and every pointer in it must be valid as described on [`AbiValue`] for the duration
/// of the call.
pub unsafe fn import_value(v: &AbiValue) -> Result<Value> {
    if (v.header.struct_size as usize) < std::mem::size_of::<AbiValue>() {
        return Err(Error::invalid_input(format!(
            "a value of {} bytes crossed the plugin boundary, at least {} expected",
            v.header.struct_size,
            std::mem::size_of::<AbiValue>()
        )));
    }
    // SAFETY: the caller guarantees the pointers of `v` are valid.
    let items = unsafe { slice(v.items, v.n_items) };
    let elem_type = || -> Result<ValueType> {
        Ok(if v.dtype == 0 {
            ValueType::Unknown
        } else {
            ValueType::Tensor(TensorType::unranked(dtype_of(v.dtype)?))
        })
    };
    match v.kind {
        kind::TENSOR => {
            let dtype = dtype_of(v.dtype)?;
            // SAFETY: as above.
            let shape = unsafe { slice(v.shape, v.rank) };
            let dims = shape
                .iter()
                .map(|&d| {
                    usize::try_from(d).map_err(|_| {
                        Error::invalid_input(format!(
                            "a tensor with dim {d} crossed the plugin boundary"
                        ))
                    })
                })
                .collect::<Result<Vec<usize>>>()?;
            if dtype == DType::String {
                // SAFETY: as above.
                let strs = unsafe { slice(v.strings, v.n_strings) };
                let strings = strs
                    .iter()
                    .map(|s| {
                        // SAFETY: each string points to `len` bytes per the contract.
                        let b = unsafe { slice(s.ptr, s.len) };
                        String::from_utf8(b.to_vec()).map_err(|_| {
                            Error::invalid_input(
                                "a string tensor with invalid UTF-8 crossed the plugin boundary",
                            )
                        })
                    })
                    .collect::<Result<Vec<String>>>()?;
                return Ok(Value::Tensor(Tensor::from_strings(dims, strings)?));
            }
            let need = crate::shape::checked_nbytes(dtype, &dims)?;
            if v.byte_len != need {
                return Err(Error::invalid_input(format!(
                    "a {dtype} tensor of shape {} crossed the plugin boundary with {} bytes, {need} expected",
                    Shape::known(&dims),
                    v.byte_len
                )));
            }
            // SAFETY: `data` points to `byte_len` bytes per the contract.
            let data = unsafe { slice(v.data, v.byte_len) };
            Ok(Value::Tensor(Tensor::from_bytes(
                dtype,
                dims,
                bytes::Bytes::copy_from_slice(data),
            )?))
        }
        kind::SEQUENCE => {
            let tensors = items
                .iter()
                // SAFETY: items are valid per the contract.
                .map(|i| unsafe { import_value(i) }.and_then(Value::into_tensor))
                .collect::<Result<Vec<Tensor>>>()?;
            Ok(Value::Sequence {
                elem: elem_type()?,
                items: tensors,
            })
        }
        kind::OPTIONAL_NONE => Ok(Value::Optional {
            elem: elem_type()?,
            value: None,
        }),
        kind::OPTIONAL_SOME => {
            let inner = items.first().ok_or_else(|| {
                Error::invalid_input(
                    "an optional with a value but no item crossed the plugin boundary",
                )
            })?;
            Ok(Value::Optional {
                elem: elem_type()?,
                // SAFETY: as above.
                value: Some(Box::new(unsafe { import_value(inner) }?)),
            })
        }
        k => Err(Error::invalid_input(format!(
            "a value of unknown kind {k} crossed the plugin boundary"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_the_abi() {
        let values = vec![
            Value::Tensor(Tensor::from_vec(vec![2, 3], vec![1.0f32, 2., 3., 4., 5., 6.]).unwrap()),
            Value::Tensor(Tensor::from_strings(vec![2], vec!["a".into(), "βγ".into()]).unwrap()),
            Value::Tensor(Tensor::from_vec(vec![0], Vec::<i64>::new()).unwrap()),
            Value::Sequence {
                elem: ValueType::Tensor(TensorType::unranked(DType::I32)),
                items: vec![
                    Tensor::from_vec(vec![1], vec![7i32]).unwrap(),
                    Tensor::from_vec(vec![2], vec![8i32, 9]).unwrap(),
                ],
            },
            Value::Optional {
                elem: ValueType::Tensor(TensorType::unranked(DType::F32)),
                value: None,
            },
        ];
        for v in values {
            let e = ExportedValue::new(&v);
            // SAFETY: `e` describes `v`, both alive here.
            let back = unsafe { import_value(&e.abi) }.unwrap();
            match (&v, &back) {
                (Value::Sequence { items: a, .. }, Value::Sequence { items: b, .. }) => {
                    assert_eq!(a, b)
                }
                _ => assert_eq!(v, back),
            }
        }
    }

    #[test]
    fn a_tensor_with_the_wrong_byte_count_is_refused() {
        let t = Tensor::from_vec(vec![2], vec![1.0f32, 2.0]).unwrap();
        let v = Value::Tensor(t);
        let mut e = ExportedValue::new(&v);
        e.abi.byte_len = 4;
        // SAFETY: the pointers are valid; only the declared length is wrong (shorter).
        let err = unsafe { import_value(&e.abi) }.unwrap_err().to_string();
        assert!(err.contains("4 bytes, 8 expected"), "{err}");
    }
}
