#!/usr/bin/env bash
# Builds the `xnpu` Python wheel into target/wheels: the extension module (python/, maturin)
# with the backend plugins (libxnpu_plugin_{cpu,openvino,qnn}) beside it in the package
# folder, where the package tells the plugin loader to look, and the ONNX Runtime plugin EP
# (libxnpu_onnxruntime_ep.so, xnpu.get_ep_library_path()). Vendor libraries (OpenVINO,
# QNN) are never packed: the backends find them at run time. Linux (the plugins are .so files
# and lose their line tables with binutils' strip).
# Usage: scripts/build_wheel.sh [PYTHON]   (default: the repository's .venv)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO"
PY="${1:-$REPO/.venv/bin/python}"
export PYO3_PYTHON="$PY"
PLUGINS=(cpu openvino qnn)

# The whole workspace, all targets, as scripts/test.sh builds it (a no-op after that build):
# cargo resolves features per invocation, so building only the plugins (`-p`) would compile
# xnpu again with other features, and so would maturin's build below unless every crate it
# shares with this build has the same features (python/Cargo.toml names the ones that
# differed; scripts/check_wheel_features.py checks).
cargo build --release --quiet --workspace --all-targets
pkg="$REPO/python/pysrc/xnpu"
rm -f "$pkg"/*xnpu_plugin_* "$pkg"/libxnpu_onnxruntime_ep.so
for p in "${PLUGINS[@]}"; do
    lib="$REPO/target/release/libxnpu_plugin_$p.so"
    # Without line tables: they are for debugging in the build tree, not for users.
    strip --strip-debug -o "$pkg/libxnpu_plugin_$p.so" "$lib"
done
# The ONNX Runtime plugin EP, found with xnpu.get_ep_library_path().
strip --strip-debug -o "$pkg/libxnpu_onnxruntime_ep.so" "$REPO/target/release/libxnpu_onnxruntime_ep.so"
rm -rf "$REPO/target/wheels"
(cd "$REPO/python" && "$(dirname "$PY")/maturin" build --release --quiet -i "$PY" -o "$REPO/target/wheels")
ls "$REPO"/target/wheels/xnpu-*.whl
