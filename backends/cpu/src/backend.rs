//! The reference CPU backend as a [`Backend`]: it runs every op, or what a capability table
//! allows (tests configure instances with tables to exercise partitioning and device hops
//! before real NPU backends exist).

use xnpu_core::{Error, Result, Value, ValueType};
use xnpu_graph::backend::{Backend, CapabilityTable, DeviceKind, Executable, NodeContext, Support};
use xnpu_graph::Graph;

/// The reference CPU backend.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    table: CapabilityTable,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend::new()
    }
}

impl CpuBackend {
    /// Runs everything, at cost 1 per node.
    pub fn new() -> CpuBackend {
        CpuBackend {
            table: CapabilityTable::everything("cpu"),
        }
    }

    /// An instance restricted to what `table` declares, named by the table.
    pub fn with_table(table: CapabilityTable) -> CpuBackend {
        CpuBackend { table }
    }

    pub fn table(&self) -> &CapabilityTable {
        &self.table
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        &self.table.name
    }

    fn kind(&self) -> DeviceKind {
        self.table.kind
    }

    fn supports(&self, cx: &NodeContext<'_>) -> Support {
        self.table.check(cx)
    }

    fn needs_static_shapes(&self) -> bool {
        self.table.static_shapes
    }

    fn capabilities(&self) -> Option<&CapabilityTable> {
        Some(&self.table)
    }

    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>> {
        if self.table.static_shapes {
            // A static-shape device compiles concrete shapes only: refuse anything else,
            // as such a device would.
            for n in &partition.nodes {
                for v in n.inputs.iter().chain(&n.outputs).flatten() {
                    let concrete = match &partition.values[*v].ty {
                        ValueType::Tensor(t) => {
                            t.shape.as_ref().and_then(|s| s.as_known()).is_some()
                        }
                        _ => false,
                    };
                    if !concrete {
                        return Err(Error::unsupported(format!(
                            "{} needs static shapes, and value \"{}\" of {} is {}",
                            self.table.name,
                            partition.values[*v].name,
                            n.describe(),
                            partition.values[*v].ty
                        )));
                    }
                }
            }
        }
        Ok(Box::new(CpuExecutable {
            graph: partition.clone(),
        }))
    }
}

/// A partition ready to run on the reference kernels.
struct CpuExecutable {
    graph: Graph,
}

impl Executable for CpuExecutable {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        let ins: Vec<Option<Value>> = inputs.iter().cloned().map(Some).collect();
        crate::run_graph(&self.graph, &ins, &[])
    }
}
