//! libQnnHtp.so prints a banner on standard output while it loads (` # LIBNATIVE: No
//! alternate configuration present in libnative_tls.conf ...`), into C's stdio buffer, which
//! a pipe sees only when the process exits: text in the middle of a program's own output.
//! [`caught`] runs the load with standard output pointed at a memory file, then logs the
//! library's lines at debug level and writes anything else (another thread's output) back.
//!
//! While it runs, descriptor 1 is the memory file for the whole process: another thread's
//! writes land there and are written back afterwards; a child another thread starts meanwhile
//! keeps the memory file as its standard output. The load takes about 40 ms, once per process.

/// Runs `f` with file descriptor 1 caught (Linux; elsewhere `f` runs as it is).
#[cfg(target_os = "linux")]
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::sync::Mutex;
    // One catch at a time in this copy of the crate: a second would save the first's memory
    // file as "stdout".
    static LOCK: Mutex<()> = Mutex::new(());
    let text = {
        let _one = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let _ = std::io::stdout().flush();
        let Some(redirect) = Redirect::new() else {
            return f();
        };
        let out = f();
        (out, redirect.finish())
    };
    let (out, text) = text;
    // Logged and written back with the lock released (a log callback may call into xnpu).
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

/// Descriptor 1 pointed at a memory file until [`Redirect::finish`] or drop (a panic in the
/// caught call) puts it back.
#[cfg(target_os = "linux")]
struct Redirect {
    saved: libc::c_int,
    /// Taken by `finish`; closed by drop when the caught call panicked.
    mem: Option<libc::c_int>,
}

#[cfg(target_os = "linux")]
impl Redirect {
    /// `None` (nothing changed) when a descriptor cannot be made.
    fn new() -> Option<Redirect> {
        // SAFETY: plain calls on descriptors this function owns; fflush(NULL) flushes every C
        // output stream, so that what was written before goes where it was meant to.
        unsafe {
            libc::fflush(std::ptr::null_mut());
            let mem = libc::memfd_create(c"xnpu-qnn-stdout".as_ptr(), libc::MFD_CLOEXEC);
            if mem < 0 {
                return None;
            }
            let saved = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
            if saved < 0 {
                libc::close(mem);
                return None;
            }
            if libc::dup2(mem, 1) < 0 {
                libc::close(saved);
                libc::close(mem);
                return None;
            }
            Some(Redirect {
                saved,
                mem: Some(mem),
            })
        }
    }

    /// Puts descriptor 1 back and returns what was written meanwhile.
    fn finish(mut self) -> Vec<u8> {
        let Some(mem) = self.mem.take() else {
            return Vec::new();
        };
        drop(self);
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        // SAFETY: `mem` is the memory file, still open (drop restored fd 1 only); read from
        // its start into a buffer of the length given, then closed once.
        unsafe {
            if libc::lseek(mem, 0, libc::SEEK_SET) == 0 {
                loop {
                    let n = libc::read(mem, buf.as_mut_ptr().cast(), buf.len());
                    if n > 0 {
                        text.extend_from_slice(&buf[..n as usize]);
                    } else if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    } else {
                        break;
                    }
                }
            }
            libc::close(mem);
        }
        text
    }
}

#[cfg(target_os = "linux")]
impl Drop for Redirect {
    /// Flushes what C buffered into the memory file and restores descriptor 1; the memory file
    /// is closed here unless `finish` took it.
    fn drop(&mut self) {
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // SAFETY: `saved` is the original descriptor 1, restored before it is closed.
        unsafe {
            libc::fflush(std::ptr::null_mut());
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
        if let Some(mem) = self.mem.take() {
            // SAFETY: the memory file, closed once (`finish` took it otherwise).
            unsafe { libc::close(mem) };
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> T {
    f()
}
