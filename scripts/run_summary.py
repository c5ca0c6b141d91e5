#!/usr/bin/env python3
"""The summary scripts/run.sh ends with: per device, the median time, the class each image
is given, and the largest difference from ONNX Runtime's probabilities.

    run_summary.py OUT_DIR REFERENCE.npy DEVICE...

Reads OUT_DIR/<device>/run.json (`xnpu run --json`, docs/cli-json.md) and the probabilities
it wrote (OUT_DIR/<device>/probs.npy).
"""
import json
import sys
from pathlib import Path

import numpy as np


def main(out: Path, reference: Path, ids: list) -> int:
    want = np.load(reference)
    rows, notes, failed = [], [], False
    for dev in ids:
        d = out / dev.replace(":", "_")
        try:
            run = json.loads((d / "run.json").read_text())
            probs = np.load(d / "probs.npy")
        except (OSError, ValueError) as e:
            rows.append((dev, "-", "-", f"no result ({e})"))
            failed = True
            continue
        diff = float(np.max(np.abs(probs - want)))
        classes = ", ".join(str(c) for c in probs.argmax(axis=-1))
        same = np.array_equal(probs.argmax(axis=-1), want.argmax(axis=-1))
        rows.append((dev, f"{run['time_ms']['median']:.3f} ms", classes + ("" if same else " (differs)"),
                     f"{diff:.1e}"))
        if dev.startswith("qnn:") and diff > 1e-5:
            notes.append(f"{dev}: Qualcomm's HTP computes fp32 models in fp16, as the Hexagon NPU "
                         f"does, so its outputs differ from fp32 by about 1e-4"
                         + ("; the classes agree." if same else "."))
        if not same:
            failed = True
    header = ("device", "time (median of 5)", f"classes ({len(want)} images)",
              "max |difference| from ONNX Runtime")
    width = [max(len(r[k]) for r in rows + [header]) for k in range(4)]
    print("summary: models/tinycnn.onnx on models/tinycnn.image.npy")
    for r in [header] + rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, width)).rstrip())
    print(f"  ONNX Runtime's classes: {', '.join(str(c) for c in want.argmax(axis=-1))}")
    for n in notes:
        print(f"  note: {n}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
