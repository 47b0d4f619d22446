"""`least_squares` on NIST StRD nonlinear regression problems and `root` on MINPACK test systems:
the same path as scipy on the flat problem (same `x`, `cost`, `nfev`) and the published answers.

Certified values: NIST Statistical Reference Datasets, nonlinear regression
(https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml), one page per dataset, for example
https://www.itl.nist.gov/div898/strd/nls/data/misra1a.shtml ("Certified Values", parameter
estimates to 11 significant digits). The data and start points come from sif2jax's
`_nonlinear_equations` problems (its NIST problems, "Source: Problem from the NIST nonlinear
regression test set"), whose residuals are model minus observation.

Square systems: Moré, Garbow and Hillstrom, "Testing unconstrained optimization software",
ACM TOMS 7(1), 1981, problems 1 (Rosenbrock), 3 (Powell badly scaled), 7 (helical valley),
13 (Powell singular), 27 (Brown almost-linear) and 30 (Broyden tridiagonal), with their standard
start points and known roots.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize import least_squares, root

# (sif2jax module, class, certified parameters from the NIST dataset page).
NIST = {
    "Misra1a": ("misra1a", "MISRA1A", [2.3894212918e02, 5.5015643181e-04]),
    "Misra1b": ("misra1b", "MISRA1B", [3.3799746163e02, 3.9039091287e-04]),
    "Misra1c": ("misra1c", "MISRA1C", [6.3642725809e02, 2.0813627256e-04]),
    "Misra1d": ("misra1d", "MISRA1D", [4.3736970754e02, 3.0227324449e-04]),
    "BoxBOD": ("boxbod", "BOXBOD", [2.1380940889e02, 5.4723748542e-01]),
    "Rat42": ("rat42", "RAT42", [7.2462237576e01, 2.6180768402e00, 6.7359200066e-02]),
    "Rat43": (
        "rat43",
        "RAT43",
        [6.9964151270e02, 5.2771253025e00, 7.5962938329e-01, 1.2792483859e00],
    ),
    "MGH09": (
        "mgh09",
        "MGH09",
        [1.9280693458e-01, 1.9128232873e-01, 1.2305650693e-01, 1.3606233068e-01],
    ),
    "MGH10": ("mgh10", "MGH10", [5.6096364710e-03, 6.1813463463e03, 3.4522363462e02]),
    "MGH17": (
        "mgh17",
        "MGH17",
        [3.7541005211e-01, 1.9358469127e00, -1.4646871366e00, 1.2867534640e-02, 2.2122699662e-02],
    ),
    "Eckerle4": ("eckerle4", "ECKERLE4", [1.5543827178e00, 4.0888321754e00, 4.5154121844e02]),
    "DanWood": ("daniwood", "DANIWOOD", [7.6886226176e-01, 3.8604055871e00]),
    "Lanczos3": (
        "lanczos3",
        "LANCZOS3",
        [
            8.6816414977e-02,
            9.5498101505e-01,
            8.4400777463e-01,
            2.9515951832e00,
            1.5825685901e00,
            4.9863565084e00,
        ],
    ),
    "Bennett5": ("bennett5", "BENNETT5", [-2.5235058043e03, 4.6736564644e01, 9.3218483193e-01]),
    "Kirby2": (
        "kirby2",
        "KIRBY2",
        [1.6745063063e00, -1.3927397867e-01, 2.5961181191e-03, -1.7241811870e-03, 2.1664802578e-05],
    ),
}
#: From NIST's Start 1, scipy's 'lm' reaches another stationary point of BoxBOD (as MINPACK does).
LM_MISSES = {"BoxBOD"}
TIGHT = {"ftol": 1e-15, "xtol": 1e-15, "gtol": 1e-15, "max_nfev": 5000}


def _split(flat):
    """The flat parameters as a nested pytree: {'first': b1 (0-d), 'rest': {'values': b2..}}."""
    return {"first": jnp.asarray(flat[0]), "rest": {"values": jnp.asarray(flat[1:])}}


def _join(tree):
    return jnp.concatenate([jnp.atleast_1d(tree["first"]), tree["rest"]["values"]])


def _flat_least_squares(residual, y0, method):
    values = jax.jit(residual)
    jacobian = jax.jit(jax.jacfwd(residual))
    return sopt.least_squares(
        lambda y: np.asarray(values(y), dtype=np.float64),
        y0,
        jac=lambda y: np.asarray(jacobian(y), dtype=np.float64),
        method=method,
        **TIGHT,
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method", ["trf", "lm"])
@pytest.mark.parametrize("name", sorted(NIST))
def test_nist_same_path_as_scipy_and_certified_values(name, method, cutest, x64):
    module, cls, certified = NIST[name]
    problem = cutest("_nonlinear_equations", module, cls)
    y0 = np.asarray(problem.y0, dtype=np.float64)

    def residual(y):
        return problem.constraint(y)[0]

    reference = _flat_least_squares(residual, y0, method)
    result = least_squares(lambda p: residual(_join(p)), _split(y0), method=method, **TIGHT)

    x = np.asarray(_join(result.x))
    np.testing.assert_allclose(x, reference.x, rtol=1e-9)
    assert result.nfev == reference.nfev
    assert result.cost == pytest.approx(reference.cost, rel=1e-9)
    assert result.status == reference.status
    if method == "lm" and name in LM_MISSES:
        assert not np.allclose(x, certified, rtol=1e-3)
    else:
        np.testing.assert_allclose(x, certified, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Square systems for `root`: (function of a flat vector, start, known root or None).


def rosenbrock(x):
    return jnp.stack([10.0 * (x[1] - x[0] ** 2), 1.0 - x[0]])


def powell_badly_scaled(x):
    return jnp.stack([1e4 * x[0] * x[1] - 1.0, jnp.exp(-x[0]) + jnp.exp(-x[1]) - 1.0001])


def helical_valley(x):
    theta = jnp.arctan2(x[1], x[0]) / (2.0 * jnp.pi)
    return jnp.stack([10.0 * (x[2] - 10.0 * theta), 10.0 * (jnp.hypot(x[0], x[1]) - 1.0), x[2]])


def powell_singular(x):
    return jnp.stack(
        [
            x[0] + 10.0 * x[1],
            jnp.sqrt(5.0) * (x[2] - x[3]),
            (x[1] - 2.0 * x[2]) ** 2,
            jnp.sqrt(10.0) * (x[0] - x[3]) ** 2,
        ]
    )


def brown_almost_linear(x):
    n = x.shape[0]
    head = x[:-1] + jnp.sum(x) - (n + 1.0)
    return jnp.concatenate([head, jnp.prod(x)[None] - 1.0])


def broyden_tridiagonal(x):
    padded = jnp.concatenate([jnp.zeros(1), x, jnp.zeros(1)])
    return (3.0 - 2.0 * x) * x - padded[:-2] - 2.0 * padded[2:] + 1.0


SYSTEMS = {
    "rosenbrock": (rosenbrock, [-1.2, 1.0], [1.0, 1.0]),
    "powell_badly_scaled": (powell_badly_scaled, [0.0, 1.0], [1.098159329699e-5, 9.106146739867]),
    "helical_valley": (helical_valley, [-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]),
    "powell_singular": (powell_singular, [3.0, -1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]),
    # Roots (a, ..., a, a**(1 - n)) with n a**n - (n + 1) a**(n - 1) + 1 = 0: checked by value.
    "brown_almost_linear": (brown_almost_linear, [0.5] * 5, None),
    "broyden_tridiagonal": (broyden_tridiagonal, [-1.0] * 6, None),
}


def _split_even(flat):
    half = len(flat) // 2
    return {"a": jnp.asarray(flat[:half]), "b": [jnp.asarray(flat[half:])]}


def _join_even(tree):
    return jnp.concatenate([tree["a"], tree["b"][0]])


@pytest.mark.parametrize("method", ["hybr", "lm"])
@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_minpack_systems_same_path_as_scipy(name, method, x64):
    fun, start, known = SYSTEMS[name]
    x0 = np.asarray(start, dtype=np.float64)
    values = jax.jit(fun)
    jacobian = jax.jit(jax.jacfwd(fun))
    reference = sopt.root(
        lambda y: np.asarray(values(y), dtype=np.float64),
        x0,
        method=method,
        jac=lambda y: np.asarray(jacobian(y), dtype=np.float64),
    )

    def pytree_fun(p):
        out = fun(_join_even(p))
        return {"head": out[:1], "tail": out[1:]}

    result = root(pytree_fun, _split_even(x0), method=method)
    x = np.asarray(_join_even(result.x))
    np.testing.assert_allclose(x, reference.x, rtol=1e-10, atol=1e-14)
    assert result.nfev == reference.nfev
    assert result.success == reference.success
    assert result.fun["head"].shape == (1,) and result.fun["tail"].shape == (len(start) - 1,)
    if known is not None:
        # Powell singular's root is singular: convergence there is slow and only to ~1e-4-ish.
        tol = 5e-3 if name == "powell_singular" else 1e-6
        np.testing.assert_allclose(x, known, atol=tol, rtol=1e-6)
    else:
        assert np.max(np.abs(fun(jnp.asarray(x)))) < 1e-8
