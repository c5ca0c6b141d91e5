//! `f32` buffers of dropped tensors, kept for the next tensor of a similar size.
//!
//! A kernel's output is a fresh `Vec`; a large one comes from the system as new pages, and
//! the first write to each page faults; any one is zero-filled before the kernel writes it.
//! Across the nodes of a run and across runs, outputs come in the same few sizes, so the
//! buffer of a tensor that was dropped is kept here, values and all, and handed to the next
//! kernel that asks for at most its capacity (and at least half of it): a kernel that writes
//! every value takes it as it is (no fault, no fill). Bounded: [`MAX_BUFFERS`] buffers and
//! [`MAX_BYTES`] in all, the oldest given back first; buffers under [`MIN_BYTES`] (a few
//! thousand values, whose fill costs little) are left to the allocator.
//! The CPU backend calls [`clear`] when its last compiled graph is dropped, so a process
//! keeps these buffers only while it has models to run.

use std::sync::Mutex;

/// Buffers smaller than this are not kept.
pub const MIN_BYTES: usize = 16 << 10;
/// At most this many buffers are kept.
pub const MAX_BUFFERS: usize = 256;
/// At most this many bytes are kept.
pub const MAX_BYTES: usize = 1 << 30;

struct Pool {
    /// Oldest first.
    buffers: Vec<Vec<f32>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    buffers: Vec::new(),
    bytes: 0,
});

fn bytes_of(v: &Vec<f32>) -> usize {
    v.capacity() * std::mem::size_of::<f32>()
}

impl Pool {
    fn give(&mut self, v: Vec<f32>) {
        let size = bytes_of(&v);
        if !(MIN_BYTES..=MAX_BYTES).contains(&size) {
            return;
        }
        while self.buffers.len() >= MAX_BUFFERS || self.bytes + size > MAX_BYTES {
            let old = self.buffers.remove(0);
            self.bytes -= bytes_of(&old);
        }
        self.bytes += size;
        self.buffers.push(v);
    }

    fn take(&mut self, n: usize) -> Option<Vec<f32>> {
        if n.checked_mul(std::mem::size_of::<f32>())? < MIN_BYTES {
            return None;
        }
        let (at, _) = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= n && b.capacity() / 2 <= n)
            .min_by_key(|(_, b)| b.capacity())?;
        let v = self.buffers.remove(at);
        self.bytes -= bytes_of(&v);
        Some(v)
    }
}

/// Keeps `v`'s memory for a later [`take`] (or frees it, when it is small or the pool full).
pub fn give(v: Vec<f32>) {
    if bytes_of(&v) < MIN_BYTES {
        return;
    }
    if let Ok(mut pool) = POOL.lock() {
        pool.give(v);
    }
}

/// A kept buffer with room for `n` values (the smallest that fits, and no more than twice
/// `n`), or `None`. It still holds the values of the tensor that gave it back (as many as
/// that tensor had): callers clear it or overwrite what they use.
pub fn take(n: usize) -> Option<Vec<f32>> {
    POOL.lock().ok()?.take(n)
}

/// Frees every kept buffer.
pub fn clear() {
    if let Ok(mut pool) = POOL.lock() {
        pool.buffers.clear();
        pool.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_large_buffers_and_hands_back_a_fitting_one() {
        // A pool of its own: the process-wide one is shared with other tests.
        let mut pool = Pool {
            buffers: Vec::new(),
            bytes: 0,
        };
        let n = MIN_BYTES; // floats: four times the minimum in bytes
        pool.give(vec![1.0; n]);
        pool.give(vec![1.0; 8]); // too small: freed
        assert_eq!(pool.buffers.len(), 1);
        assert!(pool.take(n * 4).is_none(), "bigger than any kept buffer");
        assert!(
            pool.take(n / 4).is_none(),
            "less than half of the kept buffer"
        );
        let v = pool.take(n - 5).expect("a kept buffer");
        assert!(v.capacity() >= n);
        assert_eq!((pool.buffers.len(), pool.bytes), (0, 0));
        for _ in 0..MAX_BUFFERS + 3 {
            pool.give(vec![0.0; n]);
        }
        assert_eq!(pool.buffers.len(), MAX_BUFFERS, "the oldest are given back");
    }
}
