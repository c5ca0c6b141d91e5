//! What one run may do, and whether it should stop: cancellation from another thread, a
//! deadline and a memory limit.
//!
//! The runtime enters a [`RunScope`] for each run ([`enter`]); the scope is then the thread's
//! current one, and whoever does the work asks it: the runtime between partitions, the CPU
//! executor between nodes and loop iterations, long kernels inside their loops ([`check`]),
//! and input-sized allocations before they allocate ([`reserve`]). A thread a backend hands
//! work to enters the same scope (`current` then `enter`). Outside any scope every check
//! passes, so kernels called directly (tests, constant folding) behave as before.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A flag another thread sets to stop runs: shared by every run given it (as ONNX Runtime's
/// `RunOptions.terminate`).
#[derive(Debug, Default)]
pub struct Terminate(AtomicBool);

impl Terminate {
    pub fn new() -> Terminate {
        Terminate::default()
    }
    /// Asks the runs using this flag to stop at their next check.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    /// Lets later runs go on again.
    pub fn reset(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The limits of one run, shared by the threads working on it.
#[derive(Debug, Default)]
pub struct RunScope {
    terminate: Option<Arc<Terminate>>,
    deadline: Option<(Instant, Duration)>,
    max_memory: Option<u64>,
    /// Bytes the run holds in values between nodes (the executor's estimate).
    live: AtomicU64,
}

impl RunScope {
    /// A scope stopped by `terminate`, ending `timeout` from now, allowed `max_memory` bytes
    /// (each optional).
    pub fn new(
        terminate: Option<Arc<Terminate>>,
        timeout: Option<Duration>,
        max_memory: Option<u64>,
    ) -> RunScope {
        // A timeout too large for the clock is no deadline.
        let deadline = timeout.and_then(|t| Some((Instant::now().checked_add(t)?, t)));
        RunScope::until(terminate, deadline, max_memory)
    }

    /// A scope ending at a fixed instant; its error names `limit` (the limit that instant
    /// ends, which may have begun before this run).
    pub fn until(
        terminate: Option<Arc<Terminate>>,
        deadline: Option<(Instant, Duration)>,
        max_memory: Option<u64>,
    ) -> RunScope {
        RunScope {
            terminate,
            deadline,
            max_memory,
            live: AtomicU64::new(0),
        }
    }

    /// Whether anything in this scope can stop or refuse work (else entering it is skipped).
    pub fn is_limited(&self) -> bool {
        self.terminate.is_some() || self.deadline.is_some() || self.max_memory.is_some()
    }

    /// An error when the run was cancelled or is past its deadline.
    pub fn check(&self) -> Result<()> {
        if self.terminate.as_ref().is_some_and(|t| t.is_set()) {
            return Err(Error::Cancelled("the run was cancelled".into()));
        }
        if let Some((at, timeout)) = self.deadline {
            if Instant::now() >= at {
                return Err(Error::Cancelled(format!(
                    "the run passed its time limit of {}",
                    seconds(timeout)
                )));
            }
        }
        Ok(())
    }

    /// Refuses an allocation of `bytes` (for `what`) that would take the run past its memory
    /// limit, before anything is allocated.
    pub fn reserve(&self, bytes: u64, what: &str) -> Result<()> {
        let Some(max) = self.max_memory else {
            return Ok(());
        };
        let live = self.live.load(Ordering::Relaxed);
        if live.saturating_add(bytes) > max {
            return Err(Error::compute(format!(
                "{what} would take {} while the run holds {}: over the memory limit of {} \
                 (SessionOptions max_memory / --max-memory)",
                human(bytes),
                human(live),
                human(max)
            )));
        }
        Ok(())
    }

    /// Sets the bytes the run holds between nodes; an error when that is over the limit.
    pub fn set_live(&self, bytes: u64) -> Result<()> {
        self.live.store(bytes, Ordering::Relaxed);
        match self.max_memory {
            Some(max) if bytes > max => Err(Error::compute(format!(
                "the run holds {} of values: over the memory limit of {}",
                human(bytes),
                human(max)
            ))),
            _ => Ok(()),
        }
    }

    pub fn max_memory(&self) -> Option<u64> {
        self.max_memory
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Bytes for people: `1.5 GiB`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<RunScope>>> = const { RefCell::new(None) };
}

/// Restores the thread's previous scope when dropped (also when `f` panics).
struct Restore(Option<Arc<RunScope>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Runs `f` with `scope` as this thread's current scope.
pub fn enter<R>(scope: Option<Arc<RunScope>>, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), scope));
    let _restore = Restore(prev);
    f()
}

/// This thread's current scope, to enter on a thread the work moves to.
pub fn current() -> Option<Arc<RunScope>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// An error when the current run was cancelled or is past its deadline (`Ok` outside a run).
pub fn check() -> Result<()> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(s) => s.check(),
        None => Ok(()),
    })
}

/// Refuses an allocation of `bytes` (for `what`) over the current run's memory limit.
pub fn reserve(bytes: u64, what: &str) -> Result<()> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(s) => s.reserve(bytes, what),
        None => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_pass_outside_a_run() {
        check().unwrap();
        reserve(u64::MAX, "anything").unwrap();
    }

    #[test]
    fn terminate_stops_the_runs_that_share_it() {
        let t = Arc::new(Terminate::new());
        let s = Arc::new(RunScope::new(Some(t.clone()), None, None));
        enter(Some(s.clone()), check).unwrap();
        let other = std::thread::spawn(move || t.set());
        other.join().unwrap();
        let e = enter(Some(s), check).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Cancelled);
        assert!(e.to_string().contains("cancelled"), "{e}");
        // The scope ends with `enter`.
        check().unwrap();
    }

    #[test]
    fn deadlines_pass() {
        let s = Arc::new(RunScope::new(None, Some(Duration::ZERO), None));
        let e = enter(Some(s), check).unwrap_err();
        assert!(e.to_string().contains("time limit of 0.000 s"), "{e}");
        let s = Arc::new(RunScope::new(None, Some(Duration::MAX), None));
        enter(Some(s), check).unwrap();
    }

    #[test]
    fn memory_is_refused_before_allocating() {
        let s = Arc::new(RunScope::new(None, None, Some(1 << 20)));
        enter(Some(s.clone()), || {
            reserve(1 << 19, "an output").unwrap();
            s.set_live(1 << 19).unwrap();
            let e = reserve(1 << 20, "node \"x\" (Conv) output").unwrap_err();
            assert!(
                e.to_string().contains("over the memory limit of 1.0 MiB"),
                "{e}"
            );
        });
        assert!(s.set_live(2 << 20).is_err());
    }

    #[test]
    fn scopes_nest_and_restore() {
        let outer = Arc::new(RunScope::new(None, Some(Duration::ZERO), None));
        enter(Some(outer), || {
            assert!(check().is_err());
            enter(None, || check().unwrap());
            assert!(check().is_err());
        });
    }
}
