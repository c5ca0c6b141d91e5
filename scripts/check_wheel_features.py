#!/usr/bin/env python3
"""Lists the crates that the wheel's build (maturin builds `python/` alone) would resolve with
other features than `cargo build --workspace --all-targets` does. Each such crate, and every
crate above it (xnpu's own included), is compiled a second time for the wheel; naming the
missing features in python/Cargo.toml (its "Not used by the extension" dependencies) makes the
wheel reuse the workspace build.

    python3 scripts/check_wheel_features.py     # exit 1 when a shared crate differs
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def features(args: list[str], edges: str, cwd: Path) -> dict[str, set[str]]:
    """Package id -> the feature sets cargo tree shows for it (one per build unit)."""
    out = subprocess.run(
        ["cargo", "tree", *args, "-e", edges, "-f", "{p}|{f}", "--prefix", "none"],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        package, feats = line.split("|", 1)
        package = package.replace(" (proc-macro)", "").strip()
        found.setdefault(package, set()).add(feats.replace(" (*)", "").strip())
    return found


def main() -> int:
    workspace = features(["--workspace", "--all-targets"], "normal,build,dev", REPO)
    wheel = features(["-p", "xnpu-python"], "normal,build", REPO / "python")
    differ = []
    for package, sets in sorted(wheel.items()):
        # A crate the wheel shares with the workspace build is reused when each of its units
        # has a unit of the same features there.
        if package in workspace and not sets <= workspace[package]:
            have = set().union(*(s.split(",") for s in workspace[package]))
            want = set().union(*(s.split(",") for s in sets))
            differ.append(f"  {package}: the workspace build adds {sorted(have - want)}, "
                          f"the wheel's adds {sorted(want - have)}")
    if differ:
        print("the wheel's build resolves these crates with other features than the workspace "
              "build (name the missing ones in python/Cargo.toml):")
        print("\n".join(differ))
        return 1
    print(f"the wheel's build shares all {len(wheel)} of its crates' features with the "
          "workspace build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
