#!/usr/bin/env bash
# The main job: build xnpu, list the devices it can use, and run the bundled model
# (models/tinycnn.onnx, written by scripts/make_demo_model.py) on every available device.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"
ensure_toolchain
# The vendor runtimes xnpu drives are found at run time in the project's venv (OpenVINO's
# wheel; Qualcomm's libraries inside onnxruntime-qnn): install them if they are not there.
bash scripts/setup_python.sh
cargo build --release --quiet --workspace
XNPU=target/release/xnpu
$XNPU devices | tee target/devices.txt
echo
$XNPU info models/tinycnn.onnx
echo
$XNPU partition models/tinycnn.onnx --explain
# Every backend this build can run on (the indented rows under "backends this xnpu can run
# on"), one run each, outputs kept per device.
mapfile -t ids < <(awk '/^backends this xnpu can run on:/{on=1; next} on && /^  [^ ]/{print $1; next} on{on=0}' target/devices.txt)
for id in "${ids[@]}"; do
    echo
    echo "== $id"
    $XNPU run models/tinycnn.onnx --random --dim batch=4 --iterations 5 --devices "$id" \
        --output-dir "target/tinycnn-out/${id//:/_}"
done
