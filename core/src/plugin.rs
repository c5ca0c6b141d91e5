//! The plugin C ABI: what crosses between the xnpu runtime and a backend built as a shared
//! library (`cdylib`) and loaded at run time. See `docs/plugin-abi.md`.
//!
//! Rules (those of durable plugin ABIs: PJRT, ONNX Runtime's plugin EPs, Vulkan's loader):
//! - A plugin exports one symbol, [`ENTRY_SYMBOL`], of type [`EntryFn`], returning a static
//!   [`PluginApi`] table.
//! - Every struct that crosses begins with a [`Header`]: its size in bytes and the ABI
//!   version it was built against. Fields are only ever appended; a reader uses a field only
//!   when the struct's size covers it. A different major version is refused.
//! - Minimum sizes are pinned per minor version (PJRT's rule): a struct whose header says
//!   minor `m` must be at least as large as the struct was at `m` (the end of the last field
//!   `m` added); see [`sizes`] and [`check_size`]. A 1.0 plugin keeps loading under 1.1.
//! - Optional features hang off an extension chain ([`ExtensionBase`]): a reader walks it,
//!   skipping kinds it does not know.
//! - Graphs cross as ONNX bytes (the exact form, `xnpu_graph::onnx::to_exact`); values as
//!   [`AbiValue`] (host pointers, dtype, shape); errors as a code and an owned message the
//!   other side frees.
//! - A plugin answers capability questions on the graph itself ([`PluginApi::claim`], 1.1),
//!   so its own per-node checks and reasons reach `--explain`.
//! - Nothing unwinds across the boundary: plugin entry points catch panics and return them
//!   as errors (see `xnpu_graph::plugin`).

use std::ffi::{c_char, c_void};

use crate::{DType, Error, Result, Shape, Tensor, TensorType, Value, ValueType};

/// The ABI's major version: a plugin with another major is refused.
pub const ABI_MAJOR: u16 = 1;
/// The ABI's minor version: fields added at the end of structs since 1.0. 1.1 appended
/// `claim`, `release_claims` and `extensions` to [`PluginApi`] and added [`NodeClaim`],
/// [`ExtensionBase`], [`CompileOptionsExtension`] and [`AbiCompileOptions`]. 1.2 appended
/// `reason_code`, `has_vendor_code` and `vendor_code` to [`NodeClaim`].
pub const ABI_MINOR: u16 = 2;
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
    /// The run was cancelled or passed its time limit (ABI 1.3; older hosts read it as a
    /// compute failure).
    pub const CANCELLED: i32 = 7;
}

/// The error code of an [`Error`].
pub fn error_code(e: &Error) -> i32 {
    match e.kind() {
        crate::error::ErrorKind::Model => code::MODEL,
        crate::error::ErrorKind::Unsupported => code::UNSUPPORTED,
        crate::error::ErrorKind::InvalidInput => code::INVALID_INPUT,
        crate::error::ErrorKind::Compute => code::COMPUTE,
        crate::error::ErrorKind::Io => code::IO,
        crate::error::ErrorKind::Cancelled => code::CANCELLED,
    }
}

/// An [`Error`] from a code and message received from the other side.
pub fn error_from_code(code: i32, message: String) -> Error {
    match code {
        code::MODEL => Error::model(message),
        code::UNSUPPORTED => Error::unsupported(message),
        code::INVALID_INPUT => Error::invalid_input(message),
        code::PANIC => Error::compute(format!("the plugin panicked: {message}")),
        code::CANCELLED => Error::Cancelled(message),
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

/// The function table a plugin returns (ABI 1.1; later minors append fields; 1.0 ended at
/// `free_string`). Every function is nullable, and the host checks each before it calls it.
#[repr(C)]
#[derive(Clone, Copy)]
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
    // ---- 1.1 ----
    /// The backend's answer for every node of a graph given as ONNX bytes (exact form): on
    /// success `*claims` points to `*n_claims` answers, one per node of the graph as the
    /// plugin imported it, named, owned by the plugin until `release_claims(*owner)`.
    pub claim: Option<
        unsafe extern "C" fn(
            backend: Handle,
            onnx: *const u8,
            onnx_len: usize,
            claims: *mut *const NodeClaim,
            n_claims: *mut usize,
            owner: *mut Handle,
            err: ErrorOut,
        ) -> i32,
    >,
    pub release_claims: Option<unsafe extern "C" fn(owner: Handle)>,
    /// The first optional feature (null when none); see [`ExtensionBase`].
    pub extensions: *const ExtensionBase,
}

/// The size of each struct at each minor version of ABI 1 (index: minor), the end of the
/// last field that minor added. A reader requires the size of the minor a header declares
/// (capped at its own), so a struct that grows never makes an older one "too small".
pub mod sizes {
    use std::mem::{offset_of, size_of};

    use super::*;

    /// [`PluginApi`]: 1.0 ends at `free_string`, 1.1 at `extensions`.
    pub const PLUGIN_API: [usize; 2] = [
        offset_of!(PluginApi, free_string) + size_of::<usize>(),
        offset_of!(PluginApi, extensions) + size_of::<usize>(),
    ];
    /// [`BackendInfo`]: unchanged since 1.0.
    pub const BACKEND_INFO: [usize; 2] = [size_of::<BackendInfo>(); 2];
    /// [`AbiValue`]: unchanged since 1.0.
    pub const ABI_VALUE: [usize; 2] = [size_of::<AbiValue>(); 2];
    /// [`NodeClaim`]: new in 1.1, so whatever minor its header says it is at least the 1.1
    /// size (an array of claims is read with that stride); 1.2 ends at `vendor_code`.
    pub const NODE_CLAIM: [usize; 3] = [
        offset_of!(NodeClaim, reason) + size_of::<AbiStr>(),
        offset_of!(NodeClaim, reason) + size_of::<AbiStr>(),
        offset_of!(NodeClaim, vendor_code) + size_of::<i64>(),
    ];
    /// [`AbiCompileOptions`]: new in 1.1 (likewise).
    pub const COMPILE_OPTIONS: [usize; 2] = [size_of::<AbiCompileOptions>(); 2];
    /// [`CompileOptionsExtension`]: new in 1.1 (likewise).
    pub const COMPILE_OPTIONS_EXTENSION: [usize; 2] = [size_of::<CompileOptionsExtension>(); 2];
}

/// Whether a struct whose header is `header` is large enough for the minor version it
/// declares (`sizes` from [`sizes`]); the error names the struct and both sizes.
pub fn check_size(what: &str, header: Header, sizes: &[usize]) -> Result<()> {
    let minor = usize::from(header.abi_minor).min(sizes.len() - 1);
    let need = sizes[..=minor].iter().copied().max().unwrap_or(0);
    if (header.struct_size as usize) < need {
        return Err(Error::invalid_input(format!(
            "its {what} is {} bytes, shorter than the {need} that ABI {}.{} requires",
            header.struct_size, header.abi_major, header.abi_minor
        )));
    }
    Ok(())
}

/// An ABI struct whose all-zero bytes are a valid value: null pointers, `None` functions,
/// zero numbers. What a shorter (older) writer's struct lacks reads as zeros.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs made of integers, floats, raw pointers, `Option`s
/// of function pointers and other such structs.
pub unsafe trait Zeroable: Sized {}

// SAFETY: each is repr(C) of integers, floats, raw pointers and Option<fn>s.
unsafe impl Zeroable for PluginApi {}
// SAFETY: as above.
unsafe impl Zeroable for BackendInfo {}
// SAFETY: as above.
unsafe impl Zeroable for NodeClaim {}
// SAFETY: as above.
unsafe impl Zeroable for CompileOptionsExtension {}
// SAFETY: as above.
unsafe impl Zeroable for AbiCompileOptions {}

/// A copy of a struct the other side wrote, of which only its header's `struct_size` bytes
/// are read (an older writer's struct is shorter; a newer one's extra fields are ignored):
/// the rest of the copy is zeros. So no field past what the writer declared is ever read,
/// and no reference to the writer's memory is made at the reader's (possibly larger) size.
///
/// # Safety
/// `p` points to a struct beginning with a [`Header`] whose `struct_size` bytes are readable.
pub unsafe fn read_prefix<T: Zeroable>(p: *const T) -> T {
    // SAFETY: every ABI struct begins with its header (the caller's contract).
    let header = unsafe { std::ptr::read_unaligned(p.cast::<Header>()) };
    let n = (header.struct_size as usize).min(std::mem::size_of::<T>());
    let mut out = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: `n` bytes are readable at `p` and fit `out`; all-zero bytes are a valid `T`
    // (`Zeroable`), and so are the bytes copied over them (the writer's valid prefix).
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), out.as_mut_ptr().cast::<u8>(), n);
        out.assume_init()
    }
}

/// Whether a struct of `header` holds the field ending at `end` (for fields appended after
/// the minimum its version guarantees).
pub fn covers(header: Header, end: usize) -> bool {
    header.struct_size as usize >= end
}

/// One node's answer from [`PluginApi::claim`]. The array's stride is the first element's
/// `header.struct_size` (so the struct may grow).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NodeClaim {
    pub header: Header,
    /// 1: the backend runs the node at `cost`; 0: it does not, and `reason` says why.
    pub supported: u32,
    pub cost: f32,
    /// The node's name in the ONNX graph that was passed.
    pub node: AbiStr,
    pub reason: AbiStr,
    /// 1.2: why, as `xnpu_graph::backend::ReasonCode`'s number (0 "other" when the plugin
    /// is older or the number unknown).
    pub reason_code: u32,
    /// 1.2: 1 when `vendor_code` holds the vendor library's own code for the refusal.
    pub has_vendor_code: u32,
    pub vendor_code: i64,
}

/// The head of every optional feature on the extension chain (PJRT's `PJRT_Extension_Base`):
/// `kind` says which feature the struct it begins is; `next` is the next one or null.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExtensionBase {
    pub header: Header,
    pub kind: u32,
    pub next: *const ExtensionBase,
}

/// Kinds of extension.
pub mod extension {
    /// [`super::CompileOptionsExtension`].
    pub const COMPILE_OPTIONS: u32 = 1;
}

/// Extension [`extension::COMPILE_OPTIONS`]: compiling with the session's hints (threads,
/// precision, performance, cache), which `compile` cannot carry.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CompileOptionsExtension {
    pub base: ExtensionBase,
    pub compile_with_options: Option<
        unsafe extern "C" fn(
            backend: Handle,
            onnx: *const u8,
            onnx_len: usize,
            options: *const AbiCompileOptions,
            out: *mut Handle,
            err: ErrorOut,
        ) -> i32,
    >,
}

/// A session's compile hints (`xnpu_graph::backend::CompileOptions`); 0 means the default.
#[repr(C)]
pub struct AbiCompileOptions {
    pub header: Header,
    /// Threads for one run.
    pub threads: u32,
    /// 1 f32, 2 f16, 3 bf16.
    pub precision: u32,
    /// 1 latency, 2 throughput.
    pub performance: u32,
    /// 1 no cache, 2 the folder `cache_dir`.
    pub cache: u32,
    pub cache_dir: AbiStr,
}

/// Walks an extension chain from `first` to the extension of `kind` (null when absent). An
/// entry whose header is shorter than [`ExtensionBase`] ends the walk, as does a chain longer
/// than 64 entries.
///
/// # Safety
/// Every pointer on the chain must be null or point to a live struct beginning with an
/// [`ExtensionBase`] whose header's `struct_size` bytes are readable.
pub unsafe fn find_extension(first: *const ExtensionBase, kind: u32) -> *const ExtensionBase {
    let mut at = first;
    for _ in 0..64 {
        if at.is_null() {
            break;
        }
        // SAFETY: non-null and live per the caller's contract; its header is readable.
        let header = unsafe { std::ptr::read_unaligned(at.cast::<Header>()) };
        if (header.struct_size as usize) < std::mem::size_of::<ExtensionBase>() {
            break;
        }
        // SAFETY: the header says the whole base is there.
        let base = unsafe { std::ptr::read_unaligned(at) };
        if base.kind == kind {
            return at;
        }
        at = base.next;
    }
    std::ptr::null()
}

/// What [`PluginApi::describe`] writes. Strings are owned by the plugin and live as long as
/// the backend. The host sets `header.struct_size` to its own size before the call; the
/// plugin writes no more than that and sets the size it wrote.
#[repr(C)]
#[derive(Clone, Copy)]
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
    check_size("AbiValue", v.header, &sizes::ABI_VALUE)
        .map_err(|e| e.context("a value crossed the plugin boundary"))?;
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

// The layouts every plugin shares with the host (x86_64 and aarch64, LP64): a change here
// is an ABI change and must follow the append-only rule above.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Header>() == 8 && align_of::<Header>() == 4);
    assert!(offset_of!(Header, abi_major) == 4 && offset_of!(Header, abi_minor) == 6);
    assert!(size_of::<PluginApi>() == 112);
    assert!(offset_of!(PluginApi, name) == 8 && offset_of!(PluginApi, version) == 16);
    assert!(offset_of!(PluginApi, create_backend) == 24);
    assert!(offset_of!(PluginApi, destroy_backend) == 32);
    assert!(offset_of!(PluginApi, describe) == 40);
    assert!(offset_of!(PluginApi, compile) == 48);
    assert!(offset_of!(PluginApi, destroy_executable) == 56);
    assert!(offset_of!(PluginApi, run) == 64);
    assert!(offset_of!(PluginApi, release_outputs) == 72);
    assert!(offset_of!(PluginApi, free_string) == 80);
    assert!(offset_of!(PluginApi, claim) == 88);
    assert!(offset_of!(PluginApi, release_claims) == 96);
    assert!(offset_of!(PluginApi, extensions) == 104);
    assert!(sizes::PLUGIN_API[0] == 88 && sizes::PLUGIN_API[1] == 112);
    assert!(size_of::<BackendInfo>() == 40);
    assert!(offset_of!(BackendInfo, name) == 8 && offset_of!(BackendInfo, kind) == 16);
    assert!(offset_of!(BackendInfo, needs_static_shapes) == 20);
    assert!(offset_of!(BackendInfo, capabilities_json) == 24);
    assert!(offset_of!(BackendInfo, capabilities_len) == 32);
    assert!(size_of::<AbiStr>() == 16 && offset_of!(AbiStr, len) == 8);
    assert!(size_of::<AbiValue>() == 80);
    assert!(offset_of!(AbiValue, kind) == 8 && offset_of!(AbiValue, dtype) == 12);
    assert!(offset_of!(AbiValue, rank) == 16 && offset_of!(AbiValue, shape) == 24);
    assert!(offset_of!(AbiValue, data) == 32 && offset_of!(AbiValue, byte_len) == 40);
    assert!(offset_of!(AbiValue, strings) == 48 && offset_of!(AbiValue, n_strings) == 56);
    assert!(offset_of!(AbiValue, items) == 64 && offset_of!(AbiValue, n_items) == 72);
    assert!(size_of::<NodeClaim>() == 64);
    assert!(offset_of!(NodeClaim, reason_code) == 48);
    assert!(offset_of!(NodeClaim, has_vendor_code) == 52);
    assert!(offset_of!(NodeClaim, vendor_code) == 56);
    assert!(offset_of!(NodeClaim, supported) == 8 && offset_of!(NodeClaim, cost) == 12);
    assert!(offset_of!(NodeClaim, node) == 16 && offset_of!(NodeClaim, reason) == 32);
    assert!(size_of::<ExtensionBase>() == 24);
    assert!(offset_of!(ExtensionBase, kind) == 8 && offset_of!(ExtensionBase, next) == 16);
    assert!(size_of::<CompileOptionsExtension>() == 32);
    assert!(offset_of!(CompileOptionsExtension, compile_with_options) == 24);
    assert!(size_of::<AbiCompileOptions>() == 40);
    assert!(offset_of!(AbiCompileOptions, threads) == 8);
    assert!(offset_of!(AbiCompileOptions, precision) == 12);
    assert!(offset_of!(AbiCompileOptions, performance) == 16);
    assert!(offset_of!(AbiCompileOptions, cache) == 20);
    assert!(offset_of!(AbiCompileOptions, cache_dir) == 24);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_is_measured_against_the_minor_it_declares() {
        let at = |size: u32, minor: u16| Header {
            struct_size: size,
            abi_major: 1,
            abi_minor: minor,
        };
        // A 1.0 table keeps loading under 1.1; a 1.1 one must hold 1.1's fields.
        check_size("PluginApi", at(88, 0), &sizes::PLUGIN_API).unwrap();
        check_size("PluginApi", at(112, 1), &sizes::PLUGIN_API).unwrap();
        // A later minor than ours is measured against ours (its extra fields are ignored).
        check_size("PluginApi", at(120, 7), &sizes::PLUGIN_API).unwrap();
        let e = check_size("PluginApi", at(88, 1), &sizes::PLUGIN_API).unwrap_err();
        assert_eq!(
            e.to_string(),
            "its PluginApi is 88 bytes, shorter than the 112 that ABI 1.1 requires"
        );
        let e = check_size("BackendInfo", at(16, 0), &sizes::BACKEND_INFO).unwrap_err();
        assert_eq!(
            e.to_string(),
            "its BackendInfo is 16 bytes, shorter than the 40 that ABI 1.0 requires"
        );
        assert!(!covers(at(88, 0), sizes::PLUGIN_API[1]));
    }

    #[test]
    fn an_extension_is_found_by_kind_along_the_chain() {
        let b = ExtensionBase {
            header: Header::of::<ExtensionBase>(),
            kind: 99,
            next: std::ptr::null(),
        };
        let a = ExtensionBase {
            header: Header::of::<ExtensionBase>(),
            kind: extension::COMPILE_OPTIONS,
            next: &b,
        };
        // SAFETY: both live on this stack frame.
        unsafe {
            assert_eq!(find_extension(&a, 99), &b as *const _);
            assert_eq!(
                find_extension(&a, extension::COMPILE_OPTIONS),
                &a as *const _
            );
            assert!(find_extension(&a, 5).is_null());
            assert!(find_extension(std::ptr::null(), 5).is_null());
        }
    }

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
