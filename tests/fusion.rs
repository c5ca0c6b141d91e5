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

/// `t` cast to `to` by the CPU backend's Cast.
fn cast(t: &Tensor, to: xnpu::DType) -> Tensor {
    let node = xnpu_graph::Node {
        name: "cast".into(),
        op: xnpu_graph::Op::Elementwise(xnpu::ops::elementwise::Op::Cast(
            xnpu::ops::elementwise::Cast::to(to),
        )),
        inputs: vec![Some(0)],
        outputs: vec![Some(1)],
    };
    let out = xnpu_backend_cpu::run_node(&node, &[Some(&Value::Tensor(t.clone()))]).unwrap();
    out[0].as_tensor().unwrap().clone()
}

/// `MatMul(A, DequantizeLinear(q, scale, zp?))` with `q` a constant `[k, n]` of `qd` blocked
/// along K (`block` per block), scales and zero points drawn from a fixed seed; A `[3, k]`
/// of `float`.
fn qdq_matmul(
    qd: xnpu::DType,
    float: xnpu::DType,
    k: usize,
    n: usize,
    block: usize,
    zp: bool,
) -> Model {
    use xnpu::core::narrow;
    use xnpu::{DType, Shape, TensorType};
    use xnpu_graph::{Graph, Node, Op};
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let (lo, hi) = narrow::int_range(qd).unwrap_or(match qd {
        DType::I8 => (-128, 127),
        _ => (0, 255),
    });
    let span = (hi - lo + 1) as u32;
    let ints = |count: usize, next: &mut dyn FnMut() -> u32| -> Vec<i64> {
        (0..count).map(|_| lo + (next() % span) as i64).collect()
    };
    let int_tensor = |dims: Vec<usize>, v: &[i64]| -> Tensor {
        let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let t = Tensor::from_vec(dims, f).unwrap();
        cast(&t, qd)
    };
    let blocks = k.div_ceil(block);
    let q = int_tensor(vec![k, n], &ints(k * n, &mut next));
    let scales: Vec<f32> = (0..blocks * n)
        .map(|_| 0.01 + (next() % 100) as f32 / 1000.0)
        .collect();
    let scale = Tensor::from_vec(vec![blocks, n], scales).unwrap();
    let scale = cast(&scale, float);
    let mut g = Graph::default();
    let ty = |d: DType, dims: &[usize]| ValueType::Tensor(TensorType::new(d, Shape::known(dims)));
    let a = g.add_value("a", ty(float, &[3, k]));
    g.inputs.push(a);
    let cq = g.add_value("q", ty(qd, &[k, n]));
    g.values[cq].constant = Some(q);
    let cs = g.add_value("scale", ty(float, &[blocks, n]));
    g.values[cs].constant = Some(scale);
    let mut dq_inputs = vec![Some(cq), Some(cs)];
    if zp {
        let z = int_tensor(vec![blocks, n], &ints(blocks * n, &mut next));
        let cz = g.add_value("zp", ty(qd, &[blocks, n]));
        g.values[cz].constant = Some(z);
        dq_inputs.push(Some(cz));
    }
    let w = g.add_value("w", ty(float, &[k, n]));
    g.nodes.push(Node {
        name: "dq".into(),
        op: Op::Nn(xnpu::ops::nn::Op::DequantizeLinear(
            xnpu::ops::nn::DequantizeLinear {
                axis: 0,
                block_size: block,
                output_dtype: None,
            },
        )),
        inputs: dq_inputs,
        outputs: vec![Some(w)],
    });
    let y = g.add_value("y", ty(float, &[3, n]));
    g.nodes.push(Node {
        name: "mm".into(),
        op: Op::Nn(xnpu::ops::nn::Op::MatMul(xnpu::ops::nn::MatMul)),
        inputs: vec![Some(a), Some(w)],
        outputs: vec![Some(y)],
    });
    g.outputs.push(y);
    Model {
        name: format!("qdq_{qd}_{float}_k{k}_n{n}_b{block}_zp{zp}"),
        graph: g,
        opsets: [(String::new(), 21)].into(),
        ir_version: 10,
        producer: String::new(),
        metadata: Default::default(),
    }
}

#[test]
fn blocked_dequantize_matmul_becomes_matmul_nbits_with_the_same_numbers() {
    use xnpu::DType::*;
    let cases = [
        (I4, F32, 64, 8, 32, false),
        (I4, F32, 64, 8, 32, true),
        (U4, F32, 48, 5, 16, false),
        (U4, F32, 100, 7, 32, true),
        (I2, F32, 40, 3, 16, true),
        (U2, F32, 32, 4, 16, false),
        (I8, F32, 64, 6, 32, true),
        (U8, F32, 64, 6, 32, false),
        (I4, F16, 64, 8, 32, true),
    ];
    for (qd, float, k, n, block, zp) in cases {
        let mut model = qdq_matmul(qd, float, k, n, block, zp);
        let name = model.name.clone();
        let inputs = random_inputs(&model, 3);
        let inputs: Vec<Option<Value>> = inputs
            .into_iter()
            .map(|v| {
                let t = v.unwrap().as_tensor().unwrap().clone();
                Some(Value::Tensor(cast(&t, float)))
            })
            .collect();
        let before = run(&model, &inputs);
        optimize_all(&mut model);
        let hist = model.op_histogram();
        assert_eq!(hist.get("MatMulNBits"), Some(&1), "{name}: {hist:?}");
        assert!(!hist.contains_key("DequantizeLinear"), "{name}: {hist:?}");
        // As ONNX Runtime fuses it: A quantised to int8 per block (about 1/127 of each
        // block's largest value).
        fn nbits(m: &mut Model) -> &mut xnpu::ops::nn::MatMulNBits {
            m.graph
                .nodes
                .iter_mut()
                .find_map(|n| match &mut n.op {
                    xnpu_graph::Op::Nn(xnpu::ops::nn::Op::MatMulNBits(p)) => Some(p),
                    _ => None,
                })
                .expect("a MatMulNBits")
        }
        assert_eq!(nbits(&mut model).accuracy_level, 4, "{name}");
        let level4 = run(&model, &inputs);
        common::compare(&level4[0], &before[0], 3e-2, 3e-2)
            .unwrap_or_else(|e| panic!("{name} at level 4: {e}"));
        // With A kept float the weights are DequantizeLinear's exactly. f16: DequantizeLinear
        // rounds each weight to f16 before the product, MatMulNBits does not (a few ulps).
        nbits(&mut model).accuracy_level = 0;
        let exact = run(&model, &inputs);
        let rtol = if float == F16 { 4e-3 } else { 1e-5 };
        common::compare(&exact[0], &before[0], rtol, 1e-4)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn dequantize_matmul_that_does_not_fit_matmul_nbits_is_left_alone() {
    use xnpu::DType::*;
    // block_size 24 is not a power of two (MatMulNBits needs one, >= 16).
    let mut model = qdq_matmul(I4, F32, 48, 4, 24, false);
    optimize_all(&mut model);
    let hist = model.op_histogram();
    assert_eq!(hist.get("MatMulNBits"), None, "{hist:?}");
    assert_eq!(hist.get("DequantizeLinear"), Some(&1), "{hist:?}");
}
