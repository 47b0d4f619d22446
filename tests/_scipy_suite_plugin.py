"""A pytest plugin that runs scipy's own tests with public functions of `scipy.optimize` swapped.

Loaded with `-p _scipy_suite_plugin` in a subprocess that collects test files of the installed
scipy package (nothing is copied). `PYTREE_MINIMIZE_SWAP` names what replaces scipy's functions:
"scipy" (scipy's own, the baseline), "numpy" (`pytree_minimize.ports.numpy`) or "jax"
(`pytree_minimize`). `PYTREE_MINIMIZE_FUNCTIONS` names the functions swapped (comma-separated;
`minimize` by default). Each is replaced in `scipy.optimize` and in the private module that
defines it (scipy's tests import some from there, e.g. `scipy.optimize._minpack_py.curve_fit`).
Every replacement counts its calls, so a test that never reaches it can be told apart. Outcomes
go, as JSON, to the file named by `PYTREE_MINIMIZE_OUTCOMES`: `{nodeid: [outcome, calls]}`.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
from typing import Any

import pytest

#: Where scipy defines each public function that can be swapped (tests import from there too).
DEFINED_IN = {
    "minimize": "scipy.optimize._minimize",
    "least_squares": "scipy.optimize._lsq.least_squares",
    "curve_fit": "scipy.optimize._minpack_py",
    "root": "scipy.optimize._root",
    "differential_evolution": "scipy.optimize._differentialevolution",
    "dual_annealing": "scipy.optimize._dual_annealing",
    "basinhopping": "scipy.optimize._basinhopping",
    "shgo": "scipy.optimize._shgo",
    "direct": "scipy.optimize._direct_py",
}

#: Tests that check scipy's internals (its private classes, its exact message wording, its
#: refusal of an input this library accepts on purpose), with the reason. They are skipped in
#: every run (the baseline included) and counted apart.
INTERNAL = {
    "test_optimize.py::TestOptimizeSimple::test_ndim_error": (
        "scipy refuses an `x0` of more than one dimension; here a 2-D array is a pytree leaf "
        "(pytree semantics for what scipy cannot take)"
    ),
    **{
        f"test_least_squares.py::{cls}::{test}": reason
        for cls in ("TestTRF", "TestDogbox", "TestLM")
        for test, reason in {
            "test_x0_multidimensional": (
                "scipy refuses an `x0` of more than one dimension; here a 2-D array is a pytree "
                "leaf (pytree semantics for what scipy cannot take)"
            ),
            "test_x0_complex_scalar": (
                "scipy refuses a complex `x0`; here a complex leaf is two real parameters (this "
                "library's extension), and the test's residuals, complex, are refused instead"
            ),
            "test_x0_complex_array": (
                "scipy refuses `[1.0, 2.0 + 0j]`; here a list holding a complex number is a "
                "pytree (this library's extension), which the test's `fun` cannot take"
            ),
        }.items()
    },
}

_CALLS = [0]
#: `{test id: [outcome, calls of the swapped functions]}`: a test's first non-passing phase,
#: else its call.
_OUTCOMES: dict[str, list[Any]] = {}


def _counted(target: Any) -> Any:
    @functools.wraps(target)
    def swapped(*args: Any, **kwargs: Any) -> Any:
        _CALLS[0] += 1
        return target(*args, **kwargs)

    return swapped


def _replacement(name: str, swap: str) -> Any:
    if swap == "numpy":
        return getattr(importlib.import_module("pytree_minimize.ports.numpy"), name)
    if swap == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        return getattr(importlib.import_module("pytree_minimize"), name)
    return getattr(importlib.import_module(DEFINED_IN[name]), name)


def pytest_configure(config: Any) -> None:
    import scipy.optimize

    swap = os.environ.get("PYTREE_MINIMIZE_SWAP", "scipy")
    names = os.environ.get("PYTREE_MINIMIZE_FUNCTIONS", "minimize").split(",")
    # Replacements first (they bind scipy's own functions at import), then the swap: test
    # modules import after this hook, so `from scipy.optimize import f`, `optimize.f(...)` and
    # `from scipy.optimize._module import f` all reach the replacement.
    counted = {name: _counted(_replacement(name, swap)) for name in names}
    for name, function in counted.items():
        setattr(scipy.optimize, name, function)
        setattr(importlib.import_module(DEFINED_IN[name]), name, function)


def _short(nodeid: str) -> str:
    return nodeid.rsplit("/", 1)[-1]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        base = _short(item.nodeid).split("[", 1)[0]
        reason = INTERNAL.get(base)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"scipy internals: {reason}"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
    _CALLS[0] = 0
    return (yield)


def pytest_runtest_logreport(report: Any) -> None:
    outcomes = _OUTCOMES
    key = _short(report.nodeid)
    first_failure = key not in outcomes or outcomes[key][0] == "passed"
    if (report.when == "call" or report.outcome != "passed") and first_failure:
        outcome = report.outcome
        if getattr(report, "wasxfail", None) is not None:
            outcome = "xfail" if report.skipped else "xpass"
        outcomes[key] = [outcome, _CALLS[0]]


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    path = os.environ.get("PYTREE_MINIMIZE_OUTCOMES")
    if path:
        with open(path, "w") as file:
            json.dump(_OUTCOMES, file)
