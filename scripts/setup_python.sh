#!/usr/bin/env bash
# Create/refresh xnpu's Python venv, $REPO/.venv (XNPU_VENV overrides the folder, e.g. to
# measure a fresh install; xnpu itself looks for .venv beside the repository).
#
#   bash scripts/setup_python.sh          what xnpu needs at run time (scripts/run.sh):
#                                         scripts/requirements-run.txt (openvino,
#                                         onnxruntime-qnn, onnxruntime, numpy)
#   bash scripts/setup_python.sh --test   what the tests need (scripts/test.sh):
#                                         scripts/requirements.txt (the run-time set plus
#                                         onnx, maturin, pytest, ml_dtypes) and
#                                         openvino==2024.6.0 (too old for xnpu, for the test
#                                         that refuses it) in .venv/openvino-2024.6
#
# Idempotent, per set: an install is skipped when its stamp (.venv/.req-run-stamp,
# .venv/.req-stamp) holds the sha256 of its requirements files, and 2024.6 when its folder
# exists. The test set includes the run-time set, so after --test the plain call has nothing
# to do; neither call removes what the other installed.
#
# Works on a fresh Debian machine as root: installs python3 / python3-venv
# with apt-get when `python3 -m venv` is unavailable.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${XNPU_VENV:-$REPO/.venv}"
RUN_REQ="$REPO/scripts/requirements-run.txt"
TEST_REQ="$REPO/scripts/requirements.txt"

case "${1:-}" in
'') test_set=0 ;;
--test) test_set=1 ;;
*)
    echo "usage: scripts/setup_python.sh [--test]" >&2
    exit 2
    ;;
esac

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

log() { echo "[setup_python] $*"; }

apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            log "need root (or sudo) to apt-get install $*" >&2; exit 1
        fi
    fi
    log "apt-get install $*"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

venv_usable() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1 \
        && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv
fi

if ! venv_usable; then
    # The project's .venv is replaced; a folder XNPU_VENV names only when this script made it
    # (a venv made without pip, by uv say, or another folder is the user's).
    if [ -n "${XNPU_VENV:-}" ] && [ -e "$VENV" ] && [ ! -f "$VENV/.xnpu-venv" ]; then
        log "$VENV is not a venv with pip that scripts/setup_python.sh made; move it away or set XNPU_VENV to another folder" >&2
        exit 1
    fi
    rm -rf "$VENV"
    # `python3 -m venv` needs ensurepip, which Debian splits into python3-venv.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    log "creating $VENV ($(python3 --version 2>&1))"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        # e.g. a versioned package is needed (python3.X-venv) on some images.
        rm -rf "$VENV"
        pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install python3-venv "python${pyver}-venv"
        python3 -m venv "$VENV"
    fi
    : > "$VENV/.xnpu-venv"
fi

# The sha256 of a requirements file and the run-time file it may include (-r).
req_hash() { cat "$1" "$RUN_REQ" | sha256sum | cut -d' ' -f1; }

# install_set NAME STAMP REQUIREMENTS WHAT: pip install -r REQUIREMENTS unless STAMP (in the
# venv) holds its req_hash.
install_set() {
    local name="$1" stamp="$VENV/$2" req="$3" what="$4" want have
    want="$(req_hash "$req")"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [ "$want" = "$have" ]; then
        log "$name packages up to date ($VENV)"
        return 0
    fi
    log "installing the $name packages, $(basename "$req"), into $VENV ($what)"
    rm -f "$stamp"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r "$req"
    echo "$want" >"$stamp"
    log "done ($("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null \
        | grep -iE '^(onnx|onnxruntime|onnxruntime-qnn|openvino|numpy)==' | paste -sd ' ' -))"
}

if [ "$test_set" -eq 1 ]; then
    install_set test .req-stamp "$TEST_REQ" "the run-time set plus onnx, maturin, pytest, \
ml_dtypes: ~220 MB to download, ~760 MB in the venv, 20-40 s on a fast link"
    # The test set includes the run-time set: a plain call after this has nothing to do.
    req_hash "$RUN_REQ" >"$VENV/.req-run-stamp"
else
    install_set run-time .req-run-stamp "$RUN_REQ" "openvino, onnxruntime-qnn, onnxruntime, \
numpy: ~200 MB to download, ~690 MB in the venv, 20-30 s on a fast link"
    exit 0
fi

# An OpenVINO older than xnpu supports (2025.1), for the test that it is refused
# (backends/openvino/tests/old_version.rs). Its own folder, not importable from the venv:
# only its libs/ are used. ~45 MB to download, 140 MB on disk; a few seconds.
OLD_OV="$VENV/openvino-2024.6"
if [ ! -d "$OLD_OV" ]; then
    log "installing openvino==2024.6.0 into $OLD_OV (for one test; ~45 MB to download, 140 MB)"
    if ! "$VENV/bin/python" -m pip install -q --no-deps --target "$OLD_OV.partial" \
        openvino==2024.6.0; then
        rm -rf "$OLD_OV.partial"
        log "pip install openvino==2024.6.0 failed" >&2
        exit 1
    fi
    mv "$OLD_OV.partial" "$OLD_OV"
fi
