//! The capability table (`capabilities.json`, derived by `examples/derive_table.rs`) proven
//! against OpenVINO's CPU device: every claimed op runs on openvino:cpu (the session's plan
//! says so) in at least one ONNX conformance case, contrib-op case, fusion fixture or light
//! model that then
//! matches its reference; every refused op has a reason, and the `--explain` table of a case
//! with that op shows it. The com.microsoft ops OpenVINO runs that xnpu's importer does not
//! know yet are listed as claimed, not yet in xnpu's IR.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use xnpu::graph::backend::{Backend, CapabilityTable, CompileCache, DeviceKind};
use xnpu::graph::onnx::DataDir;
use xnpu::graph::passes::Level;
use xnpu::{Session, SessionOptions, ValueType};
use xnpu_backend_openvino::{capability_table, OpenVino, OpenVinoBackend};

/// Claimed ops of the com.microsoft domain (measured with OpenVINO's Python API).
const MICROSOFT_OPS: &[&str] = &[
    "GroupQueryAttention",
    "MatMulNBits",
    "RotaryEmbedding",
    "SkipSimplifiedLayerNormalization",
];

struct Item {
    name: String,
    /// The conformance case folder, or the model for fixtures and light models.
    path: PathBuf,
    is_case: bool,
}

impl Item {
    fn model(&self) -> PathBuf {
        if self.is_case {
            self.path.join("model.onnx")
        } else {
            self.path.clone()
        }
    }
}

/// What one model showed: ops placed on OpenVINO (when it matched its reference) and the
/// explain text (for refused ops).
#[derive(Default)]
struct Seen {
    proven: BTreeMap<String, String>,
    explained: BTreeMap<String, String>,
    failures: Vec<String>,
}

fn items() -> Vec<Item> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node = common::cases_dir().join("node");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&node)
        .unwrap_or_else(|e| panic!("no cases at {} ({e}); run scripts/test.sh", node.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    // The com.microsoft (contrib) op cases, made by scripts/gen_contrib_cases.py.
    let contrib = std::env::var_os("XNPU_CONTRIB_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/contrib-cases"));
    cases.extend(
        std::fs::read_dir(&contrib)
            .unwrap_or_else(|e| {
                panic!(
                    "no contrib cases at {} ({e}); run scripts/test.sh",
                    contrib.display()
                )
            })
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("model.onnx").is_file()),
    );
    cases.sort();
    let mut models: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures/fusion"))
        .expect("tests/fixtures/fusion")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    models.sort();
    models.extend(common::light_models());
    // Models first: they carry the fused ops, which no conformance case has.
    let mut out: Vec<Item> = models
        .into_iter()
        .map(|m| Item {
            name: m.file_stem().unwrap().to_string_lossy().into_owned(),
            path: m,
            is_case: false,
        })
        .collect();
    out.extend(cases.into_iter().map(|c| Item {
        name: c.file_name().unwrap().to_string_lossy().into_owned(),
        path: c,
        is_case: true,
    }));
    out
}

/// Checks a session's outputs: a case against its data sets; a fixture against the CPU
/// backend at level none; a light model against its stored output.
fn check(session: &Session, it: &Item) -> Result<(), String> {
    if it.is_case {
        return common::check_case(session, &it.path);
    }
    let inputs = common::light_inputs(session)?;
    let got = session
        .run_positional(inputs.clone())
        .map_err(|e| format!("run: {e}"))?;
    let (expected, rtol) = if it.name.starts_with("light_") {
        let p = it.path.with_file_name(format!("{}_output_0.pb", it.name));
        let v = common::read_value(&p, &ValueType::Unknown, &DataDir::default())
            .map_err(|e| e.to_string())?;
        (
            v,
            if it.name.contains("densenet121") {
                2e-3
            } else {
                1e-3
            },
        )
    } else {
        let reference = Session::load_with(it.model(), SessionOptions::new().level(Level::None))
            .map_err(|e| e.to_string())?;
        let mut out = reference
            .run_positional(inputs)
            .map_err(|e| e.to_string())?;
        (out.remove(0), 1e-3)
    };
    common::compare(&got[0], &expected, rtol, 1e-6)
}

/// Whether the reference CPU backend alone passes a case (a case it fails proves nothing).
fn cpu_passes(it: &Item) -> bool {
    Session::load_with(it.model(), SessionOptions::new())
        .is_ok_and(|s| common::check_case(&s, &it.path).is_ok())
}

#[test]
fn the_table_is_proven_on_openvino_cpu() {
    let ov = Arc::new(OpenVino::open().unwrap_or_else(|e| {
        panic!("{e}\n(scripts/test.sh installs the openvino wheel into .venv)")
    }));
    let table: CapabilityTable = capability_table("openvino:cpu", DeviceKind::Cpu).unwrap();
    assert!(
        !table.ops.contains_key("*"),
        "the table claims every op (\"*\"): derive it with examples/derive_table.rs"
    );
    for (op, why) in &table.refuse_ops {
        assert!(!why.trim().is_empty(), "{op} is refused without a reason");
        assert!(
            !table.ops.contains_key(op),
            "{op} is both claimed and refused"
        );
    }
    let openvino: Arc<dyn Backend> = Arc::new(OpenVinoBackend::new(ov, "CPU").unwrap());
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::default());

    // The importer's ops: a com.microsoft op it does not know is not in xnpu's IR yet.
    let imported: BTreeSet<(&str, &str)> = xnpu::graph::onnx::ops::Registry::standard()
        .ops()
        .into_iter()
        .collect();
    let not_in_ir: BTreeSet<&str> = MICROSOFT_OPS
        .iter()
        .copied()
        .filter(|op| {
            !imported
                .iter()
                .any(|(d, o)| o == op && (*d == "com.microsoft" || d.is_empty() || *d == "ai.onnx"))
        })
        .collect();

    let claimed: BTreeSet<String> = table.ops.keys().cloned().collect();
    let refused: BTreeSet<String> = table.refuse_ops.keys().cloned().collect();
    let items = items();
    let seen = Mutex::new(Seen::default());
    let next = AtomicUsize::new(0);
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(it) = items.get(i) else { break };
                // Skip a case once every op it has (as imported) is proven or explained.
                if it.is_case {
                    let Ok(model) = xnpu::graph::onnx::load(&it.model()) else {
                        continue;
                    };
                    let s = seen.lock().unwrap();
                    let wanted = model.graph.nodes.iter().any(|n| {
                        let op = n.op.name();
                        (claimed.contains(op) && !s.proven.contains_key(op))
                            || (refused.contains(op) && !s.explained.contains_key(op))
                    });
                    if !wanted {
                        continue;
                    }
                }
                let options = SessionOptions::new()
                    .level(Level::All)
                    .compile_cache(CompileCache::Off)
                    .backend(openvino.clone())
                    .backend(cpu.clone());
                let session = match Session::load_with(it.model(), options) {
                    Ok(s) => s,
                    Err(_) => continue,
                };
                let explain = session.explain();
                let graph = &session.model().graph;
                let on_openvino: BTreeSet<&str> = graph
                    .nodes
                    .iter()
                    .zip(&session.plan().decisions)
                    .filter(|(_, d)| d.backend == 0)
                    .map(|(n, _)| n.op.name())
                    .collect();
                let mut s = seen.lock().unwrap();
                for n in &graph.nodes {
                    let op = n.op.name();
                    if let Some(why) = table.refuse_ops.get(op) {
                        if explain.contains(why.as_str()) {
                            s.explained.entry(op.to_string()).or_insert(it.name.clone());
                        }
                    }
                }
                let wanted = on_openvino
                    .iter()
                    .any(|op| claimed.contains(*op) && !s.proven.contains_key(*op));
                drop(s);
                if !wanted {
                    continue;
                }
                let r = check(&session, it);
                let mut s = seen.lock().unwrap();
                match r {
                    Ok(()) => {
                        for op in on_openvino {
                            s.proven
                                .entry(op.to_string())
                                .or_insert_with(|| it.name.clone());
                        }
                    }
                    Err(e) if !it.is_case || cpu_passes(it) => {
                        s.failures.push(format!(
                            "{} (ops on openvino:cpu: {}): {}",
                            it.name,
                            on_openvino.iter().copied().collect::<Vec<_>>().join(", "),
                            common::one_line(&e, 200, false)
                        ));
                    }
                    Err(_) => {}
                }
            });
        }
    });
    let seen = seen.into_inner().unwrap();
    println!(
        "{} claimed ops proven, {} refused ops explained, in {:.1} s",
        seen.proven.len(),
        seen.explained.len(),
        t0.elapsed().as_secs_f64()
    );
    for (op, case) in &seen.proven {
        if claimed.contains(op) {
            println!("  claimed {op}: {case}");
        }
    }
    let unproven: Vec<&String> = claimed
        .iter()
        .filter(|op| !seen.proven.contains_key(*op) && !not_in_ir.contains(op.as_str()))
        .collect();
    let pending: Vec<&str> = claimed
        .iter()
        .filter(|op| !seen.proven.contains_key(*op) && not_in_ir.contains(op.as_str()))
        .map(|s| s.as_str())
        .collect();
    if !pending.is_empty() {
        println!("claimed, not yet in xnpu's IR: {}", pending.join(", "));
    }
    let unexplained: Vec<&String> = refused
        .iter()
        .filter(|op| !seen.explained.contains_key(*op))
        .collect();
    let mut problems = Vec::new();
    if !seen.failures.is_empty() {
        problems.push(format!(
            "cases that the CPU backend passes fail with the table's ops on openvino:cpu:\n  {}",
            seen.failures.join("\n  ")
        ));
    }
    if !unproven.is_empty() {
        problems.push(format!(
            "claimed ops no case runs on openvino:cpu and matches: {}",
            unproven
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !unexplained.is_empty() {
        problems.push(format!(
            "refused ops whose reason no explain table shows: {}",
            unexplained
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
