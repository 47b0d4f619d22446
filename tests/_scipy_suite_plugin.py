"""A pytest plugin that runs scipy's own `minimize` tests with `scipy.optimize.minimize` swapped.

Loaded with `-p _scipy_suite_plugin` in a subprocess that collects the test files of the installed
scipy package (nothing is copied). `PYTREE_MINIMIZE_SWAP` names what replaces scipy's `minimize`:
"scipy" (scipy's own, the baseline), "numpy" (`pytree_minimize.ports.numpy.minimize`) or "jax"
(`pytree_minimize.minimize`). Every replacement counts its calls, so a test that never reaches
`minimize` can be told apart. Outcomes go, as JSON, to the file named by
`PYTREE_MINIMIZE_OUTCOMES`: `{nodeid: [outcome, calls]}`.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest

#: Tests that check scipy's internals, or that scipy refuses an input this library accepts on
#: purpose, with the reason. They are skipped in every run (baseline included) and counted apart.
INTERNAL = {
    "test_optimize.py::TestOptimizeSimple::test_ndim_error": (
        "scipy refuses an `x0` of more than one dimension; here a 2-D array is a pytree leaf "
        "(pytree semantics for what scipy cannot take)"
    ),
}

_CALLS = [0]
#: `{test id: [outcome, calls of minimize]}`: a test's first non-passing phase, else its call.
_OUTCOMES: dict[str, list[Any]] = {}


def _counted(target: Any) -> Any:
    @functools.wraps(target)
    def minimize(*args: Any, **kwargs: Any) -> Any:
        _CALLS[0] += 1
        return target(*args, **kwargs)

    return minimize


def pytest_configure(config: Any) -> None:
    import scipy.optimize
    import scipy.optimize._minimize

    swap = os.environ.get("PYTREE_MINIMIZE_SWAP", "scipy")
    if swap == "numpy":
        from pytree_minimize.ports.numpy import minimize
    elif swap == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        from pytree_minimize import minimize
    else:
        minimize = scipy.optimize.minimize
    counted = _counted(minimize)
    # Test modules import after this hook: `from scipy.optimize import minimize` and
    # `optimize.minimize(...)` both reach the replacement.
    scipy.optimize.minimize = counted
    scipy.optimize._minimize.minimize = counted


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
