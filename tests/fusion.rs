//! The fusion passes on graphs as PyTorch exports them (tests/fixtures/fusion, written by
//! scripts/make_fusion_models.py): each fused op appears, the unfused ops are gone, and the
//! optimized graph computes what the imported one did. Then the passing ONNX conformance
//! cases and the light models (whole models: run with `--release -- --ignored`) still match
//! their stored outputs after `optimize(All)`.

mod common;

use std::path::{Path, PathBuf};

use xnpu::graph::onnx::DataDir;
use xnpu::{Tensor, Value, ValueType};
use xnpu_graph::passes::{optimize, Level, Options, Report};
use xnpu_graph::Model;

fn fixture(name: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fusion")
        .join(format!("{name}.onnx"));
    xnpu_graph::onnx::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn eval(n: &xnpu_graph::Node, i: &[Option<&Value>]) -> xnpu::Result<Vec<Value>> {
    xnpu_backend_cpu::run_node(n, i)
}

fn optimize_all(model: &mut Model) -> Report {
    let options = Options {
        level: Level::All,
        evaluate: Some(&eval),
        ..Default::default()
    };
    optimize(model, &options).unwrap_or_else(|e| panic!("{}: {e}", model.name))
}

/// Deterministic values in [-1, 1) for each graph input (unknown dims 1).
fn random_inputs(model: &Model, seed: u64) -> Vec<Option<Value>> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let g = &model.graph;
    g.inputs
        .iter()
        .map(|&id| {
            let ValueType::Tensor(t) = &g.values[id].ty else {
                panic!("input {} is not a tensor", g.values[id].name)
            };
            let dims: Vec<usize> = t
                .shape
                .as_ref()
                .map(|s| s.0.iter().map(|d| d.known().unwrap_or(1)).collect())
                .unwrap_or_default();
            let n = dims.iter().product();
            let data = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect();
            Some(Value::Tensor(Tensor::from_vec(dims, data).unwrap()))
        })
        .collect()
}

fn run(model: &Model, inputs: &[Option<Value>]) -> Vec<Value> {
    xnpu_backend_cpu::run_graph(&model.graph, inputs, &[])
        .unwrap_or_else(|e| panic!("{}: {e}", model.name))
}

/// Optimizes the fixture, checks the op counts (`None` means "not present"), and compares
/// the outputs before and after within `rtol` (plus a small absolute floor).
fn check(name: &str, want: &[(&str, usize)], gone: &[&str], rtol: f64) -> Report {
    let mut model = fixture(name);
    let inputs = random_inputs(&model, 7);
    let before = run(&model, &inputs);
    let report = optimize_all(&mut model);
    println!("{name}: {report}\n{}", model.graph);
    let hist = model.op_histogram();
    for &(op, n) in want {
        assert_eq!(
            hist.get(op).copied().unwrap_or(0),
            n,
            "{name}: {op} in {hist:?}"
        );
    }
    for op in gone {
        assert!(!hist.contains_key(op), "{name}: {op} left in {hist:?}");
    }
    let after = run(&model, &inputs);
    assert_eq!(before.len(), after.len());
    for (k, (a, b)) in after.iter().zip(&before).enumerate() {
        common::compare(a, b, rtol, 1e-6).unwrap_or_else(|e| panic!("{name} output {k}: {e}"));
    }
    report
}

#[test]
fn conv_bn_folds_and_activations_fuse() {
    check(
        "conv_bn_act",
        &[("FusedConv", 2)],
        &["BatchNormalization", "Relu", "Clip", "Conv", "Mul", "Add"],
        1e-5,
    );
}

#[test]
fn batch_norm_folds_into_gemm_and_matmul() {
    check(
        "linear_bn",
        &[("FusedGemm", 1), ("MatMulBias", 1)],
        &["BatchNormalization", "Relu", "Gemm", "MatMul"],
        1e-5,
    );
}

#[test]
fn matmul_add_gelu_and_gemm_tanh_fuse() {
    // MatMul+Add → MatMulBias, the erf GELU → Gelu, which then fuses into the MatMulBias;
    // Gemm → Tanh → FusedGemm.
    check(
        "mlp_gelu",
        &[("MatMulBias", 2), ("FusedGemm", 1)],
        &["MatMul", "Add", "Erf", "Div", "Mul", "Gelu", "Gemm", "Tanh"],
        1e-5,
    );
}

#[test]
fn tanh_gelu_fuses() {
    check(
        "gelu_tanh",
        &[("Gelu", 2)],
        &["Tanh", "Pow", "Mul", "Add"],
        1e-4,
    );
}

#[test]
fn layer_norm_fuses() {
    check(
        "layer_norm",
        &[("LayerNormalization", 2), ("Add", 1)],
        &["ReduceMean", "Sqrt", "Div", "Pow", "Mul"],
        1e-5,
    );
}

#[test]
fn rms_norm_fuses() {
    check(
        "rms_norm",
        &[("RMSNormalization", 1)],
        &["ReduceMean", "Sqrt", "Reciprocal", "Pow", "Mul", "Cast"],
        1e-5,
    );
}

#[test]
fn attention_fuses() {
    check(
        "attention",
        &[("Attention", 2)],
        &["Softmax", "MatMul", "Transpose", "Mul", "Div", "Add"],
        1e-4,
    );
}

#[test]
fn graph_outputs_keep_their_names() {
    let mut model = fixture("attention");
    let names = |m: &Model| -> Vec<String> {
        m.graph
            .outputs
            .iter()
            .map(|&v| m.graph.values[v].name.clone())
            .collect()
    };
    let before = names(&model);
    optimize_all(&mut model);
    assert_eq!(names(&model), before);
}

/// The passes of level All beyond Basic.
const FUSIONS: &[&str] = &[
    "conv-bn-folding",
    "matmul-add-fusion",
    "gelu-fusion",
    "layer-norm-fusion",
    "rms-norm-fusion",
    "attention-fusion",
    "activation-fusion",
];

/// Every conformance case listed as passing (tests/onnx_conformance/cpu_passing.txt) still
/// passes after `optimize(All)` (only cases where a fusion fired are run: the others are
/// left as level Basic leaves them).
#[test]
fn conformance_cases_pass_after_optimize_all() {
    let passing = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_conformance/cpu_passing.txt"),
    )
    .unwrap();
    let node_dir = common::cases_dir().join("node");
    let mut failures = Vec::new();
    let mut fired = 0;
    let mut total = 0;
    for case in passing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let dir = node_dir.join(case);
        let Ok(mut model) = xnpu_graph::onnx::load(&dir.join("model.onnx")) else {
            failures.push(format!("{case}: import"));
            continue;
        };
        total += 1;
        let (rtol, atol) = std::fs::read_to_string(dir.join("tolerance.txt"))
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
                Some((it.next()??, it.next()??))
            })
            .unwrap_or((1e-3, 1e-7));
        let in_types: Vec<ValueType> = model
            .graph
            .inputs
            .iter()
            .map(|&v| model.graph.values[v].ty.clone())
            .collect();
        let out_types: Vec<ValueType> = model
            .graph
            .outputs
            .iter()
            .map(|&v| model.graph.values[v].ty.clone())
            .collect();
        let optimize_at = |model: &mut Model, level: Level| {
            let options = Options {
                level,
                evaluate: Some(&eval),
                ..Default::default()
            };
            optimize(model, &options)
        };
        let report = match optimize_at(&mut model, Level::All) {
            Ok(r) => r,
            Err(e) => {
                // Only a regression when the clean-ups alone succeed.
                let mut again = xnpu_graph::onnx::load(&dir.join("model.onnx")).unwrap();
                if optimize_at(&mut again, Level::Basic).is_ok() {
                    failures.push(format!("{case}: optimize: {e}"));
                }
                continue;
            }
        };
        let fusions: usize = report
            .passes
            .iter()
            .filter(|p| FUSIONS.contains(&p.name))
            .map(|p| p.rewrites)
            .sum();
        // Without a fusion the graph is what level Basic gives.
        if fusions == 0 {
            continue;
        }
        fired += 1;
        println!("{case}: {report}");
        let mut sets: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
            })
            .collect();
        sets.sort();
        let numbered = |set: &Path, prefix: &str| -> Vec<PathBuf> {
            (0..)
                .map(|i| set.join(format!("{prefix}_{i}.pb")))
                .take_while(|p| p.exists())
                .collect()
        };
        'sets: for set in sets {
            let dd = DataDir::default();
            let mut inputs: Vec<Option<Value>> = numbered(&set, "input")
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    common::read_value(p, in_types.get(i).unwrap_or(&ValueType::Unknown), &dd).ok()
                })
                .collect();
            inputs.resize(model.graph.inputs.len(), None);
            let got = match xnpu_backend_cpu::run_graph(&model.graph, &inputs, &[]) {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{case}: run: {e}"));
                    break 'sets;
                }
            };
            for (k, p) in numbered(&set, "output").iter().enumerate() {
                let want =
                    common::read_value(p, out_types.get(k).unwrap_or(&ValueType::Unknown), &dd)
                        .unwrap();
                if let Err(e) = got
                    .get(k)
                    .ok_or_else(|| "missing output".to_string())
                    .and_then(|g| common::compare(g, &want, rtol, atol))
                {
                    failures.push(format!("{case}: output {k}: {e}"));
                    break 'sets;
                }
            }
        }
    }
    println!(
        "{total} cases, fusions fired in {fired}, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
