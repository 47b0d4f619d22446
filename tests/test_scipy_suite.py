"""scipy's own `minimize` tests, run from the installed scipy package with `minimize` swapped.

A user switches by changing one import, so scipy's own test suite must pass through
`pytree_minimize.ports.numpy.minimize`. Each run is a pytest subprocess over scipy's test files
(nothing copied into this repository) with the plugin `_scipy_suite_plugin`, which swaps
`scipy.optimize.minimize` and records every test's outcome and whether it called `minimize`. The
baseline is the same run with scipy's own `minimize`: the tests counted are those that call
`minimize` and pass with scipy itself (scipy's slow tests are skipped as scipy skips them by
default). Tests that check scipy's internals are listed, with reasons, in the plugin.

For the JAX core (most of scipy's objectives are NumPy code, which the core cannot trace), run
`python tests/test_scipy_suite.py jax`: it prints the counts (slow: about ten minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import scipy

TESTS = Path(scipy.__file__).parent / "optimize" / "tests"
#: scipy's test modules that exercise `minimize`.
MODULES = (
    "test_optimize.py",
    "test_minimize_constrained.py",
    "test_slsqp.py",
    "test_cobyla.py",
    "test_cobyqa.py",
    "test_tnc.py",
    "test_trustregion.py",
    "test_lbfgsb_hessinv.py",
    "test_lbfgsb_setulb.py",
    "test_constraint_conversion.py",
)
HERE = Path(__file__).parent
ROOT = HERE.parent


def _launch(swap: str, out: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        PYTREE_MINIMIZE_SWAP=swap,
        PYTREE_MINIMIZE_OUTCOMES=str(out),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")]),
        OPENBLAS_NUM_THREADS="1",
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "_scipy_suite_plugin", "-p", "no:randomly", "-p", "no:xdist"]
    command += [f"--rootdir={TESTS}", "-o", "addopts=", "--timeout=0"]
    command += [str(TESTS / name) for name in MODULES if (TESTS / name).exists()]
    return subprocess.Popen(
        command, env=env, cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_suite(swaps: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """Outcomes per swap, `{swap: {test id: [outcome, calls of minimize]}}`; the runs go in
    parallel."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = {swap: Path(tmp) / f"{swap}.json" for swap in swaps}
        processes = {swap: _launch(swap, outs[swap]) for swap in swaps}
        logs = {swap: process.communicate()[0] for swap, process in processes.items()}
        results = {}
        for swap, path in outs.items():
            if not path.exists():
                raise RuntimeError(
                    f"the {swap} run of scipy's suite wrote no outcomes:\n{logs[swap]}"
                )
            results[swap] = json.loads(path.read_text())
        return results


def counts(baseline: dict[str, list], swapped: dict[str, list]) -> dict[str, object]:
    """Tests counted (pass with scipy and call `minimize`), how many pass swapped, the internal
    ones skipped, and the failures by name."""
    counted = [k for k, (outcome, calls) in baseline.items() if outcome == "passed" and calls]
    internal = [k for k, (outcome, _) in swapped.items() if outcome == "skipped"]
    internal = [k for k in internal if baseline.get(k, [""])[0] == "skipped"]
    from _scipy_suite_plugin import INTERNAL

    internal = [k for k in internal if k.split("[", 1)[0] in INTERNAL]
    passed = [k for k in counted if swapped.get(k, [""])[0] == "passed"]
    failed = sorted(set(counted) - set(passed))
    return {"run": len(counted), "passed": len(passed), "internal": len(internal), "failed": failed}


@pytest.mark.skipif(not TESTS.exists(), reason="scipy installed without its tests")
def test_scipy_suite_passes_through_the_numpy_port():
    results = run_suite(("scipy", "numpy"))
    summary = counts(results["scipy"], results["numpy"])
    print(f"scipy's suite through the NumPy port: {summary}")
    assert summary["run"] >= 400, summary  # the swap reached scipy's tests
    assert summary["internal"] >= 1, summary
    assert summary["passed"] >= 0.95 * summary["run"], summary["failed"]


if __name__ == "__main__":
    swap = sys.argv[1] if len(sys.argv) > 1 else "numpy"
    results = run_suite(("scipy", swap))
    summary = counts(results["scipy"], results[swap])
    failed = summary.pop("failed")
    print(json.dumps(summary), f"{len(failed)} failed", *failed[:50], sep="\n")
