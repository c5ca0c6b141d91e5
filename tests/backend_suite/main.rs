//! The backend suite: the same op problems on every backend this build can drive here,
//! each compared with the reference CPU backend.
//!
//! Each op family (`families/`) is a proptest strategy of one-node ONNX models with odd,
//! tiny, broadcast and empty shapes, every dtype the op takes, and its attributes. Every
//! problem runs once on the reference (`--devices cpu`) and once on each backend the
//! registry offers (`xnpu::registry::everything()`: built-in, on-demand and plugin backends),
//! that backend alone in an explicit device list, at pass level `none` (the op as written),
//! without a compile cache. A backend that refuses the node counts as *refused*; one that
//! runs it must match the reference within the dtype's tolerance (`compare.rs`). The
//! reference itself is checked against naive Conv, MatMul and Gemm (`naive.rs`).
//!
//! Each backend runs in a child process of its own (`child.rs`), so that a vendor library
//! that kills its process (a SIGFPE, a segfault) fails one problem rather than the suite: the
//! parent (`parent.rs`) records the crash, shrinks the crashing problem by probing it in
//! fresh processes, and starts the child again after it.
//!
//! A disagreement is shrunk to a minimal problem, printed in full with the command that
//! reruns it, and written as `model.onnx` plus `.npy` inputs under `target/backend_suite/`.
//! The suite ends with one line per backend: `suite ID: N passed, N failed, N refused`, or
//! `suite ID: skipped (why)` for an expected backend that is absent.
//!
//! Repeatable: problems come from ChaCha seeded with `PROPTEST_RNG_SEED` (default
//! [`DEFAULT_SEED`]), the family and the case number, so that one case reruns alone. Case
//! counts are pinned per family (`families/mod.rs`); `PROPTEST_CASES` sets them all.
//!
//! Arguments: `FAMILY` (a substring) or `FAMILY#CASE`, `--backend ID` (repeatable;
//! `reference` for the reference's own checks), `--list`.
//! Environment: `XNPU_SUITE_EXPECT` (more expected backend ids), `XNPU_SUITE_REQUIRE` (ids
//! whose absence fails the run), `XNPU_SUITE_THREADS` (children at once; default: the
//! number of CPUs), `PROPTEST_MAX_SHRINK_ITERS`.

mod backends;
mod child;
mod compare;
mod data;
mod families;
mod naive;
mod parent;
mod problem;
mod protocol;

use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};

use families::Family;
use problem::Problem;

/// The seed of every run unless `PROPTEST_RNG_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 0x786e_7075_5f73_7569; // "xnpu_sui"

/// The child that checks the reference itself (its errors, and against the naive ops).
pub const REFERENCE: &str = "reference";

/// How many more problems the reference's own checks draw than each backend runs.
pub const REFERENCE_FACTOR: u32 = 5;

/// What the suite was asked to do.
pub struct Settings {
    pub seed: u64,
    pub cases: Option<u32>,
    pub family: Option<String>,
    pub case: Option<u32>,
    pub backends: Vec<String>,
    pub threads: usize,
    pub shrink_steps: u32,
    pub mode: Mode,
}

pub enum Mode {
    Parent,
    /// `--child ID [--resume FAMILY#CASE]`: run every problem on one backend (or the
    /// reference checks), after the given case when resuming.
    Child {
        id: String,
        resume: Option<(String, u32)>,
    },
    /// `--probe DIR ID`: run the model written in DIR on one backend, for crash shrinking.
    Probe {
        dir: String,
        id: String,
    },
    /// `--discover`: print the backends to run on and those skipped.
    Discover,
}

fn family_case(s: &str) -> Option<(String, u32)> {
    let (f, c) = s.split_once('#')?;
    Some((f.to_string(), c.parse().ok()?))
}

impl Settings {
    fn from_env_and_args() -> Settings {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let seed = env("PROPTEST_RNG_SEED")
            .map(|s| {
                let s = s.trim();
                s.strip_prefix("0x")
                    .map(|h| u64::from_str_radix(h, 16))
                    .unwrap_or_else(|| s.parse())
                    .unwrap_or_else(|e| panic!("PROPTEST_RNG_SEED={s}: {e}"))
            })
            .unwrap_or(DEFAULT_SEED);
        let cases = env("PROPTEST_CASES").map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|e| panic!("PROPTEST_CASES={s}: {e}"))
        });
        let shrink_steps = env("PROPTEST_MAX_SHRINK_ITERS")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(300);
        let threads = env("XNPU_SUITE_THREADS")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let mut args = std::env::args().skip(1);
        let (mut family, mut case, mut backends) = (None, None, Vec::new());
        let mut mode = Mode::Parent;
        let mut resume = None;
        while let Some(a) = args.next() {
            match a.as_str() {
                "--backend" => backends.extend(args.next()),
                "--list" => {
                    for f in families::ALL {
                        println!("{}: {} cases", f.name, f.cases);
                    }
                    std::process::exit(0);
                }
                "--child" => {
                    mode = Mode::Child {
                        id: args.next().expect("--child ID"),
                        resume: None,
                    }
                }
                "--resume" => resume = args.next().as_deref().and_then(family_case),
                "--discover" => mode = Mode::Discover,
                "--probe" => {
                    let dir = args.next().expect("--probe DIR ID");
                    let id = args.next().expect("--probe DIR ID");
                    mode = Mode::Probe { dir, id };
                }
                _ if !a.starts_with('-') => match family_case(&a) {
                    Some((f, c)) => {
                        family = Some(f);
                        case = Some(c);
                    }
                    None => family = Some(a),
                },
                // cargo's and libtest's flags (--nocapture, --quiet, ...) mean nothing here.
                _ => {}
            }
        }
        if let Mode::Child { resume: r, .. } = &mut mode {
            *r = resume;
        }
        Settings {
            seed,
            cases,
            family,
            case,
            backends,
            threads: threads.max(1),
            shrink_steps,
            mode,
        }
    }

    /// The arguments that give a child the same problems.
    pub fn child_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        match (&self.family, self.case) {
            (Some(f), Some(c)) => a.push(format!("{f}#{c}")),
            (Some(f), None) => a.push(f.clone()),
            _ => {}
        }
        a
    }

    fn wants(&self, f: &Family) -> bool {
        match (&self.family, self.case) {
            (Some(name), Some(_)) => f.name == name,
            (Some(name), None) => f.name.contains(name.as_str()),
            (None, _) => true,
        }
    }

    fn cases(&self, f: &Family, factor: u32) -> std::ops::Range<u32> {
        match self.case {
            Some(c) => c..c + 1,
            None => 0..self.cases.unwrap_or(f.cases * factor),
        }
    }

    /// Every (family, case) to run on a backend, families interleaved, in the same order
    /// in every process.
    pub fn jobs(&self) -> Vec<(&'static Family, u32)> {
        self.jobs_times(1)
    }

    /// The reference's own checks cost no vendor compile: they draw [`REFERENCE_FACTOR`]
    /// times the problems (the first of them are the problems every backend runs).
    pub fn reference_jobs(&self) -> Vec<(&'static Family, u32)> {
        self.jobs_times(REFERENCE_FACTOR)
    }

    fn jobs_times(&self, factor: u32) -> Vec<(&'static Family, u32)> {
        let fams: Vec<&'static Family> = families::ALL.iter().filter(|f| self.wants(f)).collect();
        let lists: Vec<Vec<u32>> = fams
            .iter()
            .map(|f| self.cases(f, factor).collect())
            .collect();
        let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
        let mut jobs = Vec::new();
        for i in 0..longest {
            for (f, l) in fams.iter().zip(&lists) {
                if let Some(&c) = l.get(i) {
                    jobs.push((*f, c));
                }
            }
        }
        jobs
    }

    pub fn families(&self) -> Vec<&'static Family> {
        families::ALL.iter().filter(|f| self.wants(f)).collect()
    }
}

pub fn family(name: &str) -> Option<&'static Family> {
    families::ALL.iter().find(|f| f.name == name)
}

/// The problem tree of case `index` of family `f`: its own ChaCha stream, so that a case
/// reruns alone.
pub fn tree(f: &Family, seed: u64, index: u32) -> Box<dyn ValueTree<Value = Problem>> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let family: u64 = f.name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    bytes[8..16].copy_from_slice(&family.to_le_bytes());
    bytes[16..20].copy_from_slice(&index.to_le_bytes());
    let config = ProptestConfig {
        cases: 1,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    (f.strategy)()
        .new_tree(&mut runner)
        .unwrap_or_else(|e| panic!("{}: no problem drawn: {e}", f.name))
}

/// What still fails for a shrinking candidate (`None`: it passes, or is no longer a valid
/// problem for the reference).
pub type Failing<'a> = dyn Fn(&Problem) -> Option<String> + 'a;

/// How a shrink goes: its limits, where it starts, and whether it announces its steps.
pub struct ShrinkPlan<'a> {
    pub steps: u32,
    pub time: Duration,
    /// `s` (simplify) and `c` (complicate) calls that lead from the drawn problem to the
    /// candidate to start from (a candidate that killed a child, for the parent).
    pub replay: &'a str,
    /// Announce each call (`protocol::Line::Step`), so that the parent can replay the
    /// candidate a child died on.
    pub trace: bool,
}

/// Shrinks case `index` of `f` while `fails` holds (proptest's loop: simplify after a
/// failure, complicate after a pass).
pub fn shrink(
    f: &Family,
    seed: u64,
    index: u32,
    fails: &Failing<'_>,
    plan: &ShrinkPlan<'_>,
) -> (Problem, String, u32) {
    let mut t = tree(f, seed, index);
    for step in plan.replay.chars() {
        if step == 's' {
            t.simplify();
        } else {
            t.complicate();
        }
    }
    let mut best = t.current();
    let mut why = fails(&best).unwrap_or_else(|| "(did not fail again)".into());
    let start = Instant::now();
    let mut tried = 0;
    let step = |t: &mut Box<dyn ValueTree<Value = Problem>>, simplify: bool| {
        if plan.trace {
            protocol::Line::Step { simplify }.send();
        }
        if simplify {
            t.simplify()
        } else {
            t.complicate()
        }
    };
    let mut more = step(&mut t, true);
    while more && tried < plan.steps && start.elapsed() < plan.time {
        tried += 1;
        let candidate = t.current();
        more = match fails(&candidate) {
            Some(w) => {
                best = candidate;
                why = w;
                step(&mut t, true)
            }
            None => step(&mut t, false),
        };
    }
    (best, why, tried)
}

/// A message on one line, cut at `max` bytes.
pub fn one_line(s: &str, max: usize) -> String {
    let mut r: String = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if r.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| r.is_char_boundary(i))
            .unwrap_or(0);
        r.truncate(cut);
        r.push('…');
    }
    r
}

fn main() {
    let settings = Settings::from_env_and_args();
    match &settings.mode {
        Mode::Parent => parent::run(&settings),
        Mode::Child { id, resume } => child::run(&settings, id, resume.clone()),
        Mode::Probe { dir, id } => child::probe(dir, id),
        Mode::Discover => backends::print_discovery(),
    }
}
