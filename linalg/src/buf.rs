//! Buffers sized by a model's inputs, allocated fallibly: an allocation that fails is an
//! error naming what it was for, never an abort.

use xnpu_core::{Error, Result};

fn refused(n: usize, what: &str) -> Error {
    Error::compute(format!("cannot allocate {n} values for {what}"))
}

/// The number of values of `what` whose dims are `factors`, or an error naming them when the
/// product overflows a usize.
pub fn count(factors: &[usize], what: &str) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            Error::compute(format!(
                "{what} would need {} values, more than a usize counts",
                factors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" x ")
            ))
        })
}

/// An empty vector with room for `n` values.
pub fn reserved<T>(n: usize, what: &str) -> Result<Vec<T>> {
    // Within the run's memory limit (when it has one) before it is asked of the allocator.
    xnpu_core::run::reserve(
        (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        what,
    )?;
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

/// `n` copies of `v`.
pub fn filled<T: Clone>(n: usize, v: T, what: &str) -> Result<Vec<T>> {
    let mut out = reserved(n, what)?;
    out.resize(n, v);
    Ok(out)
}

/// The values of `iter` (which says its length) in a vector allocated fallibly.
pub fn collected<T>(iter: impl ExactSizeIterator<Item = T>, what: &str) -> Result<Vec<T>> {
    let mut out = reserved(iter.len(), what)?;
    out.extend(iter);
    Ok(out)
}

/// The values of `iter` (at most `n` of them, each computed fallibly) in a vector
/// allocated fallibly up front: the first error is returned.
pub fn try_collected<T>(
    n: usize,
    iter: impl IntoIterator<Item = Result<T>>,
    what: &str,
) -> Result<Vec<T>> {
    let mut out = reserved(n, what)?;
    for v in iter {
        out.push(v?);
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_past_memory_are_errors_naming_what_they_were_for() {
        let e = count(&[1 << 40, 1 << 40], "a test tensor")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "a test tensor would need 1099511627776 x 1099511627776 values, more than a usize counts"
        );
        // 2^62 f32 are 2^64 bytes: refused whatever the machine.
        let e = zeroed::<f32>(1 << 62, "a test tensor")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "cannot allocate 4611686018427387904 values for a test tensor"
        );
        assert!(filled(1 << 62, 0u32, "x").is_err());
        assert!(collected((0..1usize << 62).map(|v| v as f64), "x").is_err());
    }

    #[test]
    fn try_collected_stops_at_the_first_error() {
        let items = [Ok(1), Err(Error::compute("bad")), Ok(3)];
        let e = try_collected(3, items, "x").unwrap_err().to_string();
        assert_eq!(e, "bad");
        assert_eq!(try_collected(2, [Ok(1), Ok(2)], "x").unwrap(), vec![1, 2]);
        assert_eq!(filled(3, 7u8, "x").unwrap(), vec![7, 7, 7]);
    }
}
