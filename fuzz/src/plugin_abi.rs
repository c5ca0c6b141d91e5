//! Values crossing the plugin ABI (`xnpu_core::plugin`, `xnpu_graph::plugin`): the bytes are
//! shaped into the structs the other side of the boundary writes, with every pointer valid
//! (as the ABI's contract requires) and everything else (sizes, versions, kinds, dtypes,
//! shapes, lengths, strings, nesting, chains) as the fuzzer makes it.
//!
//! The first byte picks what crosses:
//! - 0: a value ([`AbiValue`], `import_value`: tensors, string tensors, sequences,
//!   optionals), and if it is read, the value exported and read again;
//! - 1: a capability table as `describe` returns it (the rest of the input, as text), then
//!   asked about the nodes of a small model as the partitioner would;
//! - 2: `describe` of a plugin backend into a host `BackendInfo` of any declared size, read
//!   back as the host does;
//! - 3: compile options (`AbiCompileOptions`) into `compile_with_options`;
//! - 4: an extension chain (`find_extension`), cycles and short headers included;
//! - 5: headers of every struct against the size table (`check_size`), a claim's reason
//!   code, an error code and message.
//!
//! The host's reader of claims (`read_claims` and `abi_string` in `src/plugins.rs`) is
//! private and reached only through a loaded plugin library, so claims are not fuzzed here.

use std::collections::HashSet;
use std::ffi::c_char;

use arbitrary::{Arbitrary, Unstructured};
use xnpu_core::plugin::{
    self as abi, kind, sizes, AbiCompileOptions, AbiStr, AbiValue, BackendInfo, ExportedValue,
    ExtensionBase, Handle, Header, ABI_MAJOR, ABI_MINOR,
};
use xnpu_core::{Bytes, DType, Result};
use xnpu_graph::backend::{Backend, CapabilityTable, NodeContext, ReasonCode};
use xnpu_graph::plugin as server;

/// Small models the capability tables are asked about and plugins compile.
const MODELS: &[&[u8]] = &[
    include_bytes!("../seeds/onnx/conv_bn_act.onnx"),
    include_bytes!("../seeds/onnx/attention.onnx"),
    include_bytes!("../seeds/onnx/test_if.onnx"),
];

pub fn plugin_abi(data: &[u8]) {
    let Some((&case, rest)) = data.split_first() else {
        return;
    };
    match case % 6 {
        0 => value(rest),
        1 => capabilities(&String::from_utf8_lossy(rest)),
        2 => describe(rest),
        3 => compile_options(rest),
        4 => extension_chain(rest),
        _ => headers(rest),
    }
}

/// A header as the other side may write it: mostly this build's, else any.
#[derive(Arbitrary, Debug)]
enum HeaderSpec {
    Ours,
    Size(u32),
    Any(u32, u16, u16),
}

impl HeaderSpec {
    fn header<T>(&self) -> Header {
        match *self {
            HeaderSpec::Ours => Header::of::<T>(),
            HeaderSpec::Size(s) => Header {
                struct_size: s,
                ..Header::of::<T>()
            },
            HeaderSpec::Any(struct_size, abi_major, abi_minor) => Header {
                struct_size,
                abi_major,
                abi_minor,
            },
        }
    }
}

#[derive(Arbitrary, Debug)]
enum KindSpec {
    Tensor,
    Sequence,
    OptionalNone,
    OptionalSome,
    Any(u32),
}

#[derive(Arbitrary, Debug)]
enum DTypeSpec {
    /// One of the ONNX codes 0..=31 (most of them this build's dtypes).
    Code(u8),
    Any(i32),
}

#[derive(Arbitrary, Debug)]
enum DimSpec {
    Small(u8),
    Any(i64),
}

/// What a pointer-and-length pair points at.
#[derive(Arbitrary, Debug)]
enum LenSpec {
    /// All of the buffer.
    Whole,
    /// A prefix of it.
    Prefix(u16),
    /// A null pointer with a non-zero length (read as empty).
    Null(u16),
}

impl LenSpec {
    /// The pointer and length for `buf` (a length never beyond the buffer: the contract).
    fn of<T>(&self, buf: &[T]) -> (*const T, usize) {
        match *self {
            LenSpec::Whole => (buf.as_ptr(), buf.len()),
            LenSpec::Prefix(n) => (buf.as_ptr(), buf.len().min(n.into())),
            LenSpec::Null(n) => (std::ptr::null(), n.into()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ValueSpec {
    header: HeaderSpec,
    kind: KindSpec,
    dtype: DTypeSpec,
    shape: Vec<DimSpec>,
    rank: LenSpec,
    data: Vec<u8>,
    byte_len: LenSpec,
    strings: Vec<Vec<u8>>,
    n_strings: LenSpec,
    items: Vec<ValueSpec>,
    n_items: LenSpec,
}

/// An [`AbiValue`] and the buffers its pointers point into (alive as long as it is).
struct Built {
    abi: AbiValue,
    _shape: Vec<i64>,
    _data: Vec<u8>,
    _bytes: Vec<Vec<u8>>,
    _strings: Vec<AbiStr>,
    _items: Vec<AbiValue>,
    _children: Vec<Built>,
}

/// Nesting deeper than this is cut (the builder recurses; so does `import_value`).
const MAX_DEPTH: usize = 8;

fn build(spec: &ValueSpec, depth: usize) -> Built {
    let shape: Vec<i64> = spec
        .shape
        .iter()
        .map(|d| match *d {
            DimSpec::Small(n) => i64::from(n % 8),
            DimSpec::Any(n) => n,
        })
        .collect();
    let bytes: Vec<Vec<u8>> = spec.strings.clone();
    let strings: Vec<AbiStr> = bytes
        .iter()
        .map(|b| AbiStr {
            ptr: b.as_ptr(),
            len: b.len(),
        })
        .collect();
    let children: Vec<Built> = if depth < MAX_DEPTH {
        spec.items.iter().map(|i| build(i, depth + 1)).collect()
    } else {
        Vec::new()
    };
    let items: Vec<AbiValue> = children.iter().map(|c| c.abi.alias()).collect();
    let data = spec.data.clone();
    let (shape_ptr, rank) = spec.rank.of(&shape);
    let (data_ptr, byte_len) = spec.byte_len.of(&data);
    let (strings_ptr, n_strings) = spec.n_strings.of(&strings);
    let (items_ptr, n_items) = spec.n_items.of(&items);
    let abi = AbiValue {
        header: spec.header.header::<AbiValue>(),
        kind: match spec.kind {
            KindSpec::Tensor => kind::TENSOR,
            KindSpec::Sequence => kind::SEQUENCE,
            KindSpec::OptionalNone => kind::OPTIONAL_NONE,
            KindSpec::OptionalSome => kind::OPTIONAL_SOME,
            KindSpec::Any(k) => k,
        },
        dtype: match spec.dtype {
            DTypeSpec::Code(c) => i32::from(c % 32),
            DTypeSpec::Any(c) => c,
        },
        rank,
        shape: shape_ptr,
        data: data_ptr,
        byte_len,
        strings: strings_ptr,
        n_strings,
        items: items_ptr,
        n_items,
    };
    Built {
        abi,
        _shape: shape,
        _data: data,
        _bytes: bytes,
        _strings: strings,
        _items: items,
        _children: children,
    }
}

/// A value from the other side, and, when it is read, the same value sent back and read
/// again (what the host sends a plugin must be readable by the plugin).
fn value(data: &[u8]) {
    let Ok(spec) = ValueSpec::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let built = build(&spec, 0);
    // SAFETY: every pointer of `built.abi` (and of its items) is null or points into a
    // buffer of `built` holding at least the length beside it.
    let Ok(v) = (unsafe { abi::import_value(&built.abi) }) else {
        return;
    };
    let exported = ExportedValue::new(&v);
    // SAFETY: `exported` describes `v`; both are alive here.
    if let Err(e) = unsafe { abi::import_value(&exported.abi) } {
        panic!("a value read from the ABI does not read back after export: {e}");
    }
}

/// The models of [`MODELS`], imported once.
fn models() -> &'static [xnpu_graph::Model] {
    static MODELS_IR: std::sync::OnceLock<Vec<xnpu_graph::Model>> = std::sync::OnceLock::new();
    MODELS_IR.get_or_init(|| {
        MODELS
            .iter()
            .map(|b| {
                xnpu_graph::onnx::load_bytes(Bytes::from_static(b), "model.onnx", None)
                    .expect("the fuzz crate's own seed models import")
            })
            .collect()
    })
}

/// A capability table as a plugin's `describe` returns it (read as the host reads it), then
/// asked about every node of the small models, as the partitioner asks.
fn capabilities(json: &str) {
    let _ = CapabilityTable::from_json(json);
    let Ok((table, _unknown)) = CapabilityTable::from_json_known(json) else {
        return;
    };
    for model in models() {
        let graph = &model.graph;
        let input_symbols: HashSet<String> = NodeContext::input_symbols(graph);
        for node in &graph.nodes {
            let _ = table.check(&NodeContext {
                graph,
                node,
                input_symbols: &input_symbols,
            });
        }
    }
}

/// A plugin backend (the CPU backend behind the plugin side of the ABI), made once.
fn plugin_backend() -> Handle {
    struct Shared(Handle);
    // SAFETY: the handle is only passed to the plugin side's functions, which take calls
    // from any thread (an ABI rule).
    unsafe impl Send for Shared {}
    // SAFETY: as above.
    unsafe impl Sync for Shared {}
    static BACKEND: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    fn create(_config: &str) -> Result<Box<dyn Backend>> {
        Ok(Box::new(xnpu_backend_cpu::CpuBackend::new()))
    }
    BACKEND
        .get_or_init(|| {
            let mut handle: Handle = std::ptr::null_mut();
            let mut err: *mut c_char = std::ptr::null_mut();
            // SAFETY: valid out-pointers; an empty configuration.
            let status =
                unsafe { server::create_backend(create, b"".as_ptr(), 0, &mut handle, &mut err) };
            assert_eq!(status, abi::code::OK, "the CPU backend as a plugin");
            Shared(handle)
        })
        .0
}

/// Frees an error message the plugin side wrote.
fn free_error(err: *mut c_char) {
    // SAFETY: null or made by the plugin side's error writer.
    unsafe { server::free_string(err) };
}

/// `describe` into a host struct declaring any size, then read back as the host reads it.
fn describe(data: &[u8]) {
    let Ok(size) = u32::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    // The plugin writes at most its own `BackendInfo` (never more than the host declares),
    // so a buffer of that size is enough whatever the declared size.
    let mut host = BackendInfo {
        header: Header {
            struct_size: size,
            ..Header::of::<BackendInfo>()
        },
        name: std::ptr::null(),
        kind: 0,
        needs_static_shapes: 0,
        capabilities_json: std::ptr::null(),
        capabilities_len: 0,
    };
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: a live backend and a host struct of at least the plugin's size.
    let status = unsafe { server::describe(plugin_backend(), &mut host, &mut err) };
    free_error(err);
    if status != abi::code::OK {
        return;
    }
    let written = host.header.struct_size as usize;
    assert!(
        written <= (size as usize).min(std::mem::size_of::<BackendInfo>()),
        "describe wrote {written} bytes into a host struct of {size}"
    );
    // SAFETY: `host` is a whole BackendInfo.
    let read: BackendInfo = unsafe { abi::read_prefix(&host) };
    if abi::check_size("BackendInfo", read.header, &sizes::BACKEND_INFO).is_ok()
        && !read.capabilities_json.is_null()
    {
        // SAFETY: the plugin's string, alive as long as the backend (for ever here).
        let b =
            unsafe { std::slice::from_raw_parts(read.capabilities_json, read.capabilities_len) };
        if let Ok(text) = std::str::from_utf8(b) {
            CapabilityTable::from_json_known(text).expect("the CPU backend's own table reads back");
        }
    }
}

#[derive(Arbitrary, Debug)]
struct CompileSpec {
    header: HeaderSpec,
    threads: u32,
    precision: u32,
    performance: u32,
    cache: u32,
    cache_dir: Vec<u8>,
    dir_len: LenSpec,
    model: u8,
}

/// Compile options as a host sends them, with one of the small models.
fn compile_options(data: &[u8]) {
    let Ok(spec) = CompileSpec::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let (ptr, len) = spec.dir_len.of(&spec.cache_dir);
    let options = AbiCompileOptions {
        header: spec.header.header::<AbiCompileOptions>(),
        // The CPU backend starts a pool of this many threads for kernels that split work;
        // a few are enough to reach that code.
        threads: spec.threads % 5,
        precision: spec.precision,
        performance: spec.performance,
        // A cache folder is never written here: the CPU backend keeps no compile cache.
        cache: spec.cache,
        cache_dir: AbiStr { ptr, len },
    };
    let onnx = MODELS[usize::from(spec.model) % MODELS.len()];
    let mut exec: Handle = std::ptr::null_mut();
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: a live backend, `onnx.len()` bytes, valid options and out-pointers.
    let status = unsafe {
        server::compile_with_options(
            plugin_backend(),
            onnx.as_ptr(),
            onnx.len(),
            &options,
            &mut exec,
            &mut err,
        )
    };
    free_error(err);
    if status == abi::code::OK {
        // SAFETY: made by this compile call, destroyed once.
        unsafe { server::destroy_executable(exec) };
    }
}

#[derive(Arbitrary, Debug)]
struct LinkSpec {
    size: u32,
    kind: u8,
    /// The index of the next link (past the end: null).
    next: u8,
}

/// An extension chain of up to 16 links, any of which may point back (a cycle).
fn extension_chain(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(links), Ok(wanted)) = (Vec::<LinkSpec>::arbitrary(&mut u), u8::arbitrary(&mut u))
    else {
        return;
    };
    let links = &links[..links.len().min(16)];
    if links.is_empty() {
        return;
    }
    let mut chain: Vec<ExtensionBase> = links
        .iter()
        .map(|l| ExtensionBase {
            header: Header {
                struct_size: l.size,
                abi_major: ABI_MAJOR,
                abi_minor: ABI_MINOR,
            },
            kind: u32::from(l.kind % 4),
            next: std::ptr::null(),
        })
        .collect();
    let base = chain.as_mut_ptr();
    for (i, l) in links.iter().enumerate() {
        let next = usize::from(l.next);
        if next < links.len() {
            // SAFETY: `i` and `next` index `chain`, which is not reallocated.
            unsafe { (*base.add(i)).next = base.add(next) };
        }
    }
    let wanted = u32::from(wanted % 4);
    // SAFETY: every link is null or points to a whole `ExtensionBase` of `chain`.
    let found = unsafe { abi::find_extension(chain.as_ptr(), wanted) };
    if !found.is_null() {
        // SAFETY: `found` is one of `chain`'s links.
        let f = unsafe { &*found };
        assert_eq!(f.kind, wanted, "find_extension returned another kind");
        assert!(
            f.header.struct_size as usize >= std::mem::size_of::<ExtensionBase>(),
            "find_extension returned a link whose header is too short"
        );
    }
}

/// Every struct's header against its size table; a claim's reason code; an error code
/// and message.
fn headers(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(size), Ok(major), Ok(minor), Ok(code), Ok(reason)) = (
        u32::arbitrary(&mut u),
        u16::arbitrary(&mut u),
        u16::arbitrary(&mut u),
        i32::arbitrary(&mut u),
        u32::arbitrary(&mut u),
    ) else {
        return;
    };
    let header = Header {
        struct_size: size,
        abi_major: major,
        abi_minor: minor,
    };
    for (what, table) in [
        ("PluginApi", &sizes::PLUGIN_API[..]),
        ("BackendInfo", &sizes::BACKEND_INFO[..]),
        ("AbiValue", &sizes::ABI_VALUE[..]),
        ("NodeClaim", &sizes::NODE_CLAIM[..]),
        ("AbiCompileOptions", &sizes::COMPILE_OPTIONS[..]),
        (
            "CompileOptionsExtension",
            &sizes::COMPILE_OPTIONS_EXTENSION[..],
        ),
    ] {
        let _ = abi::check_size(what, header, table);
    }
    let _ = ReasonCode::from_u32(reason).name();
    let message = String::from_utf8_lossy(u.take_rest()).into_owned();
    let e = abi::error_from_code(code, message);
    let _ = abi::error_code(&e);
    let _ = e.to_string();
    let _ = DType::from_onnx(code);
}
