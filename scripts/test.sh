#!/usr/bin/env bash
# Installs everything the tests need (Debian packages, Rust toolchain check, the Python venv
# with pinned onnx/onnxruntime/openvino/onnxruntime-qnn, the ONNX conformance cases) and runs
# every test. .ci/run calls exactly this.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"
start=$(date +%s)

# Each phase's time, printed as it ends and again as a table at the end (resolve notes and
# the ".ci/run stays under 30 minutes" rule read these).
phase_name="toolchain and Python environment"
phase_start=$start
phases=()
phase() {
    local now
    now=$(date +%s)
    phases+=("$(printf '%6d s  %s' $((now - phase_start)) "$phase_name")")
    log "$phase_name: $((now - phase_start)) s"
    phase_name="$1"
    phase_start=$now
    log "$1"
}

# rustfmt: the formatting check below.
ensure_toolchain rustfmt
# The test set: the run-time packages plus onnx, maturin, pytest, ml_dtypes and the old
# OpenVINO (scripts/requirements.txt; scripts/run.sh installs only requirements-run.txt).
bash scripts/setup_python.sh --test
# torch (CPU side), transformers, onnxruntime-genai: the LLM model builder and reference.
phase "language-model tools (torch, transformers, onnxruntime-genai)"
bash scripts/setup_llm.sh
PY="$REPO/.venv/bin/python"
phase "test data (ONNX cases, contrib-op cases, language models)"

CASES="$REPO/target/onnx-cases"
want="$("$PY" -c 'import onnx; print(onnx.__version__)')"
if [ "$(cat "$CASES/stamp" 2>/dev/null)" != "$want" ]; then
    log "generating ONNX conformance cases (onnx $want)"
    "$PY" scripts/gen_onnx_cases.py "$CASES"
fi
export XNPU_ONNX_CASES="$CASES"

# com.microsoft (contrib) op cases, expected outputs from ONNX Runtime.
CONTRIB="$REPO/target/contrib-cases"
want="$("$PY" scripts/gen_contrib_cases.py --stamp)"
if [ "$(cat "$CONTRIB/stamp" 2>/dev/null)" != "$want" ]; then
    log "generating contrib-op cases"
    rm -rf "$CONTRIB"
    "$PY" scripts/gen_contrib_cases.py "$CONTRIB"
fi
export XNPU_CONTRIB_CASES="$CONTRIB"

# Tiny Phi-3 language models (int4, fp32) made by onnxruntime-genai's builder (stamped).
log "LLM test models"
"$PY" scripts/make_llm_models.py "$REPO/target/llm" --size tiny
export XNPU_LLM_MODELS="$REPO/target/llm"
export XNPU_PYTHON="$PY"
# Compiled-model caches (OpenVINO's and QNN's sealed blobs) stay inside the build folder.
export XNPU_CACHE_DIR="$REPO/target/xnpu-cache"

phase "formatting check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

phase "building (release, all targets)"
# The Python extension (python/) builds against this venv's interpreter (abi3, Python >= 3.9).
export PYO3_PYTHON="$PY"
cargo build --release --workspace --all-targets --quiet

phase "running tests (cargo test: unit tests, conformance, backend suite, plugins, ...)"
# The backend suite pins its case counts and its seed (tests/backend_suite): no outside
# setting may change what it draws, so that its time and its problems are the same each run.
unset PROPTEST_CASES PROPTEST_RNG_SEED
cargo test --release --workspace --no-fail-fast 2>&1

# The node conformance cases through the stock onnxruntime with xnpu as its execution
# provider (libxnpu_onnxruntime_ep.so from the build above): the `ort-ep:` line.
phase "ONNX Runtime with xnpu's execution provider (node conformance)"
"$PY" scripts/ort_ep_conformance.py --ep-lib "$REPO/target/release/libxnpu_onnxruntime_ep.so" \
    --cases "$CASES/node" --passing "$REPO/tests/onnx_conformance/cpu_passing.txt"

# Hostile input through the CLI: crafted files of every class issue 21 lists and mutated
# models, under a time and an address-space limit; any panic, abort, crash or hang fails.
phase "hostile input (scripts/probe_hostile.py, 500 executions)"
"$PY" scripts/probe_hostile.py --executions 500 --xnpu "$REPO/target/release/xnpu"

# The fuzz targets (fuzz/): cargo-fuzz installed, the targets built (the quick build, ~3
# minutes from nothing on 2 cores; built in the background beside the other phases it cost
# them more than that), then every target runs the crashes kept in fuzz/regressions/ and
# the seeds and fuzzes for its share of a minute; a new crash fails the run and is saved
# under fuzz/regressions/ (scripts/fuzz.sh).
phase "fuzzing (scripts/fuzz.sh --quick: build, kept crashes and seeds, 60 s of fuzzing)"
FUZZ_SECONDS=60 bash scripts/fuzz.sh --quick

# The Python wheel: built with maturin (the same target folder), installed into the venv,
# tested with pytest (its summary line ends the test output).
phase "building and testing the Python wheel"
# maturin builds python/ alone: where it would resolve a shared crate with other features it
# compiles xnpu again instead of reusing the build above (minutes); say which.
python3 scripts/check_wheel_features.py || log "warning: the wheel's build will not reuse the workspace build (above)"
bash scripts/build_wheel.sh "$PY"
"$PY" -m pip install --quiet --force-reinstall --no-deps "$REPO"/target/wheels/xnpu-*.whl
pytest_log="$REPO/target/pytest.log"
set +e
"$PY" -m pytest -q "$REPO/python/tests" 2>&1 | tee "$pytest_log"
pytest_status=${PIPESTATUS[0]}
set -e

phase "done"
log "phase times:"
printf '    %s\n' "${phases[@]}"
log "done in $(( $(date +%s) - start )) s"
# The runners' summaries end the output: pytest's summary line last.
tail -n 1 "$pytest_log"
exit "$pytest_status"
