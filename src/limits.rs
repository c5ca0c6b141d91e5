//! How much memory a run may take by default, and sizes as people write them.
//!
//! The CLI's default memory limit is the smallest of 80% of the memory available now, the
//! process's address-space limit (`ulimit -v`) and its cgroup's `memory.max`: a model that
//! asks for more gets an error naming the node and the size instead of an abort or the
//! out-of-memory killer.

use std::path::Path;

use xnpu_core::{Error, Result};

/// The smallest of 80% of available memory, the address-space limit and the cgroup limit
/// (those this system reports); `None` when it reports none.
pub fn default_memory_limit() -> Option<u64> {
    let root = Path::new("/");
    [
        available_memory(root).map(|b| b / 5 * 4),
        address_space_limit(),
        cgroup_limit(root),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn available_memory(root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(unix)]
fn address_space_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

#[cfg(not(unix))]
fn address_space_limit() -> Option<u64> {
    None
}

/// The `memory.max` of this process's cgroup (v2), or v1's `memory.limit_in_bytes`.
fn cgroup_limit(root: &Path) -> Option<u64> {
    let own = std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    for line in own.lines() {
        // v2: "0::/path"; v1: "N:memory:/path".
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        let file = if controllers.is_empty() {
            root.join("sys/fs/cgroup").join(rel).join("memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            root.join("sys/fs/cgroup/memory")
                .join(rel)
                .join("memory.limit_in_bytes")
        } else {
            continue;
        };
        if let Ok(v) = std::fs::read_to_string(&file) {
            // "max" (v2) or a huge number (v1) means none.
            return v.trim().parse::<u64>().ok().filter(|&b| b < 1 << 62);
        }
    }
    None
}

/// A size as people write it: bytes, or a number with K, M, G or T (powers of 1024, an
/// optional `iB`/`B`): `4G`, `512MiB`, `1.5G`, `1000000`.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let bad = || {
        Error::invalid_input(format!(
            "\"{s}\" is not a size (bytes, or a number with K, M, G or T: 4G, 512MiB)"
        ))
    };
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, scale) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        Some('t') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad());
    }
    let bytes = v * scale as f64;
    if bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        for bad in ["", "G", "-1G", "0", "NaN", "1e400", "4X", "inf"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_come_from_this_system() {
        // A machine running the tests reports at least MemAvailable.
        let limit = default_memory_limit().expect("a limit");
        assert!(limit > 0);
        assert!(available_memory(Path::new("/")).is_some());
    }

    #[test]
    fn cgroup_files_are_read() {
        let dir = std::env::temp_dir().join(format!("xnpu-cg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("proc/self")).unwrap();
        std::fs::create_dir_all(dir.join("sys/fs/cgroup/a/b")).unwrap();
        std::fs::write(dir.join("proc/self/cgroup"), "0::/a/b\n").unwrap();
        std::fs::write(dir.join("sys/fs/cgroup/a/b/memory.max"), "1073741824\n").unwrap();
        assert_eq!(cgroup_limit(&dir), Some(1 << 30));
        std::fs::write(dir.join("sys/fs/cgroup/a/b/memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_limit(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
