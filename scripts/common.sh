# Shared by scripts/run.sh and scripts/test.sh: find or install what building xnpu needs.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TERM_PROGRESS_WHEN=never

log() { echo "[xnpu] $*"; }
# die LINE...: each line (arguments may hold several) as an [xnpu] line on stderr, then exit 1.
die() {
    local line
    printf '%s\n' "$@" | while IFS= read -r line; do log "$line"; done >&2
    exit 1
}

apt_updated=0
apt_get() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to run apt-get $*"
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        apt_get update -qq >/dev/null
        apt_updated=1
    fi
}
apt_install() {
    log "apt-get install $* (Debian packages; a minute or two on a fresh machine)"
    apt_update
    apt_get install -y -qq "$@" >/dev/null
}

# The oldest Rust that builds the workspace: Cargo.toml's [workspace.package] rust-version,
# the single place it is written (the highest rust-version of anything the workspace builds,
# its own crates and their dependencies).
rust_min_version() {
    awk -F'"' '/^\[/ { section = $0 }
        section == "[workspace.package]" && /^rust-version *=/ { print $2; exit }' \
        "$REPO/Cargo.toml"
}

# version_ge HAVE NEED: whether dotted version HAVE is NEED or newer ("1.95.0" >= "1.92").
version_ge() {
    local -a have need
    local i h n
    IFS=. read -r -a have <<<"$1"
    IFS=. read -r -a need <<<"$2"
    for i in 0 1 2; do
        h="${have[i]:-0}" n="${need[i]:-0}"
        h="${h%%[!0-9]*}" n="${n%%[!0-9]*}"
        [ "$((10#${h:-0}))" -gt "$((10#${n:-0}))" ] && return 0
        [ "$((10#${h:-0}))" -lt "$((10#${n:-0}))" ] && return 1
    done
    return 0
}

# tool_version TOOL: the version a Rust tool reports ("rustc 1.95.0 (59807616e 2026-04-14)"
# -> 1.95.0, "1.96.0-nightly" -> 1.96.0), or nothing when it does not run.
tool_version() {
    local out
    out="$("$1" --version 2>/dev/null)" || return 0
    out="${out#* }"
    out="${out%% *}"
    echo "${out%%-*}"
}

# Whether the cargo and rustc in PATH are new enough ($1).
rust_ok() {
    local c r
    c="$(tool_version cargo)"
    r="$(tool_version "${RUSTC:-rustc}")"
    [ -n "$c" ] && [ -n "$r" ] && version_ge "$c" "$1" && version_ge "$r" "$1"
}

cargo_home() { echo "${CARGO_HOME:-$HOME/.cargo}"; }

# What is in PATH, for messages: "rustc 1.85.0 (/usr/bin/rustc), cargo 1.85.0 (/usr/bin/cargo)".
rust_found() {
    local t v out=()
    for t in "${RUSTC:-rustc}" cargo; do
        v="$(tool_version "$t")"
        if [ -n "$v" ]; then out+=("$t $v ($(command -v "$t"))"); else out+=("no working $t"); fi
    done
    echo "${out[0]}, ${out[1]}"
}

# rustup's installer, from static.rust-lang.org (or RUSTUP_UPDATE_ROOT, rustup's own setting
# for a mirror). sh.rustup.rs serves the same installer through a shell script.
rustup_init_url() {
    echo "${RUSTUP_UPDATE_ROOT:-https://static.rust-lang.org/rustup}/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
}

# Installs rustup and the stable toolchain (minimal profile, plus the components named) into
# CARGO_HOME/RUSTUP_HOME when static.rust-lang.org answers within seconds; returns 1
# (having printed why) when it does not, so that an offline machine does not wait.
install_rustup() {
    local url tmp comps=() c
    url="$(rustup_init_url)"
    case "$(uname -m)" in x86_64 | aarch64) ;; *)
        log "no rustup installer for $(uname -m) in this script"
        return 1 ;;
    esac
    if ! curl -fsSI --connect-timeout 10 -m 20 -o /dev/null "$url" 2>/dev/null; then
        log "rustup's server does not answer ($url): skipping rustup"
        return 1
    fi
    tmp="$(mktemp -d)"
    log "downloading rustup-init (~20 MB) from $url"
    if ! curl -fsS --connect-timeout 10 -m 300 -o "$tmp/rustup-init" "$url" \
        || ! curl -fsS --connect-timeout 10 -m 30 -o "$tmp/rustup-init.sha256" "$url.sha256"; then
        rm -rf "$tmp"
        log "downloading rustup-init failed"
        return 1
    fi
    if [ "$(cut -d' ' -f1 <"$tmp/rustup-init.sha256")" != "$(sha256sum "$tmp/rustup-init" | cut -d' ' -f1)" ]; then
        rm -rf "$tmp"
        log "rustup-init's sha256 does not match $url.sha256"
        return 1
    fi
    chmod +x "$tmp/rustup-init"
    for c in "$@"; do comps+=(--component "$c"); done
    log "installing Rust stable with rustup into $(cargo_home) (profile minimal${*:+, plus $*}: ~100 MB download, ~600 MB on disk, under a minute on a fast link)"
    # RUSTUP_INIT_SKIP_PATH_CHECK: a Debian rustc in /usr/bin stays, behind ~/.cargo/bin in PATH.
    if ! RUSTUP_INIT_SKIP_PATH_CHECK=yes timeout 1200 "$tmp/rustup-init" -y -q --no-modify-path \
        --profile minimal --default-toolchain stable "${comps[@]}" >/dev/null; then
        rm -rf "$tmp"
        log "rustup-init failed"
        return 1
    fi
    rm -rf "$tmp"
    PATH="$(cargo_home)/bin:$PATH"
    export PATH
}

# The upstream version of the Debian package that apt would install ("1.85.0+dfsg3-1~deb12u3"
# -> 1.85.0), or nothing.
apt_candidate() {
    local v
    command -v apt-cache >/dev/null 2>&1 || return 0
    v="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')"
    [ -n "$v" ] && [ "$v" != "(none)" ] || return 0
    v="${v#*:}"
    echo "${v%%[+~-]*}"
}

# How to get a new enough Rust, for the messages below.
rust_help() {
    echo "Install Rust $1 or newer with rustup, then rerun:"
    echo "    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt"
    echo "    . \"\$HOME/.cargo/env\""
    echo "(or download $(rustup_init_url) on a machine with network access, copy it here and run it)."
}

# A C toolchain (some crates build C; the C ABI's tests compile its examples), valgrind (their
# leak check) and a Rust toolchain at least as new as Cargo.toml's rust-version, with the
# rustup components named as arguments (scripts/test.sh: rustfmt, for its formatting check).
# Rust comes from, in this order: rustup where the machine has it (~/.cargo/bin or PATH); a
# cargo and rustc already in PATH that are new enough; rustup, installed over the network;
# Debian's rustc-web/cargo-web (1.85 on Debian 12) where that is new enough. Never Debian's
# plain rustc/cargo (1.63 on Debian 12). Exits with a message saying what it found and what
# to do when none of these gives a new enough Rust.
# shellcheck disable=SC2120 # the components are optional: scripts/run.sh names none
ensure_toolchain() {
    local need have_rustup=0 rust_source="" missing=() comp cand installed cv rv
    need="$(rust_min_version)"
    [ -n "$need" ] || die "no rust-version under [workspace.package] in $REPO/Cargo.toml"

    if [ -f "$(cargo_home)/env" ]; then
        # shellcheck disable=SC1091
        . "$(cargo_home)/env"
    fi
    if [ -x "$(cargo_home)/bin/rustup" ]; then
        # rustup's proxies first, ahead of any cargo/rustc in /usr/bin.
        PATH="$(cargo_home)/bin:$PATH"
        export PATH
        have_rustup=1
    elif command -v rustup >/dev/null 2>&1; then
        have_rustup=1
    fi

    command -v cc >/dev/null 2>&1 || missing+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    # The C ABI's leak check runs its stress example under valgrind (ffi/tests/c_examples.rs).
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    if [ "$have_rustup" -eq 1 ]; then
        rust_source="rustup"
    elif rust_ok "$need"; then
        rust_source="PATH"
    else
        # rustup is to be downloaded: curl and the CA certificates.
        command -v curl >/dev/null 2>&1 || missing+=(curl)
        [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
    fi

    if [ -z "$rust_source" ]; then
        log "no rustup, and no Rust $need or newer in PATH ($(rust_found)): installing Rust"
        if install_rustup "$@"; then
            rust_source="rustup"
            have_rustup=1
        else
            cand="$(apt_candidate rustc-web)"
            if [ -z "$cand" ]; then
                apt_update
                cand="$(apt_candidate rustc-web)"
            fi
            if [ -n "$cand" ] && version_ge "$cand" "$need"; then
                local pkgs=(rustc-web cargo-web)
                for comp in "$@"; do
                    if [ "$comp" = rustfmt ]; then pkgs+=(rustfmt-web); fi
                done
                apt_install "${pkgs[@]}"
                rust_source="Debian's rustc-web"
            else
                local plain
                plain="$(apt_candidate rustc)"
                die "xnpu needs Rust $need or newer (Cargo.toml's rust-version), and this machine has none:" \
                    "rustup could not be installed (above), and Debian's Rust is too old (rustc-web:" \
                    "${cand:-not available}; rustc: ${plain:-not available}); found $(rust_found)." \
                    "$(rust_help "$need")"
            fi
        fi
    fi

    if [ "$rust_source" = rustup ]; then
        if ! rustup show active-toolchain >/dev/null 2>&1; then
            log "rustup has no default toolchain: installing stable (profile minimal; ~100 MB download)"
            rustup toolchain install stable --profile minimal --no-self-update >/dev/null
            rustup default stable >/dev/null
        fi
        installed="$(rustup component list --installed 2>/dev/null || true)"
        for comp in "$@"; do
            if ! grep -q "^$comp" <<<"$installed"; then
                log "rustup component add $comp"
                rustup component add "$comp" >/dev/null
            fi
        done
    fi

    # What cargo will run: checked whatever its source.
    cv="$(tool_version cargo)"
    rv="$(tool_version "${RUSTC:-rustc}")"
    if [ -z "$cv" ] || [ -z "$rv" ]; then
        die "no working cargo/rustc after setting up Rust (from $rust_source): $(rust_found)." \
            "$(rust_help "$need")"
    fi
    if ! version_ge "$rv" "$need" || ! version_ge "$cv" "$need"; then
        local fix
        if [ "$rust_source" = rustup ]; then
            fix="Update rustup's toolchain, then rerun: rustup update stable && rustup default stable"
        else
            fix="$(rust_help "$need")"
        fi
        die "xnpu needs Rust $need or newer (Cargo.toml's rust-version); found $(rust_found)." "$fix"
    fi
    for comp in "$@"; do
        case "$comp" in
        rustfmt) cargo fmt --version >/dev/null 2>&1 \
            || die "cargo fmt does not run ($(command -v cargo)): rustup component add rustfmt (with Debian's rustc-web: apt-get install rustfmt-web)" ;;
        clippy) cargo clippy --version >/dev/null 2>&1 \
            || die "cargo clippy does not run ($(command -v cargo)): rustup component add clippy" ;;
        esac
    done
    log "Rust $rv (cargo $cv, $(command -v cargo); from $rust_source; needs $need or newer)"
}
