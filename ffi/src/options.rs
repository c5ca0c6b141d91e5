//! `XnpuSessionOptions`: how a session compiles its model, as the strings the command line
//! and Python take, turned into `xnpu::SessionOptions` by the library's own parsers.

use std::ffi::c_char;
use std::mem::{offset_of, size_of};

use xnpu::graph::backend::{CompileCache, PerformanceHint, Precision};
use xnpu::graph::passes::Level;
use xnpu::{Policy, SessionOptions};

use crate::args::Growable;
use crate::status::{Call, Failure};

/// How a session compiles its model. Zero it, set `struct_size = sizeof(XnpuSessionOptions)`
/// and the fields you want; NULL and 0 mean the default.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct XnpuSessionOptions {
    /// `sizeof(XnpuSessionOptions)` as the caller was compiled with.
    pub struct_size: usize,
    /// Devices: a policy (`prefer-npu`, `prefer-gpu`, `cpu-only`) or a comma-separated list
    /// of device ids in order of preference (`openvino:npu,cpu`, `cpu`), as `xnpu devices`
    /// prints them. NULL: `XNPU_DEVICES`, else `prefer-npu`.
    pub devices: *const c_char,
    /// Graph optimisation: `none`, `basic` or `all` (NULL: `all`).
    pub level: *const c_char,
    /// Precision backends compute in: `f32`, `f16` or `bf16` (NULL: the backend's default,
    /// f32 where a device would otherwise pick less).
    pub precision: *const c_char,
    /// What compiled partitions are tuned for: `latency` or `throughput` (NULL: latency).
    pub performance: *const c_char,
    /// Keep compiled partitions in this folder between runs (NULL: `XNPU_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/xnpu`, else `~/.cache/xnpu`).
    pub cache_dir: *const c_char,
    /// Threads a backend may use for one run (0: the backend's choice).
    pub threads: u32,
    /// Non-zero: neither read nor write a compile cache (`cache_dir` must then be NULL).
    pub no_cache: u32,
    /// The most bytes one run may hold in values; work past it fails before it allocates
    /// (0: no limit but the machine's). Callers compiled with the older 56-byte struct get 0.
    pub max_memory: u64,
}

// SAFETY: `#[repr(C)]`, begins with `struct_size: usize`; pointers and numbers only, for which
// all-zero bytes are NULL and 0.
unsafe impl Growable for XnpuSessionOptions {
    const NAME: &'static str = "XnpuSessionOptions";
    const MIN_SIZE: usize = 56;
}

const _: () = {
    assert!(offset_of!(XnpuSessionOptions, struct_size) == 0);
    assert!(offset_of!(XnpuSessionOptions, devices) == 8);
    assert!(offset_of!(XnpuSessionOptions, level) == 16);
    assert!(offset_of!(XnpuSessionOptions, precision) == 24);
    assert!(offset_of!(XnpuSessionOptions, performance) == 32);
    assert!(offset_of!(XnpuSessionOptions, cache_dir) == 40);
    assert!(offset_of!(XnpuSessionOptions, threads) == 48);
    assert!(offset_of!(XnpuSessionOptions, no_cache) == 52);
    assert!(offset_of!(XnpuSessionOptions, max_memory) == 56);
    // No trailing padding: a field appended later starts at the old `sizeof`.
    assert!(size_of::<XnpuSessionOptions>() == 64);
};

/// The session options `p` asks for (the defaults for NULL).
///
/// # Safety
/// `p` is NULL or points to an `XnpuSessionOptions` whose `struct_size` bytes are readable
/// and whose strings are NULL or NUL-terminated.
pub(crate) unsafe fn session_options(
    call: Call,
    p: *const XnpuSessionOptions,
) -> Result<SessionOptions, Failure> {
    let mut options = SessionOptions::new();
    if p.is_null() {
        return Ok(options);
    }
    // SAFETY: a sized struct (this function's contract).
    let (o, _) = unsafe { call.read_sized(p, "options") }?;
    // SAFETY: NULL or NUL-terminated strings that live for the call (this function's contract).
    let field =
        |s: *const c_char, name: &str| unsafe { call.opt_str(s, &format!("options->{name}")) };
    let parsed = |name: &'static str| {
        move |e: xnpu::Error| call.error(e.context(format!("options->{name}")))
    };
    if let Some(d) = field(o.devices, "devices")? {
        options = options.devices(d.parse::<Policy>().map_err(parsed("devices"))?);
    }
    if let Some(l) = field(o.level, "level")? {
        options = options.level(l.parse::<Level>().map_err(parsed("level"))?);
    }
    if let Some(p) = field(o.precision, "precision")? {
        options = options.precision(p.parse::<Precision>().map_err(parsed("precision"))?);
    }
    if let Some(h) = field(o.performance, "performance")? {
        options = options.performance(
            h.parse::<PerformanceHint>()
                .map_err(parsed("performance"))?,
        );
    }
    if o.threads > 0 {
        options = options.threads(o.threads as usize);
    }
    if o.max_memory > 0 {
        options = options.max_memory(o.max_memory);
    }
    match (field(o.cache_dir, "cache_dir")?, o.no_cache != 0) {
        (Some(_), true) => {
            return Err(
                call.invalid("options->cache_dir and options->no_cache are both set (keep one)")
            )
        }
        (Some(dir), false) => options = options.compile_cache(CompileCache::Dir(dir.into())),
        (None, true) => options = options.compile_cache(CompileCache::Off),
        (None, false) => {}
    }
    Ok(options)
}
