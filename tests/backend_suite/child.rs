//! A child process of the suite: every problem on one backend (or, as the `reference`
//! child, the reference's own checks), one at a time, each problem's outcome told to the
//! parent as protocol lines (`protocol.rs`).

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xnpu::core::ErrorKind;
use xnpu::graph::backend::CompileCache;
use xnpu::graph::passes::Level;
use xnpu::{Error, Session, SessionOptions, Value};

use crate::backends::{self, Target};
use crate::compare::{compare_outputs, compare_tensor, magnitude, tolerance, Compute};
use crate::families::Family;
use crate::problem::Problem;
use crate::protocol::{Line, Refuser, Verdict};
use crate::{naive, one_line, shrink, Settings, ShrinkPlan, REFERENCE};

/// How long one failure may shrink in-process, at most.
const SHRINK_TIME: Duration = Duration::from_secs(4);

/// Runs `p` with `id` alone in an explicit device list; a panic becomes an error.
pub fn run_on(p: &Problem, id: &str) -> xnpu::Result<Vec<Value>> {
    let run = || -> xnpu::Result<Vec<Value>> {
        let session = Session::new(p.model()?, options(id)?)?;
        let feeds = p.feeds();
        let out = session.run(feeds.iter().map(|(n, v)| (n.as_str(), v.clone())))?;
        Ok(out.into_iter().map(|(_, v)| v).collect())
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(Error::compute(format!("PANIC: {msg}")))
    })
}

/// `id` alone, the op as written (pass level none), no compile cache.
fn options(id: &str) -> xnpu::Result<SessionOptions> {
    Ok(SessionOptions::new()
        .devices(id.parse()?)
        .level(Level::None)
        .compile_cache(CompileCache::Off))
}

/// Whether an error is a refusal: the partitioner's ("no backend can run …"), or the
/// vendor library's at compile time (`late`: the backend's table had accepted the node).
fn refusal(e: &Error) -> Option<bool> {
    if e.kind() != ErrorKind::Unsupported {
        return None;
    }
    Some(!e.to_string().contains("no backend can run"))
}

/// A refusal's reason without what varies from problem to problem (the model's name, the
/// partition, the shapes, the node's name), so that reasons can be counted.
fn reason_of(e: &str) -> String {
    let mut r = e.to_string();
    for cut in [".onnx: ", "no backend can run "] {
        if let Some(i) = r.find(cut) {
            r = r[i + cut.len()..].to_string();
        }
    }
    if let (Some(a), Some(b)) = (r.find(" for input shapes "), r.find("]]: ")) {
        if a < b {
            r.replace_range(a..b + 2, "");
        }
    }
    // `node "add_0" (Add): ` names the node: the op is named already.
    while let Some(a) = r.find("node \"") {
        match r[a..].find("): ") {
            Some(b) => r.replace_range(a..a + b + 3, ""),
            None => break,
        }
    }
    r
}

enum Outcome {
    /// Equal, the largest difference being this fraction of its tolerance.
    Pass(f64),
    Refused {
        reason: String,
        late: bool,
    },
    Fail(String),
}

/// The reference's outputs for `p`, or why there are none (`Ok(Err)`: the reference
/// refuses the problem; `Err`: it failed on it).
fn reference(p: &Problem) -> Result<Result<Vec<Value>, String>, String> {
    match run_on(p, xnpu_backend_cpu::REFERENCE_ID) {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.kind() == ErrorKind::Unsupported => Ok(Err(e.to_string())),
        Err(e) => Err(e.to_string()),
    }
}

fn check(p: &Problem, t: &Target, want: &[Value]) -> Outcome {
    match run_on(p, &t.id) {
        Ok(got) => {
            let mag = magnitude(p.inputs.iter().filter_map(|a| a.tensor()));
            match compare_outputs(&got, want, |d| tolerance(d, t.compute, p.accum, mag)) {
                Ok(r) => Outcome::Pass(r),
                Err(e) => Outcome::Fail(e),
            }
        }
        Err(e) => match refusal(&e) {
            Some(late) => Outcome::Refused {
                reason: e.to_string(),
                late,
            },
            None => Outcome::Fail(format!("error: {e}")),
        },
    }
}

/// The reference against the naive implementation, for problems that have one.
fn check_naive(p: &Problem, want: &[Value]) -> Option<Result<f64, String>> {
    let (shape, values) = naive::evaluate(p)?;
    let got = want.first()?.as_tensor().ok()?;
    let mag = magnitude(p.inputs.iter().filter_map(|a| a.tensor()));
    let tol = tolerance(got.dtype(), Compute::Exact, p.accum, mag);
    Some(
        compare_tensor(got, got.dtype(), &shape, &values, tol)
            .map_err(|e| format!("output 0: {e}")),
    )
}

/// Where minimal problems are written: `target/backend_suite/`.
pub fn failure_dir() -> PathBuf {
    backends::build_dir()
        .and_then(|d| d.parent().map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
        .join("backend_suite")
}

/// A disagreement: who disagrees (`openvino:cpu`, `reference cpu`), on which backend it
/// reruns, and the problem as drawn with its first outcome.
pub struct Failure<'a> {
    pub who: &'a str,
    pub backend: &'a str,
    pub family: &'a Family,
    pub case: u32,
    pub problem: &'a Problem,
    pub first: &'a str,
}

impl Failure<'_> {
    /// The report: the problem, the minimal problem and its outcome (when shrunk, else why
    /// not), how to rerun it, and the problem written out for `xnpu run`.
    pub fn report(
        &self,
        s: &Settings,
        minimal: Result<&(Problem, String, u32), &str>,
    ) -> Vec<String> {
        let (f, case, backend) = (self.family, self.case, self.backend);
        let mut lines = vec![format!(
            "FAIL {} {}#{case}: {}: {}",
            self.who,
            f.name,
            self.problem.signature(),
            one_line(self.first, 300)
        )];
        let written = match minimal {
            Ok((p, why, steps)) => {
                lines.push(format!(
                    "  minimal problem ({steps} shrink steps): {}",
                    p.describe(64)
                ));
                lines.push(format!("  its outcome: {}", one_line(why, 600)));
                p
            }
            Err(why_not) => {
                lines.push(format!(
                    "  problem (not shrunk: {why_not}): {}",
                    self.problem.describe(64)
                ));
                self.problem
            }
        };
        lines.push(format!(
            "  rerun: PROPTEST_RNG_SEED={:#x} cargo test --release --test backend_suite -- {}#{case} --backend {backend}",
            s.seed, f.name
        ));
        let dir = failure_dir().join(format!("{}-{}-{case}", backend.replace(':', "_"), f.name));
        lines.push(match written.write_to(&dir) {
            Ok(inputs) => format!(
                "  as a model: xnpu run {} {inputs} --devices {backend} --level none",
                dir.join("model.onnx").display()
            ),
            Err(e) => format!("  (could not write it to {}: {e})", dir.display()),
        });
        lines
    }
}

/// How much shrinking a process may do: the first failure of each family, within a time
/// budget (`XNPU_SUITE_SHRINK_SECONDS`, default 4) for the whole process, so that a backend
/// with many failures still finishes in time. Later failures are reported as drawn.
pub struct Budget {
    shrunk: HashSet<&'static str>,
    left: Duration,
}

impl Budget {
    pub fn new() -> Budget {
        let secs = std::env::var("XNPU_SUITE_SHRINK_SECONDS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(4.0);
        Budget {
            shrunk: HashSet::new(),
            left: Duration::from_secs_f64(secs),
        }
    }

    /// How long the next shrink of family `f` may take, or why it may not.
    pub fn take(&mut self, f: &'static Family, most: Duration) -> Result<Duration, String> {
        if self.shrunk.contains(f.name) {
            return Err(format!("an earlier failure of {} was", f.name));
        }
        if self.left.is_zero() {
            return Err("the shrinking time of this run is spent".into());
        }
        self.shrunk.insert(f.name);
        Ok(most.min(self.left))
    }

    pub fn spend(&mut self, d: Duration) {
        self.left = self.left.saturating_sub(d);
    }
}

/// Shrinks in this process when the budget allows, announcing the failure and each step
/// (should a candidate kill the process, the parent replays the steps to it), and prints
/// the report.
fn shrink_and_report(
    s: &Settings,
    budget: &mut Budget,
    fail: &Failure<'_>,
    fails: &crate::Failing<'_>,
) {
    let f: &'static Family = crate::family(fail.family.name).expect("a known family");
    let lines = match budget.take(f, SHRINK_TIME) {
        Ok(time) => {
            Line::Shrink {
                first: one_line(fail.first, 300),
            }
            .send();
            let plan = ShrinkPlan {
                steps: s.shrink_steps,
                time,
                replay: "",
                trace: true,
            };
            let start = Instant::now();
            let min = shrink(f, s.seed, fail.case, fails, &plan);
            budget.spend(start.elapsed());
            fail.report(s, Ok(&min))
        }
        Err(why_not) => fail.report(s, Err(&why_not)),
    };
    for l in lines {
        Line::Report(l).send();
    }
}

/// The reference's own checks for one problem: does it run, and does it agree with the
/// naive implementation.
fn reference_case(
    s: &Settings,
    budget: &mut Budget,
    f: &Family,
    case: u32,
    p: &Problem,
) -> Verdict {
    let failure = |who, first| Failure {
        who,
        backend: xnpu_backend_cpu::REFERENCE_ID,
        family: f,
        case,
        problem: p,
        first,
    };
    let want = match reference(p) {
        Ok(Ok(v)) => v,
        Ok(Err(why)) => {
            Line::Reason {
                refuser: Refuser::Reference,
                text: format!("{}: {}", p.op, one_line(&reason_of(&why), 200)),
            }
            .send();
            return Verdict::Refused;
        }
        Err(first) => {
            let fails = |q: &Problem| reference(q).err();
            shrink_and_report(s, budget, &failure("reference cpu", &first), &fails);
            return Verdict::Fail;
        }
    };
    match check_naive(p, &want) {
        Some(Err(first)) => {
            Line::Naive { agreed: false }.send();
            let fails = |q: &Problem| match reference(q) {
                Ok(Ok(w)) => check_naive(q, &w).and_then(Result::err),
                _ => None,
            };
            shrink_and_report(s, budget, &failure("naive check of cpu", &first), &fails);
        }
        Some(Ok(_)) => Line::Naive { agreed: true }.send(),
        None => {}
    }
    Verdict::Pass
}

/// One problem on a backend: the verdict, the time the backend took, and for a pass its
/// largest difference as a fraction of the tolerance.
fn target_case(
    s: &Settings,
    budget: &mut Budget,
    t: &Target,
    f: &Family,
    case: u32,
    p: &Problem,
) -> (Verdict, Duration, f64) {
    let Ok(Ok(want)) = reference(p) else {
        return (Verdict::Skip, Duration::ZERO, 0.0);
    };
    let start = Instant::now();
    let outcome = check(p, t, &want);
    let took = start.elapsed();
    match outcome {
        Outcome::Pass(ratio) => (Verdict::Pass, took, ratio),
        Outcome::Refused { reason, late } => {
            Line::Reason {
                refuser: if late {
                    Refuser::Compiler
                } else {
                    Refuser::Backend
                },
                text: format!("{}: {}", p.op, one_line(&reason_of(&reason), 160)),
            }
            .send();
            let verdict = if late {
                Verdict::Late
            } else {
                Verdict::Refused
            };
            (verdict, took, 0.0)
        }
        Outcome::Fail(first) => {
            let fails = |q: &Problem| match reference(q) {
                Ok(Ok(w)) => match check(q, t, &w) {
                    Outcome::Fail(e) => Some(e),
                    _ => None,
                },
                _ => None,
            };
            let fail = Failure {
                who: &t.id,
                backend: &t.id,
                family: f,
                case,
                problem: p,
                first: &first,
            };
            shrink_and_report(s, budget, &fail, &fails);
            (Verdict::Fail, took, 0.0)
        }
    }
}

/// The child's loop: every job after `resume`, one at a time.
pub fn run(s: &Settings, id: &str, resume: Option<(String, u32)>) {
    std::panic::set_hook(Box::new(|_| {}));
    let target = if id == REFERENCE {
        None
    } else {
        let (targets, _) = backends::discover();
        match targets.into_iter().find(|t| t.id == id) {
            Some(t) => Some(t),
            None => {
                Line::Missing.send();
                return;
            }
        }
    };
    let mut jobs = if target.is_some() {
        s.jobs()
    } else {
        s.reference_jobs()
    };
    if let Some((fam, case)) = resume {
        if let Some(k) = jobs.iter().position(|(f, c)| f.name == fam && *c == case) {
            jobs.drain(..=k);
        }
    }
    let mut budget = Budget::new();
    for (f, case) in jobs {
        let family = f.name.to_string();
        Line::Start {
            family: family.clone(),
            case,
        }
        .send();
        let p = crate::tree(f, s.seed, case).current();
        let (verdict, took, ratio) = match &target {
            None => (
                reference_case(s, &mut budget, f, case, &p),
                Duration::ZERO,
                0.0,
            ),
            Some(t) => target_case(s, &mut budget, t, f, case, &p),
        };
        Line::Result {
            family,
            case,
            verdict,
            micros: took.as_micros() as u64,
            ratio,
        }
        .send();
    }
    Line::End.send();
}

/// Runs the model written in `dir` (by [`Problem::write_to`]) on `id` as a child would;
/// the parent only asks whether the process survives.
pub fn probe(dir: &str, id: &str) {
    std::panic::set_hook(Box::new(|_| {}));
    backends::use_built_plugins();
    let dir = Path::new(dir);
    let run = |backend: &str| -> xnpu::Result<()> {
        let model = xnpu::graph::onnx::load(&dir.join("model.onnx"))?;
        let mut feeds: Vec<(String, Value)> = Vec::new();
        for e in std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .flatten()
        {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "npy") {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let t = xnpu::npy::read(&path)?;
                // Held in a Vec of its own, as the child's tensors are (an empty Vec's
                // pointer is dangling, and a backend may behave differently on it).
                let t = crate::data::from_f64(t.dtype(), t.shape(), &t.to_f64_vec()?);
                feeds.push((name, Value::Tensor(t)));
            }
        }
        let session = Session::new(model, options(backend)?)?;
        session.run(feeds.iter().map(|(n, v)| (n.as_str(), v.clone())))?;
        Ok(())
    };
    // As a child does: the reference first, then the backend, twice (a child runs a
    // failing problem again when it shrinks it; OpenVINO has died on a second compile of a
    // model whose first compile failed).
    let _ = catch_unwind(AssertUnwindSafe(|| run(xnpu_backend_cpu::REFERENCE_ID)));
    for _ in 0..2 {
        if let Ok(Err(e)) = catch_unwind(AssertUnwindSafe(|| run(id))) {
            println!("{e}");
        }
    }
}
