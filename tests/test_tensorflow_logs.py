"""Importing the TensorFlow port prints none of TensorFlow's load-time INFO lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytree_minimize._backends.tensorflow_logs import without_load_time_info

ROOT = Path(__file__).resolve().parent.parent
NOISE = ("oneDNN", "absl::InitializeLog", "I0000", "cpu_feature_guard", "To enable the following")


def _stderr_of_import() -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    environment["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", "import pytree_minimize.ports.tensorflow"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stderr


def test_import_prints_no_load_time_info():
    pytest.importorskip("tensorflow")
    stderr = _stderr_of_import()
    assert not [word for word in NOISE if word in stderr], stderr


def test_filter_keeps_warnings_and_errors(capfd):
    with without_load_time_info():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are ...\n")
        os.write(2, b"I0000 00:00:1795996914.321266    9032 port.cc:153] oneDNN custom ...\n")
        os.write(2, b"2025-01-01 12:00:00.000001: I tensorflow/core/x.cc:1] loaded\n")
        os.write(2, b"E0000 00:00:1795996914.321266    9032 cuda.cc:1] a real error\n")
        os.write(2, b"W0000 00:00:1795996914.321266    9032 x.cc:1] a real warning\n")
        print("to stdout")
    captured = capfd.readouterr()
    assert captured.err.splitlines() == [
        "E0000 00:00:1795996914.321266    9032 cuda.cc:1] a real error",
        "W0000 00:00:1795996914.321266    9032 x.cc:1] a real warning",
    ]
    assert captured.out == "to stdout\n"


def test_filter_passes_exceptions_through(capfd):
    with pytest.raises(ZeroDivisionError), without_load_time_info():
        os.write(2, b"kept line\n")
        1 / 0  # noqa: B018
    assert capfd.readouterr().err == "kept line\n"
