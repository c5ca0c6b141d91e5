//! ONNX conformance: every node test case of the pinned `onnx` package, run through import and
//! the reference CPU backend, compared with onnx's own tolerances (rtol 1e-3, atol 1e-7, or
//! the case's own). Cases come from `scripts/gen_onnx_cases.py` (see `scripts/test.sh`).
//!
//! The committed list `tests/onnx_conformance/cpu_passing.txt` is a ratchet: a listed case that
//! stops passing fails the run; cases that newly pass are printed so the list can be updated
//! (`XNPU_UPDATE_RATCHET=1` rewrites it). The last line is `cpu: N passed, N failed, N skipped`.
//!
//! Every case runs twice: as imported (pass level `none`) and after every pass (level `all`,
//! what `Session::load` does). The `cpu:` line counts level `all`; a case that passes at one
//! level and not at the other fails the run.
//!
//! Every case also runs through OpenVINO's CPU device with the reference CPU backend behind it
//! (`[openvino:cpu, cpu]`: what backends/openvino/capabilities.json refuses runs on the CPU
//! backend; level `all`, compile cache off). The `openvino:` line counts it; a case that
//! passes on cpu and fails through openvino fails the run, and so does an OpenVINO that cannot
//! be loaded (scripts/test.sh installs it).
//!
//! Every case also runs through QNN's HTP simulator with the reference CPU backend behind it
//! (`[qnn:htp-sim, cpu]`, fallback on: a partition QNN cannot build runs on the CPU), in exact
//! fp32 mode (no SoC model: these tolerances are fp32's; fp16 numerics are checked by the
//! per-op tests in backends/qnn). The `qnn:` line counts it; a case that passes on cpu and
//! fails through qnn fails the run, and so does a QNN that cannot be loaded (scripts/test.sh
//! installs the onnxruntime-qnn wheel).
//!
//! A case whose model draws random values (Bernoulli, ...) is skipped: ONNX leaves the
//! generator to the implementation, so its stored outputs are numpy's draws.
//!
//! Arguments: an optional substring filter on case names; `-v` prints every failure in full.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

mod common;

use common::cases_dir;
use std::sync::Arc;
use xnpu::graph::passes::Level;

use xnpu::graph::backend::{Backend, CompileCache};
use xnpu::{Session, SessionOptions};

fn ratchet_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_conformance/cpu_passing.txt")
}

enum Outcome {
    Pass,
    Fail(String),
    /// Not comparable: the model draws random values (Bernoulli, RandomUniform...), and ONNX
    /// leaves the generator to the implementation, so the stored outputs are numpy's draws.
    Skip,
}

/// How many sessions put a partition on a QNN backend.
static ON_QNN: AtomicUsize = AtomicUsize::new(0);

/// Runs a case at a pass level, on the built-in CPU backend or on the given ones (in order
/// of preference).
fn run_case(case: &Path, level: Level, backends: &[Arc<dyn Backend>]) -> Outcome {
    let mut options = SessionOptions::new()
        .level(level)
        .compile_cache(CompileCache::Off);
    for b in backends {
        options = options.backend(b.clone());
    }
    let session = match Session::load_with(case.join("model.onnx"), options) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("import: {e}")),
    };
    if session.model().graph.nodes.iter().any(|n| n.op.is_random()) {
        return Outcome::Skip;
    }
    let plan = session.plan();
    if plan
        .partitions
        .iter()
        .any(|p| plan.backends[p.backend].starts_with("qnn:"))
    {
        ON_QNN.fetch_add(1, Ordering::Relaxed);
    }
    match common::check_case(&session, case) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(e),
    }
}

/// The CPU backend loaded as a plugin from the build folder (`cargo build --workspace`
/// writes `libxnpu_plugin_cpu.so` beside the test executables' `deps/` folder).
fn plugin_cpu() -> std::result::Result<Arc<dyn Backend>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no build folder")?;
    let path = dir.join(xnpu::plugins::plugin_file_name("cpu"));
    let plugin = xnpu::plugins::Plugin::load(&path)
        .map_err(|e| format!("{e} (build it with cargo build --release --workspace)"))?;
    let backend = plugin.create_backend("").map_err(|e| e.to_string())?;
    Ok(Arc::new(backend))
}

/// OpenVINO's CPU device, then the reference CPU backend for what its table refuses.
#[cfg(feature = "openvino")]
fn openvino_cpu() -> std::result::Result<Vec<Arc<dyn Backend>>, String> {
    use xnpu_backend_openvino::{OpenVino, OpenVinoBackend};
    let ov = OpenVino::open().map_err(|e| e.to_string())?;
    let backend = OpenVinoBackend::new(Arc::new(ov), "CPU").map_err(|e| e.to_string())?;
    Ok(vec![
        Arc::new(backend),
        Arc::new(xnpu_backend_cpu::CpuBackend::default()),
    ])
}

#[cfg(not(feature = "openvino"))]
fn openvino_cpu() -> std::result::Result<Vec<Arc<dyn Backend>>, String> {
    Err("built without the openvino feature".into())
}

/// QNN's HTP simulator in exact fp32 mode (no SoC model), then the reference CPU backend for
/// what it does not claim or cannot build.
#[cfg(feature = "qnn")]
fn qnn_sim() -> std::result::Result<Vec<Arc<dyn Backend>>, String> {
    use xnpu::qnn::{find_library, Qnn, QnnBackend, QnnLibrary};
    let path = find_library("libQnnHtp.so").map_err(|e| e.to_string())?;
    let lib = QnnLibrary::open(&path).map_err(|e| e.to_string())?;
    let q = Qnn::new(Arc::new(lib), 0).map_err(|e| e.to_string())?;
    Ok(vec![
        Arc::new(QnnBackend::new(Arc::new(q))),
        Arc::new(xnpu_backend_cpu::CpuBackend::default()),
    ])
}

#[cfg(not(feature = "qnn"))]
fn qnn_sim() -> std::result::Result<Vec<Arc<dyn Backend>>, String> {
    Err("built without the qnn feature".into())
}

/// Passed, failed and skipped counts of a run through another backend list, and the cases
/// that pass on the cpu backend but fail there (with why).
fn tally(
    through: &BTreeMap<String, Outcome>,
    cpu: &BTreeMap<String, Outcome>,
    verbose: bool,
) -> (usize, usize, usize, Vec<String>) {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut regressions = Vec::new();
    for (name, o) in through {
        match o {
            Outcome::Pass => passed += 1,
            Outcome::Skip => skipped += 1,
            Outcome::Fail(why) => {
                failed += 1;
                if matches!(cpu.get(name), Some(Outcome::Pass)) {
                    regressions.push(format!("{name}: {}", common::one_line(why, 220, verbose)));
                }
            }
        }
    }
    (passed, failed, skipped, regressions)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let verbose = args.iter().any(|a| a == "-v");
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let root = cases_dir().join("node");
    let mut cases: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) => {
            eprintln!(
                "onnx_conformance: no cases at {} ({e}); generate them with scripts/test.sh \
                 or python scripts/gen_onnx_cases.py {}",
                root.display(),
                cases_dir().display()
            );
            std::process::exit(1);
        }
    };
    cases.sort();
    if let Some(f) = &filter {
        cases.retain(|c| {
            c.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(f.as_str()))
        });
    }

    let results: Mutex<BTreeMap<String, Outcome>> = Mutex::default();
    let unoptimised: Mutex<BTreeMap<String, Outcome>> = Mutex::default();
    let through_plugin: Mutex<BTreeMap<String, Outcome>> = Mutex::default();
    let through_openvino: Mutex<BTreeMap<String, Outcome>> = Mutex::default();
    let plugin = plugin_cpu();
    // One OpenVINO core and backend for every case and thread.
    let openvino = openvino_cpu();
    let through_qnn: Mutex<BTreeMap<String, Outcome>> = Mutex::default();
    let qnn = qnn_sim();
    let qnn_time = Mutex::new(std::time::Duration::ZERO);
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Kernel panics are bugs; they are caught per case so that one does not hide the rest.
    std::panic::set_hook(Box::new(|_| {}));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let name = case
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let run = |level, backends: &[Arc<dyn Backend>]| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_case(case, level, backends)
                    }))
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Outcome::Fail(format!("PANIC: {msg}"))
                    })
                };
                unoptimised
                    .lock()
                    .unwrap()
                    .insert(name.clone(), run(Level::None, &[]));
                if let Ok(b) = &plugin {
                    through_plugin
                        .lock()
                        .unwrap()
                        .insert(name.clone(), run(Level::All, std::slice::from_ref(b)));
                }
                if let Ok(backends) = &openvino {
                    through_openvino
                        .lock()
                        .unwrap()
                        .insert(name.clone(), run(Level::All, backends));
                }
                if let Ok(backends) = &qnn {
                    let t = std::time::Instant::now();
                    let o = run(Level::All, backends);
                    *qnn_time.lock().unwrap() += t.elapsed();
                    through_qnn.lock().unwrap().insert(name.clone(), o);
                }
                results.lock().unwrap().insert(name, run(Level::All, &[]));
            });
        }
    });
    let _ = std::panic::take_hook();
    let results = results.into_inner().unwrap();
    let unoptimised = unoptimised.into_inner().unwrap();
    let mut level_diff = Vec::new();
    let (mut none_passed, mut none_skipped) = (0, 0);
    for (name, o) in &unoptimised {
        let none = matches!(o, Outcome::Pass);
        none_passed += usize::from(none);
        none_skipped += usize::from(matches!(o, Outcome::Skip));
        if none != matches!(results.get(name), Some(Outcome::Pass)) {
            level_diff.push(format!(
                "{name} ({} at level none, {} at level all)",
                if none { "passes" } else { "fails" },
                if none { "fails" } else { "passes" }
            ));
        }
    }

    let ratchet: BTreeSet<String> = std::fs::read_to_string(ratchet_file())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let mut passed = 0;
    let mut failed = 0;
    let mut skipped = 0;
    let mut regressions = Vec::new();
    let mut newly = Vec::new();
    for (name, outcome) in &results {
        match outcome {
            Outcome::Pass => {
                passed += 1;
                if !ratchet.contains(name) {
                    newly.push(name.clone());
                }
            }
            Outcome::Fail(why) => {
                failed += 1;
                let why = common::one_line(why, 220, verbose);
                println!("FAIL {name}: {why}");
                if ratchet.contains(name) {
                    regressions.push(name.clone());
                }
            }
            Outcome::Skip => {
                skipped += 1;
                println!("SKIP {name}: its outputs are drawn at random");
            }
        }
    }
    if filter.is_none() && std::env::var_os("XNPU_UPDATE_RATCHET").is_some() {
        let list: Vec<&String> = results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Pass))
            .map(|(n, _)| n)
            .collect();
        let text = format!(
            "# ONNX node cases that pass on the cpu backend; a case here that fails is a regression.\n{}\n",
            list.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
        std::fs::write(ratchet_file(), text).expect("write the ratchet file");
        println!(
            "ratchet: wrote {} cases to {}",
            list.len(),
            ratchet_file().display()
        );
    } else if !newly.is_empty() && filter.is_none() {
        println!(
            "ratchet: {} cases pass that are not in {} (run with XNPU_UPDATE_RATCHET=1 to add them): {}",
            newly.len(),
            ratchet_file().display(),
            newly.join(" ")
        );
    }
    println!(
        "level none: {none_passed} passed, {} failed, {none_skipped} skipped",
        unoptimised.len() - none_passed - none_skipped
    );
    if !level_diff.is_empty() {
        println!(
            "levels: {} cases differ between levels none and all: {}",
            level_diff.len(),
            level_diff.join(", ")
        );
    }
    // The plugin-loaded CPU backend must pass exactly what the built-in one passes.
    let through_plugin = through_plugin.into_inner().unwrap();
    let mut plugin_diff = Vec::new();
    let (mut plugin_passed, mut plugin_failed, mut plugin_random) = (0, 0, 0);
    match &plugin {
        Ok(_) => {
            for (name, o) in &through_plugin {
                let p = matches!(o, Outcome::Pass);
                match o {
                    Outcome::Pass => plugin_passed += 1,
                    Outcome::Fail(_) => plugin_failed += 1,
                    Outcome::Skip => plugin_random += 1,
                }
                if p != matches!(results.get(name), Some(Outcome::Pass)) {
                    let why = match o {
                        Outcome::Fail(w) => w.clone(),
                        Outcome::Pass => "passes through the plugin only".into(),
                        Outcome::Skip => "random outputs through the plugin only".into(),
                    };
                    plugin_diff.push(format!("{name}: {why}"));
                }
            }
            if !plugin_diff.is_empty() {
                println!(
                    "plugin: {} cases differ from the built-in cpu backend:\n  {}",
                    plugin_diff.len(),
                    plugin_diff.join("\n  ")
                );
            }
        }
        Err(e) => println!("plugin: cannot load the CPU plugin: {e}"),
    }
    // Through OpenVINO: every case the cpu backend passes must pass.
    let (ov_passed, ov_failed, ov_random, ov_regressions) =
        tally(&through_openvino.into_inner().unwrap(), &results, verbose);
    match &openvino {
        Ok(_) if !ov_regressions.is_empty() => println!(
            "openvino: {} cases pass on cpu and fail through [openvino:cpu, cpu]:\n  {}",
            ov_regressions.len(),
            ov_regressions.join("\n  ")
        ),
        Ok(_) => {}
        Err(e) => println!("openvino: cannot load OpenVINO: {e}"),
    }
    // Through QNN's simulator: every case the cpu backend passes must pass.
    let (qnn_passed, qnn_failed, qnn_random, qnn_regressions) =
        tally(&through_qnn.into_inner().unwrap(), &results, verbose);
    match &qnn {
        Ok(_) => {
            if !qnn_regressions.is_empty() {
                println!(
                    "qnn: {} cases pass on cpu and fail through [qnn:htp-sim, cpu]:\n  {}",
                    qnn_regressions.len(),
                    qnn_regressions.join("\n  ")
                );
            }
            println!(
                "through [qnn:htp-sim, cpu]: {} cases put a partition on qnn:htp-sim; {:.1} s \
                 (summed over threads)",
                ON_QNN.load(Ordering::Relaxed),
                qnn_time.into_inner().unwrap().as_secs_f64()
            );
        }
        Err(e) => println!("qnn: cannot load QNN's HTP simulator: {e}"),
    }
    let regressed = !regressions.is_empty()
        || !level_diff.is_empty()
        || !plugin_diff.is_empty()
        || plugin.is_err()
        || !ov_regressions.is_empty()
        || openvino.is_err()
        || !qnn_regressions.is_empty()
        || qnn.is_err();
    if regressed {
        println!(
            "ratchet: {} listed cases no longer pass: {}",
            regressions.len(),
            regressions.join(" ")
        );
    }
    println!("cpu: {passed} passed, {failed} failed, {skipped} skipped");
    let plugin_skipped = if plugin.is_ok() {
        plugin_random
    } else {
        results.len()
    };
    println!("plugin: {plugin_passed} passed, {plugin_failed} failed, {plugin_skipped} skipped");
    let ov_skipped = if openvino.is_ok() {
        ov_random
    } else {
        results.len()
    };
    println!("openvino: {ov_passed} passed, {ov_failed} failed, {ov_skipped} skipped");
    let qnn_skipped = if qnn.is_ok() {
        qnn_random
    } else {
        results.len()
    };
    println!("qnn: {qnn_passed} passed, {qnn_failed} failed, {qnn_skipped} skipped");
    if regressed {
        std::process::exit(1);
    }
}
