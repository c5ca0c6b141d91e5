//! Where a CPU run's time goes: with profiling on, the interpreter adds each node's time to
//! its op's entry (fast and reference kernels apart) and to the node's own. `xnpu run
//! --profile` prints the ops and the heaviest nodes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static ON: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<(String, bool), (u64, Duration)>> = Mutex::new(BTreeMap::new());
/// Per node: (name, op) to calls and time.
static NODES: Mutex<BTreeMap<(String, String), (u64, Duration)>> = Mutex::new(BTreeMap::new());

/// Turns profiling on or off for every CPU executable of this process.
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

pub(crate) fn record(node: &str, op: &str, fast: bool, time: Duration) {
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    let e = t.entry((op.to_string(), fast)).or_default();
    e.0 += 1;
    e.1 += time;
    drop(t);
    let mut n = NODES.lock().unwrap_or_else(|p| p.into_inner());
    let e = n.entry((node.to_string(), op.to_string())).or_default();
    e.0 += 1;
    e.1 += time;
}

/// One node's share of the profiled runs.
#[derive(Clone, Debug)]
pub struct NodeEntry {
    pub node: String,
    pub op: String,
    pub calls: u64,
    pub time: Duration,
}

/// The nodes recorded since the last call, the most time first; clears their table.
pub fn take_nodes() -> Vec<NodeEntry> {
    drain(&NODES, |(node, op), calls, time| NodeEntry {
        node,
        op,
        calls,
        time,
    })
}

/// Empties `table` into entries made by `entry`, the most time first.
fn drain<K: Ord, E>(
    table: &Mutex<BTreeMap<K, (u64, Duration)>>,
    entry: impl Fn(K, u64, Duration) -> E,
) -> Vec<E> {
    let t = std::mem::take(&mut *table.lock().unwrap_or_else(|p| p.into_inner()));
    let mut v: Vec<(Duration, E)> = t
        .into_iter()
        .map(|(k, (calls, time))| (time, entry(k, calls, time)))
        .collect();
    v.sort_by_key(|(time, _)| std::cmp::Reverse(*time));
    v.into_iter().map(|(_, e)| e).collect()
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
    drain(&TABLE, |(op, fast), calls, time| Entry {
        op,
        fast,
        calls,
        time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_drains_the_most_time_first_and_empties() {
        let table = Mutex::new(BTreeMap::new());
        for (k, ms) in [("a", 2), ("b", 5), ("c", 1)] {
            table
                .lock()
                .unwrap()
                .insert(k, (1u64, Duration::from_millis(ms)));
        }
        let names = drain(&table, |k, _, _| k);
        assert_eq!(names, ["b", "a", "c"]);
        assert!(table.lock().unwrap().is_empty());
    }
}
