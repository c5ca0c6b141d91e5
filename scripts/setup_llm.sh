#!/usr/bin/env bash
# Install what the LLM scripts need (scripts/requirements-llm.txt: onnxruntime-genai and its
# model builder, transformers, tokenizers, a CPU-usable torch) into the test venv $REPO/.venv,
# on top of scripts/requirements.txt (made by setup_python.sh, run first).
#
# Idempotent: skipped when .venv/.req-llm-stamp holds the sha256 of requirements-llm.txt.
# requirements-llm.txt is a complete pinned list installed with --no-deps (torch's declared
# CUDA extras that CPU use does not need are deliberately absent), so `pip check` reports
# torch's missing triton/cuda-toolkit/...: expected.
#
# Cost on a fresh machine: ~2.45 GB downloaded, ~4 GB in .venv, about a minute of install
# (mostly unpacking) on 2 cores.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
REQ="$REPO/scripts/requirements-llm.txt"
STAMP="$VENV/.req-llm-stamp"
PY="$VENV/bin/python"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

log() { echo "[setup_llm] $*"; }

bash "$REPO/scripts/setup_python.sh" --test

want="$(sha256sum "$REQ" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
    log "up to date ($VENV)"
    exit 0
fi

log "installing $(basename "$REQ") into $VENV (--no-deps)"
rm -f "$STAMP"
"$PY" -m pip install -q --no-deps -r "$REQ"
# Smoke test: everything imports, torch runs on the CPU without a GPU.
"$PY" - <<'EOF'
import torch, transformers, tokenizers, onnxruntime, onnxruntime_genai  # noqa: F401
import onnxruntime_genai.models.builder  # noqa: F401
assert float(torch.ones(4) @ torch.ones(4)) == 4.0
print("[setup_llm] ok: torch", torch.__version__, "transformers", transformers.__version__,
      "onnxruntime", onnxruntime.__version__, "onnxruntime-genai", onnxruntime_genai.__version__)
EOF
echo "$want" > "$STAMP"
