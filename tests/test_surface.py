"""The public surface: every framework's functions have the core's signature (and scipy's, but
for the listed differences), rendered docstrings, and `Returns` sections that name the fields
the results actually carry."""

from __future__ import annotations

import importlib
import inspect
import re

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

import pytree_minimize
from pytree_minimize import Bounds

ENTRY_POINTS = (
    "minimize",
    "least_squares",
    "curve_fit",
    "root",
    "differential_evolution",
    "dual_annealing",
    "basinhopping",
    "shgo",
    "direct",
)
PORTS = {"numpy": None, "torch": "torch", "tensorflow": "tensorflow"}
#: Keyword-only options a framework adds to some of its entry points.
FRAMEWORK_OPTIONS = {"tensorflow": {"jit_compile"}}
#: What this library adds to scipy's signatures (keyword-only, after scipy's own).
ADDED = {"progress", "blas_threads", "sparse"}
#: Where a default differs from scipy's, and why.
DEFAULTS = {
    ("least_squares", "jac"): "None means autodiff (scipy: '2-point')",
}


def _port(name: str):
    framework = PORTS[name]
    if framework is not None:
        pytest.importorskip(framework)
    return importlib.import_module(f"pytree_minimize.ports.{name}")


def _parameters(function) -> list[tuple[str, inspect._ParameterKind, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("port", PORTS)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_port_signature_is_the_cores(entry: str, port: str) -> None:
    module = _port(port)
    ours = getattr(module, entry)
    options = FRAMEWORK_OPTIONS.get(port, set())
    theirs = [p for p in _parameters(ours) if p[0] not in options]
    assert theirs == _parameters(getattr(pytree_minimize, entry))
    assert ours.__name__ == entry and ours.__module__ == module.__name__


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_signature_is_scipys_but_for_listed_differences(entry: str) -> None:
    ours = {
        name: (kind, default)
        for name, kind, default in _parameters(getattr(pytree_minimize, entry))
    }
    scipy = {name: (kind, default) for name, kind, default in _parameters(getattr(sopt, entry))}
    ours_order = [name for name in ours if name not in ADDED]
    assert ours_order == list(scipy), "scipy's parameters, in scipy's order"
    for name, (kind, default) in scipy.items():
        assert ours[name][0] == kind, name
        if (entry, name) not in DEFAULTS:
            same = ours[name][1] == default or (
                isinstance(default, float) and np.isnan(default) and np.isnan(ours[name][1])
            )
            assert same, (name, ours[name][1], default)
        else:
            assert ours[name][1] != default, f"{entry}({name}) is listed as different but is not"
    for name in set(ours) - set(scipy):
        assert name in ADDED and ours[name][0] is inspect.Parameter.KEYWORD_ONLY, name


@pytest.mark.parametrize("port", [None, *PORTS])
def test_docstrings_are_rendered_in_the_frameworks_words(port: str | None) -> None:
    module = pytree_minimize if port is None else _port(port)
    for entry in ENTRY_POINTS:
        doc = getattr(module, entry).__doc__
        assert "$" not in doc, f"{module.__name__}.{entry}: an unrendered placeholder"
        assert f"from {module.__name__} import" in doc
        for section in ("Args:", "Returns:", "Examples:"):
            assert section in doc, (entry, section)
    if port == "tensorflow":
        assert "jit_compile: Compile the evaluations with XLA" in module.minimize.__doc__


def _returns_section(function) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.split("Returns:")[1].split("Examples:")[0]


def _quadratic(p):
    return jnp.sum((p["w"] - 2.0) ** 2) + (p["b"] - 0.5) ** 2


def _results() -> dict[str, tuple[object, set[str]]]:
    """One result per entry point with the options that make it carry every field this library
    adds, and the fields scipy itself sets on the flat problem."""
    x0 = {"w": np.zeros(2), "b": np.float64(0.0)}
    box = Bounds({"w": np.full(2, -1.0), "b": -1.0}, {"w": np.full(2, 1.0), "b": 1.0})
    flat_box = [(-1.0, 1.0)] * 3

    def flat(v):
        return np.sum((v[:2] - 2.0) ** 2) + (v[2] - 0.5) ** 2

    constraint = {"type": "ineq", "fun": lambda p: 1.5 - p["b"]}
    flat_constraint = {"type": "ineq", "fun": lambda v: 1.5 - v[2]}
    out = {
        "minimize": (
            pytree_minimize.minimize(
                _quadratic, x0, method="SLSQP", bounds=box, constraints=[constraint]
            ),
            sopt.minimize(
                flat, np.zeros(3), method="SLSQP", bounds=flat_box, constraints=[flat_constraint]
            ),
        ),
        "least_squares": (
            pytree_minimize.least_squares(
                lambda p: p["w"] - 2.0, {"w": np.zeros(2)}, bounds=(-1.0, 1.0)
            ),
            sopt.least_squares(lambda v: v - 2.0, np.zeros(2), bounds=(-1.0, 1.0)),
        ),
        "root": (
            pytree_minimize.root(lambda p: {"r": p["w"] - 2.0}, {"w": np.zeros(2)}),
            sopt.root(lambda v: v - 2.0, np.zeros(2)),
        ),
        "differential_evolution": (
            pytree_minimize.differential_evolution(_quadratic, box, rng=0, maxiter=5),
            sopt.differential_evolution(flat, flat_box, rng=0, maxiter=5),
        ),
        "dual_annealing": (
            pytree_minimize.dual_annealing(_quadratic, box, rng=0, maxiter=5),
            sopt.dual_annealing(flat, flat_box, rng=0, maxiter=5),
        ),
        "basinhopping": (
            pytree_minimize.basinhopping(_quadratic, x0, niter=2, rng=0),
            sopt.basinhopping(flat, np.zeros(3), niter=2, rng=0),
        ),
        "shgo": (
            pytree_minimize.shgo(_quadratic, box, iters=1),
            sopt.shgo(flat, flat_box, iters=1),
        ),
        "direct": (
            pytree_minimize.direct(_quadratic, box, maxiter=5),
            sopt.direct(flat, flat_box, maxiter=5),
        ),
    }
    return {name: (ours, set(theirs)) for name, (ours, theirs) in out.items()}


def test_returns_sections_name_every_field_the_library_adds():
    results = _results()
    for entry, (result, scipy_fields) in results.items():
        documented = set(re.findall(r"`(\w+)`", _returns_section(getattr(pytree_minimize, entry))))
        added = set(result) - scipy_fields
        assert added, f"{entry}: the run set no field of its own (history at least)"
        assert added <= documented, f"{entry}: {sorted(added - documented)} not in `Returns`"
        # Every field the section promises beside scipy's is set by this run.
        promised = documented & {"history", "active_bounds", "constraint_multipliers", "xl"}
        assert promised <= set(result), f"{entry}: {sorted(promised - set(result))} not set"
