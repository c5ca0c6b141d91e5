//! `xnpu bench generate`: xnpu against onnxruntime-genai on the same model folder, prompt
//! and thread count, alternating runs in one invocation so that both see the same machine.
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
/// (MatMulNBits' packed weights, scales and zero points; MatMul and Gemm weights), plus one
/// row of each embedding table.
pub fn weight_bytes_per_token(model: &Path) -> Result<u64> {
    use xnpu_graph::ir::Op;
    use xnpu_ops::nn::Op as Nn;
    use xnpu_ops::tensor::Op as T;
    let s = Session::load_with(model, SessionOptions::new().level(Level::None))?;
    let g = &s.model().graph;
    let mut total = 0u64;
    for n in &g.nodes {
        let consts = n
            .inputs
            .iter()
            .flatten()
            .filter_map(|&v| g.values[v].constant.as_ref());
        match &n.op {
            Op::Nn(Nn::MatMulNBits(_) | Nn::MatMul(_) | Nn::Gemm(_)) => {
                total += consts.map(|t| t.raw_bytes().len() as u64).sum::<u64>();
            }
            Op::Tensor(T::Gather(_)) => {
                total += consts
                    .map(|t| {
                        let rows = t.shape().first().copied().unwrap_or(1).max(1);
                        (t.raw_bytes().len() / rows) as u64
                    })
                    .sum::<u64>();
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
    let lm_cfg = super::GenaiConfig::load(&cfg.model)?;
    if cfg.prompt_tokens + cfg.gen_tokens > lm_cfg.max_length() {
        return Err(Error::invalid_input(format!(
            "{} prompt + {} generated tokens exceed the model's max_length {}",
            cfg.prompt_tokens,
            cfg.gen_tokens,
            lm_cfg.max_length()
        )));
    }
    let ids = prompt_ids(cfg.prompt_tokens, lm_cfg.model.vocab_size);
    let script = ref_script(&cfg.xnpu)?;
    let model_file = cfg.model.join(&lm_cfg.model.decoder.filename);
    let weights = weight_bytes_per_token(&model_file)?;
    eprintln!("measuring memory read bandwidth ({} threads)", cfg.threads);
    let mut bandwidth = Bandwidth::new(cfg.threads)?;
    bandwidth.measure(3);
    let runs = alternate_runs(cfg, &ids, &script, &mut bandwidth)?;
    let bw = bandwidth.measure(0);

    let med = medians(&runs);
    let same_tokens = runs[0]
        .iter()
        .zip(&runs[1])
        .all(|(a, b)| a.get("generated_ids") == b.get("generated_ids"));
    let bound = bw / weights.max(1) as f64;
    let table = print_table(cfg, &med);
    println!(
        "weights read per token {:.1} MiB; read bandwidth {:.2} GB/s (best between runs, {} threads): bound {:.2} tokens/s \
         (xnpu at {:.0}%, genai at {:.0}%)",
        weights as f64 / 1048576.0,
        bw / 1e9,
        cfg.threads,
        bound,
        100.0 * med[0][2] / bound,
        100.0 * med[1][2] / bound
    );
    println!(
        "generated token ids {} between the two",
        if same_tokens { "identical" } else { "DIFFER" }
    );
    let report = json!({
        "model": cfg.model.display().to_string(),
        "prompt_tokens": cfg.prompt_tokens,
        "gen_tokens": cfg.gen_tokens,
        "threads": cfg.threads,
        "runs": cfg.runs,
        "metrics": table,
        "weight_bytes_per_token": weights,
        "read_bandwidth_bytes_per_s": bw,
        "bandwidth_bound_tokens_per_s": bound,
        "same_generated_ids": same_tokens,
        "xnpu_runs": runs[0],
        "genai_runs": runs[1],
    });
    write_report(cfg, &report, &table)
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

/// `cfg.runs` runs of each side (xnpu, then onnxruntime-genai), alternating which goes first
/// and measuring the bandwidth between runs, with a progress bar.
fn alternate_runs(
    cfg: &BenchConfig,
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
        let mut x = Command::new(&cfg.xnpu);
        x.arg("generate")
            .arg(&cfg.model)
            .args(["--prompt-ids", ids])
            .args(["--max-tokens", &cfg.gen_tokens.to_string()])
            .args(["--threads", &cfg.threads.to_string()])
            .args(["--devices", "cpu-only", "--ignore-eos", "--json"]);
        let mut g = Command::new(&cfg.python);
        g.arg(script)
            .arg(&cfg.model)
            .args(["--prompt-ids", ids])
            .args(["--max-tokens", &cfg.gen_tokens.to_string()])
            .args(["--threads", &cfg.threads.to_string()])
            .args(["--no-eos", "--no-hf"]);
        // Which goes first alternates, so neither always runs on a machine the other warmed.
        let mut pair = [(0, "xnpu", x), (1, "onnxruntime-genai", g)];
        if r % 2 == 1 {
            pair.swap(0, 1);
        }
        for (i, name, cmd) in pair {
            bar.set_message(name);
            runs[i].push(run_json(cmd, &format!("{name} run {r}"))?);
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
fn print_table(cfg: &BenchConfig, med: &[Vec<f64>]) -> Vec<Json> {
    println!(
        "model {} | prompt {} tokens, {} generated, {} threads, {} runs each (medians)",
        cfg.model.display(),
        cfg.prompt_tokens,
        cfg.gen_tokens,
        cfg.threads,
        cfg.runs
    );
    println!(
        "{:<26} {:>14} {:>18} {:>14}",
        "", "xnpu", "onnxruntime-genai", "xnpu / genai"
    );
    let mut table = Vec::new();
    for (i, (key, label, higher_better)) in METRICS.iter().enumerate() {
        let (mut a, mut b) = (med[0][i], med[1][i]);
        if *key == "peak_rss_bytes" {
            a /= 1048576.0;
            b /= 1048576.0;
        }
        let ratio = a / b;
        println!("{label:<26} {a:>14.2} {b:>18.2} {ratio:>13.2}x");
        table.push(json!({"metric": key, "label": label, "xnpu": a, "genai": b,
                          "ratio": ratio, "higher_is_better": higher_better}));
    }
    table
}

/// Writes `bench-generate.json` (the report) and `bench-generate.svg` (the chart) to
/// `cfg.out`.
fn write_report(cfg: &BenchConfig, report: &Json, table: &[Json]) -> Result<()> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let jpath = cfg.out.join("bench-generate.json");
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| Error::compute(format!("cannot write the report: {e}")))?;
    std::fs::write(&jpath, text).map_err(|e| Error::io(&jpath, e))?;
    let spath = cfg.out.join("bench-generate.svg");
    chart(&spath, table)?;
    println!("wrote {} and {}", jpath.display(), spath.display());
    Ok(())
}

/// The chart: one group per metric, xnpu's bar and onnxruntime-genai's, each group scaled to
/// the larger of the two.
fn chart(path: &Path, table: &[Json]) -> Result<()> {
    let groups: Vec<crate::chart::Group> = table
        .iter()
        .map(|m| crate::chart::Group {
            label: m["label"].as_str().unwrap_or("").to_string(),
            bars: [("xnpu", "xnpu"), ("onnxruntime-genai", "genai")]
                .iter()
                .map(|(label, key)| crate::chart::Bar {
                    label: label.to_string(),
                    value: m[*key].as_f64().unwrap_or(0.0),
                    range: None,
                })
                .collect(),
        })
        .collect();
    crate::chart::bars(path, "xnpu vs onnxruntime-genai", &groups)
}
