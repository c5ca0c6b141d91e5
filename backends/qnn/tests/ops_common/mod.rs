#![allow(dead_code)]
//! Every op in the QNN mapping table, run through the QNN libraries that execute here (the
//! HTP simulator of the pinned onnxruntime-qnn wheel) and compared with xnpu's CPU
//! reference: with the device SoC (fp32 computed as fp16, as on hardware) at fp16
//! tolerances, and with no SoC (exact fp32) at fp32 tolerances where QNN has an fp32 kernel.
//!
//! This module is shared by tests/ops.rs (the SoC) and tests/ops_fp32.rs (no SoC): they run
//! as separate processes because the simulator keeps the first SoC setting of a process
//! (a later `Qnn` with SoC 0 still computes in fp16), and two `Qnn`s with different SoCs
//! used at once in one process crashed it (SIGSEGV).
//!
//! The models are tests/fixtures/qnn/ops/*.onnx (scripts/make_qnn_fixtures.py), one small
//! static-shape case each; fused ops (FusedConv, FusedGemm, MatMulBias) come from the
//! passes at level `all`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xnpu_backend_qnn::graph::QnnGraph;
use xnpu_backend_qnn::{find_library, Qnn, QnnLibrary};
use xnpu_core::{DType, Tensor, Value, ValueType};
use xnpu_graph::passes::{self, Level};
use xnpu_graph::Model;

/// One fixture: its file stem, the pass level that makes its op, whether its inputs must be
/// positive, and its exact-fp32 tolerance (`None`: QNN has no fp32 kernel for it).
pub struct Case {
    pub file: &'static str,
    pub level: Level,
    pub positive: bool,
    pub fp32_tol: Option<f32>,
}

pub const FP32: Option<f32> = Some(1e-4);

pub const fn c(file: &'static str) -> Case {
    Case {
        file,
        level: Level::None,
        positive: false,
        fp32_tol: FP32,
    }
}

pub const fn fused(file: &'static str) -> Case {
    Case {
        file,
        level: Level::All,
        positive: false,
        fp32_tol: FP32,
    }
}

pub const CASES: &[Case] = &[
    c("add"),
    c("sum"),
    c("sub"),
    c("mul"),
    c("div"),
    c("max"),
    c("min"),
    c("relu"),
    c("sigmoid"),
    c("tanh"),
    Case {
        fp32_tol: None,
        ..c("gelu")
    },
    c("exp"),
    Case {
        positive: true,
        ..c("sqrt")
    },
    c("neg"),
    c("abs"),
    c("matmul"),
    c("matmul_2in"),
    c("reshape"),
    c("flatten"),
    c("squeeze"),
    c("unsqueeze"),
    c("conv"),
    c("conv_strided_dilated"),
    c("conv_group"),
    c("conv_depthwise"),
    c("conv_depthwise_multiplier"),
    c("conv_same_upper"),
    fused("fused_conv_relu"),
    fused("fused_conv_clip"),
    c("maxpool"),
    c("maxpool_ceil"),
    c("maxpool_pads"),
    c("maxpool_same_upper"),
    c("avgpool"),
    c("avgpool_pads"),
    c("avgpool_ceil"),
    c("avgpool_count_pad"),
    c("avgpool_ceil_count_pad"),
    c("global_avgpool"),
    c("gemm"),
    c("gemm_trans_a_alpha_beta"),
    c("gemm_no_c"),
    fused("fused_gemm_sigmoid"),
    fused("fused_gemm_clip_max_only"),
    fused("matmul_bias"),
    fused("matmul_bias_relu"),
    fused("matmul_bias_tanh"),
    c("softmax"),
    c("softmax_axis1"),
    c("transpose"),
    c("transpose_default"),
    c("concat"),
    c("clip"),
    c("clip_max_only"),
    // QNN's LayerNorm is about 1e-3 accurate in its fp32 mode (the reference, §2).
    Case {
        fp32_tol: Some(2e-3),
        ..c("layernorm")
    },
    Case {
        fp32_tol: Some(2e-3),
        ..c("layernorm_axis1_no_bias")
    },
    c("lrn"),
    c("batchnorm"),
    c("batchnorm_2d"),
    // Quantisation rounds x / scale: one step (0.02) apart where fp rounding lands on .5.
    Case {
        file: "qdq",
        level: Level::None,
        positive: false,
        fp32_tol: Some(0.021),
    },
];

pub fn htp() -> Arc<QnnLibrary> {
    let path = find_library("libQnnHtp.so")
        .unwrap_or_else(|e| panic!("{e}\n(scripts/test.sh installs onnxruntime-qnn into .venv)"));
    Arc::new(QnnLibrary::open(&path).unwrap())
}

pub fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/qnn/ops")
        .join(format!("{file}.onnx"))
}

pub fn load(case: &Case) -> (Model, Model) {
    let reference = xnpu_graph::onnx::load(&fixture(case.file)).unwrap();
    let mut m = reference.clone();
    passes::optimize(
        &mut m,
        &passes::Options {
            level: case.level,
            ..Default::default()
        },
    )
    .unwrap();
    (reference, m)
}

/// The op names of a case's graph (after its passes).
pub fn ops_of(m: &Model) -> BTreeSet<&'static str> {
    m.graph.nodes.iter().map(|n| n.op.name()).collect()
}

/// Deterministic inputs of order 1 (positive ones away from 0 when asked).
pub fn inputs(m: &Model, positive: bool) -> Vec<Option<Value>> {
    m.graph
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &id)| {
            let ValueType::Tensor(t) = &m.graph.values[id].ty else {
                panic!("input {k} has no tensor type")
            };
            assert_eq!(t.dtype, DType::F32);
            let dims = t.shape.as_ref().unwrap().as_known().unwrap().to_vec();
            let n: usize = dims.iter().product();
            let v = (0..n)
                .map(|i| {
                    let x = ((i * 7 + k * 13) as f32 * 0.61).sin();
                    if positive {
                        x.abs() + 0.1
                    } else {
                        x
                    }
                })
                .collect();
            Some(Value::Tensor(Tensor::from_vec(dims, v).unwrap()))
        })
        .collect()
}

/// Runs a case on `q`; the max absolute error vs the reference, and the max |reference|.
pub fn run_case(q: &Arc<Qnn>, case: &Case) -> Result<(f32, f32), String> {
    let (reference, m) = load(case);
    let xs = inputs(&m, case.positive);
    let want =
        xnpu_backend_cpu::run_graph(&reference.graph, &xs, &[]).map_err(|e| e.to_string())?;
    let g = QnnGraph::build(q.clone(), &m.graph).map_err(|e| e.to_string())?;
    let bound: Vec<Value> = xs.into_iter().map(Option::unwrap).collect();
    let got = g.run(&bound).map_err(|e| e.to_string())?;
    let (a, b) = (got[0].as_tensor().unwrap(), want[0].as_tensor().unwrap());
    if a.shape() != b.shape() {
        return Err(format!("shape {:?}, expected {:?}", a.shape(), b.shape()));
    }
    let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    let mut err = 0f32;
    let mut big = 0f32;
    for (x, y) in a.iter().zip(&b) {
        err = err.max((x - y).abs());
        big = big.max(y.abs());
        if x.is_nan() != y.is_nan() {
            return Err(format!("NaN mismatch: {x} vs {y}"));
        }
    }
    Ok((err, big))
}

/// Runs every case on `soc`; panics listing each case (and its ops) off tolerance.
pub fn run_all(soc: u32, tol: impl Fn(&Case, f32) -> Option<f32>) {
    let q = Arc::new(Qnn::new(htp(), soc).unwrap());
    let mut failures = Vec::new();
    for case in CASES {
        let (_, m) = load(case);
        let ops: Vec<_> = ops_of(&m).into_iter().collect();
        let label = format!("{} ({})", case.file, ops.join(", "));
        match run_case(&q, case) {
            Ok((err, big)) => match tol(case, big) {
                Some(t) if err > t => failures.push(format!("{label}: max error {err} > {t}")),
                Some(_) => println!("soc {soc}: {label}: max error {err:.3e} (max |y| {big:.2})"),
                None => println!("soc {soc}: {label}: skipped (no fp32 kernel)"),
            },
            Err(e) => {
                if tol(case, 1.0).is_some() {
                    failures.push(format!("{label}: {e}"))
                } else {
                    println!("soc {soc}: {label}: refused as expected: {e}")
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
