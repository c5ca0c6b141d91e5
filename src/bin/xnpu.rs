//! The `xnpu` command-line tool: inspect a model, run it, list devices.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use rand::SeedableRng;
use xnpu::bench::random_tensor;
use xnpu::graph::backend::{CompileCache, PerformanceHint, Precision};
use xnpu::graph::passes::Level;
use xnpu::{Dim, Error, Policy, Result, Session, SessionOptions, Value};

#[derive(Parser)]
#[command(
    name = "xnpu",
    version,
    about = "Run ONNX models on whatever accelerator this machine has"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Stop with an error once the command has run this many seconds (a run stops at its
    /// next check; import and compile end the process).
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<f64>,
    /// The most memory a run may hold (bytes, or 4G, 512MiB): work past it is refused with
    /// an error before it allocates. Default: the smallest of 80% of available memory, the
    /// address-space limit and the cgroup's memory.max.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_memory)]
    max_memory: Option<u64>,
    /// Say more on standard error: -v what xnpu decides (info), -vv debug, -vvv trace.
    /// XNPU_LOG, when set, wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("\"{s}\" is not a number of seconds above 0")),
    }
}

fn parse_memory(s: &str) -> std::result::Result<u64, String> {
    xnpu::limits::parse_size(s).map_err(|e| e.to_string())
}

fn parse_hop_cost(s: &str) -> std::result::Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("\"{s}\" is not a finite cost of 0 or more")),
    }
}

/// What limits every command: the deadline and the memory a run may hold.
struct Limits {
    deadline: Option<(Instant, f64)>,
    max_memory: Option<u64>,
}

impl Limits {
    /// A run's options: the time left before the deadline.
    fn run_options(&self) -> xnpu::RunOptions {
        let o = xnpu::RunOptions::new();
        match self.deadline {
            Some((at, s)) => o.deadline(at, std::time::Duration::from_secs_f64(s)),
            None => o,
        }
    }
}

static LIMITS: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();

fn limits() -> &'static Limits {
    LIMITS.get_or_init(|| Limits {
        deadline: None,
        max_memory: None,
    })
}

/// A line on standard error (a terminal only) when `what` takes more than a second, another
/// every 10 s, and the time it took at the end: a model load and compile, say.
fn with_progress<T>(what: &str, f: impl FnOnce() -> T) -> T {
    use std::sync::mpsc;
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return f();
    }
    let (done, wait) = mpsc::channel::<()>();
    let what_ = what.to_string();
    let t0 = Instant::now();
    let ticker = std::thread::spawn(move || {
        let mut said = false;
        let mut next = std::time::Duration::from_secs(1);
        while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(next) {
            eprintln!("[xnpu] {what_} ({:.0} s)", t0.elapsed().as_secs_f64());
            said = true;
            next = std::time::Duration::from_secs(10);
        }
        said
    });
    let out = f();
    let _ = done.send(());
    if ticker.join().unwrap_or(false) {
        eprintln!("[xnpu] {what}: done in {:.1} s", t0.elapsed().as_secs_f64());
    }
    out
}

/// Loads a model from a file, or from standard input when the path is `-` (at most 2 GiB,
/// protobuf's own limit).
fn load(path: &Path, options: SessionOptions) -> Result<Session> {
    with_progress(&format!("loading and compiling {}", path.display()), || {
        load_now(path, options)
    })
}

fn load_now(path: &Path, options: SessionOptions) -> Result<Session> {
    let options = match limits().max_memory {
        Some(m) => options.max_memory(m),
        None => options,
    };
    if path == Path::new("-") {
        let bytes = xnpu_core::fs::read_limited(
            std::io::stdin().lock(),
            Path::new("standard input"),
            "model",
            2 << 30,
        )?;
        let model = xnpu::graph::onnx::load_bytes(bytes.into(), "stdin", None)?;
        return Session::new(model, options);
    }
    Session::load_with(path, options)
}

/// `s` with control characters escaped, for names from models and plugins printed to a
/// terminal.
fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// How a model is compiled: pass level, backends and the hints backends compile with.
#[derive(clap::Args)]
struct CompileArgs {
    /// Optimisation level: none, basic or all.
    #[arg(long, default_value = "all")]
    level: String,
    /// Devices: ids as `xnpu devices` lists them, comma-separated in order of preference
    /// (`openvino:npu,cpu`); `npu` or `gpu` for every device of that kind (an error when there
    /// is none, unless the list goes on); or a policy: prefer-npu (NPUs, then GPUs, then the
    /// CPU: whatever there is), prefer-gpu, cpu-only. `table:FILE.json` is the CPU backend
    /// restricted by a capability table. Default: XNPU_DEVICES, else prefer-npu.
    #[arg(long)]
    devices: Option<String>,
    /// Cost of one device hop, in units of one node on the reference CPU backend.
    #[arg(long, default_value_t = 2.0, value_parser = parse_hop_cost)]
    hop_cost: f32,
    /// Threads a backend may use for one inference (OpenVINO: INFERENCE_NUM_THREADS).
    /// Default: the backend's own choice.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Precision backends compute in: f32, f16 or bf16 (OpenVINO:
    /// INFERENCE_PRECISION_HINT). Default: f32 where a device would otherwise pick less.
    #[arg(long, value_name = "f32|f16|bf16")]
    precision: Option<String>,
    /// What compiled partitions are tuned for: latency or throughput (OpenVINO:
    /// PERFORMANCE_HINT). Default: latency.
    #[arg(long, value_name = "latency|throughput")]
    performance: Option<String>,
    /// Keep compiled partitions in this folder between runs (sealed, checked blobs).
    /// Default: XNPU_CACHE_DIR, else $XDG_CACHE_HOME/xnpu, else ~/.cache/xnpu.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Neither read nor write a compile cache.
    #[arg(long)]
    no_cache: bool,
}

impl CompileArgs {
    fn options(&self) -> Result<SessionOptions> {
        let mut o = SessionOptions::new().level(self.level.parse::<Level>()?);
        o.partition.hop_cost = self.hop_cost;
        if let Some(d) = &self.devices {
            o = o.devices(d.parse::<Policy>()?);
        }
        if let Some(n) = self.threads {
            o = o.threads(n as usize);
        }
        if let Some(p) = &self.precision {
            o = o.precision(p.parse::<Precision>()?);
        }
        if let Some(h) = &self.performance {
            o = o.performance(h.parse::<PerformanceHint>()?);
        }
        if self.no_cache {
            o = o.compile_cache(CompileCache::Off);
        } else if let Some(dir) = &self.cache_dir {
            o = o.compile_cache(CompileCache::Dir(dir.clone()));
        }
        Ok(o)
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// The ONNX model file (`-` reads it from standard input).
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// An input as NAME=FILE.npy, once per input (`xnpu info` lists them); a model with one
    /// input also takes a bare FILE.npy.
    #[arg(long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Fill the inputs not given with --input with seeded random values (symbolic
    /// dimensions 1 unless --dim sets them).
    #[arg(long)]
    random: bool,
    /// Seed for --random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The size of a symbolic input dimension for --random, as NAME=N (repeatable; default
    /// 1).
    #[arg(long = "dim", value_name = "NAME=N")]
    dims: Vec<String>,
    /// Print where the CPU backend's time went over the timed runs: per op (fast and
    /// reference kernels apart), then the heaviest nodes.
    #[arg(long, conflicts_with = "json")]
    profile: bool,
    /// Write every output as DIR/NAME.npy.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Run this many times and report the median time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Print one JSON object (inputs, outputs, devices, times; docs/cli-json.md) instead of
    /// the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    compile: CompileArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Inputs, outputs, opsets, op histogram and parameter count of a model.
    Info {
        /// The ONNX model file (`-` reads it from standard input).
        #[arg(value_name = "MODEL.onnx")]
        model: PathBuf,
    },
    /// Runs a model on inputs from .npy files (or random ones) and prints its outputs, the
    /// time and the devices; --output-dir writes the outputs as .npy files.
    Run(RunArgs),
    /// Runs the graph passes on a model and writes the result as ONNX (fused ops are
    /// written back as the standard ops they stand for).
    Optimize {
        /// The ONNX model to read.
        #[arg(value_name = "INPUT.onnx")]
        input: PathBuf,
        /// The ONNX file to write (not the input: give another name).
        #[arg(value_name = "OUTPUT.onnx")]
        output: PathBuf,
        /// Optimisation level: none, basic or all.
        #[arg(long, default_value = "all")]
        level: String,
    },
    /// Shows how a model is split between backends: partitions, nodes per backend, device
    /// hops, and (with --explain) why each node runs where it runs.
    Partition {
        /// The ONNX model file (`-` reads it from standard input).
        #[arg(value_name = "MODEL.onnx")]
        model: PathBuf,
        #[command(flatten)]
        compile: CompileArgs,
        /// Print the per-node table: node, op, chosen backend, why the others said no.
        #[arg(long)]
        explain: bool,
        /// With --explain: print the explanation as JSON (docs/explain.md) instead, alone.
        #[arg(long, requires = "explain")]
        json: bool,
        /// Write a Graphviz picture of the partitions to FILE.
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        /// The size of a symbolic dimension for the memory plan, as NAME=N (default 1).
        #[arg(long = "dim", value_name = "NAME=N")]
        dims: Vec<String>,
    },
    /// Lists the devices on this machine and the backends this xnpu can run on; the ids
    /// it prints are what --devices takes.
    Devices {
        /// Print one JSON object (devices, backends, notes; docs/cli-json.md) instead.
        #[arg(long)]
        json: bool,
        /// Look at a tree laid out like `/` instead of this machine (tests' fixture trees);
        /// lists only what discovery finds there.
        #[arg(long, hide = true, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Generates text with a language model folder as onnxruntime-genai's builder writes it
    /// (genai_config.json, model.onnx, tokenizer.json), streaming it as it comes.
    Generate(GenerateArgs),
    /// Benchmarks: `xnpu bench MODEL...` runs models on every device and the peer runtimes
    /// side by side; `xnpu bench generate` a language model against onnxruntime-genai.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        what: Option<BenchCommand>,
        #[command(flatten)]
        models: BenchArgs,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// ONNX models.
    models: Vec<PathBuf>,
    /// xnpu devices to run on: a comma-separated list of ids (as `xnpu devices` prints
    /// them), or `all` for every device this xnpu can drive here.
    #[arg(long, default_value = "all")]
    devices: String,
    /// Peer runtimes on the same model, inputs and threads: onnxruntime, openvino (comma-
    /// separated), or `none`.
    #[arg(long, default_value = "onnxruntime")]
    against: String,
    /// Rounds per contender, alternating (each a fresh process).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Timed inferences per round, after the first.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Threads for every contender (xnpu's CPU kernels, ONNX Runtime's intra-op pool,
    /// OpenVINO's INFERENCE_NUM_THREADS).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The size of a symbolic input dimension, as NAME=N (repeatable; default 1).
    #[arg(long = "dim", value_name = "NAME=N")]
    dims: Vec<String>,
    /// The Python with the peers' packages (default: XNPU_PYTHON, else .venv/bin/python in
    /// the working folder, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Write bench.json, bench.svg and the input files here.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Internal: run one round of one xnpu device in this process and print its JSON line.
    #[arg(long, hide = true)]
    worker: bool,
    #[arg(long, hide = true)]
    device: Option<String>,
    #[arg(long, hide = true)]
    inputs: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// xnpu against onnxruntime-genai on the same language model, prompt and threads, in
    /// one run: prompt tokens/s, time to first token, generated tokens/s, peak memory.
    /// Writes JSON and an SVG chart.
    Generate(BenchGenerateArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// The model folder as onnxruntime-genai's builder writes it (genai_config.json,
    /// model.onnx, tokenizer.json).
    #[arg(value_name = "MODEL_DIR")]
    model: PathBuf,
    /// The prompt text.
    #[arg(
        long,
        required_unless_present = "prompt_ids",
        conflicts_with = "prompt_ids"
    )]
    prompt: Option<String>,
    /// The prompt as comma-separated token ids instead of text.
    #[arg(long, value_name = "ID,ID,...", value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// Generate at most this many tokens.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Limit prompt plus generated tokens (the KV cache) to this (default: the model's).
    #[arg(long)]
    max_length: Option<usize>,
    /// Process the prompt in chunks of this many tokens.
    #[arg(long, value_name = "N")]
    chunk_size: Option<usize>,
    /// Sample instead of taking the most likely token (greedy; the default).
    #[arg(long)]
    sample: bool,
    /// With --sample: divide the logits by this before sampling (below 1: surer, above 1:
    /// more varied).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// With --sample: sample among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// With --sample: sample among the most likely tokens whose probabilities add up to p
    /// (1: all).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Divide the logits of tokens already in the text by this (above 1: fewer repeats).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// With --sample: the random seed, for the same text on every run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep going after an end-of-sequence token.
    #[arg(long)]
    ignore_eos: bool,
    /// Devices for the prompt, when they differ from --devices (which then generates the
    /// tokens); both share the KV cache.
    #[arg(long)]
    prefill_devices: Option<String>,
    /// Print one JSON object (ids, text, timings, peak memory) instead of streaming text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    compile: CompileArgs,
}

#[derive(clap::Args)]
struct BenchGenerateArgs {
    /// The model folder (int4, as onnxruntime-genai's builder writes it).
    model: PathBuf,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens to generate (end-of-sequence ignored).
    #[arg(long, default_value_t = 64)]
    gen_tokens: usize,
    /// Threads for both (xnpu's CPU kernels, ONNX Runtime's intra-op pool).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Runs of each, alternating; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The Python with onnxruntime-genai (default: XNPU_PYTHON, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Write bench-generate.json and bench-generate.svg here.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Compare with xnpu on this model folder instead of onnxruntime-genai on MODEL (e.g. a
    /// QDQ model against its MatMulNBits form; both must share the tokenizer).
    #[arg(long, value_name = "MODEL_DIR")]
    against: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.verbose);
    let max_memory = cli.max_memory.or_else(xnpu::limits::default_memory_limit);
    let deadline = cli.timeout.map(|s| {
        let limit = std::time::Duration::from_secs_f64(s);
        // Runs stop themselves at the deadline; what cannot be stopped (import, a vendor
        // compile) ends the process a moment later, with the same message.
        std::thread::spawn(move || {
            std::thread::sleep(limit + std::time::Duration::from_millis(500));
            eprintln!("error: the command passed its time limit of {s} s (--timeout)");
            std::process::exit(1);
        });
        (Instant::now() + limit, s)
    });
    let _ = LIMITS.set(Limits {
        deadline,
        max_memory,
    });
    // Random inputs are held to the same limit as runs.
    let scope =
        max_memory.map(|m| std::sync::Arc::new(xnpu_core::run::RunScope::new(None, None, Some(m))));
    let result = xnpu_core::run::enter(scope, || dispatch(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", shown(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Warnings (a stale or unwritable cache, a plugin or a setting that was skipped) go to
/// standard error; `XNPU_LOG` (`off`, `error`, `warn`, `info`, `debug`, `trace`) sets the level,
/// else `-v` (info), `-vv` (debug), `-vvv` (trace).
fn init_log(verbose: u8) {
    use tracing_subscriber::filter::LevelFilter;
    let level = xnpu::log::env_level(match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level.clone().unwrap_or(LevelFilter::WARN))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(false)
        .init();
    if let Err(s) = level {
        tracing::warn!("{}", xnpu::log::bad_setting(&s));
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Info { model } => info(&model),
        Command::Run(args) => run(&args),
        Command::Optimize {
            input,
            output,
            level,
        } => optimize(&input, &output, &level),
        Command::Partition {
            model,
            compile,
            explain,
            json,
            dot,
            dims,
        } => partition(&model, &compile, explain, json, dot.as_deref(), &dims),
        Command::Devices { json, root } => devices(json, root.as_deref()),
        Command::Generate(args) => generate(&args),
        Command::Bench {
            what: Some(BenchCommand::Generate(args)),
            ..
        } => bench_generate(&args),
        Command::Bench { what: None, models } => bench(&models),
    }
}

fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn info(path: &Path) -> Result<()> {
    let t0 = Instant::now();
    // The model as the file has it: no passes.
    let session = load(path, SessionOptions::new().level(Level::None))?;
    let elapsed = t0.elapsed();
    let model = session.model();
    println!("model     {}", path.display());
    if !model.producer.is_empty() {
        println!("producer  {}", shown(&model.producer));
    }
    let opsets: Vec<String> = model
        .opsets
        .iter()
        .map(|(d, v)| format!("{}:{v}", if d.is_empty() { "ai.onnx" } else { &**d }))
        .collect();
    println!(
        "ir        {}   opsets {}",
        model.ir_version,
        opsets.join(", ")
    );
    println!("imported  in {:.1} ms", elapsed.as_secs_f64() * 1e3);
    println!("\ninputs");
    let names = session.inputs().into_iter().chain(session.outputs());
    let width = names
        .map(|i| shown(&i.name).len())
        .max()
        .unwrap_or(0)
        .clamp(24, 60);
    for i in session.inputs() {
        let default = if i.has_default { "  (has default)" } else { "" };
        println!("  {:<width$} {}{default}", shown(&i.name), i.ty);
    }
    println!("outputs");
    for o in session.outputs() {
        println!("  {:<width$} {}", shown(&o.name), o.ty);
    }
    let (params, bytes) = model.parameter_stats();
    match folded_parameters(model) {
        // Folding also turns shapes into constants: only a real difference is worth a word.
        Some((all, all_bytes)) if all > params.saturating_add(params / 100) => println!(
            "\nparameters {} ({}) once constants are computed; the file stores {} ({})",
            thousands(all),
            human_bytes(all_bytes),
            thousands(params),
            human_bytes(bytes)
        ),
        _ => println!(
            "\nparameters {} ({})",
            thousands(params),
            human_bytes(bytes)
        ),
    }
    let hist = model.op_histogram();
    let total: usize = hist.values().sum();
    println!("\nops ({total} nodes)");
    let mut hist: Vec<_> = hist.into_iter().collect();
    hist.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let width = hist
        .iter()
        .map(|(op, _)| op.len())
        .max()
        .unwrap_or(0)
        .max(28);
    for (op, n) in hist {
        println!("  {:<width$} {n:>6}", shown(op));
    }
    Ok(())
}

/// The parameters a model holds once the weights it computes from constants are folded:
/// the file's own, and the outputs of `ConstantOfShape`, `Expand` and `Tile` that fold (copies
/// a fold makes of stored weights, a `Transpose` or `Cast` of one, are not counted again).
/// `None` when folding fails (the file's own count stands).
fn folded_parameters(model: &xnpu::graph::Model) -> Option<(usize, usize)> {
    use xnpu::graph::passes::{fold, Options, Work};
    let g = &model.graph;
    let made: std::collections::HashSet<&str> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op.name(), "ConstantOfShape" | "Expand" | "Tile"))
        .flat_map(|n| n.outputs.iter().flatten())
        .map(|&v| g.values[v].name.as_str())
        .collect();
    let (mut params, mut bytes) = model.parameter_stats();
    if made.is_empty() {
        return Some((params, bytes));
    }
    let evaluate = |n: &xnpu::graph::Node, i: &[Option<&Value>]| xnpu_backend_cpu::run_node(n, i);
    let mut folded = g.clone();
    let options = Options {
        level: Level::Basic,
        evaluate: Some(&evaluate),
        ..Options::default()
    };
    fold::run(&mut folded, &options, &mut Work::default()).ok()?;
    for v in &folded.values {
        if let (Some(t), true) = (&v.constant, made.contains(v.name.as_str())) {
            params += t.len();
            bytes += t.raw_bytes().len();
        }
    }
    Some((params, bytes))
}

/// `n` with thousands separated: 25,557,032.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn parse_pair<'a>(s: &'a str, what: &str) -> Result<(&'a str, &'a str)> {
    s.split_once('=')
        .ok_or_else(|| Error::invalid_input(format!("{what} \"{s}\" is not NAME=VALUE")))
}

/// Where an input's values came from.
enum Source {
    File(PathBuf),
    Random,
}

/// The model's inputs as `--input` names them, for messages: `image f32[batch, 3, 32, 32]`.
fn list_inputs(session: &Session) -> String {
    let list: Vec<String> = session
        .inputs()
        .iter()
        .map(|i| {
            let default = if i.has_default {
                " (has a default)"
            } else {
                ""
            };
            format!("{} {}{default}", shown(&i.name), i.ty)
        })
        .collect();
    if list.is_empty() {
        "it has none".into()
    } else {
        format!("its inputs: {}", list.join(", "))
    }
}

/// The inputs `--input` gives: `NAME=FILE.npy`, or a bare `FILE.npy` for a model with one
/// input to give. Each name at most once, each a model input.
fn given_inputs(session: &Session, args: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let infos = session.inputs();
    let needed: Vec<&str> = infos
        .iter()
        .filter(|i| !i.has_default)
        .map(|i| i.name.as_str())
        .collect();
    let mut given = BTreeMap::new();
    for arg in args {
        let (name, file) = match arg.split_once('=') {
            Some((n, f)) if infos.iter().any(|i| i.name == n) => (n.to_string(), f),
            // A path (with no `=`, or one that names a file) for the one input to give.
            _ if needed.len() == 1 && (!arg.contains('=') || Path::new(arg).is_file()) => {
                (needed[0].to_string(), &**arg)
            }
            Some((n, _)) => {
                return Err(Error::invalid_input(format!(
                    "--input {}: the model has no input \"{}\"; {}",
                    shown(arg),
                    shown(n),
                    list_inputs(session)
                )))
            }
            None => {
                // A bare path is enough only for a model with one input to give.
                return Err(Error::invalid_input(format!(
                    "--input {}: give it as NAME=FILE.npy ({})",
                    shown(arg),
                    list_inputs(session)
                )));
            }
        };
        if given.insert(name.clone(), PathBuf::from(file)).is_some() {
            return Err(Error::invalid_input(format!(
                "--input {}: input \"{}\" is given twice",
                shown(arg),
                shown(&name)
            )));
        }
    }
    Ok(given)
}

/// The symbolic dimensions of a session's inputs (`batch`, `sequence`).
fn input_symbols(session: &Session) -> std::collections::BTreeSet<String> {
    session
        .inputs()
        .iter()
        .filter_map(|i| i.ty.tensor().and_then(|t| t.shape.clone()))
        .flat_map(|s| s.0)
        .filter_map(|d| match d {
            Dim::Sym(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// Checks that every `--dim` names one of the model's symbolic dimensions.
fn check_dims(session: &Session, dims: &HashMap<String, usize>) -> Result<()> {
    let symbols = input_symbols(session);
    let mut names: Vec<&String> = dims.keys().collect();
    names.sort();
    for name in names {
        if !symbols.contains(name) {
            let has = if symbols.is_empty() {
                "its inputs have no symbolic dimensions".to_string()
            } else {
                let list: Vec<&str> = symbols.iter().map(|s| s.as_str()).collect();
                format!("its inputs' symbolic dimensions: {}", list.join(", "))
            };
            return Err(Error::invalid_input(format!(
                "--dim {}: the model has no dimension \"{}\"; {has}",
                shown(name),
                shown(name)
            )));
        }
    }
    Ok(())
}

fn run(args: &RunArgs) -> Result<()> {
    let session = load(&args.model, args.compile.options()?)?;
    let files = given_inputs(&session, &args.inputs)?;
    let dims = parse_dims(&args.dims)?;
    check_dims(&session, &dims)?;
    if !dims.is_empty() && !args.random {
        return Err(Error::invalid_input(
            "--dim sizes the inputs --random makes; add --random (inputs from files have their own sizes)",
        ));
    }
    let missing: Vec<_> = session
        .inputs()
        .into_iter()
        .filter(|i| !i.has_default && !files.contains_key(&i.name) && !args.random)
        .collect();
    if let Some(first) = missing.first() {
        let first = &first.name;
        let missing: Vec<String> = missing
            .iter()
            .map(|i| format!("\"{}\" ({})", shown(&i.name), i.ty))
            .collect();
        return Err(Error::invalid_input(format!(
            "{}: input{} {} missing: give {} with --input {}=FILE.npy, or add --random for \
             seeded random values",
            args.model.display(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ") + if missing.len() == 1 { " is" } else { " are" },
            if missing.len() == 1 { "it" } else { "each" },
            shown(first)
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut inputs: Vec<(String, Value, Source)> = Vec::new();
    for info in session.inputs() {
        if let Some(file) = files.get(&info.name) {
            let want = info.ty.tensor().map(|t| t.dtype);
            let t = xnpu::npy::read(file)
                .and_then(|t| match want {
                    Some(d) => xnpu::npy::to_input(t, d),
                    None => Ok(t),
                })
                .map_err(|e| e.context(format!("input \"{}\"", shown(&info.name))))?;
            inputs.push((info.name, t.into(), Source::File(file.clone())));
        } else if args.random && !info.has_default {
            let t = random_tensor(&info.ty, &dims, &mut rng)
                .map_err(|e| e.context(format!("input \"{}\"", info.name)))?;
            inputs.push((info.name, t.into(), Source::Random));
        }
    }
    if !args.json {
        for (name, v, from) in &inputs {
            let from = match from {
                Source::File(f) => format!("  from {}", f.display()),
                Source::Random => format!("  random (seed {})", args.seed),
            };
            println!("input  {:<24} {}{from}", shown(name), v.describe());
        }
    }
    let mut times = Vec::new();
    let mut outputs = Vec::new();
    xnpu_backend_cpu::profile::enable(args.profile);
    for _ in 0..args.iterations {
        let t0 = Instant::now();
        let options = limits().run_options();
        outputs = session.run_with(
            inputs.iter().map(|(n, v, _)| (n.as_str(), v.clone())),
            Some(&options),
        )?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let backends: Vec<&str> = session.plan().nodes_per_backend().keys().copied().collect();
    let mut written = Vec::new();
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (name, v) in &outputs {
            let file = dir.join(format!("{}.npy", name.replace(['/', '\\', ':'], "_")));
            xnpu::npy::write(&file, v.as_tensor()?)?;
            written.push(file);
        }
    }
    if args.json {
        let value = |v: &Value| match v {
            Value::Tensor(t) => serde_json::json!({
                "dtype": t.dtype().name(),
                "shape": t.shape(),
            }),
            _ => serde_json::json!({ "type": v.describe() }),
        };
        let json = serde_json::json!({
            "schema": "xnpu.run/1",
            "model": args.model.display().to_string(),
            "devices": backends,
            "notes": session.notes(),
            "inputs": inputs.iter().map(|(n, v, from)| {
                let mut j = value(v);
                j["name"] = n.as_str().into();
                j["from"] = match from {
                    Source::File(f) => f.display().to_string().into(),
                    Source::Random => "random".into(),
                };
                j
            }).collect::<Vec<_>>(),
            "outputs": outputs.iter().enumerate().map(|(k, (n, v))| {
                let mut j = value(v);
                j["name"] = n.as_str().into();
                j["file"] = written.get(k).map(|f| f.display().to_string()).into();
                j["first_values"] = match v {
                    Value::Tensor(t) if t.dtype().is_numeric() => t
                        .to_f64_vec()
                        .map(|x| x.into_iter().take(8).collect::<Vec<_>>())
                        .unwrap_or_default()
                        .into(),
                    _ => serde_json::Value::Null,
                };
                j
            }).collect::<Vec<_>>(),
            "time_ms": {
                "median": median,
                "min": times[0],
                "max": times[times.len() - 1],
                "runs": times.len(),
            },
        });
        println!("{json}");
        if args.profile {
            print_profile(args.iterations as usize);
        }
        return Ok(());
    }
    for (name, v) in &outputs {
        let preview = match v {
            Value::Tensor(t) => t.preview(6),
            _ => String::new(),
        };
        println!("output {:<24} {} {preview}", shown(name), v.describe());
    }
    println!(
        "time   {median:.3} ms (median of {} on {})",
        times.len(),
        backends.join(" + ")
    );
    if backends.contains(&"cpu") {
        println!("cpu    {}", xnpu_backend_cpu::fast_path());
    }
    if args.profile {
        print_profile(args.iterations as usize);
    }
    for file in &written {
        println!("wrote  {}", file.display());
    }
    Ok(())
}

/// The CPU backend's time per op over `runs` runs, the most first.
fn print_profile(runs: usize) {
    let entries = xnpu_backend_cpu::profile::take();
    let total: f64 = entries.iter().map(|e| e.time.as_secs_f64()).sum();
    println!("profile (CPU backend, per run):");
    println!("  {:<28} {:>9} {:>10} {:>7}", "op", "kernel", "ms", "share");
    for e in &entries {
        let ms = e.time.as_secs_f64() * 1e3 / runs as f64;
        println!(
            "  {:<28} {:>9} {:>10.3} {:>6.1}%",
            format!("{} (x{})", e.op, e.calls / runs as u64),
            if e.fast { "fast" } else { "reference" },
            ms,
            100.0 * e.time.as_secs_f64() / total.max(1e-12)
        );
    }
    let nodes = xnpu_backend_cpu::profile::take_nodes();
    println!("heaviest nodes:");
    for e in nodes.iter().take(PROFILE_NODES) {
        println!(
            "  {:<40} {:<16} {:>10.3} {:>6.1}%",
            e.node,
            e.op,
            e.time.as_secs_f64() * 1e3 / runs as f64,
            100.0 * e.time.as_secs_f64() / total.max(1e-12)
        );
    }
}

/// How many nodes `xnpu run --profile` lists.
const PROFILE_NODES: usize = 15;

fn optimize(input: &Path, output: &Path, level: &str) -> Result<()> {
    let level: Level = level.parse()?;
    if input == output || same_file(input, output) {
        return Err(Error::invalid_input(format!(
            "{}: the output is the input file; write the optimised model to another file, \
             not over the one it was read from",
            output.display()
        )));
    }
    let mut model = xnpu::graph::onnx::load(input)?;
    let report = xnpu::optimize(&mut model, level)?;
    xnpu::graph::onnx::save(&model, output)?;
    println!("{}: {report}", input.display());
    println!("wrote {}", output.display());
    Ok(())
}

/// Whether two paths name one file (a link or a hard link included).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        matches!((std::fs::metadata(a), std::fs::metadata(b)),
            (Ok(x), Ok(y)) if (x.dev(), x.ino()) == (y.dev(), y.ino()))
    }
    #[cfg(not(unix))]
    {
        matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    }
}

fn parse_dims(dim_args: &[String]) -> Result<HashMap<String, usize>> {
    let mut dims = HashMap::new();
    for arg in dim_args {
        let (name, n) = parse_pair(arg, "--dim")?;
        let n = n
            .parse()
            .map_err(|_| Error::invalid_input(format!("--dim {name}: \"{n}\" is not a number")))?;
        dims.insert(name.to_string(), n);
    }
    Ok(dims)
}

fn partition(
    path: &Path,
    compile: &CompileArgs,
    explain: bool,
    json: bool,
    dot: Option<&Path>,
    dim_args: &[String],
) -> Result<()> {
    let session = load(path, compile.options()?)?;
    if json {
        println!("{}", session.explanation().to_json());
        if let Some(file) = dot {
            let dot = session.plan().dot(&session.model().graph);
            std::fs::write(file, dot).map_err(|e| Error::io(file, e))?;
        }
        return Ok(());
    }
    let graph = &session.model().graph;
    println!("{}: {}", path.display(), session.optimization_report());
    if explain {
        print!("{}", session.explain());
    } else {
        print!("{}", session.plan().summary());
    }
    // Symbols not given with --dim are bound to 1.
    let mut dims = parse_dims(dim_args)?;
    for &i in &graph.inputs {
        if let Some(s) = graph.values[i].ty.tensor().and_then(|t| t.shape.as_ref()) {
            for d in &s.0 {
                if let Dim::Sym(name) = d {
                    dims.entry(name.clone()).or_insert(1);
                }
            }
        }
    }
    let plan = session.memory_plan(&dims)?;
    println!("memory: {plan}");
    if let Some(file) = dot {
        std::fs::write(file, session.plan().dot(graph)).map_err(|e| Error::io(file, e))?;
        println!("wrote {}", file.display());
    }
    Ok(())
}

fn devices(json: bool, root: Option<&Path>) -> Result<()> {
    let discovery = match root {
        Some(dir) => xnpu::Discovery::at(dir),
        None => xnpu::Discovery::system(),
    };
    let found = discovery.devices();
    // What sessions can use now: discovery says what the machine has, the registry which
    // backends this build of xnpu (and the plugins it found) can drive, on-demand ones (QNN)
    // opened too. A fixture tree has no backends.
    let (usable, notes) = match root {
        Some(_) => (Vec::new(), Vec::new()),
        None => xnpu::registry::everything(),
    };
    let missing: Vec<String> = found
        .iter()
        .filter(|d| d.available() && !usable.iter().any(|a| a.id == d.id()) && d.backend != "cpu")
        .map(|d| d.id())
        .collect();
    if json {
        let devices: Vec<serde_json::Value> = found.iter().map(|d| d.to_json()).collect();
        let backends: Vec<serde_json::Value> = usable
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.id,
                    "kind": a.backend.kind().to_string(),
                    "detail": a.detail,
                })
            })
            .collect();
        let v = serde_json::json!({
            "schema": "xnpu.devices/1",
            "devices": devices,
            "backends": backends,
            "not_driven": missing,
            "wsl": discovery.wsl(),
            "notes": notes,
        });
        println!("{v}");
        return Ok(());
    }
    print!(
        "{}",
        xnpu::devices::render(&found, discovery.wsl().as_deref())
    );
    if root.is_some() {
        return Ok(());
    }
    println!();
    println!("backends this xnpu can run on:");
    let width = usable.iter().map(|a| a.id.len()).max().unwrap_or(0);
    for a in &usable {
        println!(
            "  {:<width$}  {:<3}  {}",
            a.id,
            a.backend.kind().to_string(),
            a.detail
        );
    }
    if !missing.is_empty() {
        println!(
            "found but not yet driven by this build (no backend for them yet): {}",
            missing.join(", ")
        );
    }
    for n in notes.iter() {
        println!("note: {n}");
    }
    Ok(())
}

fn generate(args: &GenerateArgs) -> Result<()> {
    use std::io::Write;
    use xnpu::generate::{GenerateOptions, LanguageModel, ModelOptions, Sampling};
    let session = args.compile.options()?;
    let prefill = match &args.prefill_devices {
        Some(d) => Some(session.clone().devices(d.parse::<Policy>()?)),
        None => None,
    };
    let t0 = Instant::now();
    let lm = with_progress(
        &format!("loading and compiling {}", args.model.display()),
        || LanguageModel::load(&args.model, ModelOptions { session, prefill }),
    )?;
    let load = t0.elapsed();
    let prompt = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(text)) => lm.encode(text)?,
        (None, None) => return Err(Error::invalid_input("give --prompt or --prompt-ids")),
    };
    let opts = GenerateOptions {
        max_tokens: args.max_tokens,
        max_length: args.max_length,
        chunk_size: args.chunk_size,
        ignore_eos: args.ignore_eos,
        sampling: Sampling {
            do_sample: args.sample,
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
        },
    };
    let json = args.json;
    let mut out = std::io::stdout().lock();
    if !json {
        if let Some(text) = &args.prompt {
            let _ = write!(out, "{text}");
            let _ = out.flush();
        }
    }
    let g = lm.generate_ids(&prompt, &opts, |t| {
        if !json {
            let _ = write!(out, "{}", t.text);
            let _ = out.flush();
        }
        true
    })?;
    let st = &g.stats;
    if json {
        let v = serde_json::json!({
            "model_dir": args.model.display().to_string(),
            "prompt_ids": g.prompt_ids,
            "generated_ids": g.ids,
            "text": g.text,
            "finish": format!("{:?}", g.finish).to_lowercase(),
            "load_s": load.as_secs_f64(),
            "prompt_tokens": st.prompt_tokens,
            "generated_tokens": st.generated_tokens,
            "prefill_s": st.prefill.as_secs_f64(),
            "time_to_first_token_s": st.time_to_first_token.as_secs_f64(),
            "decode_s": st.decode.as_secs_f64(),
            "decode_steps": st.decode_steps,
            "prompt_tokens_per_s": st.prompt_tokens_per_s(),
            "generated_tokens_per_s": st.generated_tokens_per_s(),
            "peak_rss_bytes": xnpu::generate::bench::peak_rss_bytes(),
        });
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "\n-- time to first token {:.1} ms | prompt {} tokens, {:.1} tokens/s | generated {} tokens, {:.1} tokens/s ({:?})",
            st.time_to_first_token.as_secs_f64() * 1e3,
            st.prompt_tokens,
            st.prompt_tokens_per_s(),
            st.generated_tokens,
            st.generated_tokens_per_s(),
            g.finish
        );
    }
    Ok(())
}

/// The Python with the peers' packages: `--python`, else XNPU_PYTHON, else the repository's
/// `.venv` (scripts/test.sh makes it) when run from the repository, else `python3`.
fn python(given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .or_else(|| std::env::var_os("XNPU_PYTHON").map(PathBuf::from))
        .or_else(|| Some(PathBuf::from(".venv/bin/python")).filter(|p| p.is_file()))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn bench(args: &BenchArgs) -> Result<()> {
    use xnpu::bench::{Contender, Peer};
    if args.worker {
        let (Some(device), Some(inputs), [model]) =
            (&args.device, &args.inputs, args.models.as_slice())
        else {
            return Err(Error::invalid_input(
                "--worker needs --device, --inputs and one model",
            ));
        };
        return xnpu::bench::worker(model, device, inputs, args.iterations, args.threads);
    }
    if args.models.is_empty() {
        return Err(Error::invalid_input("xnpu bench needs at least one model"));
    }
    let mut contenders: Vec<Contender> = if args.devices.trim() == "all" {
        xnpu::registry::everything()
            .0
            .into_iter()
            .filter(|a| a.id != xnpu_backend_cpu::REFERENCE_ID)
            .map(|a| Contender::Xnpu(a.id))
            .collect()
    } else {
        args.devices
            .split(',')
            .map(|d| Contender::Xnpu(d.trim().to_string()))
            .collect()
    };
    if args.against.trim() != "none" {
        for p in args.against.split(',') {
            contenders.push(Contender::Peer(p.parse::<Peer>()?));
        }
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let rows = xnpu::bench::run(&xnpu::bench::BenchConfig {
        models: args.models.clone(),
        contenders,
        rounds: args.rounds.max(1),
        iterations: args.iterations.max(1),
        threads: args.threads.max(1),
        seed: args.seed,
        dims: parse_dims(&args.dims)?,
        python: python(args.python.as_ref()),
        xnpu: exe,
        out: args.out.clone(),
        progress: !args.json,
    })?;
    if args.json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| Error::compute(format!("cannot print the results: {e}")))?;
        println!("{text}");
    } else {
        println!("cpu path: {}", xnpu_backend_cpu::fast_path());
        print!("{}", xnpu::bench::table(&rows));
        println!(
            "wrote {} and {}",
            args.out.join("bench.json").display(),
            args.out.join("bench.svg").display()
        );
    }
    Ok(())
}

fn bench_generate(args: &BenchGenerateArgs) -> Result<()> {
    use xnpu::generate::bench::{run, BenchConfig};
    let python = python(args.python.as_ref());
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    run(&BenchConfig {
        model: args.model.clone(),
        prompt_tokens: args.prompt_tokens,
        gen_tokens: args.gen_tokens,
        threads: args.threads,
        runs: args.runs,
        python,
        xnpu: exe,
        out: args.out.clone(),
        against: args.against.clone(),
    })
}
