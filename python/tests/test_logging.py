"""The runtime's warnings reach Python's logging (logger "xnpu"), filtered by XNPU_LOG."""

import json
import logging
import os
import subprocess
import sys

import pytest
from onnx import TensorProto, helper

import xnpu


def identity_model() -> bytes:
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.skipif(
    os.environ.get("XNPU_LOG", "warn").strip().lower() in ("off", "error"),
    reason="XNPU_LOG hides warnings in this process",
)
def test_a_cache_folder_that_cannot_be_written_is_a_logging_warning(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XNPU_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING, logger="xnpu"):
        xnpu.InferenceSession(identity_model(), devices="cpu-only")
    records = [r for r in caplog.records if r.name == "xnpu"]
    assert len(records) == 1, caplog.text
    assert records[0].levelno == logging.WARNING
    assert "cannot be written" in records[0].getMessage()
    assert "a-file is not a folder" in records[0].getMessage()


@pytest.mark.skipif(
    os.environ.get("XNPU_LOG", "warn").strip().lower() in ("off", "error"),
    reason="XNPU_LOG hides warnings in this process",
)
def test_a_handler_that_calls_xnpu_does_not_log_forever(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    seen = []

    class CallsXnpu(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())
            # Warns again (another folder), from inside the handler: that one is dropped.
            os.environ["XNPU_CACHE_DIR"] = str(blocker / f"inner-{len(seen)}")
            xnpu.InferenceSession(identity_model(), devices="cpu-only")

    logger = logging.getLogger("xnpu")
    handler = CallsXnpu()
    logger.addHandler(handler)
    try:
        monkeypatch.setenv("XNPU_CACHE_DIR", str(blocker / "outer"))
        xnpu.InferenceSession(identity_model(), devices="cpu-only")
    finally:
        logger.removeHandler(handler)
    assert len(seen) == 1 and "outer" in seen[0]


# Run in a fresh interpreter: XNPU_LOG is read, and plugins are discovered, once per process.
PROBE = r"""
import json, logging, sys
records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append([record.name, record.levelname, record.getMessage()])

logging.getLogger("xnpu").addHandler(Keep())
logging.getLogger("xnpu").setLevel(logging.DEBUG)
import xnpu
xnpu.backends()
print(json.dumps(records))
"""


def probe(tmp_path, **env):
    """The logging records of a fresh interpreter that imports xnpu and lists its backends,
    with a plugin folder holding a file that is no plugin."""
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "libxnpu_plugin_bogus.so").write_bytes(b"not a shared library")
    full = {k: v for k, v in os.environ.items() if k != "XNPU_LOG"}
    full.update(XNPU_PLUGIN_PATH=str(plugins), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_plugin_that_does_not_load_is_a_logging_warning(tmp_path):
    records = probe(tmp_path)
    bogus = [r for r in records if "libxnpu_plugin_bogus.so" in r[2]]
    assert len(bogus) == 1, records
    assert bogus[0][:2] == ["xnpu", "WARNING"] and bogus[0][2].startswith("skipped ")


def test_xnpu_log_says_which_levels_reach_logging(tmp_path):
    assert probe(tmp_path, XNPU_LOG="off") == []
    assert probe(tmp_path, XNPU_LOG="error") == []
    assert any("bogus" in r[2] for r in probe(tmp_path, XNPU_LOG="info"))
    loud = probe(tmp_path, XNPU_LOG="loud")
    assert ["xnpu", "WARNING"] == loud[0][:2] and "XNPU_LOG=loud: not a level" in loud[0][2]
    assert any("bogus" in r[2] for r in loud)


def test_warnings_show_on_stderr_without_any_logging_setup(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "libxnpu_plugin_bogus.so").write_bytes(b"not a shared library")
    env = {k: v for k, v in os.environ.items() if k != "XNPU_LOG"}
    env["XNPU_PLUGIN_PATH"] = str(plugins)
    out = subprocess.run(
        [sys.executable, "-c", "import xnpu; xnpu.backends()"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "libxnpu_plugin_bogus.so" in out.stderr  # logging's last resort handler
