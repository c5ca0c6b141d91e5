//! Opening files that come from users (models, external data, inputs, plugins, tables,
//! vendor libraries, caches): only regular files, never blocking on a FIFO or a device, read
//! with a size limit, and shared libraries checked before the dynamic loader maps them.
//!
//! A FIFO opened for reading blocks until a writer comes, `/dev/zero` reads forever, and a
//! truncated shared library dies of SIGBUS inside the loader; every path a user names goes
//! through here first so that each of those is an error naming the file instead.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// What a path is when it is not a regular file, for messages.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn not_regular(path: &Path, what: &str, meta: &Metadata) -> Error {
    Error::invalid_input(format!(
        "{}: the {what} is {}; xnpu reads {what}s only from regular files",
        path.display(),
        kind_of(meta)
    ))
}

/// Opens `path` for reading if it is a regular file (symbolic links followed). The open never
/// blocks: a FIFO is refused, not waited on. `what` names the file in errors ("model",
/// "external data file", "plugin").
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading blocks until a writer opens it, unless non-blocking.
        // On the regular file this returns, O_NONBLOCK changes nothing.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, what, &meta));
    }
    Ok(file)
}

/// Checks that `path` is a regular file (symbolic links followed), for paths handed to
/// something that opens them itself (the dynamic loader, a vendor library). Returns its size.
pub fn check_regular(path: &Path, what: &str) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, what, &meta));
    }
    Ok(meta.len())
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let file = open_regular(path, what)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > limit {
        return Err(too_long(path, what, len, limit));
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(len as usize).map_err(|_| {
        Error::compute(format!(
            "{}: cannot allocate {len} bytes to read the {what}",
            path.display()
        ))
    })?;
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if buf.len() as u64 > limit {
        return Err(too_long(path, what, buf.len() as u64, limit));
    }
    Ok(buf)
}

/// A regular file as UTF-8 text of at most `limit` bytes.
pub fn read_regular_text(path: &Path, what: &str, limit: u64) -> Result<String> {
    let bytes = read_regular(path, what, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::invalid_input(format!(
            "{}: the {what} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Everything `reader` gives, up to `limit` bytes; more is an error (a file that grows while
/// read, standard input). `path` and `what` name the source in errors.
pub fn read_limited(reader: impl Read, path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let got = reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    if got as u64 > limit {
        return Err(too_long(path, what, got as u64, limit));
    }
    Ok(buf)
}

fn too_long(path: &Path, what: &str, len: u64, limit: u64) -> Error {
    Error::invalid_input(format!(
        "{}: the {what} is larger than the {limit} bytes xnpu reads for one ({}{len} bytes)",
        path.display(),
        if len > limit { "at least " } else { "" }
    ))
}

/// Checks a shared library before the dynamic loader maps it: a regular file whose ELF
/// header, program headers and loadable segments all lie inside the file (a truncated
/// library otherwise kills the process with SIGBUS inside the loader). On systems whose
/// libraries are not ELF only the regular-file check applies.
pub fn check_shared_library(path: &Path, what: &str) -> Result<()> {
    let len = check_regular(path, what)?;
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    // The headers are in the first pages; the segment table is read from there.
    let mut head = Vec::new();
    open_regular(path, what)?
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    elf_fits(&head, len).map_err(|why| {
        Error::invalid_input(format!(
            "{}: the {what} is not a loadable shared library: {why}",
            path.display()
        ))
    })
}

/// Whether an ELF file of `len` bytes, starting with `head`, has its headers and loadable
/// segments inside the file. The reason when not.
fn elf_fits(head: &[u8], len: u64) -> std::result::Result<(), String> {
    if head.len() < 16 || &head[..4] != b"\x7fELF" {
        return Err("it does not start with an ELF header".into());
    }
    let class64 = match head[4] {
        1 => false,
        2 => true,
        c => return Err(format!("ELF class {c} is neither 32- nor 64-bit")),
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        d => {
            return Err(format!(
                "ELF data encoding {d} is neither little- nor big-endian"
            ))
        }
    };
    let header_len = if class64 { 64 } else { 52 };
    if head.len() < header_len {
        return Err(format!(
            "the file ends inside its ELF header ({} bytes)",
            head.len()
        ));
    }
    let rd = |at: usize, n: usize| -> u64 {
        let b = &head[at..at + n];
        let mut v = 0u64;
        for i in 0..n {
            let byte = if little { b[n - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        v
    };
    // e_type: 3 is a shared object (ET_DYN).
    if rd(16, 2) != 3 {
        return Err(format!("ELF type {} is not a shared object", rd(16, 2)));
    }
    let (phoff, phentsize, phnum, shoff, shentsize, shnum) = if class64 {
        (
            rd(32, 8),
            rd(54, 2),
            rd(56, 2),
            rd(40, 8),
            rd(58, 2),
            rd(60, 2),
        )
    } else {
        (
            rd(28, 4),
            rd(42, 2),
            rd(44, 2),
            rd(32, 4),
            rd(46, 2),
            rd(48, 2),
        )
    };
    let table_end = |off: u64, size: u64, num: u64| off.checked_add(size.checked_mul(num)?);
    let ph_end = table_end(phoff, phentsize, phnum)
        .filter(|&e| e <= len)
        .ok_or_else(|| format!("its program headers lie past its end ({len} bytes)"))?;
    if shnum > 0 {
        table_end(shoff, shentsize, shnum)
            .filter(|&e| e <= len)
            .ok_or_else(|| format!("its section headers lie past its end ({len} bytes)"))?;
    }
    let min_entry = if class64 { 56 } else { 32 };
    if phnum == 0 || phentsize < min_entry {
        return Err("it has no program headers".into());
    }
    if ph_end > head.len() as u64 {
        return Err("its program headers are not in its first MiB".into());
    }
    let mut loads = 0;
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        // PT_LOAD is 1.
        if rd(at, 4) != 1 {
            continue;
        }
        loads += 1;
        let (offset, filesz) = if class64 {
            (rd(at + 8, 8), rd(at + 32, 8))
        } else {
            (rd(at + 4, 4), rd(at + 16, 4))
        };
        match offset.checked_add(filesz) {
            Some(end) if end <= len => {}
            _ => {
                return Err(format!(
                    "loadable segment {i} ({filesz} bytes at offset {offset}) lies past its \
                     end ({len} bytes): the file is truncated"
                ))
            }
        }
    }
    if loads == 0 {
        return Err("it has no loadable segment".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xnpu-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn folders_are_refused_with_their_kind() {
        let dir = std::env::temp_dir();
        let e = open_regular(&dir, "model").unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
        assert!(check_regular(&dir, "model").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let p = temp("fifo");
        let _ = std::fs::remove_file(&p);
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&p, "model", 1 << 20).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        std::fs::remove_file(&p).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused() {
        let e = read_regular(Path::new("/dev/zero"), "input", 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device"), "{e}");
    }

    #[test]
    fn reads_are_limited() {
        let p = temp("ten");
        std::fs::write(&p, [7u8; 10]).unwrap();
        assert_eq!(read_regular(&p, "table", 10).unwrap().len(), 10);
        let e = read_regular(&p, "table", 9).unwrap_err().to_string();
        assert!(e.contains("larger than the 9 bytes"), "{e}");
        let e = read_limited(&[1u8; 5][..], &p, "model", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 5 bytes"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn truncated_shared_libraries_are_refused() {
        // This test binary's own libc is a real shared object.
        let libc_path = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        let Some(lib) = libc_path else { return };
        check_shared_library(lib, "library").unwrap();
        let bytes = std::fs::read(lib).unwrap();
        for cut in [0, 10, 63, 4096, bytes.len() / 2, bytes.len() - 1] {
            let p = temp("cut.so");
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let e = check_shared_library(&p, "plugin").unwrap_err().to_string();
            assert!(e.contains("not a loadable shared library"), "{cut}: {e}");
        }
        let p = temp("text.so");
        std::fs::write(&p, b"not a library at all").unwrap();
        assert!(check_shared_library(&p, "plugin").is_err());
    }
}
