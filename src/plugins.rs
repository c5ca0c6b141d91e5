//! Backends loaded at run time: the host side of the plugin ABI (`xnpu_core::plugin`,
//! described in `docs/plugin-abi.md`).
//!
//! Plugins are shared libraries named `libxnpu_plugin_<name>.so` (`xnpu_plugin_<name>.dll`,
//! `libxnpu_plugin_<name>.dylib`), found in the folders of `XNPU_PLUGIN_PATH`, in folders the
//! host adds ([`add_search_dir`]) and next to the executable. A plugin that cannot be loaded
//! is reported with its path and why, never fatal; a plugin that panics inside a call returns
//! an error for that call.

use std::ffi::{c_char, CStr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xnpu_core::plugin::{
    self as abi, AbiCompileOptions, AbiStr, AbiValue, BackendInfo, EntryFn, ExportedValue, Handle,
    NodeClaim, PluginApi,
};
use xnpu_core::{Error, Result, Value};
use xnpu_graph::backend::{
    Backend, CapabilityTable, CompileCache, CompileOptions, DeviceKind, Executable, NodeContext,
    PerformanceHint, Precision, ReasonCode, Support,
};
use xnpu_graph::{Graph, Model};

/// A loaded plugin library and its function table.
struct Loaded {
    path: PathBuf,
    name: String,
    version: String,
    abi: (u16, u16),
    /// The table's header as the plugin wrote it: its size says which fields exist.
    header: abi::Header,
    /// A copy of the table, of the fields the plugin declared (the rest are `None`).
    table: PluginApi,
    // Declared last so that it is dropped (unloaded) after everything that uses the table.
    _lib: libloading::Library,
}

// SAFETY: `table` holds the plugin's function pointers and pointers to its static strings and
// extensions, valid while `_lib` is loaded; the plugin's functions are called from any
// thread, as the ABI requires.
unsafe impl Send for Loaded {}
// SAFETY: as above; nothing in `Loaded` is mutated after loading.
unsafe impl Sync for Loaded {}

impl Loaded {
    fn api(&self) -> &PluginApi {
        &self.table
    }

    /// The 1.1 fields, when the table has them (a 1.0 table ends before them).
    fn since_1_1(&self) -> Option<&PluginApi> {
        abi::covers(self.header, abi::sizes::PLUGIN_API[1]).then_some(&self.table)
    }

    /// The compile-options extension, when the plugin offers it whole.
    fn compile_with_options(&self) -> Option<abi::CompileOptionsExtension> {
        let first = self.since_1_1()?.extensions;
        // SAFETY: the chain is the plugin's static data, each entry beginning its struct.
        let e = unsafe { abi::find_extension(first, abi::extension::COMPILE_OPTIONS) };
        if e.is_null() {
            return None;
        }
        let e = e.cast::<abi::CompileOptionsExtension>();
        // SAFETY: an extension of this kind begins a CompileOptionsExtension whose header is
        // readable (find_extension read it).
        let header = unsafe { std::ptr::read_unaligned(e.cast::<abi::Header>()) };
        abi::check_size(
            "CompileOptionsExtension",
            header,
            &abi::sizes::COMPILE_OPTIONS_EXTENSION,
        )
        .ok()?;
        // SAFETY: as above; the header says at least the whole struct is there.
        Some(unsafe { abi::read_prefix(e) })
    }

    fn fail(&self, e: Error) -> Error {
        e.context(format!("plugin {}", self.path.display()))
    }

    /// Calls a plugin function; a non-zero code becomes an error carrying the plugin's message.
    fn call(&self, what: &str, f: impl FnOnce(abi::ErrorOut) -> i32) -> Result<()> {
        let mut msg: *mut c_char = std::ptr::null_mut();
        let code = f(&mut msg);
        if code == abi::code::OK {
            return Ok(());
        }
        let text = if msg.is_null() {
            format!("{what} failed with code {code} and no message")
        } else {
            // SAFETY: the plugin wrote a NUL-terminated string it allocated.
            let t = unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned();
            if let Some(free) = self.api().free_string {
                // SAFETY: the string came from this plugin's error out-pointer.
                unsafe { free(msg) };
            }
            t
        };
        Err(self.fail(abi::error_from_code(code, text)))
    }

    fn func<T: Copy>(&self, f: Option<T>, name: &str) -> Result<T> {
        f.ok_or_else(|| {
            self.fail(Error::unsupported(format!(
                "the function table has no {name} (a null pointer)"
            )))
        })
    }
}

/// A plugin library, loaded.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Loaded>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.inner.path)
            .field("name", &self.inner.name)
            .field("version", &self.inner.version)
            .field("abi", &self.inner.abi)
            .finish()
    }
}

fn c_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the plugin's static NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Plugin {
    /// Loads a plugin library and checks its function table: the entry symbol, the ABI
    /// major version, the table's size.
    pub fn load(path: &Path) -> Result<Plugin> {
        let err = |msg: String| Error::unsupported(format!("plugin {}: {msg}", path.display()));
        // A truncated or non-ELF file would kill the process inside the dynamic loader.
        // Its message names the path and what is wrong.
        xnpu_core::fs::check_shared_library(path, "plugin")?;
        // SAFETY: loading a library runs its initialisers; plugins are trusted code the user
        // installed, as with any shared library.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| err(format!("cannot be loaded: {e}")))?;
        // SAFETY: the symbol's type is fixed by the ABI.
        let entry: EntryFn = unsafe { lib.get::<EntryFn>(abi::ENTRY_SYMBOL) }
            .map(|s| *s)
            .map_err(|_| err("has no xnpu_plugin_entry symbol: not an xnpu plugin".into()))?;
        // SAFETY: calling the plugin's entry point as the ABI prescribes.
        let api = unsafe { entry(abi::ABI_MAJOR, abi::ABI_MINOR) };
        if api.is_null() {
            return Err(err("its entry point returned no function table".into()));
        }
        // SAFETY: every table begins with a header; read it alone before trusting the size.
        let header = unsafe { std::ptr::read_unaligned(api.cast::<abi::Header>()) };
        if header.abi_major != abi::ABI_MAJOR {
            return Err(err(format!(
                "was built for plugin ABI {}.{}, this xnpu speaks {}.{}",
                header.abi_major,
                header.abi_minor,
                abi::ABI_MAJOR,
                abi::ABI_MINOR
            )));
        }
        abi::check_size("PluginApi", header, &abi::sizes::PLUGIN_API)
            .map_err(|e| err(e.to_string()))?;
        // SAFETY: the size covers the layout of the minor the table declares; the copy reads
        // no more than the plugin declared.
        let mut table = unsafe { abi::read_prefix(api) };
        if table.claim.is_some() && table.release_claims.is_none() {
            // Claims it could not give back would leak on every call: not used.
            table.claim = None;
        }
        Ok(Plugin {
            inner: Arc::new(Loaded {
                path: path.to_path_buf(),
                name: c_string(table.name),
                version: c_string(table.version),
                abi: (header.abi_major, header.abi_minor),
                header,
                table,
                _lib: lib,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn version(&self) -> &str {
        &self.inner.version
    }
    /// The ABI version the plugin was built against.
    pub fn abi_version(&self) -> (u16, u16) {
        self.inner.abi
    }

    /// Creates a backend of this plugin with a configuration string (plugin-specific; may
    /// be empty).
    pub fn create_backend(&self, config: &str) -> Result<PluginBackend> {
        let l = &self.inner;
        let create = l.func(l.api().create_backend, "create_backend")?;
        let describe = l.func(l.api().describe, "describe")?;
        let mut handle: Handle = std::ptr::null_mut();
        l.call("create_backend", |err| {
            // SAFETY: valid pointers for the call, as the ABI prescribes.
            unsafe { create(config.as_ptr(), config.len(), &mut handle, err) }
        })?;
        let backend = PluginBackend {
            plugin: self.inner.clone(),
            handle,
            name: String::new(),
            kind: DeviceKind::Cpu,
            static_shapes: false,
            table: CapabilityTable::everything(""),
        };
        let mut info = BackendInfo {
            header: abi::Header::of::<BackendInfo>(),
            name: std::ptr::null(),
            kind: 0,
            needs_static_shapes: 0,
            capabilities_json: std::ptr::null(),
            capabilities_len: 0,
        };
        l.call("describe", |err| {
            // SAFETY: a live handle and a valid out-struct.
            unsafe { describe(handle, &mut info, err) }
        })?;
        abi::check_size("BackendInfo", info.header, &abi::sizes::BACKEND_INFO)
            .map_err(|e| l.fail(e))?;
        let json = if info.capabilities_json.is_null() {
            ""
        } else {
            // SAFETY: the plugin's string, alive as long as the backend.
            let b = unsafe {
                std::slice::from_raw_parts(info.capabilities_json, info.capabilities_len)
            };
            std::str::from_utf8(b)
                .map_err(|_| l.fail(Error::invalid_input("its capability table is not UTF-8")))?
        };
        let mut backend = backend;
        let (table, unknown) = CapabilityTable::from_json_known(json).map_err(|e| l.fail(e))?;
        if !unknown.is_empty() {
            tracing::warn!(
                "plugin {}: its table names ops this xnpu does not have, left out: {}",
                l.path.display(),
                unknown.join(", ")
            );
        }
        backend.table = table;
        backend.name = c_string(info.name);
        backend.kind = match info.kind {
            1 => DeviceKind::Gpu,
            2 => DeviceKind::Npu,
            _ => DeviceKind::Cpu,
        };
        backend.static_shapes = info.needs_static_shapes != 0;
        Ok(backend)
    }
}

/// A backend living in a plugin: a 1.1 plugin answers capability questions itself
/// (`claim`), a 1.0 one's are answered from the table it declared; compile and run cross the
/// ABI.
pub struct PluginBackend {
    plugin: Arc<Loaded>,
    handle: Handle,
    name: String,
    kind: DeviceKind,
    static_shapes: bool,
    table: CapabilityTable,
}

// SAFETY: the handle is only passed back to the plugin, which must accept calls from any
// thread (an ABI rule); the rest is owned data.
unsafe impl Send for PluginBackend {}
// SAFETY: as above.
unsafe impl Sync for PluginBackend {}

impl std::fmt::Debug for PluginBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginBackend")
            .field("plugin", &self.plugin.path)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Drop for PluginBackend {
    fn drop(&mut self) {
        if let Some(f) = self.plugin.api().destroy_backend {
            // SAFETY: the handle came from create_backend and is not used again.
            unsafe { f(self.handle) };
        }
    }
}

impl PluginBackend {
    /// The same backend under the id the registry gives it (`plugin:cpu` where the built-in
    /// CPU backend is `cpu`), so that plans and timings name the device the user chose.
    pub(crate) fn named(mut self, id: &str) -> PluginBackend {
        self.name = id.to_string();
        self
    }

    /// The plugin library this backend lives in.
    pub fn plugin_path(&self) -> &Path {
        &self.plugin.path
    }
}

impl Backend for PluginBackend {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> DeviceKind {
        self.kind
    }
    fn supports(&self, cx: &NodeContext<'_>) -> Support {
        self.table.check(cx)
    }
    fn needs_static_shapes(&self) -> bool {
        self.static_shapes
    }
    fn capabilities(&self) -> Option<&CapabilityTable> {
        Some(&self.table)
    }
    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        self.compile_with(partition, &CompileOptions::default())
    }

    fn compile_with(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<Box<dyn Executable>> {
        let l = &self.plugin;
        let onnx = self.graph_bytes(partition)?;
        let mut handle: Handle = std::ptr::null_mut();
        match l
            .compile_with_options()
            .and_then(|e| e.compile_with_options)
        {
            Some(compile) => {
                let dir = match &options.cache {
                    CompileCache::Dir(d) => d.to_string_lossy().into_owned(),
                    _ => String::new(),
                };
                let o = abi_options(options, &dir);
                l.call("compile_with_options", |err| {
                    // SAFETY: a live backend handle and valid pointers for the call.
                    unsafe { compile(self.handle, onnx.as_ptr(), onnx.len(), &o, &mut handle, err) }
                })?;
            }
            None => {
                let compile = l.func(l.api().compile, "compile")?;
                l.call("compile", |err| {
                    // SAFETY: a live backend handle and valid pointers for the call.
                    unsafe { compile(self.handle, onnx.as_ptr(), onnx.len(), &mut handle, err) }
                })?;
            }
        }
        Ok(Box::new(PluginExecutable {
            plugin: self.plugin.clone(),
            handle,
        }))
    }

    /// Answers from the plugin itself (ABI 1.1 `claim`), so its own checks and reasons
    /// reach `--explain`; a 1.0 plugin's from its declared table.
    fn claim(&self, graph: &Graph) -> Vec<Support> {
        let table = || {
            let symbols = NodeContext::input_symbols(graph);
            graph
                .nodes
                .iter()
                .map(|node| {
                    self.table.check(&NodeContext {
                        graph,
                        node,
                        input_symbols: &symbols,
                    })
                })
                .collect()
        };
        let Some(claim) = self.plugin.since_1_1().and_then(|t| t.claim) else {
            return table();
        };
        let Ok(exact) = xnpu_graph::onnx::to_exact(&model_of(graph)) else {
            // No one-node form for some op: the plugin could not answer node for node.
            return table();
        };
        match self.claims(claim, &exact) {
            Ok(answers) => answers,
            Err(e) => {
                // The plugin could not answer (one built from an older xnpu that does not
                // know an op of the graph, say): what it declared answers, as for 1.0.
                tracing::warn!("{}: its claim failed, its table answers: {e}", self.name);
                table()
            }
        }
    }
}

type ClaimFn = unsafe extern "C" fn(
    Handle,
    *const u8,
    usize,
    *mut *const NodeClaim,
    *mut usize,
    *mut Handle,
    abi::ErrorOut,
) -> i32;

impl PluginBackend {
    /// A graph as the plugin reads it: the exact form (node for node, xnpu's own ops) for a
    /// 1.1 plugin, standard ONNX for a 1.0 one.
    fn graph_bytes(&self, graph: &Graph) -> Result<Vec<u8>> {
        let model = model_of(graph);
        if self.plugin.since_1_1().is_some() {
            if let Ok(exact) = xnpu_graph::onnx::to_exact(&model) {
                return Ok(exact.to_bytes());
            }
        }
        xnpu_graph::onnx::to_bytes(&model)
    }

    /// Calls the plugin's `claim` and reads its answers back onto the host's nodes.
    fn claims(&self, claim: ClaimFn, exact: &xnpu_graph::onnx::ExactModel) -> Result<Vec<Support>> {
        let l = &self.plugin;
        let onnx = exact.to_bytes();
        let (mut list, mut n, mut owner): (*const NodeClaim, usize, Handle) =
            (std::ptr::null(), 0, std::ptr::null_mut());
        l.call("claim", |err| {
            // SAFETY: a live backend handle and valid pointers for the call.
            unsafe {
                claim(
                    self.handle,
                    onnx.as_ptr(),
                    onnx.len(),
                    &mut list,
                    &mut n,
                    &mut owner,
                    err,
                )
            }
        })?;
        // SAFETY: the plugin returned `n` claims, alive until release_claims.
        let answers = unsafe { read_claims(list, n) };
        if let Some(release) = l.since_1_1().and_then(|t| t.release_claims) {
            // SAFETY: the owner came from this claim call and is released once.
            unsafe { release(owner) };
        }
        let answers = answers.map_err(|e| l.fail(e))?;
        Ok(exact
            .node_names
            .iter()
            .map(|name| {
                answers.get(name).cloned().unwrap_or_else(|| {
                    Support::refuse(
                        ReasonCode::NoAnswer,
                        format!("the plugin gave no answer for node \"{name}\""),
                    )
                })
            })
            .collect())
    }
}

/// The plugin's claims by node name.
///
/// # Safety
/// `list` points to `n` claims laid out with the stride of the first's size, their strings
/// valid for the call.
unsafe fn read_claims(
    list: *const NodeClaim,
    n: usize,
) -> Result<std::collections::HashMap<String, Support>> {
    let mut out = std::collections::HashMap::new();
    if n == 0 || list.is_null() {
        return Ok(out);
    }
    // SAFETY: at least one claim, per the contract; its header comes first.
    let header = unsafe { std::ptr::read_unaligned(list.cast::<abi::Header>()) };
    abi::check_size("NodeClaim", header, &abi::sizes::NODE_CLAIM)?;
    let stride = header.struct_size as usize;
    if n.checked_mul(stride)
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(Error::invalid_input(format!(
            "{n} claims of {stride} bytes each cannot be one array"
        )));
    }
    // A claim of an older minor is shorter: only the stride's bytes of each are read, and
    // the fields past them read as zeros.
    let take = stride.min(std::mem::size_of::<NodeClaim>());
    for i in 0..n {
        let mut c = std::mem::MaybeUninit::<NodeClaim>::zeroed();
        // SAFETY: claim i lies `i * stride` bytes in (no overflow: checked above), and
        // `take` of its bytes are readable and fit `c`; all-zero bytes are a valid
        // NodeClaim (abi::Zeroable) and so are the writer's.
        let c = unsafe {
            std::ptr::copy_nonoverlapping(
                list.cast::<u8>().add(i * stride),
                c.as_mut_ptr().cast::<u8>(),
                take,
            );
            c.assume_init()
        };
        // SAFETY: the strings are valid for the call.
        let (node, reason) = unsafe { (abi_string(c.node), abi_string(c.reason)) };
        let answer = if c.supported != 0 {
            Support::Supported { cost: c.cost }
        } else {
            Support::Unsupported {
                code: ReasonCode::from_u32(c.reason_code),
                vendor_code: (c.has_vendor_code != 0).then_some(c.vendor_code),
                reason,
            }
        };
        out.insert(node, answer);
    }
    Ok(out)
}

/// An [`AbiStr`] as an owned string (invalid UTF-8 replaced).
///
/// # Safety
/// `s` points to `s.len` valid bytes (or is empty).
unsafe fn abi_string(s: AbiStr) -> String {
    if s.len == 0 || s.ptr.is_null() {
        return String::new();
    }
    // SAFETY: per the contract.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(s.ptr, s.len) }).into_owned()
}

/// A partition (or a whole graph) as the model the exporter writes.
fn model_of(graph: &Graph) -> Model {
    Model {
        name: graph.name.clone(),
        graph: graph.clone(),
        ..Default::default()
    }
}

/// The session's hints in their ABI form; `dir` (the cache folder) must outlive the result.
fn abi_options(o: &CompileOptions, dir: &str) -> AbiCompileOptions {
    AbiCompileOptions {
        header: abi::Header::of::<AbiCompileOptions>(),
        threads: o
            .threads
            .map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)),
        precision: match o.precision {
            None => 0,
            Some(Precision::F32) => 1,
            Some(Precision::F16) => 2,
            Some(Precision::Bf16) => 3,
        },
        performance: match o.performance {
            None => 0,
            Some(PerformanceHint::Latency) => 1,
            Some(PerformanceHint::Throughput) => 2,
        },
        cache: match o.cache {
            CompileCache::Default => 0,
            CompileCache::Off => 1,
            CompileCache::Dir(_) => 2,
        },
        cache_dir: AbiStr {
            ptr: dir.as_ptr(),
            len: dir.len(),
        },
    }
}

struct PluginExecutable {
    plugin: Arc<Loaded>,
    handle: Handle,
}

// SAFETY: as for PluginBackend.
unsafe impl Send for PluginExecutable {}
// SAFETY: as for PluginBackend.
unsafe impl Sync for PluginExecutable {}

impl Drop for PluginExecutable {
    fn drop(&mut self) {
        if let Some(f) = self.plugin.api().destroy_executable {
            // SAFETY: the handle came from compile and is not used again.
            unsafe { f(self.handle) };
        }
    }
}

impl Executable for PluginExecutable {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        let l = &self.plugin;
        let run = l.func(l.api().run, "run")?;
        let release = l.func(l.api().release_outputs, "release_outputs")?;
        let exported: Vec<ExportedValue> = inputs.iter().map(ExportedValue::new).collect();
        let descriptors: Vec<AbiValue> = exported.iter().map(|e| e.abi.alias()).collect();
        let mut outs: *const AbiValue = std::ptr::null();
        let mut n_outs = 0usize;
        let mut owner: Handle = std::ptr::null_mut();
        l.call("run", |err| {
            // SAFETY: the descriptors point into `inputs`/`exported`, alive for the call.
            unsafe {
                run(
                    self.handle,
                    descriptors.as_ptr(),
                    descriptors.len(),
                    &mut outs,
                    &mut n_outs,
                    &mut owner,
                    err,
                )
            }
        })?;
        let result = if n_outs == 0 || outs.is_null() {
            Ok(Vec::new())
        } else {
            // SAFETY: the plugin returned `n_outs` values, alive until release_outputs.
            let slice = unsafe { std::slice::from_raw_parts(outs, n_outs) };
            slice
                .iter()
                // SAFETY: as above.
                .map(|v| unsafe { abi::import_value(v) })
                .collect::<Result<Vec<Value>>>()
                .map_err(|e| l.fail(e))
        };
        // SAFETY: the owner came from this run call and is released once.
        unsafe { release(owner) };
        result
    }
}

/// The file name a plugin called `name` has on this platform.
pub fn plugin_file_name(name: &str) -> String {
    format!(
        "{}xnpu_plugin_{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Folders added by [`add_search_dir`].
static EXTRA_DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Adds a folder to look for plugins in, after `XNPU_PLUGIN_PATH` and before the executable's
/// folder: for a host whose plugins do not lie next to its executable (the Python package
/// keeps them in its own folder). Backends are discovered once per process, so this must
/// come before the first session or device listing.
pub fn add_search_dir(dir: impl Into<PathBuf>) {
    let dir = dir.into();
    let mut dirs = EXTRA_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if !dirs.contains(&dir) {
        dirs.push(dir);
    }
}

/// Where plugins are looked for: the folders of `XNPU_PLUGIN_PATH`, those given to
/// [`add_search_dir`], then the executable's folder.
pub fn search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("XNPU_PLUGIN_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(
        EXTRA_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    dirs
}

/// Every plugin library in the search path, each loaded or with the reason it could not
/// be (a broken plugin is reported, never fatal).
pub fn discover() -> Vec<(PathBuf, Result<Plugin>)> {
    let prefix = format!("{}xnpu_plugin_", std::env::consts::DLL_PREFIX);
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for dir in search_path() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&prefix) && n.ends_with(std::env::consts::DLL_SUFFIX)
                })
            })
            .collect();
        files.sort();
        for f in files {
            let key = f.file_name().map(|n| n.to_os_string());
            if seen.insert(key) {
                let r = Plugin::load(&f);
                found.push((f, r));
            }
        }
    }
    found
}
