//! The parent process: one child per backend (and one for the reference's own checks), a
//! few at a time; it tallies their protocol lines, turns a child's death into a failure of
//! the problem it was running (shrunk by probing candidates in fresh processes), restarts
//! the child after that problem, and prints the reports, a table per family and backend,
//! and one summary line per backend.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backends::{self, Target};
use crate::child::{failure_dir, Budget, Failure};
use crate::compare::Compute;
use crate::problem::Problem;
use crate::protocol::{Line, Refuser, Verdict};
use crate::{family, one_line, shrink, tree, Settings, ShrinkPlan, REFERENCE};

/// Crash shrinking runs one process per candidate: fewer steps, a time limit.
const CRASH_SHRINK_STEPS: u32 = 40;
const CRASH_SHRINK_TIME: Duration = Duration::from_secs(4);
/// A child that keeps dying is given up after this many restarts.
const MAX_RESTARTS: usize = 12;

/// The problem a child is on: family, case, and when it is shrinking a failure, the
/// failure and the steps taken so far.
struct InFlight {
    family: String,
    case: u32,
    shrinking: Option<(String, String)>,
}

#[derive(Default, Clone)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Refusals, when partitioning or when compiling.
    refused: usize,
    time: Duration,
}

/// What one child (with its restarts) reported.
#[derive(Default)]
struct ChildReport {
    tallies: BTreeMap<&'static str, Tally>,
    /// Refusal reasons: the reference's, or a backend's at compile time.
    notes: BTreeMap<String, usize>,
    /// A backend's refusals when partitioning, by reason.
    refusals: BTreeMap<String, usize>,
    reports: Vec<String>,
    naive: (usize, usize),
    missing: bool,
    /// The pass closest to failing: its largest difference as a fraction of the tolerance.
    closest: (f64, String),
    /// The child's time, restarts and shrinking included.
    wall: Duration,
}

impl ChildReport {
    fn tally(&mut self, fam: &str) -> Option<&mut Tally> {
        let f = family(fam)?;
        Some(self.tallies.entry(f.name).or_default())
    }

    /// Takes in one line of the child; true at its end.
    fn take(&mut self, line: Line, in_flight: &mut Option<InFlight>) -> bool {
        match line {
            Line::Start { family, case } => {
                *in_flight = Some(InFlight {
                    family,
                    case,
                    shrinking: None,
                })
            }
            Line::Shrink { first } => {
                if let Some(f) = in_flight.as_mut() {
                    f.shrinking = Some((first, String::new()));
                }
            }
            Line::Step { simplify } => {
                if let Some((_, steps)) = in_flight.as_mut().and_then(|f| f.shrinking.as_mut()) {
                    steps.push(if simplify { 's' } else { 'c' });
                }
            }
            Line::Result {
                family,
                case,
                verdict,
                micros,
                ratio,
            } => {
                *in_flight = None;
                if ratio > self.closest.0 {
                    self.closest = (ratio, format!("{family}#{case}"));
                }
                if let Some(t) = self.tally(&family) {
                    t.time += Duration::from_micros(micros);
                    match verdict {
                        Verdict::Pass => t.passed += 1,
                        Verdict::Fail => t.failed += 1,
                        Verdict::Refused | Verdict::Late => t.refused += 1,
                        Verdict::Skip => {}
                    }
                }
            }
            Line::Reason { refuser, text } => {
                let counts = match refuser {
                    Refuser::Backend => &mut self.refusals,
                    Refuser::Compiler | Refuser::Reference => &mut self.notes,
                };
                *counts.entry(text).or_default() += 1;
            }
            Line::Report(text) => self.reports.push(text),
            Line::Naive { agreed: true } => self.naive.0 += 1,
            Line::Naive { agreed: false } => self.naive.1 += 1,
            Line::Missing => self.missing = true,
            Line::End => return true,
            Line::Target { .. } | Line::Skipped { .. } => {}
        }
        false
    }
}

fn died(status: &ExitStatus) -> bool {
    !status.success()
}

/// The backend a child runs problems on.
fn backend_of(id: &str) -> &str {
    if id == REFERENCE {
        xnpu_backend_cpu::REFERENCE_ID
    } else {
        id
    }
}

/// A failure for the problem a child died on (or, when it died shrinking a failure, for that
/// failure), shrunk from the candidate that killed it by probing candidates in fresh
/// processes.
fn crash_report(
    s: &Settings,
    id: &str,
    budget: &mut Budget,
    at: &InFlight,
    status: &ExitStatus,
    tail: &str,
) -> Vec<String> {
    let Some(f) = family(&at.family) else {
        return vec![format!(
            "FAIL {id}: died ({status}) in unknown family {}",
            at.family
        )];
    };
    let backend = backend_of(id);
    let exe = std::env::current_exe().expect("the test executable");
    let dir = failure_dir().join(format!(
        "probe-{}-{}",
        backend.replace(':', "_"),
        std::process::id()
    ));
    let fails = |q: &Problem| -> Option<String> {
        let _ = std::fs::remove_dir_all(&dir);
        q.write_to(&dir).ok()?;
        let st = Command::new(&exe)
            .arg("--probe")
            .arg(&dir)
            .arg(backend)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        died(&st).then(|| format!("the process died ({st})"))
    };
    let p = tree(f, s.seed, at.case).current();
    let (replay, first) = match &at.shrinking {
        Some((first, steps)) => (
            steps.as_str(),
            format!("{first}; shrinking it, a candidate killed the process ({status})"),
        ),
        None => ("", format!("the process died ({status})")),
    };
    let first = if tail.is_empty() {
        first
    } else {
        format!("{first}; its stderr ended: {tail}")
    };
    let fail = Failure {
        who: if id == REFERENCE { "reference cpu" } else { id },
        backend,
        family: f,
        case: at.case,
        problem: &p,
        first: &first,
    };
    match budget.take(f, CRASH_SHRINK_TIME) {
        Ok(time) => {
            let plan = ShrinkPlan {
                steps: CRASH_SHRINK_STEPS,
                time,
                replay,
                trace: false,
            };
            let start = Instant::now();
            let min = shrink(f, s.seed, at.case, &fails, &plan);
            budget.spend(start.elapsed());
            let _ = std::fs::remove_dir_all(&dir);
            fail.report(s, Ok(&min))
        }
        // Not shrunk: the candidate it died on is lost; the problem as drawn may pass.
        Err(why_not) => fail.report(s, Err(&why_not)),
    }
}

/// Runs the child for `id` to the end, through its deaths.
fn supervise(s: &Settings, id: &str) -> ChildReport {
    let start = Instant::now();
    let mut r = supervise_inner(s, id);
    r.wall = start.elapsed();
    r
}

fn supervise_inner(s: &Settings, id: &str) -> ChildReport {
    let exe = std::env::current_exe().expect("the test executable");
    let mut r = ChildReport::default();
    let mut resume: Option<(String, u32)> = None;
    let mut budget = Budget::new();
    for _ in 0..=MAX_RESTARTS {
        let mut cmd = Command::new(&exe);
        cmd.arg("--child").arg(id).args(s.child_args());
        if let Some((f, c)) = &resume {
            cmd.arg("--resume").arg(format!("{f}#{c}"));
        }
        let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(c) => c,
            Err(e) => {
                r.reports
                    .push(format!("FAIL {id}: cannot start its process: {e}"));
                return r;
            }
        };
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = std::thread::spawn(move || {
            let mut last: Vec<String> = Vec::new();
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                last.push(l);
                if last.len() > 8 {
                    last.remove(0);
                }
            }
            last.join("\n")
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let mut in_flight = None;
        let mut ended = false;
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(line) = Line::parse(&text) {
                ended |= r.take(line, &mut in_flight);
            }
        }
        let status = child.wait().expect("waiting for a child");
        let tail = one_line(&tail.join().unwrap_or_default(), 400);
        if ended || r.missing {
            return r;
        }
        match in_flight {
            Some(at) => {
                if let Some(t) = r.tally(&at.family) {
                    t.failed += 1;
                }
                r.reports
                    .extend(crash_report(s, id, &mut budget, &at, &status, &tail));
                resume = Some((at.family, at.case));
            }
            None => {
                r.reports.push(format!(
                    "FAIL {id}: its process died outside any problem ({status}): {tail}"
                ));
                return r;
            }
        }
    }
    r.reports
        .push(format!("FAIL {id}: gave up after {MAX_RESTARTS} restarts"));
    r
}

pub fn run(s: &Settings) {
    let started = Instant::now();
    let (mut targets, skipped) = match backends::discover_in_child() {
        Ok(found) => found,
        Err(e) => {
            println!("backend suite: cannot list the backends: {e}");
            std::process::exit(1);
        }
    };
    // Minimal problems of an earlier run would mislead.
    let _ = std::fs::remove_dir_all(failure_dir());
    if !s.backends.is_empty() {
        targets.retain(|t| s.backends.iter().any(|b| b.eq_ignore_ascii_case(&t.id)));
    }
    let fams = s.families();
    println!(
        "backend suite: seed {:#x}, {} families, {} problems on each backend:",
        s.seed,
        fams.len(),
        s.jobs().len(),
    );
    for t in &targets {
        let fp16 = if t.compute == Compute::F16 {
            " [floats compared at fp16 tolerances]"
        } else {
            ""
        };
        println!("  {}: {}{fp16}", t.id, t.detail);
    }
    // Vendor backends (which compile per session) start first; the reference's checks run
    // unless only some backends were asked for (`--backend reference` asks for them).
    let mut ids: Vec<String> = Vec::new();
    let cheap = |t: &&Target| t.id == "cpu" || t.id == "plugin:cpu";
    ids.extend(targets.iter().filter(|t| !cheap(t)).map(|t| t.id.clone()));
    ids.extend(targets.iter().filter(cheap).map(|t| t.id.clone()));
    if s.backends.is_empty() || s.backends.iter().any(|b| b == REFERENCE) {
        ids.push(REFERENCE.to_string());
    }
    let next = AtomicUsize::new(0);
    let reports: Mutex<BTreeMap<String, ChildReport>> = Mutex::default();
    std::thread::scope(|scope| {
        for _ in 0..s.threads.min(ids.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let r = supervise(s, id);
                reports.lock().unwrap().insert(id.clone(), r);
            });
        }
    });
    let reports = reports.into_inner().unwrap();
    let mut failed = 0;
    for id in &ids {
        for l in &reports[id].reports {
            println!("{l}");
        }
    }
    let unshrunk = reports
        .values()
        .flat_map(|r| &r.reports)
        .filter(|l| l.contains("not shrunk: the shrinking time"))
        .count();
    if unshrunk > 0 {
        println!(
            "{unshrunk} failures were not shrunk for lack of time: \
             XNPU_SUITE_SHRINK_SECONDS=60 shrinks the first of each family"
        );
    }
    print_table(&reports, &fams, &targets);
    for (id, r) in &reports {
        if id == REFERENCE {
            print_reasons(
                "problems the reference refuses (no backend runs them)",
                &r.notes,
                10,
            );
        } else {
            print_reasons(&format!("{id}: most common refusals"), &r.refusals, 6);
            print_reasons(
                &format!(
                    "{id}: refused when compiling (its capability table had accepted the node)"
                ),
                &r.notes,
                10,
            );
        }
    }
    if let Some(r) = reports.get(REFERENCE) {
        let t = r.tallies.values().fold(Tally::default(), |a, b| Tally {
            passed: a.passed + b.passed,
            failed: a.failed + b.failed,
            refused: a.refused + b.refused,
            ..a
        });
        println!(
            "reference: {} problems run, {} refused by the reference, {} failed",
            t.passed, t.refused, t.failed
        );
        println!(
            "naive check of cpu (Conv, MatMul, Gemm): {} passed, {} failed",
            r.naive.0, r.naive.1
        );
        failed += t.failed + r.naive.1;
    }
    for t in &targets {
        if let Some(r) = reports.get(&t.id).filter(|r| r.closest.0 > 0.0) {
            println!(
                "{}: the closest pass is {}, a difference of {:.2}% of its tolerance",
                t.id,
                r.closest.1,
                r.closest.0 * 100.0
            );
        }
    }
    for t in &targets {
        let Some(r) = reports.get(&t.id) else {
            continue;
        };
        if r.missing {
            println!(
                "suite {}: skipped (the child process found no such backend)",
                t.id
            );
            continue;
        }
        let (p, f, rf) = r.tallies.values().fold((0, 0, 0), |(p, f, rf), x| {
            (p + x.passed, f + x.failed, rf + x.refused)
        });
        // A death outside any problem leaves a report without a tally.
        let untallied = r
            .reports
            .iter()
            .filter(|l| l.starts_with(&format!("FAIL {}: ", t.id)))
            .count();
        failed += f + untallied;
        println!(
            "suite {}: {p} passed, {} failed, {rf} refused",
            t.id,
            f + untallied
        );
    }
    let required: Vec<String> = std::env::var("XNPU_SUITE_REQUIRE")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut missing_required = 0;
    for sk in &skipped {
        println!("suite {}: skipped ({})", sk.id, sk.reason);
        missing_required += usize::from(required.iter().any(|r| r.eq_ignore_ascii_case(&sk.id)));
    }
    println!("backend suite: {:.1} s", started.elapsed().as_secs_f64());
    if failed > 0 || missing_required > 0 {
        std::process::exit(1);
    }
}

/// The `most` most common reasons, with their counts.
fn print_reasons(title: &str, reasons: &BTreeMap<String, usize>, most: usize) {
    if reasons.is_empty() {
        return;
    }
    println!("{title}:");
    let mut sorted: Vec<(&String, &usize)> = reasons.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1));
    for (why, n) in sorted.iter().take(most) {
        println!("  {n} × {why}");
    }
    if sorted.len() > most {
        let rest: usize = sorted[most..].iter().map(|(_, n)| **n).sum();
        println!(
            "  … and {rest} more, for {} other reasons",
            sorted.len() - most
        );
    }
}

/// Per family and backend: passed/failed/refused, then the seconds each backend took.
fn print_table(
    reports: &BTreeMap<String, ChildReport>,
    fams: &[&'static crate::families::Family],
    targets: &[Target],
) {
    let width = targets
        .iter()
        .map(|t| t.id.len())
        .max()
        .unwrap_or(8)
        .max(11);
    let mut head = format!("{:<15}", "family");
    for t in targets {
        head.push_str(&format!(" {:>width$}", t.id));
    }
    println!("{head}   (passed/failed/refused)");
    let cell = |id: &str, f: &str| -> Option<Tally> { reports.get(id)?.tallies.get(f).cloned() };
    for f in fams {
        let mut line = format!("{:<15}", f.name);
        for t in targets {
            let c = cell(&t.id, f.name)
                .map(|x| format!("{}/{}/{}", x.passed, x.failed, x.refused))
                .unwrap_or_else(|| "-".into());
            line.push_str(&format!(" {c:>width$}"));
        }
        println!("{line}");
    }
    // Seconds in the backend's sessions, and the child's whole time (the reference runs,
    // shrinking and restarts included).
    let mut line = format!("{:<15}", "seconds");
    for t in targets {
        let (run, wall) = reports
            .get(&t.id)
            .map(|r| {
                let run: f64 = r.tallies.values().map(|x| x.time.as_secs_f64()).sum();
                (run, r.wall.as_secs_f64())
            })
            .unwrap_or((0.0, 0.0));
        line.push_str(&format!(" {:>width$}", format!("{run:.1} of {wall:.1}")));
    }
    println!("{line}");
}
