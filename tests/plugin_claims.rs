//! A backend loaded as a plugin explains itself as the same backend built in, node for node:
//! with plugin ABI 1.1 the plugin answers capability questions on the graph itself
//! (`claim`), so its own per-node checks (QNN's lowering checks, OpenVINO's refused
//! configurations) and reasons cross the boundary instead of only its declared table.
//!
//! Models: the demo model, onnx's light models and every ONNX node case (the node cases
//! exercise the per-node refusals), each optimised as a session would (level all) and
//! partitioned over `[device, cpu]`, once with the built-in backend and once with the plugin.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use xnpu::graph::backend::Backend;
use xnpu::graph::partition::{partition, PartitionOptions};
use xnpu::graph::Graph;
use xnpu::plugins::{plugin_file_name, Plugin};
use xnpu::{Session, SessionOptions};
use xnpu_backend_cpu::CpuBackend;

fn plugin(name: &str, config: &str) -> Arc<dyn Backend> {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(plugin_file_name(name));
    assert!(
        path.exists(),
        "{} is missing: cargo build --release --workspace",
        path.display()
    );
    let p = Plugin::load(&path).unwrap();
    assert_eq!(p.abi_version(), (1, 2));
    Arc::new(p.create_backend(config).unwrap())
}

/// Every model: the demo, the light models, the node cases (those that import).
fn graphs() -> Vec<(String, Graph)> {
    let mut paths = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tinycnn.onnx")];
    paths.extend(common::light_models());
    let node = common::cases_dir().join("node");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&node)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/test.sh generates the cases)",
                node.display()
            )
        })
        .map(|e| e.unwrap().path().join("model.onnx"))
        .collect();
    cases.sort();
    paths.extend(cases);
    paths
        .into_iter()
        .filter_map(|p| {
            let options = SessionOptions::new().devices("cpu".parse().unwrap());
            let s = Session::load_with(&p, options).ok()?;
            Some((p.display().to_string(), s.model().graph.clone()))
        })
        .collect()
}

/// `--explain` of `graph` partitioned over `[device, cpu]`, and whether a node runs on the
/// device.
fn explain(graph: &Graph, device: &dyn Backend) -> (String, bool) {
    let cpu = CpuBackend::new();
    let backends: [&dyn Backend; 2] = [device, &cpu];
    match partition(graph, &backends, &PartitionOptions::default()) {
        Ok(plan) => {
            let used = plan.nodes_per_backend().contains_key(device.name());
            (plan.explain(graph), used)
        }
        Err(e) => (format!("error: {e}"), false),
    }
}

/// The backend answering from its declared table alone (what a plugin could say before
/// ABI 1.1), to show what the claim adds.
struct TableOnly<'a>(&'a dyn Backend);

impl Backend for TableOnly<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn kind(&self) -> xnpu::graph::backend::DeviceKind {
        self.0.kind()
    }
    fn supports(
        &self,
        cx: &xnpu::graph::backend::NodeContext<'_>,
    ) -> xnpu::graph::backend::Support {
        self.0.capabilities().expect("a declared table").check(cx)
    }
    fn compile(&self, _: &Graph) -> xnpu::Result<Box<dyn xnpu::graph::backend::Executable>> {
        unreachable!("only partitioned")
    }
}

fn same_explanations(built_in: Arc<dyn Backend>, plugged: Arc<dyn Backend>) {
    assert_eq!(built_in.name(), plugged.name());
    let graphs = graphs();
    assert!(graphs.len() > 1500, "only {} models imported", graphs.len());
    let (mut on_device, mut table_differs) = (0, 0);
    for (name, g) in &graphs {
        let (a, used) = explain(g, built_in.as_ref());
        let (b, _) = explain(g, plugged.as_ref());
        assert_eq!(a, b, "{name}: built in and as a plugin explain differently");
        on_device += usize::from(used);
        table_differs += usize::from(explain(g, &TableOnly(built_in.as_ref())).0 != a);
    }
    println!(
        "{}: {} models explained alike, built in and as a plugin ({on_device} with nodes on \
         the device; the declared table alone would explain {table_differs} differently)",
        built_in.name(),
        graphs.len()
    );
}

#[test]
fn openvino_as_a_plugin_explains_like_openvino_built_in() {
    let (usable, notes) = xnpu::registry::everything();
    let built_in = usable
        .iter()
        .find(|a| a.id == "openvino:cpu")
        .unwrap_or_else(|| panic!("no openvino:cpu: {notes:?} (scripts/test.sh installs it)"))
        .backend
        .clone();
    same_explanations(built_in, plugin("openvino", "CPU"));
}

#[test]
fn qnn_as_a_plugin_explains_like_qnn_built_in() {
    let (usable, notes) = xnpu::registry::everything();
    let built_in = usable
        .iter()
        .find(|a| a.id.starts_with("qnn:"))
        .unwrap_or_else(|| panic!("no qnn backend: {notes:?} (scripts/test.sh installs it)"))
        .backend
        .clone();
    same_explanations(built_in, plugin("qnn", ""));
}
