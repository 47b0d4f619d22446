"""Every Python block of README.md runs as written, on its own, and the demo explains its fit.

Each block runs in a fresh interpreter with the repository on the path, so a block that uses a
name it does not define, or depends on an earlier block, fails here. A block that cannot run in CI
must say so in its fence (```python no-run: <reason>); none does today.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
#: (fence info after "python", code, line number of the fence)
BLOCKS = [
    (match["info"].strip(), match["code"], README.count("\n", 0, match.start()) + 1)
    for match in re.finditer(
        r"^```python(?P<info>[^\n]*)\n(?P<code>.*?)^```", README, re.MULTILINE | re.DOTALL
    )
]
RUNNABLE = [(code, line) for info, code, line in BLOCKS if not info.startswith("no-run")]


def _env() -> dict[str, str]:
    """This interpreter's environment, with the repository first on the path and one CPU device,
    as a single process (the multi-process block reads PROCESS_ID)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROCESS_ID", "NUM_PROCESSES")}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="1")
    return env


def _run(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600, check=False
    )


def test_readme_blocks_are_all_found_and_none_skipped():
    opened = README.count("```python")
    assert len(BLOCKS) == opened >= 6
    skipped = [(info, line) for info, _, line in BLOCKS if info.startswith("no-run")]
    assert all(re.fullmatch(r"no-run: \S.{10,}", info) for info, _ in skipped), skipped
    assert len(skipped) <= 1, skipped


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("code", "line"), RUNNABLE, ids=[f"line{line}" for _, line in RUNNABLE])
def test_readme_block_runs_as_written(code, line, tmp_path):
    done = _run([sys.executable, "-c", code], cwd=tmp_path)
    assert done.returncode == 0, f"README.md block at line {line} failed:\n{done.stderr[-3000:]}"
    if re.search(r"\b(minimize|argmin)\(", code):  # a block that solves something shows it
        assert done.stdout.strip(), f"README.md block at line {line} prints nothing"


def test_portfolio_block_prints_what_its_comments_say(tmp_path):
    (code,) = [code for code, _ in RUNNABLE if "constraint_multipliers" in code]
    out = _run([sys.executable, "-c", code], cwd=tmp_path).stdout.splitlines()
    assert out == ["[0.     0.1077]", "[-1  0]", "[-0.0099, 0.3604]"]


def test_demo_prints_the_truth_and_names_the_active_bound(tmp_path):
    done = _run([sys.executable, str(ROOT / "examples" / "demo.py")], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:2] in ("w[", "b ")}
    assert set(rows) == {"w[0]", "w[1]", "w[2]", "b"}
    # true value, fitted value, and which bound holds: w[1] = -2 lies outside w >= -1
    assert rows["w[1]"].split()[1:3] == ["-2.0000", "-1.0000"]
    assert "lower bound" in rows["w[1]"]
    assert all(rows[name].endswith("free") for name in ("w[0]", "w[2]", "b"))


def test_several_processes_block_runs_as_two_processes(tmp_path):
    (code,) = [code for code, _ in RUNNABLE if "jax.distributed.initialize" in code]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**_env(), "NUM_PROCESSES": "2", "COORDINATOR": f"127.0.0.1:{port}"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env={**env, "PROCESS_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    printed = [
        [line for line in stdout.splitlines() if not line.startswith("[Gloo]")]
        for stdout, _ in outputs
    ]
    assert printed[1] == []  # only process 0 prints
    w = np.array(printed[0][0].split("]")[0].strip("[").split(), dtype=float)
    np.testing.assert_allclose(w, [1.5, -2.0, 0.5], atol=1e-4)
