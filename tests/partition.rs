//! Partitioning across backends, with capability tables that are test data
//! (`tests/fixtures/tables/`): partitions are convex, every refusal keeps its reason, and a
//! model run across two CPU backend instances configured with those tables gives exactly
//! what the single CPU backend gives (the same kernels run, so the results are bitwise equal).

mod common;

use std::path::Path;
use std::sync::Arc;

use xnpu::graph::backend::{Backend, CapabilityTable};
use xnpu::graph::ir::{Graph, Node, Op, ValueId};
use xnpu::graph::partition::PartitionOptions;
use xnpu::graph::passes::Level;
use xnpu::graph::Model;
use xnpu::ops::{elementwise as ew, nn, reduce, tensor};
use xnpu::{DType, Dim, Session, SessionOptions, Shape, Tensor, TensorType, Value, ValueType};
use xnpu_backend_cpu::CpuBackend;

fn table(name: &str) -> Arc<dyn Backend> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tables")
        .join(name);
    Arc::new(CpuBackend::with_table(
        CapabilityTable::load(&path).unwrap(),
    ))
}

fn cpu() -> Arc<dyn Backend> {
    Arc::new(CpuBackend::new())
}

fn ty(dtype: DType, dims: &[Dim]) -> ValueType {
    ValueType::Tensor(TensorType::new(dtype, Shape(dims.to_vec())))
}

fn k(n: usize) -> Dim {
    Dim::Known(n)
}

fn batch() -> Dim {
    Dim::Sym("batch".into())
}

/// A small graph builder over the IR.
struct B {
    g: Graph,
}

impl B {
    fn new() -> B {
        B {
            g: Graph::default(),
        }
    }
    fn input(&mut self, name: &str, t: ValueType) -> ValueId {
        let v = self.g.add_value(name, t);
        self.g.inputs.push(v);
        v
    }
    fn weight(&mut self, name: &str, dims: &[usize], seed: u32) -> ValueId {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32
                    / 500.0
                    - 1.0
            })
            .collect();
        let t = Tensor::from_vec(dims.to_vec(), data).unwrap();
        let v = self.g.add_value(
            name,
            ty(DType::F32, &dims.iter().map(|&d| k(d)).collect::<Vec<_>>()),
        );
        self.g.values[v].constant = Some(t);
        v
    }
    fn node(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> ValueId {
        let out = self.g.add_value(name, ValueType::Unknown);
        self.g.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: vec![Some(out)],
        });
        out
    }
    fn model(mut self, outputs: &[ValueId]) -> Model {
        self.g.outputs = outputs.to_vec();
        self.g.infer_types().unwrap();
        Model {
            name: "test.onnx".into(),
            graph: self.g,
            ..Default::default()
        }
    }
}

fn matmul() -> Op {
    Op::Nn(nn::Op::MatMul(nn::MatMul))
}
fn add() -> Op {
    Op::Elementwise(ew::Op::Binary(ew::Binary::new(ew::BinaryKind::Add)))
}
fn relu() -> Op {
    Op::Elementwise(ew::Op::Activation(ew::Activation {
        kind: ew::ActivationKind::Relu,
    }))
}
fn softmax() -> Op {
    Op::Reduce(reduce::Op::Softmax(reduce::Softmax {
        kind: reduce::SoftmaxKind::Softmax,
        axis: -1,
        coerce_2d: false,
    }))
}
fn cast(to: DType) -> Op {
    Op::Elementwise(ew::Op::Cast(ew::Cast::to(to)))
}

/// x[batch, 16] → MatMul → Add → Relu → MatMul → Add → Softmax.
fn mlp() -> Model {
    let mut b = B::new();
    let x = b.input("x", ty(DType::F32, &[batch(), k(16)]));
    let w1 = b.weight("w1", &[16, 32], 1);
    let b1 = b.weight("b1", &[32], 2);
    let w2 = b.weight("w2", &[32, 8], 3);
    let b2 = b.weight("b2", &[8], 4);
    let h = b.node("mm1", matmul(), &[x, w1]);
    let h = b.node("add1", add(), &[h, b1]);
    let h = b.node("relu", relu(), &[h]);
    let h = b.node("mm2", matmul(), &[h, w2]);
    let h = b.node("add2", add(), &[h, b2]);
    let y = b.node("softmax", softmax(), &[h]);
    b.model(&[y])
}

fn input(batch: usize, width: usize) -> Value {
    let data = (0..batch * width)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    Value::Tensor(Tensor::from_vec(vec![batch, width], data).unwrap())
}

fn no_merging() -> PartitionOptions {
    PartitionOptions {
        hop_cost: 0.0,
        merge_islands: true,
    }
}

fn session(model: Model, backends: Vec<Arc<dyn Backend>>, p: PartitionOptions) -> Session {
    let mut o = SessionOptions::new()
        .level(Level::None)
        .partition_options(p);
    for b in backends {
        o = o.backend(b);
    }
    Session::new(model, o).unwrap()
}

#[test]
fn matmul_add_table_splits_the_mlp_and_matches_the_cpu() {
    let reference = session(mlp(), vec![cpu()], PartitionOptions::default());
    let split = session(mlp(), vec![table("matmul_add.json"), cpu()], no_merging());
    let plan = split.plan();
    plan.verify(&split.model().graph).unwrap();
    let per = plan.nodes_per_backend();
    assert_eq!(per["npu-matmul-add"], 4);
    assert_eq!(per["cpu"], 2);
    assert_eq!(plan.partitions.len(), 4, "{}", plan.summary());
    assert!(plan.hops >= 4, "{}", plan.summary());
    let explain = split.explain();
    assert!(
        explain.contains("npu-matmul-add: Relu is not in npu-matmul-add's op table"),
        "{explain}"
    );
    for b in [1, 3] {
        let want = reference.run(vec![("x", input(b, 16))]).unwrap();
        let got = split.run(vec![("x", input(b, 16))]).unwrap();
        assert_eq!(got, want);
    }
}

#[test]
fn islands_move_back_when_hops_cost_more_than_they_save() {
    // With the default hop cost, a lone MatMul+Add between CPU nodes does not pay off.
    let s = session(
        mlp(),
        vec![table("matmul_add.json"), cpu()],
        PartitionOptions::default(),
    );
    let plan = s.plan();
    plan.verify(&s.model().graph).unwrap();
    assert_eq!(
        plan.partitions.len(),
        1,
        "{}",
        plan.explain(&s.model().graph)
    );
    assert!(s.explain().contains("moved from npu-matmul-add"));
}

#[test]
fn partitions_never_form_a_cycle() {
    // m = MatMul(x); r = Relu(m) on the CPU; a = Add(m, r): the Add cannot join m's
    // partition (that partition would feed the CPU and read from it).
    let mut b = B::new();
    let x = b.input("x", ty(DType::F32, &[k(4), k(4)]));
    let w = b.weight("w", &[4, 4], 7);
    let m = b.node("m", matmul(), &[x, w]);
    let r = b.node("r", relu(), &[m]);
    let a = b.node("a", add(), &[m, r]);
    let model = b.model(&[a]);
    let reference = session(model.clone(), vec![cpu()], PartitionOptions::default());
    let s = session(model, vec![table("matmul_add.json"), cpu()], no_merging());
    let plan = s.plan();
    plan.verify(&s.model().graph).unwrap();
    assert_eq!(plan.partitions.len(), 3, "{}", plan.summary());
    let x = input(4, 4);
    assert_eq!(
        s.run(vec![("x", x.clone())]).unwrap(),
        reference.run(vec![("x", x)]).unwrap()
    );
}

#[test]
fn static_table_compiles_once_per_input_shape_and_refuses_data_dependent_shapes() {
    // x[batch,16] → Relu → NonZero → Cast(f32) → Relu ; the NonZero output's second dim is
    // decided by the data, so the static backend refuses what reads or writes it.
    let mut b = B::new();
    let x = b.input("x", ty(DType::F32, &[batch(), k(16)]));
    let r = b.node("r", relu(), &[x]);
    let nz = b.node("nz", Op::Tensor(tensor::Op::NonZero(tensor::NonZero)), &[r]);
    let c = b.node("c", cast(DType::F32), &[nz]);
    let y = b.node("y", relu(), &[c]);
    let model = b.model(&[r, y]);
    let reference = session(model.clone(), vec![cpu()], PartitionOptions::default());
    let s = session(model, vec![table("static_only.json"), cpu()], no_merging());
    let plan = s.plan();
    plan.verify(&s.model().graph).unwrap();
    let explain = s.explain();
    assert!(explain.contains("depends on data"), "{explain}");
    let per = plan.nodes_per_backend();
    assert_eq!(per["npu-static"], 1, "{explain}");
    for bsz in [2, 3, 2] {
        let x = input(bsz, 16);
        assert_eq!(
            s.run(vec![("x", x.clone())]).unwrap(),
            reference.run(vec![("x", x)]).unwrap()
        );
    }
    // The static partition compiled for batch 2 and batch 3; the CPU ones once.
    let counts = s.compiled_counts();
    let static_part = plan
        .partitions
        .iter()
        .position(|p| plan.backends[p.backend] == "npu-static")
        .unwrap();
    assert_eq!(counts[static_part], 2, "{counts:?}");
}

#[test]
fn f64_refusing_table_leaves_f64_nodes_on_the_cpu() {
    let mut b = B::new();
    let x = b.input("x", ty(DType::F32, &[k(2), k(8)]));
    let h = b.node("r1", relu(), &[x]);
    let d = b.node("to64", cast(DType::F64), &[h]);
    let d = b.node("r64", relu(), &[d]);
    let h = b.node("to32", cast(DType::F32), &[d]);
    let y = b.node("sm", softmax(), &[h]);
    let model = b.model(&[y]);
    let reference = session(model.clone(), vec![cpu()], PartitionOptions::default());
    let s = session(model, vec![table("no_f64.json"), cpu()], no_merging());
    let plan = s.plan();
    plan.verify(&s.model().graph).unwrap();
    let names: Vec<&str> = s
        .model()
        .graph
        .nodes
        .iter()
        .zip(&plan.decisions)
        .map(|(_, d)| plan.backends[d.backend].as_str())
        .collect();
    assert_eq!(names, ["gpu-no-f64", "cpu", "cpu", "cpu", "gpu-no-f64"]);
    assert!(s.explain().contains("is f64, which gpu-no-f64 refuses"));
    let x = input(2, 8);
    assert_eq!(
        s.run(vec![("x", x.clone())]).unwrap(),
        reference.run(vec![("x", x)]).unwrap()
    );
}

#[test]
fn light_models_across_two_table_configured_cpu_backends_match_one() {
    let models = common::light_models();
    // A table that takes convolutions and matrix products only: real models split into many
    // partitions with hops at every pool, concat and activation.
    let conv_table = CapabilityTable::from_json(
        r#"{"name": "npu-conv", "kind": "npu", "static_shapes": true,
            "ops": {"Conv": {"cost": 0.1}, "Gemm": {"cost": 0.1}, "MatMul": {"cost": 0.1},
                    "FusedConv": {"cost": 0.1}, "FusedGemm": {"cost": 0.1}}}"#,
    )
    .unwrap();
    for m in models.iter().filter(|m| {
        let n = m.to_string_lossy();
        n.contains("squeezenet") || n.contains("resnet50") || n.contains("inception_v1")
    }) {
        let model = xnpu::graph::onnx::load(m).unwrap();
        let reference = Session::new(model.clone(), SessionOptions::new()).unwrap();
        let split = Session::new(
            model,
            SessionOptions::new()
                .backend(Arc::new(CpuBackend::with_table(conv_table.clone())))
                .backend(cpu())
                .partition_options(no_merging()),
        )
        .unwrap();
        split.plan().verify(&split.model().graph).unwrap();
        println!(
            "{}: {}",
            m.display(),
            split.plan().summary().lines().next().unwrap_or("")
        );
        assert!(split.plan().partitions.len() > 1);
        let infos = reference.inputs();
        let info = infos.iter().find(|i| !i.has_default).unwrap();
        let x = Value::Tensor(common::light_input(&info.ty).unwrap());
        let want = reference
            .run(vec![(info.name.as_str(), x.clone())])
            .unwrap();
        let got = split.run(vec![(info.name.as_str(), x)]).unwrap();
        assert_eq!(got, want, "{}", m.display());
    }
}

#[test]
fn a_bad_capability_table_is_a_clear_error() {
    let e = CapabilityTable::from_json(r#"{"name": "t", "ops": {"Conv": {"dtypes": ["f33"]}}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown dtype \"f33\"") && e.contains("op Conv"),
        "{e}"
    );
    let e = CapabilityTable::from_json(r#"{"name": "t", "ops": {}, "static": true}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `static`"), "{e}");
}

#[test]
fn a_node_no_backend_supports_names_every_reason() {
    let mut b = B::new();
    let x = b.input("x", ty(DType::F32, &[k(2), k(2)]));
    let y = b.node("r", relu(), &[x]);
    let model = b.model(&[y]);
    let e = Session::new(
        model,
        SessionOptions::new().backend(table("matmul_add.json")),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no backend can run node \"r\" (Relu)")
            && e.contains("npu-matmul-add: Relu is not in npu-matmul-add's op table"),
        "{e}"
    );
}

#[test]
fn quantisation_schemes_are_part_of_the_table() {
    // Two DequantizeLinear nodes: a per-tensor scale and a per-axis (per-column) one.
    let mut b = B::new();
    let x = b.input("x", ty(DType::I8, &[k(4), k(3)]));
    let s1 = b.g.add_value("s1", ty(DType::F32, &[]));
    b.g.values[s1].constant = Some(Tensor::scalar(0.5f32));
    let s3 = b.g.add_value("s3", ty(DType::F32, &[k(3)]));
    b.g.values[s3].constant = Some(Tensor::from_vec(vec![3], vec![0.5f32, 0.25, 2.0]).unwrap());
    let dq = |axis| {
        Op::Nn(nn::Op::DequantizeLinear(nn::DequantizeLinear {
            axis,
            block_size: 0,
            output_dtype: None,
        }))
    };
    let a = b.node("dq_tensor", dq(1), &[x, s1]);
    let c = b.node("dq_axis", dq(1), &[x, s3]);
    let model = b.model(&[a, c]);
    let npu = CapabilityTable::from_json(
        r#"{"name": "npu-q", "kind": "npu",
            "ops": {"DequantizeLinear": {"quantization": ["per-tensor"], "cost": 0.1}}}"#,
    )
    .unwrap();
    let s = session(
        model.clone(),
        vec![Arc::new(CpuBackend::with_table(npu)), cpu()],
        no_merging(),
    );
    let plan = s.plan();
    let on: Vec<&str> = plan
        .decisions
        .iter()
        .map(|d| plan.backends[d.backend].as_str())
        .collect();
    assert_eq!(on, ["npu-q", "cpu"]);
    assert!(
        s.explain()
            .contains("DequantizeLinear is quantised per-axis (npu-q takes per-tensor"),
        "{}",
        s.explain()
    );
    let xs = Value::Tensor(
        Tensor::from_vec(vec![4, 3], (0..12).map(|i| i as i8 - 6).collect()).unwrap(),
    );
    let reference = session(model, vec![cpu()], PartitionOptions::default());
    assert_eq!(
        s.run(vec![("x", xs.clone())]).unwrap(),
        reference.run(vec![("x", xs)]).unwrap()
    );
    let e = CapabilityTable::from_json(
        r#"{"name": "t", "ops": {"QuantizeLinear": {"quantization": ["per-row"]}}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("unknown quantization scheme \"per-row\""), "{e}");
}
