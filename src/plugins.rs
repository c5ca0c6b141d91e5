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
    self as abi, AbiValue, BackendInfo, EntryFn, ExportedValue, Handle, PluginApi,
};
use xnpu_core::{Error, Result, Value};
use xnpu_graph::backend::{Backend, CapabilityTable, DeviceKind, Executable, NodeContext, Support};
use xnpu_graph::{Graph, Model};

/// A loaded plugin library and its function table.
struct Loaded {
    path: PathBuf,
    name: String,
    version: String,
    abi: (u16, u16),
    api: *const PluginApi,
    // Declared last so that it is dropped (unloaded) after everything that uses the table.
    _lib: libloading::Library,
}

// SAFETY: `api` points to the plugin's static, immutable function table, valid while `_lib`
// is loaded; the plugin's functions are called from any thread, as the ABI requires.
unsafe impl Send for Loaded {}
// SAFETY: as above; nothing in `Loaded` is mutated after loading.
unsafe impl Sync for Loaded {}

impl Loaded {
    fn api(&self) -> &PluginApi {
        // SAFETY: checked non-null and at least the 1.0 size at load; static in the library.
        unsafe { &*self.api }
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
        if (header.struct_size as usize) < abi::PLUGIN_API_MIN_SIZE {
            return Err(err(format!(
                "its function table is {} bytes, shorter than the {} of ABI {}.0",
                header.struct_size,
                abi::PLUGIN_API_MIN_SIZE,
                abi::ABI_MAJOR
            )));
        }
        // SAFETY: the size covers the 1.0 layout.
        let table = unsafe { &*api };
        Ok(Plugin {
            inner: Arc::new(Loaded {
                path: path.to_path_buf(),
                name: c_string(table.name),
                version: c_string(table.version),
                abi: (header.abi_major, header.abi_minor),
                api,
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
        backend.table = CapabilityTable::from_json(json).map_err(|e| l.fail(e))?;
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

/// A backend living in a plugin; capability questions are answered from the table it
/// declared, compile and run cross the ABI.
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
        let l = &self.plugin;
        let compile = l.func(l.api().compile, "compile")?;
        let model = Model {
            name: partition.name.clone(),
            graph: partition.clone(),
            ..Default::default()
        };
        let onnx = xnpu_graph::onnx::to_bytes(&model)?;
        let mut handle: Handle = std::ptr::null_mut();
        l.call("compile", |err| {
            // SAFETY: a live backend handle and valid pointers for the call.
            unsafe { compile(self.handle, onnx.as_ptr(), onnx.len(), &mut handle, err) }
        })?;
        Ok(Box::new(PluginExecutable {
            plugin: self.plugin.clone(),
            handle,
        }))
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
