//! Values stay on a backend's device between its partitions: the runtime asks each
//! executable (`Executable::run_args`) to keep on its device the outputs that only partitions
//! of the same backend read, hands them to those partitions as they are, and brings a value
//! to the host only where another backend reads it or the model returns it.
//!
//! The device here is a test double of a backend with memory of its own (GPU buffers, QNN
//! shared buffers, OpenVINO remote tensors work this way): it computes with the reference
//! kernels, returns kept outputs as its own `DeviceValue`, and counts what it receives in
//! place and what is copied back to the host.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use xnpu::graph::backend::{
    Arg, Backend, CapabilityTable, DeviceKind, DeviceValue, Executable, NodeContext, Support,
};
use xnpu::graph::ir::{Graph, Node, Op, ValueId};
use xnpu::graph::passes::Level;
use xnpu::graph::Model;
use xnpu::ops::elementwise as ew;
use xnpu::{DType, Result, Session, SessionOptions, Shape, Tensor, TensorType, Value, ValueType};
use xnpu_backend_cpu::CpuBackend;

#[derive(Debug, Default)]
struct Counts {
    /// Arguments received as this device's own values.
    in_place: AtomicUsize,
    /// Device values copied to the host.
    to_host: AtomicUsize,
}

#[derive(Debug)]
struct Resident {
    value: Value,
    counts: Arc<Counts>,
}

impl DeviceValue for Resident {
    fn backend(&self) -> &str {
        "dev"
    }
    fn value_type(&self) -> ValueType {
        let t = self.value.as_tensor().expect("a tensor");
        ValueType::Tensor(TensorType::new(t.dtype(), Shape::known(t.shape())))
    }
    fn to_host(&self) -> Result<Value> {
        self.counts.to_host.fetch_add(1, Ordering::Relaxed);
        Ok(self.value.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Dev {
    cpu: CpuBackend,
    table: CapabilityTable,
    counts: Arc<Counts>,
}

impl Backend for Dev {
    fn name(&self) -> &str {
        "dev"
    }
    fn kind(&self) -> DeviceKind {
        DeviceKind::Npu
    }
    fn supports(&self, cx: &NodeContext<'_>) -> Support {
        self.table.check(cx)
    }
    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        Ok(Box::new(DevExec {
            inner: self.cpu.compile(partition)?,
            counts: self.counts.clone(),
        }))
    }
}

struct DevExec {
    inner: Box<dyn Executable>,
    counts: Arc<Counts>,
}

impl Executable for DevExec {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        self.inner.run(inputs)
    }
    fn run_args(&self, inputs: Vec<Arg>, keep: &[bool]) -> Result<Vec<Arg>> {
        let host = inputs
            .into_iter()
            .map(|a| match a {
                Arg::Device(d) => {
                    let own = d
                        .as_any()
                        .downcast_ref::<Resident>()
                        .expect("this device's");
                    self.counts.in_place.fetch_add(1, Ordering::Relaxed);
                    Ok(own.value.clone())
                }
                Arg::Host(v) => Ok(v),
            })
            .collect::<Result<Vec<Value>>>()?;
        let outs = self.inner.run_owned(host)?;
        Ok(outs
            .into_iter()
            .enumerate()
            .map(|(i, v)| match keep.get(i) {
                Some(true) => Arg::Device(Arc::new(Resident {
                    value: v,
                    counts: self.counts.clone(),
                })),
                _ => Arg::Host(v),
            })
            .collect())
    }
}

fn f32x4() -> ValueType {
    ValueType::Tensor(TensorType::new(DType::F32, Shape::known(&[4])))
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: &[ValueId]) -> ValueId {
    let y = g.add_value(name, f32x4());
    g.nodes.push(Node {
        name: name.into(),
        op,
        inputs: inputs.iter().map(|&v| Some(v)).collect(),
        outputs: vec![Some(y)],
    });
    y
}

/// `y = sigmoid(x) + neg(relu(x))`, with Neg on the CPU only: the device runs `{Relu,
/// Sigmoid}`, the CPU `{Neg}`, the device `{Add}`; `sigmoid(x)` goes from the first device
/// partition to the second without the CPU reading it. With `return_b`, the model returns
/// it too.
fn model(return_b: bool) -> Model {
    let mut g = Graph::default();
    let x = g.add_value("x", f32x4());
    g.inputs.push(x);
    let act = |kind| Op::Elementwise(ew::Op::Activation(ew::Activation { kind }));
    let a = node(&mut g, "a", act(ew::ActivationKind::Relu), &[x]);
    let b = node(&mut g, "b", act(ew::ActivationKind::Sigmoid), &[x]);
    let neg = Op::Elementwise(ew::Op::Unary(ew::Unary {
        kind: ew::UnaryKind::Neg,
    }));
    let n = node(&mut g, "n", neg, &[a]);
    let add = Op::Elementwise(ew::Op::Binary(ew::Binary::new(ew::BinaryKind::Add)));
    let y = node(&mut g, "y", add, &[b, n]);
    g.outputs.push(y);
    if return_b {
        g.outputs.push(b);
    }
    Model {
        name: "resident.onnx".into(),
        graph: g,
        opsets: [(String::new(), 17)].into(),
        ..Model::default()
    }
}

fn session(return_b: bool, counts: &Arc<Counts>) -> Session {
    let table = CapabilityTable::from_json(
        r#"{"name": "dev", "kind": "npu", "ops": {"Relu": {}, "Sigmoid": {}, "Add": {}}}"#,
    )
    .unwrap();
    let dev = Dev {
        cpu: CpuBackend::new(),
        table,
        counts: counts.clone(),
    };
    let mut options = SessionOptions::new()
        .level(Level::None)
        .backend(Arc::new(dev))
        .backend(Arc::new(CpuBackend::new()));
    options.partition.merge_islands = false;
    Session::new(model(return_b), options).unwrap()
}

fn input() -> Value {
    Value::Tensor(Tensor::from_vec(vec![4], vec![-2.0f32, -0.5, 0.5, 2.0]).unwrap())
}

#[test]
fn a_value_between_partitions_of_one_device_stays_on_it() {
    let counts = Arc::new(Counts::default());
    let s = session(false, &counts);
    assert_eq!(s.plan().partitions.len(), 3, "{}", s.explain());
    let want = Session::new(model(false), SessionOptions::new().level(Level::None))
        .unwrap()
        .run(vec![("x", input())])
        .unwrap();
    for run in 1..=2 {
        assert_eq!(s.run(vec![("x", input())]).unwrap(), want);
        // sigmoid(x) reached the second device partition as the device's own value, and
        // nothing came back to the host: relu(x) went to the CPU as a host value, and y is
        // returned in host memory by the executable that makes it.
        assert_eq!(counts.in_place.load(Ordering::Relaxed), run);
        assert_eq!(counts.to_host.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn a_value_the_model_returns_comes_to_the_host() {
    let counts = Arc::new(Counts::default());
    let s = session(true, &counts);
    let out = s.run(vec![("x", input())]).unwrap();
    assert_eq!(out.len(), 2);
    // Returned by the model: not kept on the device, so the second partition reads it from
    // the host like any other value.
    assert_eq!(counts.in_place.load(Ordering::Relaxed), 0);
    assert_eq!(counts.to_host.load(Ordering::Relaxed), 0);
}

#[test]
fn a_returned_value_can_stay_on_the_device_between_runs() {
    let counts = Arc::new(Counts::default());
    let s = session(false, &counts);
    // Run 1 keeps y on the device; run 2 reads it back as x (a KV cache's way).
    let y = s.run_args(vec![Some(Arg::Host(input()))], &[true]).unwrap();
    assert!(matches!(y[0], Arg::Device(_)), "{:?}", y[0]);
    assert_eq!(counts.in_place.load(Ordering::Relaxed), 1);
    let z = s.run_args(vec![Some(y[0].clone())], &[false]).unwrap();
    // x reached the first device partition where it was, as sigmoid(x) the last one.
    assert_eq!(counts.in_place.load(Ordering::Relaxed), 3);
    assert_eq!(counts.to_host.load(Ordering::Relaxed), 0);
    let Arg::Host(z) = &z[0] else {
        panic!("not asked to keep: {:?}", z[0])
    };
    // The same as two host runs.
    let reference = Session::new(model(false), SessionOptions::new().level(Level::None)).unwrap();
    let y = reference.run(vec![("x", input())]).unwrap().remove(0).1;
    let want = reference.run(vec![("x", y)]).unwrap().remove(0).1;
    assert_eq!(z, &want);
    // A kept output read on the host is copied there once.
    let kept = s.run_args(vec![Some(Arg::Host(input()))], &[true]).unwrap();
    kept[0].clone().into_host().unwrap();
    assert_eq!(counts.to_host.load(Ordering::Relaxed), 1);
}
