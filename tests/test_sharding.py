"""Sharded parameters and data, on 8 host devices and across two processes.

JAX fixes the number of devices when it starts, so each configuration runs in a fresh process
(`tests/_sharding_worker.py`). The reference is the same problem on one device with NumPy inputs,
itself checked against scipy on a hand-written flat objective and gradient.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_sharding_worker.py")
sys.path.insert(0, str(WORKER.parent))
from _sharding_worker import METHODS  # noqa: E402

TIMEOUT = 150  # seconds per subprocess: JAX start-up, compilation and the runs on two cores


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _parse(stdout: str, stderr: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise AssertionError(f"worker printed no result.\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}")


def _start(*argv: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(processes: list[subprocess.Popen]) -> list[dict[str, Any]]:
    """Each worker's result; every worker is killed if any overruns, so none is left behind."""
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 0, f"worker failed:\n{stderr[-4000:]}"
            outputs.append(_parse(stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return outputs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mesh_run() -> dict[str, Any]:
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    (out,) = _finish([_start("mesh", env=_env(XLA_FLAGS=flags.strip()))])
    assert out["devices"] == 8
    return out


def _assert_same_run(run: dict[str, Any], reference: dict[str, Any]) -> None:
    assert run["nfev"] == reference["nfev"]
    assert abs(run["fun"] - reference["fun"]) < 1e-8
    np.testing.assert_allclose(run["x"], reference["x"], atol=1e-6)


def test_reference_matches_scipy_on_the_flat_problem(mesh_run):
    _assert_same_run(mesh_run["reference"]["L-BFGS-B"], mesh_run["reference"]["scipy"])


@pytest.mark.parametrize("method", METHODS)
def test_sharded_run_matches_single_device(mesh_run, method):
    _assert_same_run(mesh_run["sharded"][method], mesh_run["reference"][method])


def test_result_leaves_carry_x0_shardings(mesh_run):
    assert mesh_run["x_shardings_kept"]
    assert mesh_run["jac_shardings_kept"]


def test_leaves_inside_the_objective_carry_x0_shardings(mesh_run):
    # As XLA placed them in the compiled evaluation (`jax.debug.inspect_array_sharding`).
    assert mesh_run["leaf_shardings_inside"] == {"w": True, "v": True}


def test_explicit_axes_mesh(mesh_run):
    explicit = mesh_run["explicit"]
    assert "Explicit" in explicit["axis_types"]
    _assert_same_run(explicit["sharded"], explicit["reference"])
    # Inside the objective each leaf's type carries x0's sharding; so do the result's leaves.
    assert explicit["specs_inside"] == {"v": ["d"], "w": [None]}
    assert explicit["x_specs"] == {"v": ["d"], "w": [None]}


def test_sharded_data_is_never_gathered(mesh_run):
    hlo = mesh_run["hlo"]
    # After SPMD partitioning the data appears only as 296 / 8 = 37-row blocks.
    assert hlo["full_data_shapes"] == []
    assert hlo["block_shapes"] == ["f64[37,12]", "f64[37]"]
    assert not hlo["all_gather_of_data"]
    assert all("P('d'" in s for s in hlo["input_shardings"])
    assert "spec=P()" in hlo["output_sharding"]  # replicated: every process can read it


def test_two_processes_return_what_one_process_returns(mesh_run):
    port = str(_free_port())
    env = _env(XLA_FLAGS=os.environ.get("XLA_FLAGS", ""))
    processes = [_start("process", str(i), "2", port, env=env) for i in range(2)]
    outputs = _finish(processes)
    assert sorted(out["process"] for out in outputs) == [0, 1]
    for out in outputs:
        assert (out["processes"], out["devices"], out["local_devices"]) == (2, 4, 2)
        assert out["x_shardings_kept"]
        assert not out["v_fully_addressable"]  # `v` really is spread over both processes
        for method, run in out["sharded"].items():
            _assert_same_run(run, mesh_run["reference"][method])
        _assert_same_run(out["numpy_x0"], mesh_run["reference"]["L-BFGS-B"])
