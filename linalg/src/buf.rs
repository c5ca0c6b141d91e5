//! Buffers sized by a model's inputs, allocated fallibly: an allocation that fails is an
//! error naming what it was for, never an abort.

use xnpu_core::{Error, Result};

fn refused(n: usize, what: &str) -> Error {
    Error::compute(format!("cannot allocate {n} values for {what}"))
}

/// An empty vector with room for `n` values.
pub fn reserved<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| refused(n, what))?;
    Ok(v)
}

/// `n` default values (zeros).
pub fn zeroed<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = reserved(n, what)?;
    v.resize(n, T::default());
    Ok(v)
}

/// Grows `buf` to at least `n` values (zeros), fallibly: a per-thread scratch buffer that
/// the thread's next task reuses.
pub fn grow(buf: &mut Vec<f32>, n: usize, what: &str) -> Result<()> {
    if buf.len() < n {
        buf.try_reserve_exact(n - buf.len())
            .map_err(|_| refused(n, what))?;
        buf.resize(n, 0.0);
    }
    Ok(())
}

/// A copy of `src`.
pub fn copied<T: Clone>(src: &[T], what: &str) -> Result<Vec<T>> {
    let mut v = reserved(src.len(), what)?;
    v.extend_from_slice(src);
    Ok(v)
}

/// `n` zeros in a buffer that a dropped tensor gave back ([`xnpu_core::recycle`]) when one
/// fits, so that large outputs do not fault in new pages at every run.
pub fn floats(n: usize, what: &str) -> Result<Vec<f32>> {
    match xnpu_core::recycle::take(n) {
        Some(mut v) => {
            v.clear();
            v.resize(n, 0.0);
            Ok(v)
        }
        None => zeroed(n, what),
    }
}

/// `n` floats of no particular value (those a recycled buffer held, or zeros), for a kernel
/// that writes every one of them: a recycled buffer is not cleared first.
pub fn overwritten(n: usize, what: &str) -> Result<Vec<f32>> {
    match xnpu_core::recycle::take(n) {
        Some(mut v) => {
            if v.len() >= n {
                v.truncate(n);
            } else {
                v.resize(n, 0.0);
            }
            Ok(v)
        }
        None => zeroed(n, what),
    }
}

/// A copy of `src` in a buffer from [`overwritten`].
pub fn floats_from(src: &[f32], what: &str) -> Result<Vec<f32>> {
    let mut v = overwritten(src.len(), what)?;
    v.copy_from_slice(src);
    Ok(v)
}
