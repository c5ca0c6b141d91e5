# Shared by scripts/run.sh and scripts/test.sh: find or install what building xnpu needs.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TERM_PROGRESS_WHEN=never

log() { echo "[xnpu] $*"; }

apt_install() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    log "apt-get install $*"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A C toolchain (some crates build C; the C ABI's tests compile its examples), valgrind (their
# leak check) and a Rust toolchain. Rust comes from rustup where the machine has it; otherwise
# from Debian's packages, which must be recent enough (1.80+).
ensure_toolchain() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    local missing=()
    command -v cc >/dev/null 2>&1 || missing+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    # The C ABI's leak check runs its stress example under valgrind (ffi/tests/c_examples.rs).
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    command -v cargo >/dev/null 2>&1 || missing+=(cargo rustc)
    [ ${#missing[@]} -gt 0 ] && apt_install "${missing[@]}"
    if ! command -v cargo >/dev/null 2>&1; then
        log "no cargo after installing Debian's package; install Rust 1.82+ (rustup) and retry" >&2
        exit 1
    fi
}
