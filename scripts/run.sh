#!/usr/bin/env bash
# The main job: build xnpu, list the devices it can use, and run the bundled model
# (models/tinycnn.onnx, written by scripts/make_demo_model.py) on every available device.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"
ensure_toolchain
cargo build --release --quiet --bin xnpu
XNPU=target/release/xnpu
$XNPU devices
echo
$XNPU info models/tinycnn.onnx
echo
$XNPU partition models/tinycnn.onnx --explain
echo
$XNPU run models/tinycnn.onnx --random --dim batch=4 --iterations 5 --output-dir target/tinycnn-out
