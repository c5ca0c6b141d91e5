//! Derives `capabilities.json` from measurement: every ONNX conformance case and every fusion
//! fixture runs with OpenVINO's CPU device claiming every node it can
//! (strings excepted), the reference CPU backend taking the rest, compile cache off, no
//! fallback; outputs are compared with the stored ones as `tests/onnx_conformance.rs` does.
//! A failing case with more than one op is rerun with OpenVINO claiming one op at a time, to
//! find the op to blame. Per IR op: pass evidence (case, dtypes of the node) and failures.
//!
//! Then the table: an op that passes everywhere is claimed; one whose failures all involve a
//! dtype that no passing node has is claimed for the passing nodes' dtypes; any other failure
//! refuses the op with the reason. The com.microsoft LLM ops OpenVINO's ONNX frontend runs
//! (measured with OpenVINO's Python API) are added as claimed.
//!
//! ```text
//! XNPU_ONNX_CASES=target/onnx-cases cargo run --release -p xnpu-backend-openvino \
//!     --example derive_table -- [--write] [filter]
//! ```
//! `--write` rewrites `backends/openvino/capabilities.json`; the raw evidence goes to
//! `target/openvino-derive.json` either way.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use xnpu::graph::backend::{Backend, CapabilityTable, CompileCache, OpCapability};
use xnpu::graph::onnx::DataDir;
use xnpu::graph::passes::Level;
use xnpu::{Session, SessionOptions, Value, ValueType};
use xnpu_backend_openvino::{OpenVino, OpenVinoBackend, TABLE_JSON};

/// Ops with bodies (not claimed while the table's control_flow is false).
const CONTROL_FLOW: &[&str] = &["If", "Loop", "Scan", "SequenceMap"];

/// The com.microsoft ops OpenVINO 2026.4.1's ONNX frontend runs (shared/reference/openvino.md §9).
const MICROSOFT_OPS: &[&str] = &[
    "GroupQueryAttention",
    "MatMulNBits",
    "RotaryEmbedding",
    "SimplifiedLayerNormalization",
    "SkipSimplifiedLayerNormalization",
];

#[derive(Clone, Debug)]
struct NodeUse {
    op: String,
    dtypes: BTreeSet<String>,
    on_openvino: bool,
}

#[derive(Debug)]
struct CaseResult {
    name: String,
    /// The reference CPU backend passes it.
    cpu_ok: bool,
    nodes: Vec<NodeUse>,
    ov: Result<(), String>,
    /// Per op, when the case failed with several ops: the outcome with only that op on OpenVINO.
    isolated: BTreeMap<String, Result<(), String>>,
}

fn node_uses(session: &Session, ov: Option<usize>) -> Vec<NodeUse> {
    let g = &session.model().graph;
    g.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let dtypes = n
                .inputs
                .iter()
                .flatten()
                .chain(n.outputs.iter().flatten())
                .filter_map(|&v| g.values[v].ty.tensor().map(|t| t.dtype.name().to_string()))
                .collect();
            NodeUse {
                op: n.op.name().to_string(),
                dtypes,
                on_openvino: ov.is_some_and(|b| session.plan().decisions[i].backend == b),
            }
        })
        .collect()
}

fn caught<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("PANIC: {msg}"))
    })
}

fn options(backends: &[&Arc<dyn Backend>]) -> SessionOptions {
    let mut o = SessionOptions::new()
        .level(Level::All)
        .compile_cache(CompileCache::Off);
    for b in backends {
        o = o.backend((*b).clone());
    }
    o.fallback = false;
    o
}

/// A conformance case (checked on its data sets) or a model (one output compared with a
/// reference computed on light inputs).
struct Item {
    name: String,
    case: PathBuf,
    model: PathBuf,
    reference: Option<Value>,
    rtol: f64,
}

fn run(
    it: &Item,
    backends: &[&Arc<dyn Backend>],
    fallback: bool,
) -> (Result<(), String>, Vec<NodeUse>) {
    let session = match caught(|| {
        let mut o = options(backends);
        o.fallback = fallback;
        Session::load_with(&it.model, o).map_err(|e| format!("session: {e}"))
    }) {
        Ok(s) => s,
        Err(e) => return (Err(e), Vec::new()),
    };
    let ov = (backends.len() > 1).then_some(0);
    let uses = node_uses(&session, ov);
    let r = caught(|| match &it.reference {
        None => common::check_case(&session, &it.case),
        Some(expected) => {
            let inputs = common::light_inputs(&session)?;
            let got = session
                .run_positional(inputs)
                .map_err(|e| format!("run: {e}"))?;
            common::compare(&got[0], expected, it.rtol, 1e-6)
        }
    });
    (r, uses)
}

/// Ops a quantised or plain CNN/transformer cannot run without: when refusing any of several
/// ops fixes a multi-op failure, these are the last to be blamed.
const BLAMED_LAST: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "Conv",
    "MatMul",
    "Gemm",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Relu",
    "Cast",
    "Reshape",
    "Transpose",
    "Concat",
    "Clip",
    "Max",
    "Min",
    "Identity",
];

fn table_with(ops: &[&str], control_flow: bool) -> CapabilityTable {
    let mut t = CapabilityTable::from_json(TABLE_JSON).expect("table");
    t.ops = if ops.is_empty() {
        BTreeMap::from([("*".to_string(), OpCapability::default())])
    } else {
        ops.iter()
            .map(|o| (o.to_string(), OpCapability::default()))
            .collect()
    };
    t.refuse_ops.clear();
    t.dtypes = None;
    t.refuse_dtypes = vec!["string".into()];
    t.control_flow = control_flow;
    t
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let write = args.iter().any(|a| a == "--write");
    let verbose = args.iter().any(|a| a == "-v");
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ov = Arc::new(OpenVino::open().expect("OpenVINO"));
    // "2026.4.1-22982-e213a147257-releases/2026/4" → "2026.4.1".
    let version = ov
        .version()
        .split('-')
        .next()
        .unwrap_or_default()
        .to_string();
    let backend = |table: CapabilityTable| -> Arc<dyn Backend> {
        Arc::new(
            OpenVinoBackend::new(ov.clone(), "CPU")
                .expect("openvino:cpu")
                .with_table(table),
        )
    };
    let all = backend(table_with(&[], true));
    let cpu: Arc<dyn Backend> = Arc::new(xnpu_backend_cpu::CpuBackend::default());

    // Conformance cases, fusion fixtures and light models.
    let mut work: Vec<(String, PathBuf, bool)> = Vec::new();
    let node_dir = common::cases_dir().join("node");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&node_dir)
        .expect("cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    for c in cases {
        let n = c.file_name().unwrap().to_string_lossy().into_owned();
        work.push((n, c, true));
    }
    let mut models: Vec<PathBuf> = std::fs::read_dir(root.join("tests/fixtures/fusion"))
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    models.sort();
    // Not the light models: they end in Softmax over logits of ~1e10, where fp32 rounding
    // differences of one part in 1e7 flip the result (tests/openvino.rs compares their logits).
    for m in models {
        let n = m.file_stem().unwrap().to_string_lossy().into_owned();
        work.push((n, m, false));
    }
    if let Some(f) = &filter {
        work.retain(|(n, _, _)| n.contains(f.as_str()));
    }

    // References first (the light models' stored outputs, the fixtures' outputs at level
    // none on the CPU backend).
    let mut items: Vec<Item> = Vec::new();
    for (name, path, is_case) in work {
        let model = if is_case {
            path.join("model.onnx")
        } else {
            path.clone()
        };
        let reference = if is_case {
            None
        } else if name.starts_with("light_") {
            Some(
                common::read_value(
                    &path.with_file_name(format!("{name}_output_0.pb")),
                    &ValueType::Unknown,
                    &DataDir::default(),
                )
                .expect("stored output"),
            )
        } else {
            let s = Session::load_with(&model, SessionOptions::new().level(Level::None))
                .expect("fixture");
            let inputs = common::light_inputs(&s).expect("inputs");
            Some(s.run_positional(inputs).expect("fixture runs").remove(0))
        };
        let rtol = if name.contains("densenet121") {
            2e-3
        } else {
            1e-3
        };
        items.push(Item {
            name,
            case: path,
            model,
            reference,
            rtol,
        });
    }

    std::panic::set_hook(Box::new(|_| {}));
    let t0 = std::time::Instant::now();
    let results: Vec<CaseResult> = parallel(&items, |it| {
        let (cpu_r, cpu_nodes) = run(it, &[&cpu], true);
        let (ov_r, mut nodes) = run(it, &[&all, &cpu], false);
        if nodes.is_empty() {
            // The session failed (OpenVINO could not read or compile the model): every node
            // the measuring table claims was on OpenVINO.
            nodes = cpu_nodes
                .into_iter()
                .map(|n| NodeUse {
                    on_openvino: !n.dtypes.contains("string"),
                    ..n
                })
                .collect();
        }
        let mut isolated = BTreeMap::new();
        let ov_ops: BTreeSet<&str> = nodes
            .iter()
            .filter(|n| n.on_openvino)
            .map(|n| n.op.as_str())
            .collect();
        if ov_r.is_err() && cpu_r.is_ok() && ov_ops.len() > 1 {
            for op in &ov_ops {
                let only = backend(table_with(&[op], true));
                let (r, _) = run(it, &[&only, &cpu], false);
                isolated.insert(op.to_string(), r);
            }
        }
        if verbose {
            let status = match (&cpu_r, &ov_r) {
                (_, Ok(())) => "pass".to_string(),
                (Ok(()), Err(e)) => format!("FAIL {}", common::one_line(e, 300, false)),
                (Err(_), Err(_)) => "fails on cpu too".into(),
            };
            eprintln!("{}: {status}", it.name);
        }
        CaseResult {
            name: it.name.clone(),
            cpu_ok: cpu_r.is_ok(),
            nodes,
            ov: ov_r,
            isolated,
        }
    });
    eprintln!(
        "measured {} in {:.1} s",
        results.len(),
        t0.elapsed().as_secs_f64()
    );

    // Evidence per op.
    let mut ev: BTreeMap<String, Evidence> = BTreeMap::new();
    for r in &results {
        let ov_nodes: Vec<&NodeUse> = r.nodes.iter().filter(|n| n.on_openvino).collect();
        let ops: BTreeSet<&str> = ov_nodes.iter().map(|n| n.op.as_str()).collect();
        for n in &ov_nodes {
            let e = ev.entry(n.op.clone()).or_default();
            match (&r.ov, r.cpu_ok) {
                (Ok(()), _) => e.passes.push((r.name.clone(), n.dtypes.clone())),
                (Err(_), false) => {}
                (Err(why), true) if ops.len() == 1 => {
                    e.fails
                        .push((r.name.clone(), n.dtypes.clone(), why.clone()))
                }
                (Err(_), true) => match r.isolated.get(&n.op) {
                    Some(Ok(())) => e.passes.push((r.name.clone(), n.dtypes.clone())),
                    Some(Err(w)) => e.fails.push((r.name.clone(), n.dtypes.clone(), w.clone())),
                    None => {}
                },
            }
        }
    }

    let mut table = CapabilityTable::from_json(TABLE_JSON).expect("table");
    table.ops.clear();
    table.refuse_ops.clear();
    table.dtypes = None;
    table.control_flow = false;
    table.refuse_dtypes = vec!["string".into()];
    let mut raw = serde_json::Map::new();
    let mut compile_only = Vec::new();
    for (op, e) in &ev {
        let pass_dtypes: BTreeSet<String> =
            e.passes.iter().flat_map(|p| p.1.iter().cloned()).collect();
        // Failures that OpenVINO reports while reading or compiling: the session falls back to
        // the CPU backend for the partition, so they cost speed, not correctness, once the
        // op is proven elsewhere. Wrong results and run-time errors refuse the op.
        let wrong: Vec<&(String, BTreeSet<String>, String)> = e
            .fails
            .iter()
            .filter(|f| !is_compile_failure(&f.2) || e.passes.is_empty())
            .collect();
        // Dtypes that failing nodes have are taken away, the one in most failing nodes first,
        // until no failing node is left; never f32, i64, i32 or bool (the dtypes of ordinary models and of index inputs: a
        // failure there is about attributes or edge values, not the dtype). A failing node
        // left over refuses the op.
        let mut removed: BTreeSet<String> = BTreeSet::new();
        let mut left: Vec<&&(String, BTreeSet<String>, String)> = wrong.iter().collect();
        // Only wrong values can be a dtype's doing; an error is the op's.
        let mut attr_fail = wrong.iter().find(|f| !is_mismatch(&f.2));
        while attr_fail.is_none() && !left.is_empty() {
            let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
            for f in &left {
                for d in
                    f.1.iter()
                        .filter(|d| !["f32", "i64", "i32", "bool"].contains(&d.as_str()))
                {
                    *counts.entry(d).or_default() += 1;
                }
            }
            let Some((d, _)) = counts.into_iter().max_by_key(|x| x.1) else {
                attr_fail = Some(left[0]);
                break;
            };
            let d = d.clone();
            left.retain(|f| !f.1.contains(&d));
            removed.insert(d);
        }
        let allowed: BTreeSet<String> = pass_dtypes.difference(&removed).cloned().collect();
        // A restriction that leaves no f32 node claimed is not a dtype's: refuse instead.
        let still_passing = e
            .passes
            .iter()
            .any(|p| p.1.is_subset(&allowed) && p.1.contains("f32"));
        let subgraphs = CONTROL_FLOW.contains(&op.as_str());
        let decision = if subgraphs {
            Err(format!(
                "ops with bodies are not claimed (control_flow is false): {} of its cases pass on OpenVINO{}",
                e.passes.len(),
                e.fails
                    .first()
                    .map(|f| format!(
                        "; {}",
                        reason(&version, &f.0, &f.2, e.fails.len())
                    ))
                    .unwrap_or_default()
            ))
        } else if e.passes.is_empty() && !wrong.is_empty() {
            Err(reason(&version, &wrong[0].0, &wrong[0].2, wrong.len()))
        } else if let Some(f) = attr_fail {
            Err(reason(&version, &f.0, &f.2, wrong.len()))
        } else if !still_passing && !wrong.is_empty() {
            Err(reason(&version, &wrong[0].0, &wrong[0].2, wrong.len()))
        } else if e.passes.is_empty() {
            continue;
        } else if wrong.is_empty() {
            Ok(OpCapability::default())
        } else {
            eprintln!(
                "{op}: dtypes {:?} taken away ({} failing cases, first {})",
                removed,
                wrong.len(),
                wrong[0].0
            );
            Ok(OpCapability {
                dtypes: Some(allowed.iter().cloned().collect()),
                ..OpCapability::default()
            })
        };
        if decision.is_ok() && e.fails.len() > wrong.len() {
            compile_only.push(format!(
                "{op}: {} of its cases do not compile on OpenVINO (first {})",
                e.fails.len() - wrong.len(),
                e.fails
                    .iter()
                    .find(|f| is_compile_failure(&f.2))
                    .map_or("", |f| f.0.as_str())
            ));
        }
        match decision {
            Ok(c) => {
                table.ops.insert(op.clone(), c);
            }
            Err(why) => {
                table.refuse_ops.insert(op.clone(), why);
            }
        }
        raw.insert(
            op.clone(),
            serde_json::json!({
                "passes": e.passes.iter().map(|p| format!("{} {:?}", p.0, p.1)).collect::<Vec<_>>(),
                "fails": e.fails.iter().map(|f| format!("{} {:?}: {}", f.0, f.1, common::one_line(&f.2, 400, false))).collect::<Vec<_>>(),
            }),
        );
    }

    // Failures that only show with several ops on OpenVINO together (OpenVINO fuses them):
    // (when refusing any of several ops fixes a case, BLAMED_LAST ops go last)
    // rerun every case the CPU backend passes with the table so far, as the conformance
    // runner does; for each failure, refuse the op whose refusal fixes it (the least proven
    // one when several do).
    let evidence = |op: &str| ev.get(op).map_or(0, |e| e.passes.len());
    let cpu_ok: BTreeSet<&str> = results
        .iter()
        .filter(|r| r.cpu_ok)
        .map(|r| r.name.as_str())
        .collect();
    let check_items: Vec<&Item> = items
        .iter()
        .filter(|i| cpu_ok.contains(i.name.as_str()))
        .collect();
    // The ops some case runs on OpenVINO, and matches, with the table as it stands.
    let mut proven: BTreeSet<String> = BTreeSet::new();
    for round in 0..8 {
        let b = backend(table.clone());
        let outcomes = parallel(&check_items, |it| {
            let (r, nodes) = run(it, &[&b, &cpu], true);
            let ops: BTreeSet<String> = nodes
                .into_iter()
                .filter(|n| n.on_openvino)
                .map(|n| n.op)
                .collect();
            (*it, r, ops)
        });
        let fails: Vec<(&Item, String, Vec<String>)> = outcomes
            .iter()
            .filter_map(|(it, r, ops)| {
                r.clone()
                    .err()
                    .map(|e| (*it, e, ops.iter().cloned().collect()))
            })
            .collect();
        proven = outcomes
            .iter()
            .filter(|o| o.1.is_ok())
            .flat_map(|o| o.2.iter().cloned())
            .collect();
        eprintln!("check round {round}: {} failures", fails.len());
        if fails.is_empty() {
            break;
        }
        let mut refused_now: BTreeSet<String> = BTreeSet::new();
        for (it, why, ops) in &fails {
            if ops.iter().any(|o| refused_now.contains(o)) {
                continue;
            }
            let mut fixers: Vec<&String> = ops
                .iter()
                .filter(|op| {
                    let mut t = table.clone();
                    t.ops.remove(op.as_str());
                    t.refuse_ops.insert(op.to_string(), "x".into());
                    run(it, &[&backend(t), &cpu], true).0.is_ok()
                })
                .collect();
            if fixers.is_empty() {
                fixers = ops.iter().collect();
            }
            // Ops NPU deployments cannot do without are blamed last.
            let Some(op) = fixers
                .into_iter()
                .min_by_key(|op| (BLAMED_LAST.contains(&op.as_str()), evidence(op)))
            else {
                panic!("{} fails with no op on OpenVINO: {why}", it.name);
            };
            let others: Vec<&str> = ops
                .iter()
                .filter(|o| *o != op)
                .map(|o| o.as_str())
                .collect();
            let why = format!(
                "{} (with {} also on OpenVINO)",
                reason(&version, &it.name, why, 1),
                if others.is_empty() {
                    "no other op".to_string()
                } else {
                    others.join(", ")
                }
            );
            eprintln!("refusing {op}: {why}");
            table.ops.remove(op.as_str());
            table.refuse_ops.insert(op.clone(), why);
            refused_now.insert(op.clone());
        }
    }

    // Claimed ops that no case places on OpenVINO with the final table (they passed only in
    // cases whose other ops the table refuses, such as control flow around them).
    let stranded: Vec<String> = table
        .ops
        .keys()
        .filter(|op| !proven.contains(*op))
        .cloned()
        .collect();
    for op in stranded {
        let cases: Vec<&str> = ev
            .get(&op)
            .map(|e| e.passes.iter().take(3).map(|p| p.0.as_str()).collect())
            .unwrap_or_default();
        table.ops.remove(&op);
        table.refuse_ops.insert(
            op.clone(),
            format!(
                "unproven: it passes on OpenVINO only beside ops this table refuses ({})",
                cases.join(", ")
            ),
        );
    }
    for op in MICROSOFT_OPS {
        if !table.refuse_ops.contains_key(*op) {
            table.ops.entry(op.to_string()).or_default();
        }
    }
    for c in &compile_only {
        eprintln!("claimed although some cases do not compile: {c}");
    }
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "case": r.name,
                "cpu": r.cpu_ok,
                "openvino": match &r.ov { Ok(()) => "pass".to_string(), Err(e) => common::one_line(e, 400, false) },
                "ops": r.nodes.iter().map(|n| format!("{}{}", n.op, if n.on_openvino { "" } else { "@cpu" })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let out = root.join("target/openvino-derive.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(
            &serde_json::json!({"ops": raw, "cases": cases, "compile_only": compile_only}),
        )
        .unwrap(),
    )
    .expect("write evidence");
    eprintln!("evidence: {}", out.display());
    let mut value = serde_json::to_value(&table).unwrap();
    strip_nulls(&mut value);
    let json = serde_json::to_string_pretty(&value).unwrap() + "\n";
    if write {
        let p = root.join("backends/openvino/capabilities.json");
        std::fs::write(&p, &json).expect("write table");
        eprintln!("wrote {}", p.display());
    } else {
        println!("{json}");
    }
    eprintln!(
        "claimed {} ops, refused {}",
        table.ops.len(),
        table.refuse_ops.len()
    );
}

#[derive(Default)]
struct Evidence {
    passes: Vec<(String, BTreeSet<String>)>,
    fails: Vec<(String, BTreeSet<String>, String)>,
}

/// Runs `f` over `items` on two threads, results in order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, R)>> = Mutex::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(it) = items.get(i) else { break };
                let r = f(it);
                out.lock().unwrap().push((i, r));
            });
        }
    });
    let mut out = out.into_inner().unwrap();
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|x| x.1).collect()
}

/// Drops `null` fields (their defaults), so the table lists only what it says.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn is_mismatch(why: &str) -> bool {
    why.starts_with("output ") || why.contains(" values differ")
}

fn is_compile_failure(why: &str) -> bool {
    why.starts_with("session:") && why.contains("compiling partition")
}

/// A refusal reason from a failure: OpenVINO's message shortened, or the mismatch.
fn reason(version: &str, case: &str, why: &str, n: usize) -> String {
    let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
    let more = if n > 1 {
        format!(", and {} more", n - 1)
    } else {
        String::new()
    };
    if let Some(i) = why.find("No conversion rule found for operations: ") {
        let rest = &why[i + "No conversion rule found for operations: ".len()..];
        let rest = rest.split(" To facilitate").next().unwrap_or(rest);
        return format!(
            "OpenVINO {version}'s ONNX frontend has no conversion rule for {} ({case}{more})",
            common::one_line(rest, 80, false)
        );
    }
    if let Some(i) = why.find("Failed operations detailed log: ") {
        let rest = &why[i + "Failed operations detailed log: ".len()..];
        return format!(
            "OpenVINO {version}'s ONNX frontend fails to convert it ({case}{more}): {}",
            common::one_line(rest.trim_start_matches("-- "), 200, false)
        );
    }
    if is_compile_failure(&why) {
        // The part after OpenVINO's source locations.
        let tail = why
            .rsplit(" failed at ")
            .next()
            .map(|t| t.split_once(": ").map_or(t, |x| x.1))
            .unwrap_or(&why);
        return format!(
            "OpenVINO {version} fails to compile it ({case}{more}): {}",
            common::one_line(tail, 200, false)
        );
    }
    if let Some(rest) = why
        .strip_prefix("run: ")
        .or(Some(why.as_str()))
        .filter(|w| is_mismatch(w))
    {
        return format!(
            "results differ from the reference ({case}{more}): {}",
            common::one_line(rest, 160, false)
        );
    }
    format!(
        "fails on {case}{more}: {}",
        common::one_line(&why, 200, false)
    )
}
