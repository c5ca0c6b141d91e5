//! libQnnHtp.so prints a banner on standard output while it loads (` # LIBNATIVE: No
//! alternate configuration present in libnative_tls.conf ...`), into C's stdio buffer, which
//! a pipe sees only when the process exits: text in the middle of a program's own output.
//! [`caught`] runs the load with standard output pointed at a memory file, then logs the
//! library's lines at debug level and writes anything else (another thread's output) back.

/// Runs `f` with file descriptor 1 caught (Linux; elsewhere `f` runs as it is).
#[cfg(target_os = "linux")]
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::sync::Mutex;
    // One catch at a time: a second would save the first's memory file as "stdout".
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let _ = std::io::stdout().flush();
    // SAFETY: plain calls on file descriptors this function owns; fflush(NULL) flushes every
    // C output stream. On any failure nothing is redirected and `f` runs as it is.
    let (saved, mem) = unsafe {
        libc::fflush(std::ptr::null_mut());
        let mem = libc::memfd_create(c"xnpu-qnn-stdout".as_ptr(), libc::MFD_CLOEXEC);
        if mem < 0 {
            return f();
        }
        let saved = libc::dup(1);
        if saved < 0 || libc::dup2(mem, 1) < 0 {
            if saved >= 0 {
                libc::close(saved);
            }
            libc::close(mem);
            return f();
        }
        (saved, mem)
    };
    let out = f();
    let _ = std::io::stdout().flush();
    // SAFETY: as above; `saved` is the original descriptor 1, restored before it is closed.
    let text = unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::dup2(saved, 1);
        libc::close(saved);
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        if libc::lseek(mem, 0, libc::SEEK_SET) == 0 {
            loop {
                let n = libc::read(mem, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 {
                    break;
                }
                text.extend_from_slice(&buf[..n as usize]);
            }
        }
        libc::close(mem);
        text
    };
    let mut others = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.windows(9).any(|w| w == b"LIBNATIVE") {
            tracing::debug!("libQnnHtp.so: {}", String::from_utf8_lossy(line).trim());
        } else {
            others.extend_from_slice(line);
        }
    }
    if !others.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&others);
        let _ = stdout.flush();
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> T {
    f()
}
