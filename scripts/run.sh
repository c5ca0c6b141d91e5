#!/usr/bin/env bash
# The main job: build xnpu, list the devices it can use, and run the bundled image classifier
# (models/tinycnn.onnx on models/tinycnn.image.npy, both written by scripts/make_demo_model.py)
# on every device this xnpu can run on, then a summary: time, predicted classes and the
# difference from ONNX Runtime's outputs (models/tinycnn.probs.ort.npy) per device.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"
t_start=$SECONDS
ensure_toolchain
# The vendor runtimes xnpu drives are found at run time in the project's venv (OpenVINO's
# wheel; Qualcomm's libraries inside onnxruntime-qnn): only what runs models, not the tests'.
bash scripts/setup_python.sh
if [ -x target/release/xnpu ]; then
    log "building xnpu (cargo build --release; changed crates only)"
else
    log "building xnpu (cargo build --release: about 4 minutes from nothing on 2 cores)"
fi
if [ -t 2 ]; then
    CARGO_TERM_PROGRESS_WHEN=auto cargo build --release --workspace
else
    # No terminal for cargo's progress bar: a line every 30 s instead.
    cargo build --release --workspace --quiet &
    build=$!
    trap 'kill "$build" 2>/dev/null' EXIT INT TERM
    t0=$SECONDS
    next=30
    while kill -0 "$build" 2>/dev/null; do
        sleep 1
        if (( SECONDS - t0 >= next )) && kill -0 "$build" 2>/dev/null; then
            log "still building ($((SECONDS - t0)) s)"
            next=$((next + 30))
        fi
    done
    wait "$build"
    trap - EXIT INT TERM
fi
log "built target/release/xnpu"
XNPU=target/release/xnpu
MODEL=models/tinycnn.onnx
IMAGE=models/tinycnn.image.npy
OUT=target/run
rm -rf "$OUT" && mkdir -p "$OUT"

echo
$XNPU devices
$XNPU devices --json > "$OUT/devices.json"
echo
$XNPU info "$MODEL"
echo
$XNPU partition "$MODEL" --explain

# Every backend this build can run on, as `xnpu devices --json` lists them, but the reference
# kernels (the tests' oracle: slow on purpose).
PY="${XNPU_VENV:-$REPO/.venv}/bin/python"
backends=$("$PY" -c '
import json, sys
for b in json.load(open(sys.argv[1]))["backends"]:
    if b["id"] != "cpu:reference":
        print(b["id"])' "$OUT/devices.json")
mapfile -t ids <<< "$backends"
# A device that fails is reported and the others still run; the summary says which.
for id in "${ids[@]}"; do
    echo
    echo "== $id"
    dir="$OUT/${id//:/_}"
    if $XNPU run "$MODEL" --input "image=$IMAGE" --iterations 5 --devices "$id" --output-dir "$dir"; then
        $XNPU run "$MODEL" --input "image=$IMAGE" --iterations 5 --devices "$id" --json \
            > "$dir/run.json" || log "$id: the JSON run failed"
    else
        log "$id: the run failed"
    fi
done

echo
"$PY" scripts/run_summary.py "$OUT" models/tinycnn.probs.ort.npy "${ids[@]}"
log "done in $((SECONDS - t_start)) s"
