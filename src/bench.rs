//! `xnpu bench`: models on every device of every backend and on the peer runtimes, side by
//! side in one run.
//!
//! Every contender — an xnpu device (`xnpu bench --worker`) or a peer (ONNX Runtime's or
//! OpenVINO's Python API, `scripts/bench_peer.py`) — runs in a fresh process per round on the
//! same model, the same input files and the same thread count, and reports one JSON line: the
//! first-run latency (load, compile and first inference), the latency of each inference after
//! it, the process's peak memory and, where the machine exposes a package energy counter
//! (powercap/RAPL), the energy per inference. Rounds alternate the contenders (the order
//! rotates each round) so that a slow drift of the machine hits all of them alike. Reported
//! per contender: the median of the first runs, the median and p90 of all inferences, the
//! spread of the rounds' medians, the largest peak memory, and the ratio of its median to
//! ONNX Runtime's where ONNX Runtime ran.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};
use xnpu_core::{DType, Dim, Error, Result, Tensor, Value, ValueType};

use crate::graph::backend::CompileCache;
use crate::{Policy, Session, SessionOptions};

/// A peer runtime `xnpu bench --against` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    OnnxRuntime,
    OpenVino,
}

impl std::str::FromStr for Peer {
    type Err = Error;

    fn from_str(s: &str) -> Result<Peer> {
        match s.trim().to_ascii_lowercase().as_str() {
            "onnxruntime" | "ort" => Ok(Peer::OnnxRuntime),
            "openvino" | "ov" => Ok(Peer::OpenVino),
            other => Err(Error::invalid_input(format!(
                "unknown peer \"{other}\" (expected onnxruntime or openvino)"
            ))),
        }
    }
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::OnnxRuntime => "onnxruntime",
            Peer::OpenVino => "openvino",
        }
    }
}

/// One contender of a benchmark.
#[derive(Clone, Debug, PartialEq)]
pub enum Contender {
    /// An xnpu device id, as `--devices` takes it.
    Xnpu(String),
    Peer(Peer),
}

impl Contender {
    /// The label in tables and charts: `xnpu cpu`, `onnxruntime`.
    pub fn label(&self) -> String {
        match self {
            Contender::Xnpu(d) => format!("xnpu {d}"),
            Contender::Peer(p) => p.name().to_string(),
        }
    }
}

/// What `xnpu bench` runs.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub models: Vec<PathBuf>,
    pub contenders: Vec<Contender>,
    /// Rounds per contender (each a fresh process).
    pub rounds: usize,
    /// Timed inferences per round, after the first.
    pub iterations: usize,
    pub threads: usize,
    /// Seed of the random inputs.
    pub seed: u64,
    /// Sizes of symbolic input dims (default 1).
    pub dims: HashMap<String, usize>,
    /// The Python with the peers' packages.
    pub python: PathBuf,
    /// The `xnpu` executable (runs the workers).
    pub xnpu: PathBuf,
    /// Where `bench.json`, `bench.svg` and the input files go.
    pub out: PathBuf,
    /// Show a progress bar.
    pub progress: bool,
}

/// One round of one contender on one model, as its process reported it.
#[derive(Clone, Debug)]
struct Round {
    first_ms: f64,
    times_ms: Vec<f64>,
    peak_rss_bytes: Option<u64>,
    energy_j: Option<f64>,
    runtime: String,
}

/// A row of the results: one contender on one model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub model: String,
    pub contender: String,
    /// What ran: xnpu's backends, the peer's version and device.
    pub runtime: String,
    pub rounds: usize,
    pub first_run_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    /// The smallest and largest of the rounds' medians.
    pub spread_ms: [f64; 2],
    pub peak_rss_mib: Option<f64>,
    pub energy_mj: Option<f64>,
    /// This median over ONNX Runtime's on the same model (below 1: faster).
    pub vs_onnxruntime: Option<f64>,
    /// Why the contender has no numbers (it failed to load or run the model).
    pub error: Option<String>,
}

/// Seeded random values for an input of type `ty` (symbolic dims from `dims`, else 1).
pub fn random_tensor(
    ty: &ValueType,
    dims: &HashMap<String, usize>,
    rng: &mut rand::rngs::StdRng,
) -> Result<Tensor> {
    let tt = ty
        .tensor()
        .ok_or_else(|| Error::unsupported(format!("cannot make random values of type {ty}")))?;
    let shape: Vec<usize> = match &tt.shape {
        Some(s) => {
            s.0.iter()
                .map(|d| match d {
                    Dim::Known(n) => *n,
                    Dim::Sym(s) => dims.get(s).copied().unwrap_or(1),
                })
                .collect()
        }
        None => vec![1],
    };
    let n = xnpu_core::shape::checked_numel(&shape)?;
    let bytes = tt.dtype.byte_len(n).unwrap_or(usize::MAX) as u64;
    // Within the current memory limit (the CLI's), and allocated fallibly.
    xnpu_core::run::reserve(
        bytes,
        &format!("a random {} input of dims {shape:?}", tt.dtype),
    )?;
    let too_big = || {
        Error::compute(format!(
            "cannot allocate {n} elements of {} for a random input of dims {shape:?}",
            tt.dtype
        ))
    };
    macro_rules! gen {
        ($t:ty, $f:expr) => {{
            let mut v: Vec<$t> = Vec::new();
            v.try_reserve_exact(n).map_err(|_| too_big())?;
            v.extend((0..n).map(|_| $f));
            Tensor::from_vec(shape.clone(), v)
        }};
    }
    match tt.dtype {
        DType::F32 => gen!(f32, rng.random_range(-1.0f32..1.0)),
        DType::F64 => gen!(f64, rng.random_range(-1.0f64..1.0)),
        DType::F16 => gen!(
            xnpu_core::f16,
            xnpu_core::f16::from_f32(rng.random_range(-1.0f32..1.0))
        ),
        DType::Bf16 => gen!(
            xnpu_core::bf16,
            xnpu_core::bf16::from_f32(rng.random_range(-1.0f32..1.0))
        ),
        DType::I8 => gen!(i8, rng.random_range(0..10)),
        DType::U8 => gen!(u8, rng.random_range(0..10)),
        DType::I16 => gen!(i16, rng.random_range(0..10)),
        DType::U16 => gen!(u16, rng.random_range(0..10)),
        DType::I32 => gen!(i32, rng.random_range(0..10)),
        DType::U32 => gen!(u32, rng.random_range(0..10)),
        DType::I64 => gen!(i64, rng.random_range(0..10)),
        DType::U64 => gen!(u64, rng.random_range(0..10)),
        DType::Bool => gen!(bool, rng.random_bool(0.5)),
        DType::String => {
            let mut v: Vec<String> = Vec::new();
            v.try_reserve_exact(n).map_err(|_| too_big())?;
            v.extend((0..n).map(|i| format!("s{i}")));
            Tensor::from_strings(shape.clone(), v)
        }
        // The narrow types: small integers (in range) or floats in [-1, 1), narrowed.
        d if d.is_narrow() => {
            let wide = match xnpu_core::narrow::int_range(d) {
                Some((lo, hi)) => gen!(f32, rng.random_range(lo..=hi) as f32),
                None => gen!(f32, rng.random_range(-1.0f32..1.0)),
            }?;
            xnpu_core::narrow::narrow(&wide, d, true, xnpu_core::narrow::RoundMode::Up)
        }
        d => Err(Error::unsupported(format!(
            "random {d} inputs cannot be made"
        ))),
    }
}

/// Writes one `.npy` per input of `model` into `dir` and `inputs.json`, the list of
/// `{name, file}` every contender reads.
fn write_inputs(model: &Path, dir: &Path, cfg: &BenchConfig) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let imported = crate::graph::onnx::load(model)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut list = Vec::new();
    let g = &imported.graph;
    for (i, &id) in g.inputs.iter().enumerate() {
        let v = &g.values[id];
        if v.constant.is_some() {
            continue;
        }
        let t = random_tensor(&v.ty, &cfg.dims, &mut rng)
            .map_err(|e| e.context(format!("input \"{}\"", v.name)))?;
        let file = format!("input{i}.npy");
        crate::npy::write(&dir.join(&file), &t)?;
        list.push(json!({"name": v.name, "file": file}));
    }
    let manifest = dir.join("inputs.json");
    std::fs::write(&manifest, Json::Array(list).to_string()).map_err(|e| Error::io(&manifest, e))
}

/// Reads the inputs [`write_inputs`] wrote.
fn read_inputs(dir: &Path) -> Result<Vec<(String, Value)>> {
    let manifest = dir.join("inputs.json");
    let text = xnpu_core::fs::read_regular_text(&manifest, "input manifest", 16 << 20)?;
    let list: Json = serde_json::from_str(&text)
        .map_err(|e| Error::invalid_input(format!("{}: {e}", manifest.display())))?;
    let entries = list.as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            let (Some(name), Some(file)) = (e["name"].as_str(), e["file"].as_str()) else {
                return Err(Error::invalid_input(format!(
                    "{}: an entry without name and file",
                    manifest.display()
                )));
            };
            Ok((name.to_string(), crate::npy::read(&dir.join(file))?.into()))
        })
        .collect()
}

/// The package energy counter in microjoules (powercap's RAPL zone 0), where readable.
fn energy_uj() -> Option<u64> {
    std::fs::read_to_string("/sys/class/powercap/intel-rapl:0/energy_uj")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One round of an xnpu device, in this process (`xnpu bench --worker`): prints its JSON
/// line.
pub fn worker(
    model: &Path,
    device: &str,
    inputs: &Path,
    iterations: usize,
    threads: usize,
) -> Result<()> {
    let feeds = read_inputs(inputs)?;
    let options = SessionOptions::new()
        .devices(device.parse::<Policy>()?)
        .threads(threads)
        .compile_cache(CompileCache::Off);
    let t0 = Instant::now();
    let session = Session::load_with(model, options)?;
    let run = || session.run(feeds.iter().map(|(n, v)| (n.as_str(), v.clone())));
    run()?;
    let first_ms = t0.elapsed().as_secs_f64() * 1e3;
    let e0 = energy_uj();
    let mut times = Vec::with_capacity(iterations.max(1));
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let energy = match (e0, energy_uj()) {
        (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / 1e6 / times.len() as f64),
        _ => None,
    };
    let backends: Vec<String> = session
        .plan()
        .nodes_per_backend()
        .iter()
        .map(|(b, n)| format!("{b} ({n} nodes)"))
        .collect();
    println!(
        "{}",
        json!({
            "runtime": format!("xnpu {}", backends.join(" + ")),
            "first_ms": first_ms,
            "times_ms": times,
            "peak_rss_bytes": crate::generate::bench::peak_rss_bytes(),
            "energy_j": energy,
        })
    );
    Ok(())
}

/// `scripts/bench_peer.py`: the peers' side.
fn peer_script(xnpu: &Path) -> Result<PathBuf> {
    crate::generate::bench::find_script(xnpu, "bench_peer.py", "the peers' side")
}

/// The command that runs one round of `c`.
fn round_command(cfg: &BenchConfig, c: &Contender, model: &Path, inputs: &Path) -> Result<Command> {
    let (iters, threads) = (cfg.iterations.to_string(), cfg.threads.to_string());
    let cmd = match c {
        Contender::Xnpu(device) => {
            let mut cmd = Command::new(&cfg.xnpu);
            cmd.args(["bench", "--worker", "--device", device, "--inputs"])
                .arg(inputs)
                .args(["--iterations", &iters, "--threads", &threads])
                .arg(model);
            cmd
        }
        Contender::Peer(p) => {
            let mut cmd = Command::new(&cfg.python);
            cmd.arg(peer_script(&cfg.xnpu)?)
                .args(["--runtime", p.name(), "--model"])
                .arg(model)
                .arg("--inputs")
                .arg(inputs)
                .args(["--iterations", &iters, "--threads", &threads]);
            cmd
        }
    };
    Ok(cmd)
}

/// Runs one round and reads its JSON line.
fn run_round(mut cmd: Command) -> std::result::Result<Round, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("{} ({})", last.trim(), out.status));
    }
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("printed no JSON: {}", text.trim()))?;
    let j: Json = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let times: Vec<f64> = j["times_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Json::as_f64).collect())
        .unwrap_or_default();
    if times.is_empty() {
        return Err(format!("reported no timings: {line}"));
    }
    Ok(Round {
        first_ms: j["first_ms"].as_f64().unwrap_or(f64::NAN),
        times_ms: times,
        peak_rss_bytes: j["peak_rss_bytes"].as_u64(),
        energy_j: j["energy_j"].as_f64(),
        runtime: j["runtime"].as_str().unwrap_or("").to_string(),
    })
}

/// The `q` quantile (0..=1) of `v`, interpolated linearly between the nearest ranks (the
/// median of an even count is the mean of the middle two); NaN when `v` is empty.
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = (v.len() as f64 - 1.0) * q.clamp(0.0, 1.0);
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Each model's label: its file stem, or its path where two models share a stem.
fn model_names(models: &[PathBuf]) -> Vec<String> {
    let stem = |m: &PathBuf| {
        m.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| m.display().to_string())
    };
    let stems: Vec<String> = models.iter().map(stem).collect();
    models
        .iter()
        .zip(&stems)
        .map(|(m, s)| {
            if stems.iter().filter(|t| *t == s).count() > 1 {
                m.display().to_string()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// A contender's row. One that failed in any round reports the error and no numbers (NaN,
/// `null` in JSON): a partial set of rounds would not be comparable.
fn summarise(model: &str, c: &Contender, rounds: &[Round], error: Option<String>) -> Row {
    let rounds = if error.is_some() { &[][..] } else { rounds };
    let all: Vec<f64> = rounds
        .iter()
        .flat_map(|r| r.times_ms.iter().copied())
        .collect();
    let medians: Vec<f64> = rounds
        .iter()
        .map(|r| quantile(r.times_ms.clone(), 0.5))
        .collect();
    let energies: Vec<f64> = rounds.iter().filter_map(|r| r.energy_j).collect();
    Row {
        model: model.to_string(),
        contender: c.label(),
        runtime: rounds
            .first()
            .map(|r| r.runtime.clone())
            .unwrap_or_default(),
        rounds: rounds.len(),
        first_run_ms: quantile(rounds.iter().map(|r| r.first_ms).collect(), 0.5),
        median_ms: quantile(all.clone(), 0.5),
        p90_ms: quantile(all, 0.9),
        spread_ms: [quantile(medians.clone(), 0.0), quantile(medians, 1.0)],
        peak_rss_mib: rounds
            .iter()
            .filter_map(|r| r.peak_rss_bytes)
            .max()
            .map(|b| b as f64 / (1 << 20) as f64),
        energy_mj: (!energies.is_empty()).then(|| quantile(energies, 0.5) * 1e3),
        vs_onnxruntime: None,
        error,
    }
}

/// Runs the benchmark: every model, every contender, `rounds` alternating rounds. Returns
/// the rows (also written as `bench.json` and `bench.svg` in `cfg.out`).
pub fn run(cfg: &BenchConfig) -> Result<Vec<Row>> {
    if cfg.contenders.is_empty() || cfg.models.is_empty() {
        return Err(Error::invalid_input(
            "nothing to benchmark: no model or no contender",
        ));
    }
    let total = (cfg.models.len() * cfg.contenders.len() * cfg.rounds.max(1)) as u64;
    let bar = if cfg.progress {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rounds  {elapsed}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    let names = model_names(&cfg.models);
    for (mi, (model, name)) in cfg.models.iter().zip(&names).enumerate() {
        let name = name.clone();
        let inputs = cfg.out.join("inputs").join(format!("{mi}-{name}"));
        write_inputs(model, &inputs, cfg).map_err(|e| e.context(model.display().to_string()))?;
        let n = cfg.contenders.len();
        let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); n];
        let mut errors: Vec<Option<String>> = vec![None; n];
        for r in 0..cfg.rounds.max(1) {
            for k in 0..n {
                // The order rotates each round: no contender always runs first.
                let i = (k + r) % n;
                let c = &cfg.contenders[i];
                bar.set_message(format!("{name}: {}", c.label()));
                if errors[i].is_none() {
                    let round = round_command(cfg, c, model, &inputs)
                        .map_err(|e| e.to_string())
                        .and_then(run_round);
                    match round {
                        Ok(round) => rounds[i].push(round),
                        Err(e) => errors[i] = Some(e),
                    }
                }
                bar.inc(1);
            }
        }
        let mut model_rows: Vec<Row> = cfg
            .contenders
            .iter()
            .zip(&rounds)
            .zip(errors)
            .map(|((c, rs), e)| summarise(&name, c, rs, e))
            .collect();
        let ort = cfg
            .contenders
            .iter()
            .position(|c| *c == Contender::Peer(Peer::OnnxRuntime))
            .filter(|&i| model_rows[i].error.is_none())
            .map(|i| model_rows[i].median_ms)
            .filter(|m| m.is_finite());
        for row in &mut model_rows {
            row.vs_onnxruntime = ort.map(|o| row.median_ms / o).filter(|r| r.is_finite());
        }
        rows.extend(model_rows);
    }
    bar.finish_and_clear();
    write_report(cfg, &rows)?;
    Ok(rows)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
}

/// The results as a terminal table.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:<22} {:<22} {:>10} {:>10} {:>10} {:>19} {:>9} {:>8} {:>7}\n",
        "model",
        "contender",
        "first ms",
        "median ms",
        "p90 ms",
        "round medians ms",
        "peak MiB",
        "mJ/inf",
        "vs ORT"
    );
    for r in rows {
        if let Some(e) = &r.error {
            s += &format!("{:<22} {:<22} failed: {e}\n", r.model, r.contender);
            continue;
        }
        s += &format!(
            "{:<22} {:<22} {:>10.1} {:>10.3} {:>10.3} {:>19} {:>9} {:>8} {:>7}\n",
            r.model,
            r.contender,
            r.first_run_ms,
            r.median_ms,
            r.p90_ms,
            format!("{:.3}-{:.3}", r.spread_ms[0], r.spread_ms[1]),
            opt(r.peak_rss_mib, 0),
            opt(r.energy_mj, 2),
            r.vs_onnxruntime
                .map_or("".to_string(), |v| format!("{v:.2}x")),
        );
    }
    s
}

fn write_report(cfg: &BenchConfig, rows: &[Row]) -> Result<()> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let report = json!({
        "threads": cfg.threads,
        "rounds": cfg.rounds.max(1),
        "iterations": cfg.iterations.max(1),
        "cpu": xnpu_backend_cpu::fast_path(),
        "rows": rows,
    });
    let jpath = cfg.out.join("bench.json");
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::compute(format!("cannot write the report: {e}")))?;
    std::fs::write(&jpath, text).map_err(|e| Error::io(&jpath, e))?;
    let groups: Vec<crate::chart::Group> = model_names(&cfg.models)
        .into_iter()
        .map(|name| crate::chart::Group {
            label: name.clone(),
            bars: rows
                .iter()
                .filter(|r| r.model == name && r.error.is_none())
                .map(|r| crate::chart::Bar {
                    label: r.contender.clone(),
                    value: r.median_ms,
                    range: Some((r.spread_ms[0], r.spread_ms[1])),
                })
                .collect(),
        })
        .collect();
    let spath = cfg.out.join("bench.svg");
    crate::chart::bars(
        &spath,
        &format!(
            "median latency, ms ({} threads; whiskers: rounds' medians)",
            cfg.threads
        ),
        &groups,
    )
}
