//! Where a CPU run's time goes: with profiling on, the interpreter adds each node's time to
//! its op's entry (fast and reference kernels apart). `xnpu run --profile` prints the table.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static ON: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<(String, bool), (u64, Duration)>> = Mutex::new(BTreeMap::new());

/// Turns profiling on or off for every CPU executable of this process.
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

pub(crate) fn record(op: &str, fast: bool, time: Duration) {
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let e = t.entry((op.to_string(), fast)).or_default();
    e.0 += 1;
    e.1 += time;
}

/// One op's share of the profiled runs.
#[derive(Clone, Debug)]
pub struct Entry {
    pub op: String,
    /// Whether a fast kernel ran it (else the reference kernel).
    pub fast: bool,
    pub calls: u64,
    pub time: Duration,
}

/// The entries recorded since the last call, the most time first; clears the table.
pub fn take() -> Vec<Entry> {
    let t = std::mem::take(&mut *TABLE.lock().unwrap_or_else(|p| p.into_inner()));
    let mut v: Vec<Entry> = t
        .into_iter()
        .map(|((op, fast), (calls, time))| Entry {
            op,
            fast,
            calls,
            time,
        })
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.time));
    v
}
