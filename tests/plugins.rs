//! Backends loaded at run time: the CPU backend as a plugin runs a model like the built-in
//! one, and every way a plugin can be broken is reported with the plugin's path, without
//! taking the process down. The plugins are the workspace's cdylibs (`plugins/cpu`,
//! `plugins/fixture`), built by `cargo build --workspace` beside the test executables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use xnpu::graph::backend::Backend;
use xnpu::plugins::{plugin_file_name, Plugin};
use xnpu::{Session, SessionOptions, Value};
use xnpu_backend_cpu::CpuBackend;

fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn plugin_path(name: &str) -> PathBuf {
    let p = build_dir().join(plugin_file_name(name));
    assert!(
        p.exists(),
        "{} is missing: build it with cargo build --release --workspace",
        p.display()
    );
    p
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tinycnn.onnx")
}

fn image() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    xnpu::npy::read(&root.join("models/tinycnn.image.npy"))
        .unwrap()
        .into()
}

#[test]
fn the_cpu_plugin_runs_the_demo_model_like_the_built_in_backend() {
    let plugin = Plugin::load(&plugin_path("cpu")).unwrap();
    assert_eq!(plugin.name(), "cpu");
    assert_eq!(plugin.abi_version(), (1, 2));
    let backend: Arc<dyn Backend> = Arc::new(plugin.create_backend("").unwrap());
    let via_plugin =
        Session::load_with(demo(), SessionOptions::new().backend(backend.clone())).unwrap();
    let built_in = Session::load(demo()).unwrap();
    assert_eq!(
        via_plugin.run(vec![("image", image())]).unwrap(),
        built_in.run(vec![("image", image())]).unwrap()
    );
    // A restricted plugin instance (configured with a capability table) splits the model
    // with the built-in CPU backend, and the result is the same.
    let table = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tables/npu-like.json"),
    )
    .unwrap();
    let npu_like: Arc<dyn Backend> = Arc::new(plugin.create_backend(&table).unwrap());
    assert_eq!(npu_like.name(), "npu-like");
    let mixed = Session::load_with(
        demo(),
        SessionOptions::new()
            .backend(npu_like)
            .backend(Arc::new(CpuBackend::new())),
    )
    .unwrap();
    assert_eq!(
        mixed.run(vec![("image", image())]).unwrap(),
        built_in.run(vec![("image", image())]).unwrap()
    );
    // Bad configuration is an error from the plugin, with its path.
    let e = plugin.create_backend("{not json").unwrap_err().to_string();
    assert!(
        e.contains("libxnpu_plugin_cpu") && e.contains("capability table"),
        "{e}"
    );
}

/// The loaded copy of libc: a real shared object without the entry symbol.
fn libc_path() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| {
            Path::new(p)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libc.so") || n.starts_with("libc-"))
        })
        .map(PathBuf::from)
}

#[test]
fn broken_plugins_are_reported_with_their_path() {
    // Not a shared object at all.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join(plugin_file_name("junk"));
    std::fs::write(&junk, b"not an ELF file").unwrap();
    let e = Plugin::load(&junk).unwrap_err().to_string();
    assert!(
        e.contains(&junk.display().to_string())
            && e.contains("the plugin is not a loadable shared library")
            && e.contains("ELF header"),
        "{e}"
    );

    // A shared object without the entry symbol.
    if let Some(libc) = libc_path() {
        let e = Plugin::load(&libc).unwrap_err().to_string();
        assert!(e.contains("has no xnpu_plugin_entry symbol"), "{e}");
    }

    // The fixture plugin, one misbehaviour at a time (chosen by an environment variable
    // it reads when loaded; this is the only test that sets it).
    let fixture = build_dir().join(format!(
        "{}xnpu_test_fixture_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        fixture.exists(),
        "{} is missing: cargo build --release --workspace",
        fixture.display()
    );
    let path = fixture.display().to_string();
    let load = |mode: &str| {
        std::env::set_var("XNPU_FIXTURE_MODE", mode);
        let r = Plugin::load(&fixture);
        std::env::remove_var("XNPU_FIXTURE_MODE");
        r
    };
    let e = load("major2").unwrap_err().to_string();
    assert!(
        e.contains(&path) && e.contains("was built for plugin ABI 2.2, this xnpu speaks 1.2"),
        "{e}"
    );
    // A struct shorter than its version's minimum: refused, naming file, struct and sizes.
    let e = load("short").unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "plugin {path}: its PluginApi is 24 bytes, shorter than the 112 that ABI 1.2 requires"
        )
    );
    let e = load("short-1.1").unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "plugin {path}: its PluginApi is 88 bytes, shorter than the 112 that ABI 1.1 requires"
        )
    );
    let e = load("short-info")
        .unwrap()
        .create_backend("")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "plugin {path}: its BackendInfo is 16 bytes, shorter than the 40 that ABI 1.2 requires"
        )
    );

    // A plugin built from the ABI 1.0 layout (tests/fixtures/plugin_abi_1_0) loads under 1.1
    // and runs; with no `claim`, its declared table answers for it.
    let p = load("abi-1.0").unwrap();
    assert_eq!(p.abi_version(), (1, 0));
    let b: Arc<dyn Backend> = Arc::new(p.create_backend("").unwrap());
    let graph = xnpu::graph::onnx::load(&demo()).unwrap().graph;
    let table = b.capabilities().unwrap().clone();
    let by_table: Vec<_> = {
        let symbols = xnpu::graph::backend::NodeContext::input_symbols(&graph);
        graph
            .nodes
            .iter()
            .map(|node| {
                table.check(&xnpu::graph::backend::NodeContext {
                    graph: &graph,
                    node,
                    input_symbols: &symbols,
                })
            })
            .collect()
    };
    assert_eq!(b.claim(&graph), by_table);
    let s = Session::load_with(demo(), SessionOptions::new().backend(b)).unwrap();
    assert_eq!(s.plan().backends, ["fixture"]);
    assert_eq!(
        s.run(vec![("image", image())]).unwrap(),
        Session::load(demo())
            .unwrap()
            .run(vec![("image", image())])
            .unwrap()
    );

    // A table without `run`: loading works, running says which function is missing.
    let p = load("null-run").unwrap();
    let b: Arc<dyn Backend> = Arc::new(p.create_backend("").unwrap());
    let s = Session::load_with(demo(), SessionOptions::new().backend(b)).unwrap();
    let e = s.run(vec![("image", image())]).unwrap_err().to_string();
    assert!(e.contains(&path) && e.contains("has no run"), "{e}");

    // A backend that panics in compile: the panic stays in the plugin and becomes an error;
    // without fallback the session fails with it, with fallback it runs on the CPU.
    for (mode, says) in [
        (
            "panic",
            "the plugin panicked: the fixture plugin panics in compile",
        ),
        (
            "compile-error",
            "the fixture plugin refuses to compile this partition",
        ),
    ] {
        std::env::set_var("XNPU_FIXTURE_MODE", mode);
        let p = Plugin::load(&fixture).unwrap();
        let b: Arc<dyn Backend> = Arc::new(p.create_backend("").unwrap());
        std::env::remove_var("XNPU_FIXTURE_MODE");
        // Island merging off: the fixture costs what the CPU costs, so merging would move
        // everything back to the CPU before the fixture is asked to compile.
        let mut strict = SessionOptions::new()
            .backend(b.clone())
            .backend(Arc::new(CpuBackend::new()));
        strict.fallback = false;
        strict.partition.merge_islands = false;
        let e = Session::load_with(demo(), strict).unwrap_err().to_string();
        assert!(e.contains(&path) && e.contains(says), "{mode}: {e}");

        let mut lenient = SessionOptions::new()
            .backend(b)
            .backend(Arc::new(CpuBackend::new()));
        lenient.partition.merge_islands = false;
        let s = Session::load_with(demo(), lenient).unwrap();
        assert!(
            s.explain().contains("fell back from fixture"),
            "{}",
            s.explain()
        );
        assert_eq!(
            s.run(vec![("image", image())]).unwrap(),
            Session::load(demo())
                .unwrap()
                .run(vec![("image", image())])
                .unwrap()
        );
    }
}

#[test]
fn discovery_reads_xnpu_plugin_path_and_reports_broken_plugins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(plugin_path("cpu"), dir.path().join(plugin_file_name("cpu"))).unwrap();
    std::fs::write(dir.path().join(plugin_file_name("broken")), b"junk").unwrap();
    std::fs::write(dir.path().join("unrelated.so"), b"junk").unwrap();
    std::env::set_var("XNPU_PLUGIN_PATH", dir.path());
    let found = xnpu::plugins::discover();
    std::env::remove_var("XNPU_PLUGIN_PATH");
    // Only what came from the temporary folder (the executable's folder has plugins too).
    let found: Vec<_> = found
        .into_iter()
        .filter(|(p, _)| p.starts_with(dir.path()))
        .collect();
    let names: Vec<String> = found
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [plugin_file_name("broken"), plugin_file_name("cpu")]);
    assert!(found[0].1.is_err());
    assert_eq!(found[1].1.as_ref().unwrap().name(), "cpu");
}
