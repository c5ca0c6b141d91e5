//! `Session`: a model compiled once and run many times.
//!
//! `Session::new(model, options)` runs the passes of the chosen level, partitions the graph
//! over the backends in the options' order, and asks each backend to compile its partitions.
//! `Session::run` checks the inputs against the model's declared types (binding symbolic
//! dims), runs the partitions in order, and hands values between them only at partition
//! edges. A backend that needs static shapes gets one compiled executable per set of
//! concrete input shapes, cached in the session.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::policy::Policy;
use xnpu_core::{Bytes, Error, Result, Shape, TensorType, Value, ValueType};
use xnpu_graph::backend::{
    Arg, Backend, CompileCache, CompileOptions, Executable, PerformanceHint, Precision,
};
use xnpu_graph::ir::{ByteRanges, Graph};
use xnpu_graph::partition::{self, PartitionOptions, Plan};
use xnpu_graph::passes::{self, Level};
use xnpu_graph::{onnx, Model};

/// The name and declared type of a model input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct IoInfo {
    pub name: String,
    pub ty: ValueType,
    /// For an input: whether the model gives it a default (an initializer of the same name).
    pub has_default: bool,
}

/// The names and types of graph values `ids` (inputs: `with_defaults` marks initializers).
fn io_infos(g: &Graph, ids: &[usize], with_defaults: bool) -> Vec<IoInfo> {
    ids.iter()
        .map(|&id| IoInfo {
            name: g.values[id].name.clone(),
            ty: g.values[id].ty.clone(),
            has_default: with_defaults && g.values[id].constant.is_some(),
        })
        .collect()
}

/// How a session compiles its model.
#[derive(Clone)]
pub struct SessionOptions {
    /// Optimisation level of the pass pipeline (default `all`).
    pub level: Level,
    /// Backends in order of preference; the reference CPU backend when empty.
    pub backends: Vec<Arc<dyn Backend>>,
    pub partition: PartitionOptions,
    /// When a backend fails to compile a partition, run the partition on the next backend
    /// that supports all of its nodes (with a note in `explain`) instead of failing.
    pub fallback: bool,
    /// Which devices to use when `backends` is empty: this policy, else `XNPU_DEVICES`,
    /// else [`Policy::PreferNpu`].
    pub policy: Option<Policy>,
    /// Threads, precision, performance hint and compile cache, for backends that take them.
    pub compile: CompileOptions,
    /// Bytes a run may hold in values; work that would go past it is refused before it
    /// allocates (see [`xnpu_core::run`]). `None`: no limit but the machine's.
    pub max_memory: Option<u64>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            level: Level::All,
            backends: Vec::new(),
            partition: PartitionOptions::default(),
            fallback: true,
            policy: None,
            compile: CompileOptions::default(),
            max_memory: None,
        }
    }
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.backends.iter().map(|b| b.name().to_string()).collect();
        f.debug_struct("SessionOptions")
            .field("level", &self.level)
            .field("backends", &names)
            .field("partition", &self.partition)
            .field("fallback", &self.fallback)
            .field("compile", &self.compile)
            .field("max_memory", &self.max_memory)
            .finish()
    }
}

impl SessionOptions {
    pub fn new() -> SessionOptions {
        SessionOptions::default()
    }

    pub fn level(mut self, level: Level) -> SessionOptions {
        self.level = level;
        self
    }

    /// The device policy (see [`Policy`]); an explicit list also turns compile fallback off.
    pub fn devices(mut self, policy: Policy) -> SessionOptions {
        self.fallback = policy.allows_fallback();
        self.policy = Some(policy);
        self
    }

    /// Adds a backend after those already given (lower preference).
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> SessionOptions {
        self.backends.push(backend);
        self
    }

    /// Threads a backend may use for one run.
    pub fn threads(mut self, n: usize) -> SessionOptions {
        self.compile.threads = Some(n);
        self
    }

    pub fn precision(mut self, p: Precision) -> SessionOptions {
        self.compile.precision = Some(p);
        self
    }

    pub fn performance(mut self, hint: PerformanceHint) -> SessionOptions {
        self.compile.performance = Some(hint);
        self
    }

    /// Where backends keep compiled partitions between processes.
    pub fn compile_cache(mut self, cache: CompileCache) -> SessionOptions {
        self.compile.cache = cache;
        self
    }

    pub fn partition_options(mut self, options: PartitionOptions) -> SessionOptions {
        self.partition = options;
        self
    }

    /// The most bytes one run may hold in values (inputs, intermediate values, outputs).
    pub fn max_memory(mut self, bytes: u64) -> SessionOptions {
        self.max_memory = Some(bytes);
        self
    }
}

/// Options of one run: a time limit, and a flag another thread sets to cancel it (as ONNX
/// Runtime's `RunOptions.terminate`). Clones share the flag, so one `terminate` stops every
/// run given a clone. A stopped run returns an error of kind
/// [`ErrorKind::Cancelled`](xnpu_core::ErrorKind::Cancelled) naming where it stopped: between
/// partitions, between nodes, or at an iteration of a loop.
#[derive(Clone, Debug)]
pub struct RunOptions {
    terminate: Arc<xnpu_core::run::Terminate>,
    timeout: Option<std::time::Duration>,
    /// A fixed end (the CLI's `--timeout` for the whole command) instead of one per run.
    deadline: Option<std::time::Instant>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions::new()
    }
}

impl RunOptions {
    pub fn new() -> RunOptions {
        RunOptions {
            terminate: Arc::new(xnpu_core::run::Terminate::new()),
            timeout: None,
            deadline: None,
        }
    }

    /// Each run given these options stops with an error at `at`; the error names `limit` as
    /// the time limit it passed (for a limit that began before the run, as the CLI's).
    pub fn deadline(mut self, at: std::time::Instant, limit: std::time::Duration) -> RunOptions {
        self.timeout = Some(limit);
        self.deadline = Some(at);
        self
    }

    /// Each run given these options stops with an error once it has run this long.
    pub fn timeout(mut self, limit: std::time::Duration) -> RunOptions {
        self.timeout = Some(limit);
        self.deadline = None;
        self
    }

    /// No time limit.
    pub fn no_timeout(mut self) -> RunOptions {
        self.timeout = None;
        self.deadline = None;
        self
    }

    /// The time limit, if any.
    pub fn limit(&self) -> Option<std::time::Duration> {
        self.timeout
    }

    /// Cancels the runs using these options (or a clone), from any thread: each stops at
    /// its next check. Runs started later stop at once until [`RunOptions::reset`].
    pub fn terminate(&self) {
        self.terminate.set();
    }

    /// Lets runs go on again after [`RunOptions::terminate`].
    pub fn reset(&self) {
        self.terminate.reset();
    }

    pub fn is_terminated(&self) -> bool {
        self.terminate.is_set()
    }

    fn scope(&self, max_memory: Option<u64>) -> Arc<xnpu_core::run::RunScope> {
        let deadline = match (self.deadline, self.timeout) {
            (Some(at), Some(limit)) => Some((at, limit)),
            (None, Some(limit)) => std::time::Instant::now()
                .checked_add(limit)
                .map(|at| (at, limit)),
            _ => None,
        };
        Arc::new(xnpu_core::run::RunScope::until(
            Some(self.terminate.clone()),
            deadline,
            max_memory,
        ))
    }
}

/// Executables of one partition keyed by the concrete shapes of its inputs.
/// Executables by their inputs' dims (`None` for an input whose dims are not known: a
/// sequence, or a device value that does not say).
type ShapeCache = Mutex<HashMap<Vec<Option<Vec<usize>>>, Arc<dyn Executable>>>;

/// A partition's executable: compiled once, or per set of concrete input shapes.
enum Compiled {
    Ready(Box<dyn Executable>),
    PerShape(ShapeCache),
}

struct Part {
    backend: usize,
    graph: Graph,
    /// Main-graph value ids of the partition's inputs and outputs.
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    /// For each output, whether only partitions of the same backend read it (so it may stay
    /// on the backend's device: always when the model does not return it, and when it does,
    /// if the caller of [`Session::run_args`] asks to keep that output).
    local: Vec<bool>,
    /// For each input, whether this partition may take the value instead of a copy: it is
    /// the value's last reader, the value is not a graph output, and this is the input's last
    /// slot.
    takes: Vec<bool>,
    compiled: Compiled,
}

/// A compiled model.
pub struct Session {
    /// What the device policy fell back from, shown by `explain`.
    notes: Vec<String>,
    model: Model,
    report: passes::Report,
    plan: Plan,
    backends: Vec<Arc<dyn Backend>>,
    parts: Vec<Part>,
    /// For each main-graph value, whether it is a graph output.
    is_output: Vec<bool>,
    /// The hints per-shape compiles use.
    compile: CompileOptions,
    /// Whether a failed per-shape compile may fall back to another backend.
    fallback: bool,
    /// The model's inputs and outputs, read once (every run checks against them).
    input_infos: Vec<IoInfo>,
    output_infos: Vec<IoInfo>,
    /// Each input's position by name (a model may have many inputs: no search per input).
    input_index: HashMap<String, usize>,
    /// Where the model graph's constants lie: see [`Session::holds`].
    constants: ByteRanges,
    /// Bytes one run may hold ([`SessionOptions::max_memory`]).
    max_memory: Option<u64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("model", &self.model.name)
            .field("report", &self.report)
            .field("partitions", &self.parts.len())
            .finish()
    }
}

/// Runs a node on the reference kernels; constant folding uses it.
fn evaluate(node: &xnpu_graph::Node, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    xnpu_backend_cpu::run_node(node, inputs)
}

impl Session {
    /// Loads an ONNX file (memory-mapped; external data is read from its folder) and
    /// compiles it with the default options (level `all`, the CPU backend).
    pub fn load(path: impl AsRef<Path>) -> Result<Session> {
        Session::load_with(path, SessionOptions::default())
    }

    pub fn load_with(path: impl AsRef<Path>, options: SessionOptions) -> Result<Session> {
        Session::new(onnx::load(path.as_ref())?, options)
    }

    /// Loads an ONNX model from memory; it may not use external data.
    pub fn from_bytes(bytes: impl Into<Bytes>, name: &str) -> Result<Session> {
        Session::new(
            onnx::load_bytes(bytes.into(), name, None)?,
            SessionOptions::default(),
        )
    }

    /// Compiles an imported model with the default options.
    pub fn from_model(model: Model) -> Result<Session> {
        Session::new(model, SessionOptions::default())
    }

    /// Optimises, partitions and compiles `model`.
    pub fn new(mut model: Model, options: SessionOptions) -> Result<Session> {
        warn_if_unwritable(&options.compile.cache);
        let mut notes = Vec::new();
        let mut fallback = options.fallback;
        // An explicit device list without the CPU, for the hint when a node fits none of it.
        let mut without_cpu: Option<Vec<String>> = None;
        let backends: Vec<Arc<dyn Backend>> = if options.backends.is_empty() {
            let policy = match &options.policy {
                Some(p) => p.clone(),
                None => Policy::from_env()?.unwrap_or_default(),
            };
            if options.policy.is_none() {
                fallback = fallback && policy.allows_fallback();
            }
            let r = crate::policy::resolve(&policy).map_err(|e| e.context(&model.name))?;
            if let Policy::Explicit(ids) = &policy {
                if !ids.iter().any(|i| i.eq_ignore_ascii_case("cpu")) {
                    without_cpu = Some(ids.clone());
                }
            }
            notes = r.notes;
            r.backends
        } else {
            options.backends.clone()
        };
        let report = passes::optimize(
            &mut model,
            &passes::Options {
                level: options.level,
                evaluate: Some(&evaluate),
                ..passes::Options::default()
            },
        )?;
        let refs: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
        let mut plan = partition::partition(&model.graph, &refs, &options.partition)
            .map_err(|e| match &without_cpu {
                Some(ids) if e.kind() == xnpu_core::ErrorKind::Unsupported => {
                    let ids = ids.join(",");
                    Error::unsupported(format!(
                        "{e}; devices \"{ids},cpu\" would run what {ids} cannot on the CPU"
                    ))
                }
                _ => e,
            })
            .map_err(|e| e.context(&model.name))?;
        let mut parts = Vec::with_capacity(plan.partitions.len());
        // The last partition that reads each value (to free it early).
        let mut last_reader = vec![usize::MAX; model.graph.values.len()];
        for k in 0..plan.partitions.len() {
            let part = compile_part(&model, &backends, &mut plan, k, &options.compile, fallback)?;
            for &v in &part.inputs {
                last_reader[v] = k;
            }
            parts.push(part);
        }
        let is_output = model.graph.output_set();
        for (k, part) in parts.iter_mut().enumerate() {
            let mut later = HashSet::new();
            part.takes = vec![false; part.inputs.len()];
            for (i, &v) in part.inputs.iter().enumerate().rev() {
                part.takes[i] = later.insert(v) && last_reader[v] == k && !is_output[v];
            }
        }
        mark_device_resident(&mut parts);
        let input_infos = io_infos(&model.graph, &model.graph.inputs, true);
        let mut input_index = HashMap::with_capacity(input_infos.len());
        for (k, info) in input_infos.iter().enumerate() {
            input_index.entry(info.name.clone()).or_insert(k);
        }
        let output_infos = io_infos(&model.graph, &model.graph.outputs, false);
        // Partition graphs' constants reach results only through their executables, which
        // answer for them (`Executable::holds`).
        let constants = ByteRanges::of_graphs([&model.graph]);
        Ok(Session {
            notes,
            model,
            report,
            plan,
            backends,
            parts,
            is_output,
            compile: options.compile.clone(),
            fallback,
            input_index,
            input_infos,
            output_infos,
            constants,
            max_memory: options.max_memory,
        })
    }

    /// Whether `data` overlaps memory the session itself keeps between runs: a constant of
    /// the model (nested bodies and `Constant` nodes included), a memory-mapped model file,
    /// or what a compiled executable holds ([`Executable::holds`], for its partition).
    /// A run's result for which this is false (and that no other result or input shares)
    /// belongs to the caller alone, who may hand it out for writing without a copy.
    pub fn holds(&self, data: &[u8]) -> bool {
        if data.is_empty() {
            return false;
        }
        self.constants.overlaps(data)
            || xnpu_graph::onnx::tensor::in_mapped_file(data)
            || self.parts.iter().any(|p| match &p.compiled {
                Compiled::Ready(exec) => exec.holds(data),
                // A poisoned cache answers "held": the caller then copies, which is safe.
                Compiled::PerShape(cache) => cache
                    .lock()
                    .map(|c| c.values().any(|e| e.holds(data)))
                    .unwrap_or(true),
            })
    }

    /// The model as compiled (after the passes).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// What the passes did.
    pub fn optimization_report(&self) -> &passes::Report {
        &self.report
    }

    /// Where each node runs and why.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The memory plan of the compiled graph with its symbols bound (`batch` → 1): one arena
    /// per backend, offsets reused between values whose lifetimes do not overlap.
    pub fn memory_plan(
        &self,
        bindings: &HashMap<String, usize>,
    ) -> Result<xnpu_graph::memory::MemoryPlan> {
        let device: Vec<usize> = self.plan.decisions.iter().map(|d| d.backend).collect();
        xnpu_graph::memory::plan(
            &self.model.graph,
            bindings,
            &xnpu_graph::memory::PlanOptions {
                device_of_node: Some(&device),
                ..Default::default()
            },
        )
    }

    /// The `--explain` table of the partition plan.
    pub fn explain(&self) -> String {
        let mut s: String = self.notes.iter().map(|n| format!("note: {n}\n")).collect();
        s.push_str(&self.plan.explain(&self.model.graph));
        s
    }

    /// Where each node runs and why, in the explanation's JSON schema (`docs/explain.md`):
    /// what `xnpu partition --explain --json`, the C ABI and Python give.
    pub fn explanation(&self) -> xnpu_graph::partition::Explanation {
        self.plan
            .explanation(&self.model.graph, &self.model.name, &self.notes)
    }

    /// Notes from the device policy (devices it fell back from, plugins it skipped).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn inputs(&self) -> Vec<IoInfo> {
        self.input_infos.clone()
    }

    pub fn outputs(&self) -> Vec<IoInfo> {
        self.output_infos.clone()
    }

    /// The model's inputs, borrowed.
    pub fn input_infos(&self) -> &[IoInfo] {
        &self.input_infos
    }

    /// The model's outputs, borrowed.
    pub fn output_infos(&self) -> &[IoInfo] {
        &self.output_infos
    }

    /// The output types once the inputs' symbolic dims are bound to concrete sizes (for
    /// example `batch` → 4): symbols that shape inference carried to the outputs resolve to
    /// numbers, which is what a backend compiling static shapes needs.
    pub fn output_types_for(&self, input_dims: &[(&str, &[usize])]) -> Result<Vec<ValueType>> {
        let bindings = self.bind_inputs(input_dims)?;
        Ok(self
            .outputs()
            .into_iter()
            .map(|o| resolve(&o.ty, &bindings))
            .collect())
    }

    /// Runs the model on named inputs and returns every output, named, in model order.
    pub fn run<'a>(
        &self,
        inputs: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Vec<(String, Value)>> {
        self.run_with(inputs, None)
    }

    /// [`Session::run`] with a run's options: a time limit, cancellation from another thread.
    pub fn run_with<'a>(
        &self,
        inputs: impl IntoIterator<Item = (&'a str, Value)>,
        options: Option<&RunOptions>,
    ) -> Result<Vec<(String, Value)>> {
        let infos = &self.input_infos;
        let mut slots: Vec<Option<Value>> = vec![None; infos.len()];
        for (name, v) in inputs {
            let pos = self.input_index.get(name).copied().ok_or_else(|| {
                let known: Vec<_> = infos.iter().map(|i| i.name.as_str()).collect();
                Error::invalid_input(format!(
                    "the model has no input \"{name}\" (inputs: {})",
                    known.join(", ")
                ))
                .context(&self.model.name)
            })?;
            slots[pos] = Some(v);
        }
        let outputs = self.run_positional_with(slots, options)?;
        Ok(self
            .output_infos
            .iter()
            .map(|i| i.name.clone())
            .zip(outputs)
            .collect())
    }

    /// Runs the model on inputs given in model order (`None` uses the input's default).
    pub fn run_positional(&self, inputs: Vec<Option<Value>>) -> Result<Vec<Value>> {
        self.run_positional_with(inputs, None)
    }

    /// [`Session::run_positional`] with a run's options.
    pub fn run_positional_with(
        &self,
        inputs: Vec<Option<Value>>,
        options: Option<&RunOptions>,
    ) -> Result<Vec<Value>> {
        let infos = &self.input_infos;
        if inputs.len() > infos.len() {
            return Err(Error::invalid_input(format!(
                "{} inputs given, the model has {}",
                inputs.len(),
                infos.len()
            ))
            .context(&self.model.name));
        }
        let mut bindings = HashMap::new();
        for (info, v) in infos.iter().zip(&inputs) {
            match v {
                None if !info.has_default => {
                    return Err(
                        Error::invalid_input(format!("input \"{}\" is missing", info.name))
                            .context(&self.model.name),
                    )
                }
                None => {}
                Some(v) => check_input(&info.ty, v, &mut bindings).map_err(|e| {
                    e.context(format!("input \"{}\"", info.name))
                        .context(&self.model.name)
                })?,
            }
        }
        for info in infos.iter().skip(inputs.len()) {
            if !info.has_default {
                return Err(
                    Error::invalid_input(format!("input \"{}\" is missing", info.name))
                        .context(&self.model.name),
                );
            }
        }
        self.execute(inputs, options)
            .map_err(|e| e.context(&self.model.name))
    }

    /// Runs the model on inputs given in model order that may be resident on a backend's
    /// device (`Arg::Device`, an output of an earlier `run_args`), and leaves model output `j`
    /// on its device when `keep_outputs[j]` and the backend that makes it keeps values of its
    /// own (a GPU buffer, say): so that a value a model returns and reads back next run (a KV
    /// cache) stays where it is between runs. Other outputs come back in host memory; the
    /// reference CPU backend's are always there.
    pub fn run_args(&self, inputs: Vec<Option<Arg>>, keep_outputs: &[bool]) -> Result<Vec<Arg>> {
        self.run_args_with(inputs, keep_outputs, None)
    }

    /// [`Session::run_args`] with a run's options.
    pub fn run_args_with(
        &self,
        inputs: Vec<Option<Arg>>,
        keep_outputs: &[bool],
        options: Option<&RunOptions>,
    ) -> Result<Vec<Arg>> {
        let infos = &self.input_infos;
        if inputs.len() > infos.len() {
            return Err(Error::invalid_input(format!(
                "{} inputs given, the model has {}",
                inputs.len(),
                infos.len()
            ))
            .context(&self.model.name));
        }
        let mut bindings = HashMap::new();
        for (k, info) in infos.iter().enumerate() {
            let checked = match inputs.get(k) {
                Some(Some(Arg::Host(v))) => check_input(&info.ty, v, &mut bindings),
                Some(Some(Arg::Device(d))) => check_type(&info.ty, &d.value_type(), &mut bindings),
                _ if info.has_default => Ok(()),
                _ => Err(Error::invalid_input(format!(
                    "input \"{}\" is missing",
                    info.name
                ))),
            };
            checked.map_err(|e| {
                e.context(format!("input \"{}\"", info.name))
                    .context(&self.model.name)
            })?;
        }
        self.execute_args(inputs, keep_outputs, options)
            .map_err(|e| e.context(&self.model.name))
    }

    fn execute(
        &self,
        inputs: Vec<Option<Value>>,
        options: Option<&RunOptions>,
    ) -> Result<Vec<Value>> {
        let args = inputs.into_iter().map(|v| v.map(Arg::Host)).collect();
        self.execute_args(args, &[], options)?
            .into_iter()
            .map(Arg::into_host)
            .collect()
    }

    /// Runs on arguments that may be device-resident; model output `j` may stay on its
    /// device when `keep_outputs[j]` (and only its backend's partitions read it meanwhile).
    fn execute_args(
        &self,
        inputs: Vec<Option<Arg>>,
        keep_outputs: &[bool],
        options: Option<&RunOptions>,
    ) -> Result<Vec<Arg>> {
        // The run's limits, for every thread that works on it (none: nothing to check).
        let scope = match (options, self.max_memory) {
            (None, None) => None,
            (Some(o), max) => Some(o.scope(max)),
            (None, max) => Some(Arc::new(xnpu_core::run::RunScope::new(None, None, max))),
        };
        xnpu_core::run::enter(scope, || self.execute_in_scope(inputs, keep_outputs))
    }

    fn execute_in_scope(
        &self,
        inputs: Vec<Option<Arg>>,
        keep_outputs: &[bool],
    ) -> Result<Vec<Arg>> {
        let g = &self.model.graph;
        // What each value is while the model runs: in host memory, or resident on the
        // device of the partition that made it (for partitions of the same backend to read).
        let mut env: Vec<Option<Arg>> = vec![None; g.values.len()];
        let mut inputs = inputs.into_iter();
        for &id in g.inputs.iter() {
            env[id] = match inputs.next().flatten() {
                Some(a) => Some(a),
                None => g.values[id]
                    .constant
                    .clone()
                    .map(|t| Arg::Host(Value::Tensor(t))),
            };
        }
        // The graph outputs the caller asked to keep on their device (usually none: then no
        // set is made on this path of every run).
        let kept = keep_outputs.iter().any(|&k| k).then(|| {
            let mut kept = vec![false; g.values.len()];
            for (&o, &keep) in g.outputs.iter().zip(keep_outputs) {
                kept[o] |= keep;
            }
            kept
        });
        for (k, part) in self.parts.iter().enumerate() {
            xnpu_core::run::check().map_err(|e| {
                e.context(format!(
                    "before partition {k} ({})",
                    self.backends[part.backend].name()
                ))
            })?;
            let args = self.arguments(k, part, &mut env)?;
            let keep: Vec<bool> = part
                .outputs
                .iter()
                .zip(&part.local)
                .map(|(&v, &local)| {
                    local && (!self.is_output[v] || kept.as_ref().is_some_and(|k| k[v]))
                })
                .collect();
            let outs = self.run_part(k, part, args, &keep)?;
            if outs.len() < part.outputs.len() {
                return Err(Error::compute(format!(
                    "partition {k} returned {} values, {} expected",
                    outs.len(),
                    part.outputs.len()
                )));
            }
            for (&v, val) in part.outputs.iter().zip(outs) {
                env[v] = Some(val);
            }
        }
        g.outputs
            .iter()
            .enumerate()
            .map(|(j, &id)| match env[id].clone() {
                Some(a) if keep_outputs.get(j).copied().unwrap_or(false) => Ok(a),
                Some(a) => a.into_host().map(Arg::Host),
                None => g.values[id]
                    .constant
                    .clone()
                    .map(|t| Arg::Host(Value::Tensor(t)))
                    .ok_or_else(|| {
                        Error::compute(format!("output \"{}\" was not computed", g.values[id].name))
                    }),
            })
            .collect()
    }

    /// Partition `k`'s arguments from the values computed so far. A value this partition
    /// reads last is handed over (so that a backend holding the only reference may update it
    /// in place: the KV cache); others are shared. A value resident on another backend's
    /// device comes to the host first.
    fn arguments(&self, k: usize, part: &Part, env: &mut [Option<Arg>]) -> Result<Vec<Arg>> {
        let g = &self.model.graph;
        let here = self.backends[part.backend].name();
        part.inputs
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let arg = if part.takes[i] {
                    env[v].take()
                } else {
                    env[v].clone()
                };
                match arg {
                    Some(Arg::Device(d)) if d.backend() != here => Ok(Arg::Host(d.to_host()?)),
                    Some(a) => Ok(a),
                    None => Err(Error::compute(format!(
                        "value \"{}\" was not computed before partition {k}",
                        g.values[v].name
                    ))),
                }
            })
            .collect()
    }

    fn run_part(&self, k: usize, part: &Part, args: Vec<Arg>, keep: &[bool]) -> Result<Vec<Arg>> {
        match &part.compiled {
            Compiled::Ready(exec) => exec.run_args(args, keep),
            Compiled::PerShape(cache) => {
                let key: Vec<Option<Vec<usize>>> = args.iter().map(Arg::dims).collect();
                let cached = cache
                    .lock()
                    .map_err(|_| Error::compute("a previous run panicked while compiling"))?
                    .get(&key)
                    .cloned();
                let exec = match cached {
                    Some(e) => e,
                    None => {
                        let g = specialize(&part.graph, &args)?;
                        self.compile_shape(k, part, cache, &g, key)?
                    }
                };
                exec.run_args(args, keep)
            }
        }
    }

    /// Compiles partition `k` specialised to one set of input shapes (`g`, its cache `key`)
    /// and keeps it in the partition's cache; a failure falls back as `compile_fallback` says.
    fn compile_shape(
        &self,
        k: usize,
        part: &Part,
        cache: &ShapeCache,
        g: &Graph,
        key: Vec<Option<Vec<usize>>>,
    ) -> Result<Arc<dyn Executable>> {
        let backend = &self.backends[part.backend];
        let e: Arc<dyn Executable> = match backend.compile_with(g, &self.compile) {
            Ok(e) => Arc::from(e),
            Err(e) => {
                let e = e.context(format!(
                    "compiling partition {k} on {} for input shapes [{}]",
                    backend.name(),
                    key.iter()
                        .map(|d| d.as_ref().map_or("?".into(), |d| format!("{d:?}")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                Arc::from(self.compile_fallback(k, part, g, e)?)
            }
        };
        cache
            .lock()
            .map_err(|_| Error::compute("a previous run panicked while compiling"))?
            .insert(key, e.clone());
        Ok(e)
    }

    /// When a per-shape compile fails at run time: with fallback on, the next backend that
    /// supports every node of the partition compiles it (a warning says so); otherwise the
    /// compile error.
    fn compile_fallback(
        &self,
        k: usize,
        part: &Part,
        g: &Graph,
        err: Error,
    ) -> Result<Box<dyn Executable>> {
        if !self.fallback {
            return Err(err);
        }
        let Some(b) = self.plan.fallback_for(k, part.backend) else {
            return Err(err);
        };
        let exe = self.backends[b].compile_with(g, &self.compile)?;
        tracing::warn!(
            "{}: partition {k}: fell back to {} ({err})",
            self.model.name,
            self.backends[b].name()
        );
        Ok(exe)
    }

    /// Compiles now what a first run on inputs of these dims would compile: the per-shape
    /// executables of backends that need static shapes (QNN, OpenVINO's NPU), for each
    /// partition whose input dims follow from the model inputs' (symbols bound by them, as a
    /// run binds them). Returns how many it compiled. An ahead-of-time compile (ONNX Runtime's
    /// EPContext) uses it so that the vendor's compiled forms exist before any run.
    pub fn prepare(&self, input_dims: &[(&str, &[usize])]) -> Result<usize> {
        let g = &self.model.graph;
        let bindings = self.bind_inputs(input_dims)?;
        let mut compiled = 0;
        for (k, part) in self.parts.iter().enumerate() {
            let Compiled::PerShape(cache) = &part.compiled else {
                continue;
            };
            let typed: Vec<Option<(xnpu_core::DType, Vec<usize>)>> = part
                .inputs
                .iter()
                .map(|&v| {
                    let t = resolve(&g.values[v].ty, &bindings);
                    let t = t.tensor()?;
                    Some((t.dtype, t.shape.as_ref()?.as_known()?))
                })
                .collect();
            if typed.iter().any(Option::is_none) {
                continue; // a dim decided by data: compiled at the run that decides it
            }
            let key: Vec<Option<Vec<usize>>> = typed
                .iter()
                .map(|t| t.as_ref().map(|(_, d)| d.clone()))
                .collect();
            let known = cache
                .lock()
                .map_err(|_| Error::compute("a previous run panicked while compiling"))?
                .contains_key(&key);
            if known {
                continue;
            }
            let spec = specialize_typed(&part.graph, &typed)?;
            self.compile_shape(k, part, cache, &spec, key)?;
            compiled += 1;
        }
        Ok(compiled)
    }

    /// The model inputs' symbolic dims bound by the concrete dims of the inputs named.
    fn bind_inputs(&self, input_dims: &[(&str, &[usize])]) -> Result<HashMap<String, usize>> {
        let mut bindings = HashMap::new();
        for (name, dims) in input_dims {
            let info = self
                .input_index
                .get(*name)
                .map(|&k| &self.input_infos[k])
                .ok_or_else(|| {
                    Error::invalid_input(format!("the model has no input \"{name}\""))
                        .context(&self.model.name)
                })?;
            if let Some(shape) = info.ty.tensor().and_then(|t| t.shape.as_ref()) {
                shape.bind(dims, &mut bindings).map_err(|e| {
                    e.context(format!("input \"{name}\""))
                        .context(&self.model.name)
                })?;
            }
        }
        Ok(bindings)
    }

    /// How many executables each partition has compiled (per-shape partitions grow with
    /// each new set of input shapes).
    pub fn compiled_counts(&self) -> Vec<usize> {
        self.parts
            .iter()
            .map(|p| match &p.compiled {
                Compiled::Ready(_) => 1,
                Compiled::PerShape(c) => c.lock().map(|c| c.len()).unwrap_or(0),
            })
            .collect()
    }
}

/// A copy of a partition graph with its symbolic dims bound by the shapes of `args`, types
/// inferred again so that every value the inputs decide gets concrete dims.
fn specialize(graph: &Graph, args: &[Arg]) -> Result<Graph> {
    // Each tensor argument's dtype and dims, wherever it lives.
    let typed: Vec<Option<(xnpu_core::DType, Vec<usize>)>> = args
        .iter()
        .map(|a| match a {
            Arg::Host(Value::Tensor(t)) => Some((t.dtype(), t.shape().to_vec())),
            Arg::Host(_) => None,
            Arg::Device(d) => {
                let ty = d.value_type();
                let t = ty.tensor()?;
                Some((t.dtype, t.shape.as_ref()?.as_known()?))
            }
        })
        .collect();
    specialize_typed(graph, &typed)
}

/// [`specialize`] for inputs given as dtype and dims (`None`: not a tensor, or unknown).
fn specialize_typed(
    graph: &Graph,
    typed: &[Option<(xnpu_core::DType, Vec<usize>)>],
) -> Result<Graph> {
    let mut g = graph.clone();
    let mut bindings = HashMap::new();

    for (&id, a) in g.inputs.iter().zip(typed) {
        if let (ValueType::Tensor(tt), Some((_, dims))) = (&g.values[id].ty, a) {
            if let Some(s) = &tt.shape {
                s.bind(dims, &mut bindings)?;
            }
        }
    }
    for v in &mut g.values {
        v.ty = resolve(&v.ty, &bindings);
    }
    for (&id, a) in g.inputs.clone().iter().zip(typed) {
        if let Some((dtype, dims)) = a {
            g.values[id].ty = ValueType::Tensor(TensorType::new(*dtype, Shape::known(dims)));
        }
    }
    g.infer_types_with(false)?;
    Ok(g)
}

/// Extracts and compiles partition `k` on its backend, or, when that fails and `fallback`
/// allows, on the next backend that supports all its nodes (the plan then says so).
fn compile_part(
    model: &Model,
    backends: &[Arc<dyn Backend>],
    plan: &mut Plan,
    k: usize,
    options: &CompileOptions,
    fallback: bool,
) -> Result<Part> {
    let p = plan.partitions[k].clone();
    let graph = partition::extract(&model.graph, &p, &format!("{} partition {k}", model.name));
    let compile_on = |b: usize| -> Result<Compiled> {
        let backend = &backends[b];
        if backend.needs_static_shapes() {
            return Ok(Compiled::PerShape(Mutex::new(HashMap::new())));
        }
        backend
            .compile_with(&graph, options)
            .map(Compiled::Ready)
            .map_err(|e| {
                e.context(format!("compiling partition {k} on {}", backend.name()))
                    .context(&model.name)
            })
    };
    let (chosen, compiled) = match compile_on(p.backend) {
        Ok(c) => (p.backend, c),
        Err(e) if fallback => {
            let Some(b) = plan.fallback_for(k, p.backend) else {
                return Err(e);
            };
            let compiled = compile_on(b)?;
            let note = format!(
                "fell back from {} (compile failed: {e})",
                backends[p.backend].name()
            );
            tracing::warn!("{}: partition {k}: {note}", model.name);
            for &n in &p.nodes {
                plan.decisions[n].backend = b;
                plan.decisions[n].note = Some(note.clone());
            }
            plan.partitions[k].backend = b;
            (b, compiled)
        }
        Err(e) => return Err(e),
    };
    Ok(Part {
        backend: chosen,
        graph,
        inputs: p.inputs,
        outputs: p.outputs,
        local: Vec::new(),
        takes: Vec::new(),
        compiled,
    })
}

/// Marks the outputs of each partition that only partitions of the same backend read.
fn mark_device_resident(parts: &mut [Part]) {
    // The backends of the partitions that read each value.
    let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
    for p in parts.iter() {
        for &v in &p.inputs {
            let backends = readers.entry(v).or_default();
            if !backends.contains(&p.backend) {
                backends.push(p.backend);
            }
        }
    }
    for p in parts.iter_mut() {
        p.local = p
            .outputs
            .iter()
            .map(|&v| {
                readers
                    .get(&v)
                    .is_none_or(|bs| bs.iter().all(|&b| b == p.backend))
            })
            .collect();
    }
}

fn resolve(ty: &ValueType, bindings: &HashMap<String, usize>) -> ValueType {
    match ty {
        ValueType::Tensor(t) => ValueType::Tensor(xnpu_core::TensorType {
            dtype: t.dtype,
            shape: t.shape.as_ref().map(|s| s.resolve(bindings)),
        }),
        ValueType::Sequence(e) => ValueType::Sequence(Box::new(resolve(e, bindings))),
        ValueType::Optional(e) => ValueType::Optional(Box::new(resolve(e, bindings))),
        ValueType::Unknown => ValueType::Unknown,
    }
}

/// Checks a value against a declared type, binding the type's symbols.
/// Checks a device-resident input's type (dtype, and dims where both are known).
fn check_type(
    ty: &ValueType,
    got: &ValueType,
    bindings: &mut HashMap<String, usize>,
) -> Result<()> {
    match (ty, got) {
        (ValueType::Tensor(tt), ValueType::Tensor(g)) => {
            if tt.dtype != g.dtype {
                return Err(Error::invalid_input(format!(
                    "expected dtype {}, got {}",
                    tt.dtype, g.dtype
                )));
            }
            match (&tt.shape, g.shape.as_ref().and_then(|s| s.as_known())) {
                (Some(s), Some(dims)) => s.bind(&dims, bindings),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn check_input(ty: &ValueType, v: &Value, bindings: &mut HashMap<String, usize>) -> Result<()> {
    match (ty, v) {
        (ValueType::Unknown, _) => Ok(()),
        (ValueType::Tensor(tt), Value::Tensor(t)) => {
            if tt.dtype != t.dtype() {
                return Err(Error::invalid_input(format!(
                    "expected dtype {}, got {}",
                    tt.dtype,
                    t.dtype()
                )));
            }
            match &tt.shape {
                Some(s) => s.bind(t.shape(), bindings),
                None => Ok(()),
            }
        }
        (ValueType::Sequence(_), Value::Sequence { .. }) => Ok(()),
        (ValueType::Optional(_), Value::Optional { .. }) => Ok(()),
        (ValueType::Optional(inner), v) => check_input(inner, v, bindings),
        (expected, v) => Err(Error::invalid_input(format!(
            "expected {expected}, got {}",
            v.describe()
        ))),
    }
}

/// Warns, once per process and folder, when the compile cache's folder cannot be written:
/// sessions still work, but every process compiles again. The folder is not made here; the
/// closest folder that exists is tried with a file made and removed at once.
fn warn_if_unwritable(cache: &CompileCache) {
    static CHECKED: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());
    let Some(root) = cache
        .dir_for("x")
        .and_then(|d| d.parent().map(Path::to_path_buf))
    else {
        return;
    };
    {
        let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
        if checked.contains(&root) {
            return;
        }
        checked.push(root.clone());
    }
    let Some(existing) = root.ancestors().find(|a| a.exists()) else {
        return;
    };
    let why = if !existing.is_dir() {
        Some(format!("{} is not a folder", existing.display()))
    } else {
        let probe = existing.join(format!(".xnpu-write-check-{}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                None
            }
            Err(e) => Some(format!("{}: {e}", existing.display())),
        }
    };
    if let Some(why) = why {
        tracing::warn!(
            "the compile cache {} cannot be written ({why}): compiled models are not kept \
             (set XNPU_CACHE_DIR or --cache-dir to a writable folder, or turn the cache off)",
            root.display()
        );
    }
}

/// Runs the graph passes of `level` over `model` as `xnpu optimize` does: constant folding
/// evaluates on the reference CPU backend. Write the result with `xnpu::graph::onnx::save`.
pub fn optimize(model: &mut Model, level: Level) -> Result<passes::Report> {
    let evaluate = |n: &xnpu_graph::Node, i: &[Option<&Value>]| xnpu_backend_cpu::run_node(n, i);
    passes::optimize(
        model,
        &passes::Options {
            level,
            evaluate: Some(&evaluate),
            ..Default::default()
        },
    )
}
