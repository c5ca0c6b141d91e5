//! The plugin side of the plugin ABI (`xnpu_core::plugin`): a Rust backend crate built as a
//! `cdylib` exports itself with one line,
//!
//! ```ignore
//! xnpu_graph::export_plugin!("cpu", |config: &str| Ok(Box::new(MyBackend::new(config)?)));
//! ```
//!
//! and the functions below implement the table over the same [`Backend`] trait the host
//! uses: partitions arrive as ONNX bytes and are imported here, values arrive as
//! [`AbiValue`]s and are copied, and every entry point catches panics so that none unwinds
//! into the host.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use xnpu_core::plugin::{
    code, AbiCompileOptions, AbiStr, AbiValue, BackendInfo, ErrorOut, ExportedValue, Handle,
    Header, NodeClaim,
};
use xnpu_core::{Error, Result, Value};

use crate::backend::{
    Backend, CompileCache, CompileOptions, DeviceKind, Executable, PerformanceHint, Precision,
    Support,
};

/// What a plugin's constructor returns.
pub type CreateFn = fn(&str) -> Result<Box<dyn Backend>>;

struct BackendState {
    backend: Box<dyn Backend>,
    name: CString,
    capabilities: String,
}

struct Outputs {
    _values: Vec<Value>,
    _exported: Vec<ExportedValue>,
    abi: Vec<AbiValue>,
}

fn write_error(err: ErrorOut, message: &str) {
    if err.is_null() {
        return;
    }
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the host passes a valid out-pointer (checked non-null above).
    unsafe { *err = c.into_raw() };
}

/// Runs `f`, turning an error or a panic into a status code and a message.
fn guard(err: ErrorOut, f: impl FnOnce() -> Result<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => code::OK,
        Ok(Err(e)) => {
            write_error(err, &e.to_string());
            abi::error_code(&e)
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            write_error(err, &msg);
            code::PANIC
        }
    }
}

fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: the host passes `len` valid bytes that live for the call.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// `create_backend` for a plugin whose constructor is `create`.
///
/// # Safety
/// `config` points to `config_len` bytes; `out` and `err` are valid out-pointers.
pub unsafe fn create_backend(
    create: CreateFn,
    config: *const u8,
    config_len: usize,
    out: *mut Handle,
    err: ErrorOut,
) -> i32 {
    guard(err, || {
        let config = std::str::from_utf8(bytes(config, config_len))
            .map_err(|_| Error::invalid_input("the backend configuration is not UTF-8"))?;
        let backend = create(config)?;
        let table = backend.capabilities().ok_or_else(|| {
            Error::unsupported(format!(
                "backend {} declares no capability table; a plugin backend must",
                backend.name()
            ))
        })?;
        let capabilities = serde_json::to_string(table)
            .map_err(|e| Error::compute(format!("capability table: {e}")))?;
        let state = BackendState {
            name: CString::new(backend.name().replace('\0', " ")).unwrap_or_default(),
            backend,
            capabilities,
        };
        // SAFETY: `out` is a valid out-pointer per the contract.
        unsafe { *out = Box::into_raw(Box::new(state)).cast() };
        Ok(())
    })
}

/// # Safety
/// `backend` came from `create_backend` and is not used afterwards.
pub unsafe extern "C" fn destroy_backend(backend: Handle) {
    if !backend.is_null() {
        // SAFETY: made by `Box::into_raw` in `create_backend`.
        let _ = catch_unwind(|| drop(unsafe { Box::from_raw(backend.cast::<BackendState>()) }));
    }
}

/// # Safety
/// `backend` came from `create_backend`; `out` and `err` are valid.
pub unsafe extern "C" fn describe(backend: Handle, out: *mut BackendInfo, err: ErrorOut) -> i32 {
    guard(err, || {
        // SAFETY: a live handle from `create_backend`.
        let s = unsafe { &*backend.cast::<BackendState>() };
        let info = BackendInfo {
            header: abi::Header::of::<BackendInfo>(),
            name: s.name.as_ptr(),
            kind: match s.backend.kind() {
                DeviceKind::Cpu => 0,
                DeviceKind::Gpu => 1,
                DeviceKind::Npu => 2,
            },
            needs_static_shapes: u8::from(s.backend.needs_static_shapes()),
            capabilities_json: s.capabilities.as_ptr(),
            capabilities_len: s.capabilities.len(),
        };
        // SAFETY: `out` is valid per the contract and begins with the host's header.
        unsafe { write_prefix(out, info) };
        Ok(())
    })
}

/// Writes `value` into the host's `out`, no more bytes than the host's struct holds (its
/// header's size, set by the host: an older host's struct is shorter), and sets that size.
///
/// # Safety
/// `out` points to a struct beginning with a [`Header`] whose `struct_size` bytes are
/// writable.
unsafe fn write_prefix<T: Copy>(out: *mut T, value: T) {
    // SAFETY: every ABI struct begins with its header.
    let host = unsafe { std::ptr::read_unaligned(out.cast::<Header>()) };
    let n = (host.struct_size as usize).min(std::mem::size_of::<T>());
    // SAFETY: `n` bytes fit both the host's struct and `value`.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), out.cast::<u8>(), n);
        let mut header = std::ptr::read_unaligned(out.cast::<Header>());
        header.struct_size = n as u32;
        std::ptr::write_unaligned(out.cast::<Header>(), header);
    }
}

/// A graph the host sent as ONNX bytes (in the exact form from a 1.1 host).
fn import(onnx: *const u8, onnx_len: usize, name: &str) -> Result<crate::Model> {
    crate::onnx::load_sent_bytes(
        xnpu_core::Bytes::copy_from_slice(bytes(onnx, onnx_len)),
        name,
    )
}

/// # Safety
/// `backend` came from `create_backend`; `onnx` points to `onnx_len` bytes; `out`, `err` valid.
pub unsafe extern "C" fn compile(
    backend: Handle,
    onnx: *const u8,
    onnx_len: usize,
    out: *mut Handle,
    err: ErrorOut,
) -> i32 {
    guard(err, || {
        // SAFETY: a live handle from `create_backend`.
        let s = unsafe { &*backend.cast::<BackendState>() };
        let model = import(onnx, onnx_len, "partition.onnx")?;
        let exec: Box<dyn Executable> = s.backend.compile(&model.graph)?;
        // SAFETY: `out` is valid per the contract.
        unsafe { *out = Box::into_raw(Box::new(exec)).cast() };
        Ok(())
    })
}

/// The compile-options extension's function: `compile` with the session's hints.
///
/// # Safety
/// As [`compile`]; `options` points to a valid [`AbiCompileOptions`].
pub unsafe extern "C" fn compile_with_options(
    backend: Handle,
    onnx: *const u8,
    onnx_len: usize,
    options: *const AbiCompileOptions,
    out: *mut Handle,
    err: ErrorOut,
) -> i32 {
    guard(err, || {
        // SAFETY: a live handle from `create_backend`.
        let s = unsafe { &*backend.cast::<BackendState>() };
        if options.is_null() {
            return Err(Error::invalid_input("compile options: a null pointer"));
        }
        // SAFETY: non-null, and valid for the call per the contract.
        let options = compile_options(unsafe { &*options })?;
        let model = import(onnx, onnx_len, "partition.onnx")?;
        let exec: Box<dyn Executable> = s.backend.compile_with(&model.graph, &options)?;
        // SAFETY: `out` is valid per the contract.
        unsafe { *out = Box::into_raw(Box::new(exec)).cast() };
        Ok(())
    })
}

/// The session's hints from their ABI form.
fn compile_options(o: &AbiCompileOptions) -> Result<CompileOptions> {
    xnpu_core::plugin::check_size(
        "AbiCompileOptions",
        o.header,
        &xnpu_core::plugin::sizes::COMPILE_OPTIONS,
    )?;
    let dir = std::str::from_utf8(bytes(o.cache_dir.ptr, o.cache_dir.len))
        .map_err(|_| Error::invalid_input("the cache folder is not UTF-8"))?;
    Ok(CompileOptions {
        threads: (o.threads > 0).then_some(o.threads as usize),
        precision: match o.precision {
            1 => Some(Precision::F32),
            2 => Some(Precision::F16),
            3 => Some(Precision::Bf16),
            _ => None,
        },
        performance: match o.performance {
            1 => Some(PerformanceHint::Latency),
            2 => Some(PerformanceHint::Throughput),
            _ => None,
        },
        cache: match o.cache {
            1 => CompileCache::Off,
            2 => CompileCache::Dir(dir.into()),
            _ => CompileCache::Default,
        },
    })
}

/// The claims of one `claim` call and the strings they point into.
struct Claims {
    _strings: Vec<String>,
    claims: Vec<NodeClaim>,
}

/// # Safety
/// `backend` came from `create_backend`; `onnx` points to `onnx_len` bytes; the out-pointers
/// and `err` are valid.
pub unsafe extern "C" fn claim(
    backend: Handle,
    onnx: *const u8,
    onnx_len: usize,
    claims: *mut *const NodeClaim,
    n_claims: *mut usize,
    owner: *mut Handle,
    err: ErrorOut,
) -> i32 {
    guard(err, || {
        // SAFETY: a live handle from `create_backend`.
        let s = unsafe { &*backend.cast::<BackendState>() };
        let model = import(onnx, onnx_len, "graph.onnx")?;
        let answers = s.backend.claim(&model.graph);
        if answers.len() != model.graph.nodes.len() {
            return Err(Error::compute(format!(
                "backend {} answered for {} nodes of a graph of {}",
                s.backend.name(),
                answers.len(),
                model.graph.nodes.len()
            )));
        }
        let mut strings = Vec::with_capacity(2 * answers.len());
        for (node, answer) in model.graph.nodes.iter().zip(&answers) {
            strings.push(node.name.clone());
            strings.push(match answer {
                Support::Unsupported { reason, .. } => reason.clone(),
                Support::Supported { .. } => String::new(),
            });
        }
        let text = |s: &String| AbiStr {
            ptr: s.as_ptr(),
            len: s.len(),
        };
        let list: Vec<NodeClaim> = answers
            .iter()
            .enumerate()
            .map(|(i, a)| NodeClaim {
                header: Header::of::<NodeClaim>(),
                supported: u32::from(a.is_supported()),
                cost: match a {
                    Support::Supported { cost } => *cost,
                    Support::Unsupported { .. } => 0.0,
                },
                node: text(&strings[2 * i]),
                reason: text(&strings[2 * i + 1]),
                reason_code: match a {
                    Support::Unsupported { code, .. } => *code as u32,
                    Support::Supported { .. } => 0,
                },
                has_vendor_code: match a {
                    Support::Unsupported {
                        vendor_code: Some(_),
                        ..
                    } => 1,
                    _ => 0,
                },
                vendor_code: match a {
                    Support::Unsupported {
                        vendor_code: Some(v),
                        ..
                    } => *v,
                    _ => 0,
                },
            })
            .collect();
        let held = Box::new(Claims {
            _strings: strings,
            claims: list,
        });
        // SAFETY: the out-pointers are valid per the contract; the claims live in `held`
        // (the strings' heap buffers do not move with the box) until `release_claims`.
        unsafe {
            *claims = held.claims.as_ptr();
            *n_claims = held.claims.len();
            *owner = Box::into_raw(held).cast();
        }
        Ok(())
    })
}

/// # Safety
/// `owner` came from `claim` and is not used afterwards.
pub unsafe extern "C" fn release_claims(owner: Handle) {
    if !owner.is_null() {
        // SAFETY: made by `Box::into_raw` in `claim`.
        let _ = catch_unwind(|| drop(unsafe { Box::from_raw(owner.cast::<Claims>()) }));
    }
}

/// # Safety
/// `executable` came from `compile` and is not used afterwards.
pub unsafe extern "C" fn destroy_executable(executable: Handle) {
    if !executable.is_null() {
        // SAFETY: made by `Box::into_raw` in `compile`.
        let _ = catch_unwind(|| {
            drop(unsafe { Box::from_raw(executable.cast::<Box<dyn Executable>>()) })
        });
    }
}

/// # Safety
/// `executable` came from `compile`; `inputs` points to `n_inputs` valid values; the out
/// pointers are valid.
pub unsafe extern "C" fn run(
    executable: Handle,
    inputs: *const AbiValue,
    n_inputs: usize,
    outputs: *mut *const AbiValue,
    n_outputs: *mut usize,
    outputs_owner: *mut Handle,
    err: ErrorOut,
) -> i32 {
    guard(err, || {
        // SAFETY: a live handle from `compile`.
        let exec = unsafe { &*executable.cast::<Box<dyn Executable>>() };
        let ins: &[AbiValue] = if n_inputs == 0 || inputs.is_null() {
            &[]
        } else {
            // SAFETY: the host passes `n_inputs` values.
            unsafe { std::slice::from_raw_parts(inputs, n_inputs) }
        };
        let values = ins
            .iter()
            // SAFETY: each value is valid for the call per the contract.
            .map(|v| unsafe { abi::import_value(v) })
            .collect::<Result<Vec<Value>>>()?;
        let results = exec.run(&values)?;
        let exported: Vec<ExportedValue> = results.iter().map(ExportedValue::new).collect();
        let descriptors = exported.iter().map(|e| e.abi.alias()).collect();
        let owner = Box::new(Outputs {
            _values: results,
            _exported: exported,
            abi: descriptors,
        });
        // SAFETY: the out-pointers are valid per the contract; the descriptors live in
        // `owner` until `release_outputs`.
        unsafe {
            *outputs = owner.abi.as_ptr();
            *n_outputs = owner.abi.len();
            *outputs_owner = Box::into_raw(owner).cast();
        }
        Ok(())
    })
}

/// # Safety
/// `owner` came from `run` and is not used afterwards.
pub unsafe extern "C" fn release_outputs(owner: Handle) {
    if !owner.is_null() {
        // SAFETY: made by `Box::into_raw` in `run`.
        let _ = catch_unwind(|| drop(unsafe { Box::from_raw(owner.cast::<Outputs>()) }));
    }
}

/// # Safety
/// `s` came from an error out-pointer of this plugin.
pub unsafe extern "C" fn free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by `CString::into_raw` in `write_error`.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The static function table of a plugin, shareable between threads.
pub struct ApiTable(pub abi::PluginApi);

// SAFETY: the table holds pointers to static strings, functions and static extensions only.
unsafe impl Sync for ApiTable {}

/// The compile-options extension every plugin made by [`export_plugin!`] offers.
pub struct CompileOptionsExt(pub abi::CompileOptionsExtension);

// SAFETY: a static struct of a function pointer and a null `next`.
unsafe impl Sync for CompileOptionsExt {}

/// The extension chain of [`export_plugin!`]'s tables.
pub static COMPILE_OPTIONS: CompileOptionsExt = CompileOptionsExt(abi::CompileOptionsExtension {
    base: abi::ExtensionBase {
        header: abi::Header::of::<abi::CompileOptionsExtension>(),
        kind: abi::extension::COMPILE_OPTIONS,
        next: std::ptr::null(),
    },
    compile_with_options: Some(compile_with_options),
});

/// Exports a backend as an xnpu plugin: defines the `xnpu_plugin_entry` symbol of the
/// `cdylib`. `$name` is a string literal; `$create` a `fn(&str) -> Result<Box<dyn Backend>>`
/// (or a closure without captures).
#[macro_export]
macro_rules! export_plugin {
    ($name:literal, $create:expr) => {
        /// The xnpu plugin entry point.
        ///
        /// # Safety
        /// Called by the xnpu plugin loader only.
        #[no_mangle]
        pub unsafe extern "C" fn xnpu_plugin_entry(
            _host_major: u16,
            _host_minor: u16,
        ) -> *const $crate::plugin::abi::PluginApi {
            unsafe extern "C" fn __xnpu_create_backend(
                config: *const u8,
                config_len: usize,
                out: *mut $crate::plugin::abi::Handle,
                err: $crate::plugin::abi::ErrorOut,
            ) -> i32 {
                let f: $crate::plugin::CreateFn = $create;
                // SAFETY: forwarded from the host under the same contract.
                unsafe { $crate::plugin::create_backend(f, config, config_len, out, err) }
            }
            static API: $crate::plugin::ApiTable =
                $crate::plugin::ApiTable($crate::plugin::abi::PluginApi {
                    header: $crate::plugin::abi::Header::of::<$crate::plugin::abi::PluginApi>(),
                    name: concat!($name, "\0").as_ptr() as *const ::std::ffi::c_char,
                    version: concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr()
                        as *const ::std::ffi::c_char,
                    create_backend: Some(__xnpu_create_backend),
                    destroy_backend: Some($crate::plugin::destroy_backend),
                    describe: Some($crate::plugin::describe),
                    compile: Some($crate::plugin::compile),
                    destroy_executable: Some($crate::plugin::destroy_executable),
                    run: Some($crate::plugin::run),
                    release_outputs: Some($crate::plugin::release_outputs),
                    free_string: Some($crate::plugin::free_string),
                    claim: Some($crate::plugin::claim),
                    release_claims: Some($crate::plugin::release_claims),
                    extensions: &$crate::plugin::COMPILE_OPTIONS.0.base,
                });
            &API.0
        }
    };
}

/// The ABI types, for the macro.
pub use xnpu_core::plugin as abi;
