"""scipy's own tests of every entry point, run from the installed scipy package with the entry
point swapped.

A user switches by changing one import, so scipy's own test suite must pass through
`pytree_minimize.ports.numpy`. Each run is a pytest subprocess over scipy's test files of one
entry point (nothing copied into this repository) with the plugin `_scipy_suite_plugin`, which
swaps that function in `scipy.optimize` (and in the private module that defines it) and records
every test's outcome and whether it called the function. The baseline is the same run with
scipy's own function: the tests counted are those that call the function and pass with scipy
itself (scipy's slow tests are skipped as scipy skips them by default). Tests of scipy's
internals or of its exact message wording are listed, with reasons, in the plugin's `INTERNAL`.

For the JAX core (most of scipy's objectives are NumPy code, which the core cannot trace), run
`python tests/test_scipy_suite.py jax [entry ...]`: it prints the counts per entry point (slow).
`python tests/test_scipy_suite.py numpy [entry ...]` prints the NumPy port's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest
import scipy

TESTS = Path(scipy.__file__).parent / "optimize" / "tests"
HERE = Path(__file__).parent
ROOT = HERE.parent


class Suite(NamedTuple):
    """scipy's test files of one entry point, and how many of their tests must count."""

    modules: tuple[str, ...]
    #: A floor on the tests counted (pass with scipy and call the function): the swap reached
    #: scipy's tests.
    least: int


SUITES = {
    "minimize": Suite(
        (
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
        ),
        400,
    ),
    "least_squares": Suite(("test_least_squares.py",), 100),
    "curve_fit": Suite(("test_minpack.py",), 40),
    "root": Suite(("test__root.py", "test_nonlin.py", "test__spectral.py", "test_minpack.py"), 30),
    "differential_evolution": Suite(("test__differential_evolution.py",), 25),
    "dual_annealing": Suite(("test__dual_annealing.py",), 25),
    "basinhopping": Suite(("test__basinhopping.py",), 25),
    "shgo": Suite(("test__shgo.py",), 60),
    "direct": Suite(("test_direct.py",), 50),
}


def _launch(entry: str, swap: str, out: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        PYTREE_MINIMIZE_SWAP=swap,
        PYTREE_MINIMIZE_FUNCTIONS=entry,
        PYTREE_MINIMIZE_OUTCOMES=str(out),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")]),
        OPENBLAS_NUM_THREADS="1",
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "_scipy_suite_plugin", "-p", "no:randomly", "-p", "no:xdist"]
    command += [f"--rootdir={TESTS}", "-o", "addopts=", "--timeout=0"]
    command += [str(TESTS / name) for name in SUITES[entry].modules if (TESTS / name).exists()]
    return subprocess.Popen(
        command, env=env, cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_suite(entry: str, swaps: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """Outcomes of `entry`'s scipy tests per swap, `{swap: {test id: [outcome, calls]}}`; the
    runs go in parallel."""
    with tempfile.TemporaryDirectory() as tmp:
        outs = {swap: Path(tmp) / f"{swap}.json" for swap in swaps}
        processes = {swap: _launch(entry, swap, outs[swap]) for swap in swaps}
        logs = {swap: process.communicate()[0] for swap, process in processes.items()}
        results = {}
        for swap, path in outs.items():
            if not path.exists():
                raise RuntimeError(
                    f"the {swap} run of scipy's {entry} suite wrote no outcomes:\n{logs[swap]}"
                )
            results[swap] = json.loads(path.read_text())
        return results


def counts(baseline: dict[str, list], swapped: dict[str, list]) -> dict[str, object]:
    """Tests counted (pass with scipy and call the swapped function), how many pass swapped,
    the internal ones skipped, and the failures by name."""
    from _scipy_suite_plugin import INTERNAL

    counted = [k for k, (outcome, calls) in baseline.items() if outcome == "passed" and calls]
    internal = [
        k
        for k, (outcome, _) in swapped.items()
        if outcome == "skipped"
        and baseline.get(k, [""])[0] == "skipped"
        and k.split("[", 1)[0] in INTERNAL
    ]
    passed = [k for k in counted if swapped.get(k, [""])[0] == "passed"]
    failed = sorted(set(counted) - set(passed))
    return {"run": len(counted), "passed": len(passed), "internal": len(internal), "failed": failed}


@pytest.mark.skipif(not TESTS.exists(), reason="scipy installed without its tests")
@pytest.mark.parametrize("entry", SUITES)
def test_scipy_suite_passes_through_the_numpy_port(entry: str) -> None:
    results = run_suite(entry, ("scipy", "numpy"))
    summary = counts(results["scipy"], results["numpy"])
    print(f"scipy's {entry} suite through the NumPy port: {summary}")
    assert summary["run"] >= SUITES[entry].least, summary
    assert summary["passed"] >= 0.95 * summary["run"], summary["failed"]


def main(argv: list[str]) -> None:
    swap = argv[0] if argv else "numpy"
    for entry in argv[1:] or list(SUITES):
        results = run_suite(entry, ("scipy", swap))
        summary = counts(results["scipy"], results[swap])
        failed = summary.pop("failed")
        print(entry, json.dumps(summary), f"{len(failed)} failed", *failed, sep="\n  ")


if __name__ == "__main__":
    main(sys.argv[1:])
