#!/usr/bin/env bash
# Create/refresh the Python venv used by the xnpu tests: $REPO/.venv with
# scripts/requirements.txt installed, and openvino==2024.6.0 (too old for xnpu, for the
# test that refuses it) in .venv/openvino-2024.6. Idempotent: the install is skipped when
# .venv/.req-stamp holds the sha256 of requirements.txt, and 2024.6 when its folder exists.
#
# Works on a fresh Debian machine as root: installs python3 / python3-venv
# with apt-get when `python3 -m venv` is unavailable.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
REQ="$REPO/scripts/requirements.txt"
STAMP="$VENV/.req-stamp"

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
fi

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
    log "up to date ($VENV)"
else
    log "installing $(basename "$REQ") into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r "$REQ"
    echo "$want" > "$STAMP"
    log "done ($("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null \
        | grep -iE '^(onnx|onnxruntime|onnxruntime-qnn|openvino|numpy)==' | paste -sd ' ' -))"
fi

# An OpenVINO older than xnpu supports (2025.1), for the test that it is refused
# (backends/openvino/tests/old_version.rs). Its own folder, not importable from the venv:
# only its libs/ are used. About 140 MB; a few seconds with pip's cache warm.
OLD_OV="$VENV/openvino-2024.6"
if [ ! -d "$OLD_OV" ]; then
    log "installing openvino==2024.6.0 into $OLD_OV"
    if ! "$VENV/bin/python" -m pip install -q --no-deps --target "$OLD_OV.partial" \
        openvino==2024.6.0; then
        rm -rf "$OLD_OV.partial"
        log "pip install openvino==2024.6.0 failed" >&2
        exit 1
    fi
    mv "$OLD_OV.partial" "$OLD_OV"
fi
