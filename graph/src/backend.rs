//! What the compiler asks of a backend: which nodes it can run (and at what cost, or why
//! not), and to compile a partition into an [`Executable`].
//!
//! A backend's answer comes from a declared [`CapabilityTable`] (op × dtype × constraints
//! such as static shapes only or a maximum rank), which the partitioner reads; no vendor
//! code path is involved. Tables are data: JSON files can describe one (see
//! [`CapabilityTable::from_json`]), which is how tests give two CPU backend instances
//! different capabilities.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use xnpu_core::{DType, Dim, Error, Result, Value, ValueType};

use crate::ir::{Graph, Node, Op};

/// What kind of device a backend drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Gpu,
    Npu,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Gpu => "gpu",
            DeviceKind::Npu => "npu",
        })
    }
}

/// A backend's answer for one node.
#[derive(Clone, Debug, PartialEq)]
pub enum Support {
    /// The backend runs the node; `cost` is relative (the reference CPU backend's is 1.0
    /// per node), used to decide whether a device hop pays off.
    Supported { cost: f32 },
    /// The backend cannot run the node: a stable code for programs, the vendor's own code
    /// where a vendor library gave one, and a message for people.
    Unsupported {
        code: ReasonCode,
        vendor_code: Option<i64>,
        reason: String,
    },
}

impl Support {
    pub fn is_supported(&self) -> bool {
        matches!(self, Support::Supported { .. })
    }

    /// A refusal with no vendor code.
    pub fn refuse(code: ReasonCode, reason: impl Into<String>) -> Support {
        Support::Unsupported {
            code,
            vendor_code: None,
            reason: reason.into(),
        }
    }
}

/// Why a backend refuses a node, as a code that stays the same from release to release
/// (the `code` of the partition explanation's JSON, `docs/explain.md`; the plugin ABI's
/// `NodeClaim::reason_code`). New codes are only appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum ReasonCode {
    /// None of the codes below.
    Other = 0,
    /// The op is not among those the device runs.
    OpNotSupported = 1,
    /// The device's table names the op as refused (with why).
    OpRefused = 2,
    /// An input or output has an element type the device does not take.
    Dtype = 3,
    /// A value's rank is unknown or above the device's limit.
    Rank = 4,
    /// A shape is known only at run time, and the device needs it before.
    DynamicShape = 5,
    /// The op has bodies (If, Loop, Scan, FlexAttention's modifiers) and the device runs none.
    ControlFlow = 6,
    /// The op is quantised in a scheme the device does not take.
    Quantization = 7,
    /// An attribute, or an input that must be constant, has a value the device does not run.
    Attribute = 8,
    /// A limit of the device or its vendor library (a missing kernel, a simulator's gap).
    DeviceLimit = 9,
    /// The backend gave no answer for the node (a plugin that skipped it).
    NoAnswer = 10,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 11] = [
        ReasonCode::Other,
        ReasonCode::OpNotSupported,
        ReasonCode::OpRefused,
        ReasonCode::Dtype,
        ReasonCode::Rank,
        ReasonCode::DynamicShape,
        ReasonCode::ControlFlow,
        ReasonCode::Quantization,
        ReasonCode::Attribute,
        ReasonCode::DeviceLimit,
        ReasonCode::NoAnswer,
    ];

    /// The code's name in JSON (`op_not_supported`, `dtype`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ReasonCode::Other => "other",
            ReasonCode::OpNotSupported => "op_not_supported",
            ReasonCode::OpRefused => "op_refused",
            ReasonCode::Dtype => "dtype",
            ReasonCode::Rank => "rank",
            ReasonCode::DynamicShape => "dynamic_shape",
            ReasonCode::ControlFlow => "control_flow",
            ReasonCode::Quantization => "quantization",
            ReasonCode::Attribute => "attribute",
            ReasonCode::DeviceLimit => "device_limit",
            ReasonCode::NoAnswer => "no_answer",
        }
    }

    /// The code of a number from the plugin ABI; a number this build does not know (from a
    /// newer plugin) reads as [`ReasonCode::Other`].
    pub fn from_u32(n: u32) -> ReasonCode {
        ReasonCode::ALL
            .into_iter()
            .find(|c| *c as u32 == n)
            .unwrap_or(ReasonCode::Other)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a backend sees of a node when asked whether it supports it.
pub struct NodeContext<'a> {
    pub graph: &'a Graph,
    pub node: &'a Node,
    /// Symbols that appear in the graph inputs' shapes: they are bound by each run's
    /// inputs, so a dim that is one of them is static once a run starts. Any other symbol
    /// is decided by data (NonZero, Unique, ...).
    pub input_symbols: &'a HashSet<String>,
}

impl<'a> NodeContext<'a> {
    /// The symbols of `graph`'s input shapes.
    pub fn input_symbols(graph: &Graph) -> HashSet<String> {
        let mut s = HashSet::new();
        for &i in &graph.inputs {
            if let Some(shape) = graph.values[i].ty.tensor().and_then(|t| t.shape.as_ref()) {
                for d in &shape.0 {
                    if let Dim::Sym(name) = d {
                        s.insert(name.clone());
                    }
                }
            }
        }
        s
    }

    /// The types of the node's present inputs and outputs, labelled for messages.
    pub fn typed_values(&self) -> Vec<(String, &'a ValueType)> {
        let ins = self
            .node
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| (format!("input {k}"), &self.graph.values[v].ty)));
        let outs = self
            .node
            .outputs
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.map(|v| (format!("output {k}"), &self.graph.values[v].ty)));
        ins.chain(outs).collect()
    }
}

/// A value a backend keeps on its device between runs (a GPU buffer, a QNN shared buffer,
/// an OpenVINO remote tensor): executables of the same backend read it where it is; anything
/// else reads it through [`DeviceValue::to_host`].
pub trait DeviceValue: Send + Sync + fmt::Debug {
    /// The backend (its [`Backend::name`]) whose executables read it in place.
    fn backend(&self) -> &str;
    /// Its type, dims included.
    fn value_type(&self) -> ValueType;
    /// A copy in host memory.
    fn to_host(&self) -> Result<Value>;
    /// For the backend that made it, to find its own buffer behind the trait.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What an executable reads and writes: a value in host memory, or one resident on a device.
#[derive(Clone, Debug)]
pub enum Arg {
    Host(Value),
    Device(std::sync::Arc<dyn DeviceValue>),
}

impl Arg {
    /// The value in host memory (a copy for a device-resident one).
    pub fn into_host(self) -> Result<Value> {
        match self {
            Arg::Host(v) => Ok(v),
            Arg::Device(d) => d.to_host(),
        }
    }

    /// The dims when it is a tensor whose dims are known (for per-shape compiles).
    pub fn dims(&self) -> Option<Vec<usize>> {
        match self {
            Arg::Host(v) => v.as_tensor().ok().map(|t| t.shape().to_vec()),
            Arg::Device(d) => d.value_type().tensor()?.shape.as_ref()?.as_known(),
        }
    }
}

/// A compiled partition, ready to run.
pub trait Executable: Send + Sync {
    /// Runs on the partition's inputs (in the order of the partition graph's inputs) and
    /// returns its outputs in order.
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>>;

    /// Runs on inputs the caller gives up: a backend may then update an input's buffer in
    /// place when it holds the only reference (the reference backend does this for the KV
    /// cache of GroupQueryAttention). The default borrows them for [`Executable::run`].
    fn run_owned(&self, inputs: Vec<Value>) -> Result<Vec<Value>> {
        self.run(&inputs)
    }

    /// Runs on arguments that may be resident on this backend's device, and leaves output
    /// `i` on the device when `keep[i]` (the runtime asks it for values that only this
    /// backend's executables read next, so they never cross to the host). A backend with
    /// memory of its own overrides this; the default brings device arguments to the host,
    /// runs [`Executable::run_owned`] and returns host values — all the reference CPU
    /// backend, whose device memory is the host's, needs.
    fn run_args(&self, inputs: Vec<Arg>, keep: &[bool]) -> Result<Vec<Arg>> {
        let _ = keep;
        let host = inputs
            .into_iter()
            .map(Arg::into_host)
            .collect::<Result<Vec<Value>>>()?;
        Ok(self.run_owned(host)?.into_iter().map(Arg::Host).collect())
    }

    /// Whether `data` overlaps memory the executable keeps between runs (its constants): an
    /// output that does is not the caller's alone, and must be copied before anyone writes
    /// to it. The default, false, suits backends whose outputs are always fresh buffers.
    fn holds(&self, _data: &[u8]) -> bool {
        false
    }
}

/// A backend: a device (or a library driving one) that runs partitions of a graph.
pub trait Backend: Send + Sync {
    /// A short unique name shown in tables (`cpu`, `openvino:NPU`, `qnn:htp-sim`).
    fn name(&self) -> &str;
    fn kind(&self) -> DeviceKind;
    /// Whether the backend can run `cx.node`, and at what cost.
    fn supports(&self, cx: &NodeContext<'_>) -> Support;
    /// The backend's answer for every node of `graph`, in node order: what the partitioner
    /// asks. The default asks [`Backend::supports`] node by node; a backend that judges the
    /// graph as a whole, or a plugin answering across the ABI in one call, overrides it.
    fn claim(&self, graph: &Graph) -> Vec<Support> {
        let symbols = NodeContext::input_symbols(graph);
        graph
            .nodes
            .iter()
            .map(|node| {
                self.supports(&NodeContext {
                    graph,
                    node,
                    input_symbols: &symbols,
                })
            })
            .collect()
    }
    /// Whether partitions must have concrete shapes to compile; the runtime then compiles
    /// one executable per set of concrete input shapes.
    fn needs_static_shapes(&self) -> bool {
        false
    }
    /// Compiles a partition (a graph whose inputs are the values it reads from elsewhere).
    fn compile(&self, partition: &Graph) -> Result<Box<dyn Executable>>;
    /// Compiles with the session's hints; a backend uses those that apply to it (the
    /// default ignores them all).
    fn compile_with(
        &self,
        partition: &Graph,
        options: &CompileOptions,
    ) -> Result<Box<dyn Executable>> {
        let _ = options;
        self.compile(partition)
    }
    /// The declared table behind `supports`, when there is one. A backend exported as a
    /// plugin must have one: the table is what crosses the boundary, and the host answers
    /// capability questions from it without a call per node.
    fn capabilities(&self) -> Option<&CapabilityTable> {
        None
    }
}

/// A backend a session can use, under its device id.
#[derive(Clone)]
pub struct Available {
    /// The device id users write (`--devices`, `XNPU_DEVICES`, Python's `devices=`):
    /// `family` or `family:device` (`cpu`, `openvino:npu`, `qnn:htp-sim`, `plugin:cpu`).
    pub id: String,
    pub backend: std::sync::Arc<dyn Backend>,
    /// What drives it, for `xnpu devices` (library, version, the device's own name).
    pub detail: String,
}

/// What a [`Provider`] found on this machine.
#[derive(Clone, Default)]
pub struct Offers {
    /// The backends it can run, each under its device id.
    pub available: Vec<Available>,
    /// What every session using this provider should be told (a library the user pointed
    /// at that failed to open, a bad setting).
    pub notes: Vec<String>,
    /// Why it offers nothing, when it offers nothing: for `xnpu devices` and for a device
    /// list that names it, not repeated in every session of a preference policy.
    pub unavailable: Option<String>,
}

/// A kind of backend xnpu can drive, registered once in xnpu's backend registry
/// (`xnpu::registry`): it finds the devices it can run on here and creates their backends.
/// The device policy and `xnpu devices` read every provider through the registry; none is
/// named anywhere else.
pub trait Provider: Send + Sync {
    /// The first part of the device ids it offers (`cpu`, `openvino`, `qnn`).
    fn family(&self) -> &'static str;

    /// Whether discovery is costly or has side effects (QNN's library opens in ~40 ms and
    /// writes to stdout): then it runs only when a policy names this family, when a
    /// preference policy wants a kind of device it may offer, or for `xnpu devices`.
    fn on_demand(&self) -> bool {
        false
    }

    /// Whether it may offer a device of `kind` on this kind of machine (an on-demand
    /// provider is discovered for a preference policy only when it may).
    fn may_offer(&self, kind: DeviceKind) -> bool {
        let _ = kind;
        true
    }

    /// The backends it can run now, under their device ids, and notes on what it cannot.
    /// Called at most once per process; a missing vendor library is no error (an empty
    /// offer, with a note when the user pointed at the library explicitly).
    fn discover(&self) -> Offers;
}

/// The precision a backend computes floating-point tensors in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Precision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" => Ok(Precision::F16),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(Error::invalid_input(format!(
                "unknown precision \"{s}\" (f32, f16 or bf16)"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

/// What a backend tunes a compiled partition for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PerformanceHint {
    /// One request at a time, as fast as possible.
    Latency,
    /// Many requests in flight.
    Throughput,
}

impl std::str::FromStr for PerformanceHint {
    type Err = Error;
    fn from_str(s: &str) -> Result<PerformanceHint> {
        match s.trim().to_ascii_lowercase().as_str() {
            "latency" => Ok(PerformanceHint::Latency),
            "throughput" => Ok(PerformanceHint::Throughput),
            _ => Err(Error::invalid_input(format!(
                "unknown performance hint \"{s}\" (latency or throughput)"
            ))),
        }
    }
}

/// Where a backend may keep compiled partitions between processes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CompileCache {
    /// `XNPU_CACHE_DIR`, else `$XDG_CACHE_HOME/xnpu`, else `~/.cache/xnpu`.
    #[default]
    Default,
    /// Never read or write a cache.
    Off,
    /// This folder.
    Dir(std::path::PathBuf),
}

impl CompileCache {
    /// The folder for `backend`'s cache (a subfolder of the cache root, always an absolute
    /// path), or `None` when caching is off or no root can be found. A folder given
    /// (`Dir`, `XNPU_CACHE_DIR`) is taken from the current folder when relative; as the XDG
    /// specification says, a relative `XDG_CACHE_HOME` is ignored, and so is an empty or
    /// relative `HOME` (no cache then, rather than one in the current folder).
    pub fn dir_for(&self, backend: &str) -> Option<std::path::PathBuf> {
        use std::path::{Path, PathBuf};
        let absolute = |p: &Path| p.is_absolute().then(|| p.to_path_buf());
        let root = match self {
            CompileCache::Off => return None,
            CompileCache::Dir(d) => std::path::absolute(d).ok()?,
            CompileCache::Default => match std::env::var_os("XNPU_CACHE_DIR") {
                Some(d) if d.is_empty() => return None,
                Some(d) => std::path::absolute(PathBuf::from(d)).ok()?,
                None => match std::env::var_os("XDG_CACHE_HOME")
                    .and_then(|d| absolute(Path::new(&d)))
                {
                    Some(d) => d.join("xnpu"),
                    None => absolute(Path::new(&std::env::var_os("HOME")?))?.join(".cache/xnpu"),
                },
            },
        };
        let safe: String = backend
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Some(root.join(safe))
    }
}

/// Hints a session gives every backend when compiling; each backend uses those that apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompileOptions {
    /// Threads a backend may use for one run (default: the backend's choice).
    pub threads: Option<usize>,
    /// Floating-point precision (default: the backend's; f32 for the reference backend).
    pub precision: Option<Precision>,
    pub performance: Option<PerformanceHint>,
    pub cache: CompileCache,
}

/// One op's entry in a capability table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpCapability {
    /// Relative cost per node (default: the table's `default_cost`).
    #[serde(default)]
    pub cost: Option<f32>,
    /// Dtypes this op accepts (inputs and outputs); default: the table's.
    #[serde(default)]
    pub dtypes: Option<Vec<String>>,
    #[serde(default)]
    pub max_rank: Option<usize>,
    /// Quantisation schemes this op accepts (`per-tensor`, `per-axis`, `blocked`), for the
    /// ops that carry scales (QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul);
    /// default: any.
    #[serde(default)]
    pub quantization: Option<Vec<String>>,
}

/// How a quantised op's scales are laid out.
pub fn quantization_scheme(cx: &NodeContext<'_>) -> Option<&'static str> {
    use xnpu_ops::nn::Op as Nn;
    let (scales, block): (&[usize], usize) = match &cx.node.op {
        Op::Nn(Nn::QuantizeLinear(q)) => (&[1], q.block_size),
        Op::Nn(Nn::DequantizeLinear(q)) => (&[1], q.block_size),
        Op::Nn(Nn::QLinearConv(_)) | Op::Nn(Nn::QLinearMatMul(_)) => (&[1, 4, 6], 0),
        _ => return None,
    };
    if block > 0 {
        return Some("blocked");
    }
    let per_tensor = scales
        .iter()
        .all(|&i| match cx.node.inputs.get(i).copied().flatten() {
            None => true,
            Some(v) => cx.graph.values[v]
                .ty
                .tensor()
                .and_then(|t| t.shape.as_ref())
                .and_then(|s| s.as_known())
                .is_some_and(|d| d.iter().product::<usize>() <= 1),
        });
    Some(if per_tensor { "per-tensor" } else { "per-axis" })
}

/// A backend's declared capabilities: which ops, on which dtypes, under which constraints.
/// Layouts are not a column: ONNX fixes them (NCHW for convolutions), and a backend that
/// wants another converts inside its compiled partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityTable {
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: DeviceKind,
    /// Ops by IR op name (`MatMul`, `Conv`, `Relu`, ...); `"*"` admits every op.
    pub ops: BTreeMap<String, OpCapability>,
    /// Ops refused outright, each with the reason `--explain` shows (checked before `ops`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refuse_ops: BTreeMap<String, String>,
    /// Dtypes accepted for every value a node reads or writes (default: any).
    #[serde(default)]
    pub dtypes: Option<Vec<String>>,
    /// Dtypes refused outright (checked before `dtypes`).
    #[serde(default)]
    pub refuse_dtypes: Vec<String>,
    /// Highest rank of any value a node reads or writes.
    #[serde(default)]
    pub max_rank: Option<usize>,
    /// Only shapes known before a run (numbers or symbols bound by the graph inputs).
    #[serde(default)]
    pub static_shapes: bool,
    /// Whether ops with bodies (If, Loop, Scan, SequenceMap, FlexAttention with modifiers) are
    /// admitted.
    #[serde(default)]
    pub control_flow: bool,
    #[serde(default = "one")]
    pub default_cost: f32,
}

fn default_kind() -> DeviceKind {
    DeviceKind::Cpu
}

fn one() -> f32 {
    1.0
}

fn parse_dtypes(list: &[String], table: &str) -> Result<Vec<DType>> {
    list.iter()
        .map(|s| {
            DType::parse(s).ok_or_else(|| {
                Error::invalid_input(format!(
                    "capability table \"{table}\": unknown dtype \"{s}\""
                ))
            })
        })
        .collect()
}

impl CapabilityTable {
    /// A table that admits everything at cost 1 (the reference CPU backend's).
    pub fn everything(name: &str) -> CapabilityTable {
        CapabilityTable {
            name: name.to_string(),
            kind: DeviceKind::Cpu,
            ops: BTreeMap::from([("*".to_string(), OpCapability::default())]),
            refuse_ops: BTreeMap::new(),
            dtypes: None,
            refuse_dtypes: Vec::new(),
            max_rank: None,
            static_shapes: false,
            control_flow: true,
            default_cost: 1.0,
        }
    }

    /// Parses a table from JSON, checking op and dtype names: an op the set does not have
    /// (a typo, a renamed op) is an error naming it, never a silent refusal.
    pub fn from_json(text: &str) -> Result<CapabilityTable> {
        let (t, unknown) = CapabilityTable::from_json_known(text)?;
        if let Some(op) = unknown.first() {
            let hint = Op::names()
                .iter()
                .find(|k| k.eq_ignore_ascii_case(op))
                .map(|k| format!(" (did you mean \"{k}\"?)"))
                .unwrap_or_default();
            return Err(Error::invalid_input(format!(
                "capability table \"{}\": xnpu has no op named \"{op}\"{hint}",
                t.name
            )));
        }
        Ok(t)
    }

    /// Parses a table from JSON like [`CapabilityTable::from_json`], but drops the ops this
    /// xnpu does not have and returns their names: for a plugin built against a newer xnpu,
    /// whose table may name ops this one lacks (they can never be asked about here).
    pub fn from_json_known(text: &str) -> Result<(CapabilityTable, Vec<String>)> {
        let mut t: CapabilityTable = serde_json::from_str(text)
            .map_err(|e| Error::invalid_input(format!("capability table: {e}")))?;
        let known = Op::names();
        let unknown: Vec<String> = t
            .ops
            .keys()
            .chain(t.refuse_ops.keys())
            .filter(|o| *o != "*" && !known.contains(o.as_str()))
            .cloned()
            .collect();
        for op in &unknown {
            t.ops.remove(op);
            t.refuse_ops.remove(op);
        }
        parse_dtypes(t.dtypes.as_deref().unwrap_or(&[]), &t.name)?;
        parse_dtypes(&t.refuse_dtypes, &t.name)?;
        for (op, c) in &t.ops {
            parse_dtypes(c.dtypes.as_deref().unwrap_or(&[]), &t.name)
                .map_err(|e| e.context(format!("op {op}")))?;
            for q in c.quantization.iter().flatten() {
                if !["per-tensor", "per-axis", "blocked"].contains(&q.as_str()) {
                    return Err(Error::invalid_input(format!(
                        "capability table \"{}\": op {op}: unknown quantization scheme \"{q}\" \
                         (per-tensor, per-axis or blocked)",
                        t.name
                    )));
                }
            }
        }
        Ok((t, unknown))
    }

    /// Reads a table from a JSON file.
    pub fn load(path: &std::path::Path) -> Result<CapabilityTable> {
        let text = xnpu_core::fs::read_regular_text(path, "capability table", 64 << 20)
            .map_err(|e| e.context("cannot read a capability table"))?;
        CapabilityTable::from_json(&text).map_err(|e| e.context(path.display().to_string()))
    }

    /// The table's answer for one node.
    pub fn check(&self, cx: &NodeContext<'_>) -> Support {
        match self.check_inner(cx) {
            Ok(cost) => Support::Supported { cost },
            Err((code, reason)) => Support::refuse(code, reason),
        }
    }

    fn check_inner(&self, cx: &NodeContext<'_>) -> std::result::Result<f32, (ReasonCode, String)> {
        let op = cx.node.op.name();
        if let Some(why) = self.refuse_ops.get(op) {
            return Err((
                ReasonCode::OpRefused,
                format!("{} refuses {op}: {why}", self.name),
            ));
        }
        let entry = self
            .ops
            .get(op)
            .or_else(|| self.ops.get("*"))
            .ok_or_else(|| {
                (
                    ReasonCode::OpNotSupported,
                    format!("{op} is not in {}'s op table", self.name),
                )
            })?;
        if !cx.node.op.subgraphs().is_empty() && !self.control_flow {
            return Err((
                ReasonCode::ControlFlow,
                format!("{} does not run ops with bodies", self.name),
            ));
        }
        let bad = |e: Error| (ReasonCode::Other, e.to_string());
        let refused = parse_dtypes(&self.refuse_dtypes, &self.name).map_err(bad)?;
        let allowed = match &entry.dtypes {
            Some(d) => Some(parse_dtypes(d, &self.name).map_err(bad)?),
            None => match &self.dtypes {
                Some(d) => Some(parse_dtypes(d, &self.name).map_err(bad)?),
                None => None,
            },
        };
        let max_rank = entry.max_rank.or(self.max_rank);
        if let (Some(allowed), Some(scheme)) = (&entry.quantization, quantization_scheme(cx)) {
            if !allowed.iter().any(|a| a == scheme) {
                return Err((
                    ReasonCode::Quantization,
                    format!(
                        "{op} is quantised {scheme} ({} takes {} for {op})",
                        self.name,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        for (label, ty) in cx.typed_values() {
            let t = match ty {
                ValueType::Tensor(t) => t,
                ValueType::Unknown if self.static_shapes => {
                    return Err((
                        ReasonCode::DynamicShape,
                        format!("{label} has a type known only at run time"),
                    ))
                }
                ValueType::Unknown => continue,
                other if matches!(cx.node.op, Op::Sequence(_)) || self.control_flow => {
                    let _ = other;
                    continue;
                }
                other => {
                    return Err((
                        ReasonCode::Dtype,
                        format!("{label} is a {other}, not a tensor"),
                    ))
                }
            };
            if refused.contains(&t.dtype) {
                return Err((
                    ReasonCode::Dtype,
                    format!("{label} is {}, which {} refuses", t.dtype, self.name),
                ));
            }
            if let Some(allowed) = &allowed {
                if !allowed.contains(&t.dtype) {
                    let names: Vec<_> = allowed.iter().map(|d| d.name()).collect();
                    return Err((
                        ReasonCode::Dtype,
                        format!(
                            "{label} is {} ({} takes {} for {op})",
                            t.dtype,
                            self.name,
                            names.join(", ")
                        ),
                    ));
                }
            }
            match &t.shape {
                None if self.static_shapes || max_rank.is_some() => {
                    return Err((ReasonCode::Rank, format!("{label} has an unknown rank")))
                }
                None => {}
                Some(shape) => {
                    if let Some(m) = max_rank {
                        if shape.rank() > m {
                            return Err((
                                ReasonCode::Rank,
                                format!(
                                    "{label} has rank {} (max {m} on {})",
                                    shape.rank(),
                                    self.name
                                ),
                            ));
                        }
                    }
                    if self.static_shapes {
                        if let Some(d) = shape.0.iter().find(|d| match d {
                            Dim::Known(_) => false,
                            Dim::Sym(s) => !cx.input_symbols.contains(s),
                        }) {
                            return Err((
                                ReasonCode::DynamicShape,
                                format!(
                                "{label} has dim {d} that depends on data ({} needs static shapes)",
                                self.name
                            ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(entry.cost.unwrap_or(self.default_cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_naming_an_unknown_op_is_refused_with_the_op_and_the_file() {
        let json = r#"{"name": "t", "ops": {"Relu": {}, "Conv2D": {}}}"#;
        let e = CapabilityTable::from_json(json).unwrap_err().to_string();
        assert_eq!(e, "capability table \"t\": xnpu has no op named \"Conv2D\"");
        let json = r#"{"name": "t", "ops": {"*": {}}, "refuse_ops": {"layernormalization": "no"}}"#;
        let e = CapabilityTable::from_json(json).unwrap_err().to_string();
        assert!(e.ends_with("(did you mean \"LayerNormalization\"?)"), "{e}");
        let dir = std::env::temp_dir().join(format!("xnpu-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("npu.json");
        std::fs::write(&path, r#"{"name": "npu", "ops": {"MatMull": {}}}"#).unwrap();
        let e = CapabilityTable::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&path.display().to_string()) && e.contains("\"MatMull\""),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn every_op_name_is_known_to_tables() {
        for op in [
            "MatMul",
            "Relu",
            "ReduceSum",
            "If",
            "SkipLayerNormalization",
            "LSTM",
        ] {
            assert!(Op::names().contains(op), "{op}");
        }
        let json = r#"{"name": "t", "ops": {"MatMul": {}, "If": {}}}"#;
        CapabilityTable::from_json(json).unwrap();
    }
}
