//! `xnpu bench generate`: xnpu against onnxruntime-genai on the same model folder (or, with
//! `--against`, xnpu on one model folder against xnpu on another: a QDQ model against its
//! MatMulNBits form), same prompt and thread count, alternating runs in one invocation so
//! that both see the same machine.
//! Each run is a fresh process (`xnpu generate --json`, `scripts/ref_genai.py`), so peak
//! memory is each one's own. Writes a JSON report and an SVG chart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value as Json};
use xnpu_core::{Error, Result};
use xnpu_graph::passes::Level;

use crate::{Session, SessionOptions};

/// The peak resident memory of this process (Linux `VmHWM`), when known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Read bandwidth of this machine's memory in bytes/s with `threads` threads, measured by
/// summing a buffer much larger than the caches. A shared machine's bandwidth varies over a
/// run, so the benchmark measures it between runs and keeps the best.
pub struct Bandwidth {
    buf: Vec<u64>,
    pool: rayon::ThreadPool,
    best: f64,
}

impl Bandwidth {
    pub fn new(threads: usize) -> Result<Bandwidth> {
        const BYTES: usize = 512 << 20;
        Ok(Bandwidth {
            buf: (0..BYTES / 8).map(|i| i as u64).collect(),
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .build()
                .map_err(|e| Error::compute(format!("cannot start {threads} threads: {e}")))?,
            best: 0.0,
        })
    }

    /// `passes` more passes; returns the best so far.
    pub fn measure(&mut self, passes: usize) -> f64 {
        use rayon::prelude::*;
        let bytes = (self.buf.len() * 8) as f64;
        for _ in 0..passes {
            let t = Instant::now();
            let sum: u64 = self.pool.install(|| {
                self.buf
                    .par_chunks(1 << 16)
                    .map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))
                    .reduce(|| 0, u64::wrapping_add)
            });
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(sum);
            self.best = self.best.max(bytes / s);
        }
        self.best
    }
}

/// Bytes of weights one token reads: every constant input of the matrix products
/// (MatMulNBits' packed weights, scales and zero points; MatMul and Gemm weights, or the
/// constant inputs of the DequantizeLinear that gives a weight, as a QDQ model stores it),
/// plus one row of each embedding table.
pub fn weight_bytes_per_token(model: &Path) -> Result<u64> {
    use xnpu_graph::ir::Op;
    use xnpu_ops::nn::Op as Nn;
    use xnpu_ops::tensor::Op as T;
    let s = Session::load_with(model, SessionOptions::new().level(Level::None))?;
    let g = &s.model().graph;
    let producers = g.producers();
    let const_bytes = |v: usize| {
        g.values[v]
            .constant
            .as_ref()
            .map_or(0, |t| t.raw_bytes().len() as u64)
    };
    let mut total = 0u64;
    for n in &g.nodes {
        match &n.op {
            Op::Nn(Nn::MatMulNBits(_) | Nn::MatMul(_) | Nn::Gemm(_)) => {
                for &v in n.inputs.iter().flatten() {
                    total += const_bytes(v);
                    if let Some((p, _)) = producers[v] {
                        let dq = &g.nodes[p];
                        if matches!(dq.op, Op::Nn(Nn::DequantizeLinear(_))) {
                            total += dq
                                .inputs
                                .iter()
                                .flatten()
                                .map(|&c| const_bytes(c))
                                .sum::<u64>();
                        }
                    }
                }
            }
            Op::Tensor(T::Gather(_)) => {
                for &v in n.inputs.iter().flatten() {
                    if let Some(t) = &g.values[v].constant {
                        let rows = t.shape().first().copied().unwrap_or(1).max(1);
                        total += (t.raw_bytes().len() / rows) as u64;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(total)
}

/// What `xnpu bench generate` runs.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub model: PathBuf,
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    pub threads: usize,
    pub runs: usize,
    pub python: PathBuf,
    /// The `xnpu` executable (runs `xnpu generate --json`).
    pub xnpu: PathBuf,
    pub out: PathBuf,
    /// Compare with xnpu on this model folder instead of onnxruntime-genai on `model` (a QDQ
    /// model against its MatMulNBits form, say).
    pub against: Option<PathBuf>,
}

/// One side of the comparison: who runs which model.
struct Side {
    /// The label in the table, the report and the chart.
    label: String,
    model: PathBuf,
    /// xnpu (`xnpu generate --json`) or onnxruntime-genai (`scripts/ref_genai.py`).
    genai: bool,
}

impl Side {
    fn command(&self, cfg: &BenchConfig, ids: &str, script: &Path) -> Command {
        let (tokens, threads) = (cfg.gen_tokens.to_string(), cfg.threads.to_string());
        if self.genai {
            let mut g = Command::new(&cfg.python);
            g.arg(script)
                .arg(&self.model)
                .args(["--prompt-ids", ids])
                .args(["--max-tokens", &tokens])
                .args(["--threads", &threads])
                .args(["--no-eos", "--no-hf"]);
            g
        } else {
            let mut x = Command::new(&cfg.xnpu);
            x.arg("generate")
                .arg(&self.model)
                .args(["--prompt-ids", ids])
                .args(["--max-tokens", &tokens])
                .args(["--threads", &threads])
                .args(["--devices", "cpu-only", "--ignore-eos", "--json"]);
            x
        }
    }
}

/// The two sides: xnpu on the model, then onnxruntime-genai on it or xnpu on `against`.
fn sides(cfg: &BenchConfig) -> [Side; 2] {
    let folder = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    match &cfg.against {
        None => [
            Side {
                label: "xnpu".into(),
                model: cfg.model.clone(),
                genai: false,
            },
            Side {
                label: "onnxruntime-genai".into(),
                model: cfg.model.clone(),
                genai: true,
            },
        ],
        Some(other) => {
            let (mut a, mut b) = (folder(&cfg.model), folder(other));
            if a == b {
                (a, b) = (cfg.model.display().to_string(), other.display().to_string());
            }
            [
                Side {
                    label: format!("xnpu {a}"),
                    model: cfg.model.clone(),
                    genai: false,
                },
                Side {
                    label: format!("xnpu {b}"),
                    model: other.clone(),
                    genai: false,
                },
            ]
        }
    }
}

/// `scripts/NAME`, beside the working folder or the executable's repository (`what`: the side
/// it runs, for the error).
pub(crate) fn find_script(xnpu: &Path, name: &str, what: &str) -> Result<PathBuf> {
    let rel = Path::new("scripts").join(name);
    let mut candidates = vec![rel.clone()];
    for up in xnpu.ancestors().skip(1).take(4) {
        candidates.push(up.join(&rel));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::invalid_input(format!(
            "scripts/{name} ({what}) was not found: run from the xnpu repository"
        ))
    })
}

/// `scripts/ref_genai.py`: the onnxruntime-genai side.
fn ref_script(xnpu: &Path) -> Result<PathBuf> {
    find_script(xnpu, "ref_genai.py", "the onnxruntime-genai side")
}

fn run_json(mut cmd: Command, what: &str) -> Result<Json> {
    let out = cmd
        .output()
        .map_err(|e| Error::io(format!("{what} ({:?})", cmd.get_program()), e))?;
    if !out.status.success() {
        return Err(Error::compute(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| Error::compute(format!("{what} printed no JSON: {}", text.trim())))?;
    serde_json::from_str(line).map_err(|e| Error::compute(format!("{what}: bad JSON: {e}")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

const METRICS: [(&str, &str, bool); 4] = [
    ("prompt_tokens_per_s", "prompt tokens/s", true),
    ("time_to_first_token_s", "time to first token (s)", false),
    ("generated_tokens_per_s", "generated tokens/s", true),
    ("peak_rss_bytes", "peak memory (MiB)", false),
];

/// Runs the benchmark, prints the table, writes `bench-generate.json` and `.svg`.
pub fn run(cfg: &BenchConfig) -> Result<()> {
    let sides = sides(cfg);
    let mut vocab = None;
    let mut weights = Vec::new();
    for side in &sides {
        let lm_cfg = super::GenaiConfig::load(&side.model)?;
        if cfg.prompt_tokens + cfg.gen_tokens > lm_cfg.max_length() {
            return Err(Error::invalid_input(format!(
                "{} prompt + {} generated tokens exceed the max_length {} of {}",
                cfg.prompt_tokens,
                cfg.gen_tokens,
                lm_cfg.max_length(),
                side.model.display()
            )));
        }
        let v = lm_cfg.model.vocab_size;
        if vocab.is_some_and(|first| first != v) {
            return Err(Error::invalid_input(format!(
                "{} has a vocabulary of {v} tokens, {} of {}: compare models of one tokenizer",
                side.model.display(),
                cfg.model.display(),
                vocab.unwrap_or_default()
            )));
        }
        vocab = Some(v);
        weights.push(weight_bytes_per_token(
            &side.model.join(&lm_cfg.model.decoder.filename),
        )?);
    }
    let ids = prompt_ids(cfg.prompt_tokens, vocab.unwrap_or_default());
    // The onnxruntime-genai script, needed only when a side runs genai.
    let script = if sides.iter().any(|s| s.genai) {
        ref_script(&cfg.xnpu)?
    } else {
        PathBuf::new()
    };
    eprintln!("measuring memory read bandwidth ({} threads)", cfg.threads);
    let mut bandwidth = Bandwidth::new(cfg.threads)?;
    bandwidth.measure(3);
    let runs = alternate_runs(cfg, &sides, &ids, &script, &mut bandwidth)?;
    let bw = bandwidth.measure(0);

    let med = medians(&runs);
    let same_tokens = runs[0]
        .iter()
        .zip(&runs[1])
        .all(|(a, b)| a.get("generated_ids") == b.get("generated_ids"));
    let table = print_table(cfg, &sides, &med);
    let bounds: Vec<f64> = weights.iter().map(|&w| bw / w.max(1) as f64).collect();
    println!(
        "read bandwidth {:.2} GB/s (best between runs, {} threads)",
        bw / 1e9,
        cfg.threads
    );
    for (i, side) in sides.iter().enumerate() {
        println!(
            "{}: weights read per token {:.1} MiB, bound {:.2} tokens/s, at {:.0}%",
            side.label,
            weights[i] as f64 / 1048576.0,
            bounds[i],
            100.0 * med[i][2] / bounds[i]
        );
    }
    println!(
        "generated token ids {} between the two",
        if same_tokens { "identical" } else { "DIFFER" }
    );
    let report = json!({
        "sides": sides.iter().map(|s| json!({
            "label": s.label,
            "model": s.model.display().to_string(),
            "runner": if s.genai { "onnxruntime-genai" } else { "xnpu" },
        })).collect::<Vec<_>>(),
        "prompt_tokens": cfg.prompt_tokens,
        "gen_tokens": cfg.gen_tokens,
        "threads": cfg.threads,
        "runs": cfg.runs,
        "metrics": table,
        "weight_bytes_per_token": weights,
        "read_bandwidth_bytes_per_s": bw,
        "bandwidth_bound_tokens_per_s": bounds,
        "same_generated_ids": same_tokens,
        "side_runs": runs,
    });
    write_report(cfg, &sides, &report, &table)
}

/// A fixed prompt of `n` ordinary token ids (no special ids at the start of the
/// vocabulary), comma-separated.
fn prompt_ids(n: usize, vocab: usize) -> String {
    let lo = 300.min(vocab / 2) as u64;
    let span = (vocab as u64 - lo).max(1);
    let ids: Vec<String> = (0..n as u64)
        .map(|i| (lo + (i * 7919 + 13) % span).to_string())
        .collect();
    ids.join(",")
}

/// `cfg.runs` runs of each side, alternating which goes first and measuring the bandwidth
/// between runs, with a progress bar.
fn alternate_runs(
    cfg: &BenchConfig,
    sides: &[Side; 2],
    ids: &str,
    script: &Path,
    bandwidth: &mut Bandwidth,
) -> Result<[Vec<Json>; 2]> {
    let bar = indicatif::ProgressBar::new((2 * cfg.runs) as u64).with_style(
        indicatif::ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut runs: [Vec<Json>; 2] = [Vec::new(), Vec::new()];
    for r in 0..cfg.runs {
        // Which goes first alternates, so neither always runs on a machine the other warmed.
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let side = &sides[i];
            bar.set_message(side.label.clone());
            let cmd = side.command(cfg, ids, script);
            runs[i].push(run_json(cmd, &format!("{} run {r}", side.label))?);
            bar.inc(1);
        }
        bandwidth.measure(1);
    }
    bar.finish_and_clear();
    Ok(runs)
}

/// Per side, the median of each of [`METRICS`] over its runs (NaN where a run lacks it).
fn medians(runs: &[Vec<Json>; 2]) -> Vec<Vec<f64>> {
    let get = |j: &Json, k: &str| j.get(k).and_then(Json::as_f64).unwrap_or(f64::NAN);
    runs.iter()
        .map(|rs| {
            METRICS
                .iter()
                .map(|(k, _, _)| median(rs.iter().map(|j| get(j, k)).collect()))
                .collect()
        })
        .collect()
}

/// Prints the header and one line per metric (medians of each side and their ratio);
/// returns those lines as the report's `metrics`.
fn print_table(cfg: &BenchConfig, sides: &[Side; 2], med: &[Vec<f64>]) -> Vec<Json> {
    println!(
        "prompt {} tokens, {} generated, {} threads, {} runs each (medians)",
        cfg.prompt_tokens, cfg.gen_tokens, cfg.threads, cfg.runs
    );
    for s in sides {
        println!("{}: {}", s.label, s.model.display());
    }
    let (a, b) = (&sides[0].label, &sides[1].label);
    let w = a.len().max(b.len()).max(10);
    println!(
        "{:<26} {a:>w$} {b:>w$} {:>14}",
        "",
        format!("{} / {}", short(a), short(b))
    );
    let mut table = Vec::new();
    for (i, (key, label, higher_better)) in METRICS.iter().enumerate() {
        let (mut x, mut y) = (med[0][i], med[1][i]);
        if *key == "peak_rss_bytes" {
            x /= 1048576.0;
            y /= 1048576.0;
        }
        let ratio = x / y;
        println!("{label:<26} {x:>w$.2} {y:>w$.2} {ratio:>13.2}x");
        table.push(json!({"metric": key, "label": label, "values": [x, y],
                          "ratio": ratio, "higher_is_better": higher_better}));
    }
    table
}

/// A label's short form for the ratio column ("onnxruntime-genai" is "genai").
fn short(label: &str) -> &str {
    label.strip_prefix("onnxruntime-").unwrap_or(label)
}

/// Writes `bench-generate.json` (the report) and `bench-generate.svg` (the chart) to
/// `cfg.out`.
fn write_report(cfg: &BenchConfig, sides: &[Side; 2], report: &Json, table: &[Json]) -> Result<()> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let jpath = cfg.out.join("bench-generate.json");
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| Error::compute(format!("cannot write the report: {e}")))?;
    std::fs::write(&jpath, text).map_err(|e| Error::io(&jpath, e))?;
    let spath = cfg.out.join("bench-generate.svg");
    chart(&spath, sides, table)?;
    println!("wrote {} and {}", jpath.display(), spath.display());
    Ok(())
}

/// The chart: one group per metric, a bar per side, each group scaled to the larger.
fn chart(path: &Path, sides: &[Side; 2], table: &[Json]) -> Result<()> {
    let groups: Vec<crate::chart::Group> = table
        .iter()
        .map(|m| crate::chart::Group {
            label: m["label"].as_str().unwrap_or("").to_string(),
            bars: sides
                .iter()
                .enumerate()
                .map(|(i, s)| crate::chart::Bar {
                    label: s.label.clone(),
                    value: m["values"][i].as_f64().unwrap_or(0.0),
                    range: None,
                })
                .collect(),
        })
        .collect();
    let title = format!("{} vs {}", sides[0].label, sides[1].label);
    crate::chart::bars(path, &title, &groups)
}
