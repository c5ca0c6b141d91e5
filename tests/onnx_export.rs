//! ONNX export round trip: every ONNX conformance node case is imported, exported back to
//! ONNX bytes, imported again and run on the reference CPU backend, then compared with the
//! expected outputs (onnx's tolerances). Every case listed in
//! `tests/onnx_conformance/cpu_passing.txt` (those that pass without export) must also pass
//! after the round trip. The light models are round-tripped too, as imported and after the
//! graph passes plus a test-local fusion (Conv/Gemm + activation → FusedConv/FusedGemm,
//! MatMul + Add → MatMulBias, which export decomposes again); the exported files are written
//! to `target/export-check/` for `scripts/check_export.py`.
//!
//! Arguments: an optional substring filter on case names; `-v` prints failures in full.
//! `XNPU_EXPORT_DUMP_NODES=1` also writes every exported node case to
//! `target/export-check/node/` (and the exports at other opsets to `opset<N>/`).
//! `XNPU_EXPORT_RAISE=18,1` sets the opsets of the extra runs (1: the oldest possible). The last line is `export round-trip: N passed, N failed`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

mod common;

use common::{cases_dir, compare, light_inputs, read_value};
use xnpu::graph::onnx::{export, DataDir};
use xnpu::graph::passes::{optimize, Level, Options};
use xnpu::graph::{Graph, Op};
use xnpu::{Session, SessionOptions, Tensor, Value, ValueType};

fn check_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/export-check")
}

fn ratchet_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_conformance/cpu_passing.txt")
}

/// Import → export → import: the session of the re-imported model, and the exported bytes.
/// A session over exactly the graph given (pass level `none`), so that what runs is what the
/// exporter wrote.
fn as_is(bytes: Vec<u8>, name: &str) -> xnpu::Result<Session> {
    Session::new(
        xnpu::graph::onnx::load_bytes(bytes.into(), name, None)?,
        SessionOptions::new().level(Level::None),
    )
}

fn round_trip(path: &Path) -> std::result::Result<(Session, Vec<u8>), String> {
    let model = xnpu::graph::onnx::load(path).map_err(|e| format!("import: {e}"))?;
    let bytes = export::to_bytes(&model).map_err(|e| format!("export: {e}"))?;
    let session = as_is(bytes.clone(), &model.name).map_err(|e| format!("re-import: {e}"))?;
    Ok((session, bytes))
}

fn run_case(case: &Path, dump: bool) -> std::result::Result<(), String> {
    let (session, bytes) = round_trip(&case.join("model.onnx"))?;
    if dump {
        let dir = check_dir().join("node");
        let _ = std::fs::create_dir_all(&dir);
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let _ = std::fs::write(dir.join(format!("{name}.onnx")), &bytes);
    }
    common::check_case(&session, case)
}

/// How the round trip at a raised opset went.
enum Raised {
    Pass,
    Fail(String),
    /// The exporter refused (an op has no form at that opset).
    Refused,
}

/// Round trip with the model's default opset raised to at least `target` before export:
/// exercises the rewrites of attributes that became inputs.
fn run_case_raised(case: &Path, target: i64) -> Raised {
    let mut model = match xnpu::graph::onnx::load(&case.join("model.onnx")) {
        Ok(m) => m,
        Err(e) => return Raised::Fail(format!("import: {e}")),
    };
    // A target of 1 asks for the oldest opset each model can be written at.
    let own = model.opsets.get("").copied().unwrap_or(1);
    let v = if target <= 1 { 1 } else { own.max(target) };
    model.opsets.insert(String::new(), v);
    let bytes = match export::to_bytes(&model) {
        Ok(b) => b,
        Err(e) if e.kind() == xnpu::core::error::ErrorKind::Unsupported => return Raised::Refused,
        Err(e) => return Raised::Fail(format!("export: {e}")),
    };
    if std::env::var_os("XNPU_EXPORT_DUMP_NODES").is_some() {
        let dir = check_dir().join(format!("opset{target}"));
        let _ = std::fs::create_dir_all(&dir);
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        let _ = std::fs::write(dir.join(format!("{name}.onnx")), &bytes);
    }
    let session = match as_is(bytes, &model.name) {
        Ok(s) => s,
        Err(e) => return Raised::Fail(format!("re-import: {e}")),
    };
    match common::check_case(&session, case) {
        Ok(()) => Raised::Pass,
        Err(e) => Raised::Fail(e),
    }
}

/// Whether the case passes without the round trip.
fn run_direct(case: &Path) -> bool {
    match Session::load(case.join("model.onnx")) {
        Ok(s) => common::check_case(&s, case).is_ok(),
        Err(_) => false,
    }
}

fn catch<T>(f: impl FnOnce() -> std::result::Result<T, String>) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("PANIC: {msg}"))
    })
}

// ---------- light models ----------

/// How many fused ops (which the exporter writes back as standard ops) a graph has.
fn count_fused(g: &Graph) -> usize {
    g.nodes
        .iter()
        .filter(|n| matches!(n.op.name(), "FusedConv" | "FusedGemm" | "MatMulBias"))
        .count()
}

/// Round-trips one light model (after the passes when `optimized`), runs it and compares.
fn light_one(model_path: &Path, optimized: bool) -> std::result::Result<usize, String> {
    let stem = model_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let mut model = xnpu::graph::onnx::load(model_path).map_err(|e| format!("import: {e}"))?;
    let mut fused = 0;
    if optimized {
        optimize(
            &mut model,
            &Options {
                level: Level::All,
                evaluate: Some(&xnpu_backend_cpu::run_node),
                ..Options::default()
            },
        )
        .map_err(|e| format!("passes: {e}"))?;
        fused = count_fused(&model.graph);
    }
    let bytes = export::to_bytes(&model).map_err(|e| format!("export: {e}"))?;
    let dir = check_dir();
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!(
        "{stem}{}.onnx",
        if optimized { "_optimized" } else { "" }
    ));
    std::fs::write(&file, &bytes).map_err(|e| format!("write {}: {e}", file.display()))?;
    let session = Session::load_with(&file, SessionOptions::new().level(Level::None))
        .map_err(|e| format!("re-import: {e}"))?;
    let inputs = light_inputs(&session)?;
    let got = session
        .run_positional(inputs)
        .map_err(|e| format!("run: {e}"))?;
    let expected_path = model_path.with_file_name(format!("{stem}_output_0.pb"));
    let expected = read_value(&expected_path, &ValueType::Unknown, &DataDir::default())
        .map_err(|e| e.to_string())?;
    let rtol = if stem.contains("densenet121") {
        2e-3
    } else {
        1e-3
    };
    compare(&got[0], &expected, rtol, 1e-7)?;
    Ok(fused)
}

fn light_models(filter: Option<&str>) -> usize {
    let dir = cases_dir().join("light");
    let mut models: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
            .collect(),
        Err(e) => {
            println!("light models: none at {} ({e})", dir.display());
            return 1;
        }
    };
    models.sort();
    if let Some(f) = filter {
        models.retain(|m| m.to_string_lossy().contains(f));
    }
    let jobs: Vec<(PathBuf, bool)> = models
        .iter()
        .flat_map(|m| [(m.clone(), false), (m.clone(), true)])
        .collect();
    let results: Mutex<BTreeMap<String, std::result::Result<usize, String>>> = Mutex::default();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads.min(jobs.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((m, opt)) = jobs.get(i) else { break };
                let name = format!(
                    "{}{}",
                    m.file_name().unwrap_or_default().to_string_lossy(),
                    if *opt { " (optimized)" } else { "" }
                );
                let r = catch(|| light_one(m, *opt));
                results.lock().unwrap().insert(name, r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(0) => println!("light {name}: ok"),
            Ok(n) => println!("light {name}: ok ({n} fused ops exported decomposed)"),
            Err(e) => {
                failed += 1;
                println!("light {name}: FAILED: {e}");
            }
        }
    }
    println!(
        "light models round-trip: {} passed, {failed} failed",
        results.len() - failed
    );
    failed
}

/// Small models with each fused op (and each fused activation form), run as built and after
/// the round trip (where they are decomposed); the outputs must agree. Returns failures.
fn fused_synthetic() -> usize {
    use xnpu::graph::{Model, Node};
    use xnpu::ops::elementwise::ActivationKind;
    use xnpu::ops::nn::{self as nn, FusedActivation, FusedConv, FusedGemm, MatMulBias, Window};
    use xnpu::{DType, Shape, TensorType};

    let f32t = |d: &[usize]| ValueType::Tensor(TensorType::new(DType::F32, Shape::known(d)));
    let data = |d: &[usize], k: f32| {
        let n: usize = d.iter().product();
        Tensor::from_vec(
            d.to_vec(),
            (0..n)
                .map(|i| ((i as f32 * 0.37 + k).sin()) * 3.0)
                .collect(),
        )
        .unwrap()
    };
    let acts = [
        FusedActivation::Activation(ActivationKind::Relu),
        FusedActivation::Activation(ActivationKind::LeakyRelu { alpha: 0.1 }),
        FusedActivation::Activation(ActivationKind::HardSigmoid {
            alpha: 0.3,
            beta: 0.4,
        }),
        FusedActivation::Tanh,
        FusedActivation::Clip {
            min: -1.0,
            max: 2.5,
        },
    ];
    // (name, op, input dims [x, w, bias], output dims)
    type Case = (String, nn::Op, [Vec<usize>; 3], Vec<usize>);
    let mut cases: Vec<Case> = Vec::new();
    for (i, a) in acts.iter().enumerate() {
        cases.push((
            format!("FusedConv/{}", a.name()),
            nn::Op::FusedConv(FusedConv {
                conv: nn::Conv {
                    window: Window {
                        pads: vec![1, 1, 1, 1],
                        ..Window::default()
                    },
                    group: 1,
                },
                activation: *a,
            }),
            [vec![1, 2, 4, 4], vec![3, 2, 3, 3], vec![3]],
            vec![1, 3, 4, 4],
        ));
        cases.push((
            format!("FusedGemm/{}", a.name()),
            nn::Op::FusedGemm(FusedGemm {
                gemm: nn::Gemm {
                    alpha: 0.5,
                    beta: 2.0,
                    trans_a: false,
                    trans_b: i % 2 == 0,
                },
                activation: *a,
            }),
            [
                vec![3, 4],
                if i % 2 == 0 { vec![5, 4] } else { vec![4, 5] },
                vec![5],
            ],
            vec![3, 5],
        ));
        cases.push((
            format!("MatMulBias/{}", a.name()),
            nn::Op::MatMulBias(MatMulBias {
                activation: Some(*a),
            }),
            [vec![2, 3, 4], vec![4, 5], vec![5]],
            vec![2, 3, 5],
        ));
    }
    cases.push((
        "MatMulBias/none".into(),
        nn::Op::MatMulBias(MatMulBias { activation: None }),
        [vec![2, 3, 4], vec![4, 5], vec![5]],
        vec![2, 3, 5],
    ));
    let mut failed = 0;
    for (name, op, dims, out) in cases {
        let mut g = Graph::default();
        let x = g.add_value("x", f32t(&dims[0]));
        let w = g.add_value("w", f32t(&dims[1]));
        let b = g.add_value("b", f32t(&dims[2]));
        let y = g.add_value("y", f32t(&out));
        g.values[w].constant = Some(data(&dims[1], 1.0));
        g.values[b].constant = Some(data(&dims[2], 2.0));
        g.inputs = vec![x];
        g.outputs = vec![y];
        g.nodes.push(Node {
            name: "fused".into(),
            op: Op::Nn(op),
            inputs: vec![Some(x), Some(w), Some(b)],
            outputs: vec![Some(y)],
        });
        let model = Model {
            name: format!("{name}.onnx"),
            graph: g,
            opsets: BTreeMap::from([(String::new(), 13)]),
            ir_version: 7,
            ..Model::default()
        };
        let input = vec![Some(Value::Tensor(data(&dims[0], 0.0)))];
        let r = catch(|| {
            let want = Session::new(model.clone(), SessionOptions::new().level(Level::None))
                .map_err(|e| e.to_string())?
                .run_positional(input.clone())
                .map_err(|e| format!("run as built: {e}"))?;
            let bytes = export::to_bytes(&model).map_err(|e| format!("export: {e}"))?;
            let back = as_is(bytes, &model.name).map_err(|e| format!("re-import: {e}"))?;
            if back
                .model()
                .op_histogram()
                .keys()
                .any(|k| k.starts_with("Fused") || *k == "MatMulBias")
            {
                return Err("a fused op was not decomposed".into());
            }
            let got = back
                .run_positional(input.clone())
                .map_err(|e| format!("run: {e}"))?;
            compare(&got[0], &want[0], 1e-5, 1e-6)
        });
        if let Err(e) = r {
            failed += 1;
            println!("fused {name}: FAILED: {e}");
        }
    }
    println!(
        "fused ops round-trip: {} passed, {failed} failed",
        acts.len() * 3 + 1 - failed
    );
    failed
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let verbose = args.iter().any(|a| a == "-v");
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let dump = std::env::var_os("XNPU_EXPORT_DUMP_NODES").is_some();
    let root = cases_dir().join("node");
    let mut cases: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) => {
            eprintln!(
                "onnx_export: no cases at {} ({e}); generate them with scripts/test.sh",
                root.display()
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

    std::panic::set_hook(Box::new(|_| {}));
    let results: Mutex<BTreeMap<String, std::result::Result<(), String>>> = Mutex::default();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let name = case
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let outcome = catch(|| run_case(case, dump));
                results.lock().unwrap().insert(name, outcome);
            });
        }
    });

    let results = results.into_inner().unwrap();
    let ratchet: BTreeSet<String> = std::fs::read_to_string(ratchet_file())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let (mut passed, mut failed) = (0, 0);
    let mut regressions = Vec::new();
    for (name, outcome) in &results {
        match outcome {
            Ok(()) => passed += 1,
            Err(why) => {
                failed += 1;
                if !ratchet.contains(name) {
                    continue;
                }
                // A listed case: check that it still passes without the round trip.
                let case = root.join(name);
                if !catch(|| Ok(run_direct(&case))).unwrap_or(false) {
                    println!("FAIL {name}: also fails without export");
                    continue;
                }
                let why = common::one_line(why, 300, verbose);
                println!("FAIL {name}: {why}");
                regressions.push(name.clone());
            }
        }
    }
    // The listed cases again, exported at a raised default opset (exercises the rewrites
    // of attributes that became inputs) and at the oldest opset each model allows (the
    // attribute forms).
    let targets: Vec<i64> = match std::env::var("XNPU_EXPORT_RAISE") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![18, 1],
    };
    for target in targets {
        let listed: Vec<&String> = results.keys().filter(|n| ratchet.contains(*n)).collect();
        let raised: Mutex<BTreeMap<String, Raised>> = Mutex::default();
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = listed.get(i) else { break };
                    let case = root.join(name);
                    let r =
                        catch(|| Ok(run_case_raised(&case, target))).unwrap_or_else(Raised::Fail);
                    raised.lock().unwrap().insert(name.to_string(), r);
                });
            }
        });
        let (mut r_pass, mut r_fail, mut r_refused) = (0, 0, 0);
        for (name, r) in raised.into_inner().unwrap() {
            match r {
                Raised::Pass => r_pass += 1,
                Raised::Refused => r_refused += 1,
                Raised::Fail(why) => {
                    r_fail += 1;
                    let why = common::one_line(&why, 300, verbose);
                    println!("OPSET {target} FAIL {name}: {why}");
                }
            }
        }
        let what = if target <= 1 {
            "at the oldest opset possible".to_string()
        } else {
            format!("at opset >= {target}")
        };
        println!(
            "export {what}: {r_pass} passed, {r_fail} failed, {r_refused} refused (no form at that opset)"
        );
    }

    let light_failed = light_models(filter.as_deref()) + fused_synthetic();
    let _ = std::panic::take_hook();
    if !regressions.is_empty() {
        println!(
            "export: {} cases pass without export but not after the round trip: {}",
            regressions.len(),
            regressions.join(" ")
        );
    }
    // With XNPU_PYTHON (scripts/test.sh sets it to the venv's python), the exported light
    // models also go through onnx's checker and load into ONNX Runtime.
    let mut checker_failed = false;
    if let (Some(py), None) = (std::env::var_os("XNPU_PYTHON"), filter.as_deref()) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_export.py");
        match std::process::Command::new(py)
            .arg(script)
            .arg(check_dir())
            .output()
        {
            Ok(out) => {
                print!("{}", String::from_utf8_lossy(&out.stdout));
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                checker_failed = !out.status.success();
            }
            Err(e) => {
                println!("check_export.py: cannot run python: {e}");
                checker_failed = true;
            }
        }
    }
    println!("export round-trip: {passed} passed, {failed} failed");
    if !regressions.is_empty() || light_failed > 0 || checker_failed {
        std::process::exit(1);
    }
}
