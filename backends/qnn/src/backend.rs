//! The `Backend`: a capability table built from the op mapping, one QNN graph per
//! partition and per set of concrete input shapes (QNN graphs are static).

use std::sync::Arc;

use xnpu_core::{Result, Value};
use xnpu_graph::backend::{
    Backend, CapabilityTable, CompileOptions, DeviceKind, Executable, NodeContext, OpCapability,
    ReasonCode, Support,
};
use xnpu_graph::Graph;

use crate::graph::QnnGraph;
use crate::lower::mappings;
use crate::Qnn;

/// The dtypes HTP computes on in this backend (fp32 runs as fp16 once a SoC is set).
const FLOAT: &[&str] = &["f32", "f16"];

/// A backend on one QNN device.
pub struct QnnBackend {
    q: Arc<Qnn>,
    name: String,
    table: CapabilityTable,
}

impl QnnBackend {
    /// `qnn:htp` on a Snapdragon; `qnn:htp-sim` for the x86_64 simulator, which runs on the
    /// CPU and is never presented as an NPU.
    pub fn new(q: Arc<Qnn>) -> QnnBackend {
        let simulator = cfg!(target_arch = "x86_64");
        let (name, kind) = if simulator {
            ("qnn:htp-sim", DeviceKind::Cpu)
        } else {
            ("qnn:htp", DeviceKind::Npu)
        };
        let ops = mappings()
            .into_iter()
            .map(|m| {
                let dtypes = FLOAT.iter().chain(m.extra_dtypes).map(|s| s.to_string());
                (
                    m.op.to_string(),
                    OpCapability {
                        dtypes: Some(dtypes.collect()),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let table = CapabilityTable {
            name: name.to_string(),
            kind,
            ops,
            refuse_ops: Default::default(),
            dtypes: None,
            refuse_dtypes: Vec::new(),
            max_rank: Some(5),
            static_shapes: true,
            control_flow: false,
            default_cost: 0.5,
        };
        QnnBackend {
            q,
            name: name.to_string(),
            table,
        }
    }

    pub fn qnn(&self) -> &Arc<Qnn> {
        &self.q
    }
}

impl Backend for QnnBackend {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> DeviceKind {
        self.table.kind
    }
    fn supports(&self, cx: &NodeContext<'_>) -> Support {
        // Attributes and constant inputs the lowering needs, then the table.
        if let Some(reason) = crate::lower::check(cx.node, cx.graph) {
            return Support::refuse(ReasonCode::Attribute, reason);
        }
        // Without a SoC model the simulator computes true fp32 and has no Gelu kernel
        // (graphFinalize fails with 1002); the device, and the simulator with a SoC, have one.
        if self.q.soc() == 0 && crate::lower::computes_gelu(cx.node) {
            return Support::refuse(
                ReasonCode::DeviceLimit,
                "Gelu has no fp32 kernel on the HTP simulator without a SoC model \
                         (XNPU_QNN_SOC)",
            );
        }
        self.table.check(cx)
    }
    fn needs_static_shapes(&self) -> bool {
        true
    }
    fn capabilities(&self) -> Option<&CapabilityTable> {
        Some(&self.table)
    }
    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        self.compile_with(partition, &CompileOptions::default())
    }
    /// Compiles, or reloads the context binary an earlier compile saved in the session's
    /// compile cache (one folder per backend).
    fn compile_with(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<Box<dyn Executable>> {
        let dir = options.cache.dir_for(&self.name);
        Ok(Box::new(Compiled(QnnGraph::build_cached(
            self.q.clone(),
            partition,
            dir.as_deref(),
        )?)))
    }
}

struct Compiled(QnnGraph);

impl Executable for Compiled {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        self.0.run(inputs)
    }
}
