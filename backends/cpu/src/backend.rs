//! The reference CPU backend as a [`Backend`]: it runs every op, or what a capability table
//! allows (tests configure instances with tables to exercise partitioning and device hops
//! before real NPU backends exist).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use xnpu_core::{Error, Result, Value, ValueType};

use xnpu_graph::backend::{
    Backend, CapabilityTable, CompileOptions, DeviceKind, Executable, NodeContext, Support,
};
use xnpu_graph::ir::{ByteRanges, Op};
use xnpu_graph::Graph;

/// The CPU backend: xnpu's fast kernels where a node has one (`xnpu-linalg`, chosen when a
/// graph is compiled), the reference kernels for the rest — or, as [`CpuBackend::reference`],
/// the reference kernels alone.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    table: CapabilityTable,
    /// Whether compiled graphs use the fast kernels.
    fast: bool,
}

/// The device id of the reference kernels alone: the oracle of the backend suite.
pub const REFERENCE_ID: &str = "cpu:reference";

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
            fast: true,
        }
    }

    /// The reference kernels alone (device [`REFERENCE_ID`]): what every op computes, slowly
    /// and obviously, the oracle other backends and the fast kernels are tested against.
    pub fn reference() -> CpuBackend {
        CpuBackend {
            table: CapabilityTable::everything(REFERENCE_ID),
            fast: false,
        }
    }

    /// An instance restricted to what `table` declares, named by the table.
    pub fn with_table(table: CapabilityTable) -> CpuBackend {
        CpuBackend { table, fast: true }
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
        self.executable(partition, None)
    }

    /// As [`Backend::compile`]; with `threads` set, the kernels that run in parallel (the
    /// fast MatMulNBits) use a pool of that many threads instead of rayon's global one.
    fn compile_with(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<Box<dyn Executable>> {
        self.executable(partition, options.threads)
    }
}

impl CpuBackend {
    fn executable(&self, partition: &Graph, threads: Option<usize>) -> Result<Box<dyn Executable>> {
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
        let mut graph = executable_graph(partition);
        if self.fast {
            crate::prepack::dequantize_weights(&mut graph);
            // Attention the session's pipeline left unfused for other backends' sake (K as
            // exporters merge its transposes) runs on the fast attention kernel here.
            xnpu_graph::passes::attention::run_with_merged_keys(&mut graph)?;
        }
        let plan = if self.fast {
            crate::fast::plan(&graph)
        } else {
            Vec::new()
        };
        // Handing a run to a pool thread and waiting for it costs microseconds: only graphs
        // with a kernel that splits its work across threads use the pool.
        let pool = match threads {
            Some(n) if uses_threads(&graph) || plan.iter().any(Option::is_some) => {
                Some(pool(n.max(1))?)
            }
            _ => None,
        };
        let constants = ByteRanges::of_graphs([&graph]);
        Ok(Box::new(CpuExecutable {
            graph,
            plan,
            pool,
            constants,
            _live: Live::new(),
        }))
    }
}

/// The graph an executable runs: the partition, with MatMulNBits' large weights in
/// huge-page memory (see `prepack`).
fn executable_graph(partition: &Graph) -> Graph {
    let mut g = partition.clone();
    crate::prepack::rehome_nbits_weights(&mut g);
    g
}

/// Whether a graph (its subgraphs included) has a node whose kernel runs in parallel with
/// rayon: MatMulNBits (`nn::nbits_fast`) and GroupQueryAttention (`attention::gqa`). Every
/// other kernel runs on the calling thread. A kernel that starts using rayon belongs here.
fn uses_threads(graph: &Graph) -> bool {
    let mut found = false;
    graph.walk_nodes(&mut |n| {
        found |= matches!(
            &n.op,
            Op::Nn(xnpu_ops::nn::Op::MatMulNBits(_))
                | Op::Attention(xnpu_ops::attention::Op::GroupQueryAttention(_))
        );
    });
    found
}

/// One pool per thread count, shared by every executable that asks for that count (a
/// session compiles a partition per input shape; each must not start its own threads).
fn pool(n: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| Error::compute("the CPU thread pools' lock is poisoned"))?;
    if let Some(p) = pools.get(&n) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("xnpu-cpu-{i}"))
            .build()
            .map_err(|e| Error::compute(format!("cannot start {n} CPU threads: {e}")))?,
    );
    pools.insert(n, p.clone());
    Ok(p)
}

/// A partition ready to run on the reference kernels.
struct CpuExecutable {
    graph: Graph,
    /// The fast kernel of each node that has one (`crate::fast`).
    plan: Vec<Option<crate::fast::Fast>>,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Where the graph's constants lie (kernels such as Identity and Constant return them).
    constants: ByteRanges,
    _live: Live,
}

/// Counts the CPU executables alive; when the last one goes, the output buffers kept for
/// reuse (`xnpu_core::recycle`) are freed, so a process holds them only while it runs models.
struct Live;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Live {
    fn new() -> Live {
        LIVE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if LIVE.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            xnpu_core::recycle::clear();
        }
    }
}

impl Executable for CpuExecutable {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        self.run_owned(inputs.to_vec())
    }

    fn run_owned(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        let ins: Vec<Option<Value>> = inputs.into_iter().map(Some).collect();
        match &self.pool {
            Some(pool) => {
                // The run's limits go with the work to the pool's thread.
                let scope = xnpu_core::run::current();
                pool.install(|| {
                    xnpu_core::run::enter(scope, || {
                        crate::exec::run_planned(&self.graph, &self.plan, ins, &[])
                    })
                })
            }
            None => crate::exec::run_planned(&self.graph, &self.plan, ins, &[]),
        }
    }

    fn holds(&self, data: &[u8]) -> bool {
        self.constants.overlaps(data)
    }
}
