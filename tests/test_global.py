"""The global optimisers: scipy's path on the flat problem (same seed, same x, fun and nfev),
batched populations, local steps with exact gradients, constraints, callbacks, history, errors and
the ports."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt

import pytree_minimize as pm
from pytree_minimize import Bounds
from pytree_minimize._core.cache import CACHE

pytestmark = pytest.mark.usefixtures("x64")

FUNCTIONS = ("differential_evolution", "dual_annealing", "basinhopping", "shgo", "direct")


def rastrigin_flat(v):
    return jnp.sum(v**2 - 10.0 * jnp.cos(2.0 * jnp.pi * v)) + 10.0 * v.size


def ravel(p):
    return jnp.concatenate([p["a"], p["b"].ravel()])


def rastrigin(p):
    return rastrigin_flat(ravel(p))


def flat(tree):
    return np.concatenate([np.ravel(tree["a"]), np.ravel(tree["b"])])


LB = {"a": np.full(2, -5.12), "b": np.full((1, 2), -5.12)}  # float64 leaves
BOX = Bounds(LB, 5.12)
FLAT_BOX = sopt.Bounds(np.full(4, -5.12), np.full(4, 5.12))
X0 = {"a": np.array([1.2, 2.1]), "b": np.array([[3.1, -1.4]])}


@pytest.fixture(scope="module")
def ref():
    """scipy's side: the same objective on the flat vector, compiled once."""
    with jax.enable_x64(True):
        value = jax.jit(rastrigin_flat)
        value_and_grad = jax.jit(jax.value_and_grad(rastrigin_flat))
        batch = jax.jit(jax.vmap(rastrigin_flat, in_axes=1))

    class Reference:
        @staticmethod
        def f(x):
            with jax.enable_x64(True):
                return float(value(x))

        @staticmethod
        def fg(x):
            with jax.enable_x64(True):
                f, g = value_and_grad(x)
            return float(f), np.asarray(g)

        @staticmethod
        def grad(x):
            return Reference.fg(x)[1]

        @staticmethod
        def batch(xt):
            with jax.enable_x64(True):
                return np.asarray(batch(xt))

    return Reference


def same_path(ours, theirs):
    np.testing.assert_array_equal(flat(ours.x), theirs.x)
    assert ours.fun == theirs.fun
    assert ours.nfev == theirs.nfev


# ---------------------------------------------------------------------------------------------
# Same path as scipy.


@pytest.mark.parametrize("updating", ["immediate", "deferred"])
def test_differential_evolution_takes_scipys_path(ref, updating):
    ours = pm.differential_evolution(
        rastrigin, BOX, rng=1, maxiter=15, updating=updating, polish=False
    )
    theirs = sopt.differential_evolution(
        ref.f, FLAT_BOX, rng=1, maxiter=15, updating=updating, polish=False
    )
    same_path(ours, theirs)
    assert ours.nit == theirs.nit


def test_differential_evolution_vectorized_counts_calls_as_scipy(ref):
    kwargs = {"rng": 2, "maxiter": 10, "updating": "deferred", "polish": False}
    ours = pm.differential_evolution(rastrigin, BOX, vectorized=True, **kwargs)
    theirs = sopt.differential_evolution(ref.batch, FLAT_BOX, vectorized=True, **kwargs)
    same_path(ours, theirs)
    assert ours.nfev == 11  # one call per generation plus the initial population


def test_worker_processes_become_one_batched_call(ref):
    kwargs = {"rng": 1, "maxiter": 5, "polish": False, "updating": "deferred"}
    ours = pm.differential_evolution(rastrigin, BOX, workers=2, **kwargs)
    theirs = sopt.differential_evolution(ref.f, FLAT_BOX, **kwargs)
    same_path(ours, theirs)


@pytest.fixture
def compiled_kinds(monkeypatch):
    """The kinds of evaluation compiled (or found in the cache) during the test."""
    kinds = set()
    get = CACHE.get

    def spy(fun, key, build):
        kinds.add(key[0])
        return get(fun, key, build)

    monkeypatch.setattr(CACHE, "get", spy)
    return kinds


def test_deferred_population_is_one_compiled_vmapped_call(compiled_kinds):
    pm.differential_evolution(rastrigin, BOX, rng=0, maxiter=3, updating="deferred", polish=False)
    assert compiled_kinds == {"batched_value"}


def test_shgo_sampling_points_are_one_compiled_vmapped_call(compiled_kinds):
    res = pm.shgo(rastrigin, BOX, n=16, iters=1, options={"minimize_every_iter": False})
    assert "batched_value" in compiled_kinds and "value" not in compiled_kinds
    assert res.nfev >= 16


def test_polish_is_lbfgsb_with_exact_gradients(ref):
    def polish(fun, x0, *, bounds, constraints):
        return sopt.minimize(ref.fg, x0, jac=True, method="L-BFGS-B", bounds=bounds)

    ours = pm.differential_evolution(rastrigin, BOX, rng=1, maxiter=10)
    theirs = sopt.differential_evolution(ref.f, FLAT_BOX, rng=1, maxiter=10, polish=polish)
    same_path(ours, theirs)
    assert set(ours.jac) == {"a", "b"} and ours.jac["b"].shape == (1, 2)


def test_user_polish_receives_pytrees():
    seen = []

    def polish(fun, x0, *, bounds, constraints):
        seen.append((x0, bounds))
        return pm.minimize(fun, x0, method="SLSQP", bounds=bounds, constraints=constraints)

    res = pm.differential_evolution(rastrigin, BOX, rng=1, maxiter=5, polish=polish)
    x0, bounds = seen[0]
    assert x0["b"].shape == (1, 2) and bounds.lb["a"].shape == (2,)
    assert res.x["b"].shape == (1, 2) and res.fun == pytest.approx(
        float(rastrigin(res.x)), abs=1e-12
    )


def test_init_population_and_integrality_as_pytrees(ref):
    population = np.random.default_rng(0).uniform(-5.0, 5.0, (12, 4))
    init = {"a": population[:, :2], "b": population[:, 2:].reshape(12, 1, 2)}
    integrality = {"a": True, "b": False}
    kwargs = {"rng": 0, "maxiter": 5, "polish": False}
    ours = pm.differential_evolution(rastrigin, BOX, init=init, integrality=integrality, **kwargs)
    theirs = sopt.differential_evolution(
        ref.f, FLAT_BOX, init=population, integrality=[True, True, False, False], **kwargs
    )
    same_path(ours, theirs)
    assert np.all(ours.x["a"] == np.round(ours.x["a"]))


def test_dual_annealing_local_search_with_exact_gradients(ref):
    ours = pm.dual_annealing(rastrigin, BOX, maxiter=15, rng=3)
    local = {"method": "L-BFGS-B", "jac": ref.grad, "bounds": list(zip(FLAT_BOX.lb, FLAT_BOX.ub))}
    local["options"] = {"maxiter": 100}  # scipy's cap for n = 4
    theirs = sopt.dual_annealing(ref.f, FLAT_BOX, maxiter=15, rng=3, minimizer_kwargs=local)
    same_path(ours, theirs)
    assert ours.njev == theirs.njev > 0


def test_dual_annealing_from_x0_with_user_local_kwargs(ref):
    kwargs = {"maxiter": 5, "rng": 4, "x0": X0}
    ours = pm.dual_annealing(rastrigin, BOX, minimizer_kwargs={"method": "BFGS"}, **kwargs)
    kwargs["x0"] = flat(X0)
    theirs = sopt.dual_annealing(
        ref.f, FLAT_BOX, minimizer_kwargs={"method": "BFGS", "jac": ref.grad}, **kwargs
    )
    same_path(ours, theirs)


def test_basinhopping_takes_scipys_path(ref):
    ours = pm.basinhopping(rastrigin, X0, niter=6, rng=3)
    theirs = sopt.basinhopping(ref.fg, flat(X0), niter=6, rng=3, minimizer_kwargs={"jac": True})
    same_path(ours, theirs)
    lowest = ours.lowest_optimization_result
    np.testing.assert_array_equal(flat(lowest.x), theirs.lowest_optimization_result.x)
    assert lowest.jac["a"].shape == (2,)


def test_basinhopping_takes_pytree_bounds_in_minimizer_kwargs(ref):
    box = Bounds({"a": 0.5, "b": None}, {"a": 2.0, "b": None})
    ours = pm.basinhopping(
        rastrigin, X0, niter=4, rng=5, minimizer_kwargs={"method": "L-BFGS-B", "bounds": box}
    )
    flat_box = sopt.Bounds([0.5, 0.5, -np.inf, -np.inf], [2.0, 2.0, np.inf, np.inf])
    theirs = sopt.basinhopping(
        ref.fg,
        flat(X0),
        niter=4,
        rng=5,
        minimizer_kwargs={"method": "L-BFGS-B", "jac": True, "bounds": flat_box},
    )
    same_path(ours, theirs)
    assert np.all((ours.x["a"] >= 0.5) & (ours.x["a"] <= 2.0))


def test_shgo_takes_scipys_path(ref):
    ours = pm.shgo(rastrigin, BOX, n=32)
    theirs = sopt.shgo(
        ref.f,
        list(zip(FLAT_BOX.lb, FLAT_BOX.ub)),
        n=32,
        minimizer_kwargs={"jac": ref.grad, "options": {"ftol": 1e-12}},
    )
    same_path(ours, theirs)
    assert len(ours.xl) == len(theirs.xl) and set(ours.xl[0]) == {"a", "b"}


def test_shgo_local_method_from_minimizer_kwargs_and_pytree_callback(ref):
    seen = []
    ours = pm.shgo(
        rastrigin, BOX, n=32, minimizer_kwargs={"method": "L-BFGS-B"}, callback=seen.append
    )
    theirs = sopt.shgo(
        ref.f,
        list(zip(FLAT_BOX.lb, FLAT_BOX.ub)),
        n=32,
        minimizer_kwargs={"method": "L-BFGS-B", "jac": ref.grad},
    )
    same_path(ours, theirs)
    assert seen and seen[0]["b"].shape == (1, 2)


def test_direct_takes_scipys_path(ref):
    ours = pm.direct(rastrigin, BOX, maxfun=300)
    theirs = sopt.direct(ref.f, FLAT_BOX, maxfun=300)
    same_path(ours, theirs)


# ---------------------------------------------------------------------------------------------
# Constraints through the shared parser.


def test_differential_evolution_constraint_on_the_pytree(ref):
    constraint = sopt.NonlinearConstraint(lambda p: p["a"][0] + p["b"][0, 0], 1.0, np.inf)
    ours = pm.differential_evolution(
        rastrigin, BOX, rng=6, maxiter=10, polish=False, constraints=constraint
    )
    flat_constraint = sopt.NonlinearConstraint(lambda x: x[0] + x[2], 1.0, np.inf)
    theirs = sopt.differential_evolution(
        ref.f, FLAT_BOX, rng=6, maxiter=10, polish=False, constraints=flat_constraint
    )
    same_path(ours, theirs)
    assert ours.x["a"][0] + ours.x["b"][0, 0] >= 1.0


def test_differential_evolution_polishes_with_constraints():
    budget = pm.LinearConstraint(lambda p: jnp.sum(p["a"]) + jnp.sum(p["b"]), 1.0, np.inf)
    kwargs = {"rng": 0, "maxiter": 10, "constraints": [budget]}
    rough = pm.differential_evolution(rastrigin, BOX, polish=False, **kwargs)
    res = pm.differential_evolution(rastrigin, BOX, **kwargs)  # polished by trust-constr
    assert float(jnp.sum(res.x["a"]) + jnp.sum(res.x["b"])) >= 1.0 - 1e-8
    assert res.fun < rough.fun and res.nfev > rough.nfev


def test_shgo_dict_constraint_on_the_pytree(ref):
    cons = {"type": "ineq", "fun": lambda p: p["a"][0] + p["b"][0, 0] - 0.5}
    ours = pm.shgo(rastrigin, BOX, n=32, constraints=cons)
    flat_cons = {
        "type": "ineq",
        "fun": lambda x: np.atleast_1d(x[0] + x[2] - 0.5),
        "jac": lambda x: np.array([[1.0, 0.0, 1.0, 0.0]]),
    }
    theirs = sopt.shgo(
        ref.f,
        list(zip(FLAT_BOX.lb, FLAT_BOX.ub)),
        n=32,
        constraints=flat_cons,
        minimizer_kwargs={"jac": ref.grad, "options": {"ftol": 1e-12}},
    )
    np.testing.assert_allclose(flat(ours.x), theirs.x, atol=1e-12)
    assert ours.fun == pytest.approx(theirs.fun, abs=1e-12)
    assert ours.nfev == theirs.nfev
    assert ours.x["a"][0] + ours.x["b"][0, 0] >= 0.5 - 1e-9


# ---------------------------------------------------------------------------------------------
# Signatures, callbacks, history and progress.


@pytest.mark.parametrize("name", FUNCTIONS)
def test_signature_is_scipys_plus_progress(name):
    ours = inspect.signature(getattr(pm, name)).parameters
    theirs = inspect.signature(getattr(sopt, name)).parameters
    assert list(ours)[:-1] == list(theirs)
    assert list(ours)[-1] == "progress"
    for key, parameter in theirs.items():
        assert ours[key].kind == parameter.kind, key
        assert repr(ours[key].default) == repr(parameter.default), key


def test_callbacks_receive_pytrees_and_can_stop():
    seen = []

    def new_style(intermediate_result):
        seen.append(intermediate_result.x)
        return len(seen) == 3

    res = pm.differential_evolution(
        rastrigin, BOX, rng=0, maxiter=50, polish=False, callback=new_style
    )
    assert res.nit == 3 and seen[0]["b"].shape == (1, 2)
    legacy = []
    pm.differential_evolution(
        rastrigin,
        BOX,
        rng=0,
        maxiter=2,
        polish=False,
        callback=lambda x, convergence: legacy.append((x, convergence)),
    )
    assert len(legacy) == 2 and legacy[0][0]["a"].shape == (2,)
    hops = []
    pm.basinhopping(rastrigin, X0, niter=2, rng=0, callback=lambda x, f, a: hops.append(x))
    assert len(hops) == 3 and hops[0]["b"].shape == (1, 2)


def test_basinhopping_take_step_and_accept_test_see_pytrees():
    class Step:
        stepsize = 0.5

        def __call__(self, p):
            return {"a": p["a"] + self.stepsize, "b": p["b"] - self.stepsize}

    tests = []

    def accept_test(*, f_new, x_new, f_old, x_old):
        tests.append(x_new)
        return True

    step = Step()
    pm.basinhopping(rastrigin, X0, niter=3, rng=0, take_step=step, accept_test=accept_test)
    assert len(tests) == 3 and tests[0]["b"].shape == (1, 2)


def test_history_and_progress_count_generations():
    class Bar:  # what `progress` takes: a tqdm-like object
        n = 0

        def update(self, k):
            self.n += k

        def set_postfix(self, postfix, refresh=True):
            self.postfix = postfix

    bar = Bar()
    res = pm.differential_evolution(
        rastrigin, BOX, rng=0, maxiter=7, tol=0, polish=False, progress=bar
    )
    assert res.nit == 7 and bar.n == 7 and len(res.history["fun"]) == 7
    assert np.all(np.diff(res.history["fun"]) <= 0)  # the best value so far never rises
    assert res.history["fun"][-1] == res.fun


# ---------------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        (None, "`bounds` is required"),
        (Bounds(LB, None), r"`bounds` must be finite.*\['a'\]"),
        (
            Bounds({"a": jnp.zeros(2), "b": jnp.ones((1, 2))}, 0.5),
            "lb > ub at `bounds.lb\\['b'\\]`",
        ),
        (Bounds(LB, {"a": 1.0}), "structure"),
    ],
)
def test_bad_bounds_are_named(bounds, match):
    with pytest.raises(ValueError, match=match):
        pm.differential_evolution(rastrigin, bounds, maxiter=1)


def test_bounds_prefix_must_match_x0():
    with pytest.raises(ValueError, match=r"`bounds.lb`.*structure does not match `x0`"):
        pm.dual_annealing(rastrigin, Bounds({"c": 0.0}, 1.0), x0=X0, maxiter=1)


def test_objective_must_return_one_value_per_member():
    # scipy's own differential_evolution raises RuntimeError here.
    with pytest.raises(RuntimeError, match="`func` must return a scalar"):
        pm.differential_evolution(lambda p: p["a"], BOX, maxiter=1, updating="deferred")
    from pytree_minimize.ports import numpy as pn

    box = pn.Bounds({"a": np.zeros(2)}, 1.0)
    with pytest.raises(ValueError, match=r"`func` is vectorised.*must return 30 values"):
        pn.differential_evolution(
            lambda p: p["a"], box, maxiter=1, popsize=15, vectorized=True, updating="deferred"
        )


def test_objective_errors_reach_the_caller_unchanged():
    def broken(p):
        raise ValueError("boom from the objective")

    for updating in ("immediate", "deferred"):
        with pytest.raises(ValueError, match=r"^boom from the objective"):
            pm.differential_evolution(broken, BOX, maxiter=1, updating=updating)


def test_bounds_prefix_with_x0_takes_scipys_path(ref):
    kwargs = {"rng": 7, "maxiter": 4, "polish": False}
    ours = pm.differential_evolution(rastrigin, Bounds(-5.12, 5.12), x0=X0, **kwargs)
    theirs = sopt.differential_evolution(ref.f, FLAT_BOX, x0=flat(X0), **kwargs)
    same_path(ours, theirs)
    assert ours.x["b"].shape == (1, 2)


def test_minimizer_kwargs_are_checked():
    with pytest.raises(TypeError, match="`minimizer_kwargs` has unknown keys \\['methd'\\]"):
        pm.basinhopping(rastrigin, X0, niter=1, minimizer_kwargs={"methd": "BFGS"})
    with pytest.raises(TypeError, match="`func` must be callable"):
        pm.direct(3.0, BOX)


# ---------------------------------------------------------------------------------------------
# Ports.


def rastrigin_numpy(x):
    return np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x), axis=0) + 10.0 * x.shape[0]


NUMPY_BOX = sopt.Bounds(np.full(3, -5.12), np.full(3, 5.12))


def test_torch_population_through_vmap():
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports import torch as pt

    def objective(p):
        v = torch.cat([p["a"], p["b"]])
        return torch.sum(v**2 - 10.0 * torch.cos(2.0 * torch.pi * v)) + 30.0

    lb = {"a": torch.full((2,), -5.12, dtype=torch.float64), "b": torch.full((1,), -5.12)}
    lb["b"] = lb["b"].double()
    kwargs = {"rng": 1, "maxiter": 8, "polish": False, "updating": "deferred"}
    ours = pt.differential_evolution(objective, pt.Bounds(lb, 5.12), **kwargs)
    theirs = sopt.differential_evolution(rastrigin_numpy, NUMPY_BOX, **kwargs)
    np.testing.assert_allclose(torch.cat([ours.x["a"], ours.x["b"]]).numpy(), theirs.x, atol=1e-12)
    assert ours.nfev == theirs.nfev and isinstance(ours.x["a"], torch.Tensor)
    polished = pt.basinhopping(objective, {"a": lb["a"] * 0 + 1, "b": lb["b"] * 0}, niter=1, rng=0)
    assert polished.lowest_optimization_result.njev > 0


def test_tensorflow_population_through_vectorized_map():
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports import tensorflow as ptf

    def objective(p):
        v = tf.concat([p["a"], p["b"]], 0)
        return tf.reduce_sum(v**2 - 10.0 * tf.cos(2.0 * np.pi * v)) + 30.0

    lb = {"a": tf.constant([-5.12, -5.12], tf.float64), "b": tf.constant([-5.12], tf.float64)}
    kwargs = {"rng": 1, "maxiter": 5, "polish": False, "updating": "deferred"}
    ours = ptf.differential_evolution(objective, ptf.Bounds(lb, 5.12), **kwargs)
    theirs = sopt.differential_evolution(rastrigin_numpy, NUMPY_BOX, **kwargs)
    np.testing.assert_allclose(np.concatenate([ours.x["a"], ours.x["b"]]), theirs.x, atol=1e-12)
    assert ours.nfev == theirs.nfev


def test_numpy_vectorised_function_takes_the_population():
    from pytree_minimize.ports import numpy as pn

    calls = []

    def objective(p):
        calls.append(p["a"].shape)
        v = np.concatenate([p["a"], p["b"]], axis=-1)
        return np.sum(v**2 - 10.0 * np.cos(2.0 * np.pi * v), axis=-1) + 30.0

    box = pn.Bounds({"a": np.full(2, -5.12), "b": np.full(1, -5.12)}, 5.12)
    kwargs = {"rng": 1, "maxiter": 5, "polish": False, "updating": "deferred"}
    ours = pn.differential_evolution(objective, box, vectorized=True, **kwargs)
    theirs = sopt.differential_evolution(rastrigin_numpy, NUMPY_BOX, vectorized=True, **kwargs)
    np.testing.assert_array_equal(np.concatenate([ours.x["a"], ours.x["b"]]), theirs.x)
    assert ours.nfev == theirs.nfev == 6 and calls[0] == (45, 2)


def test_numpy_local_steps_match_scipys_finite_differences():
    from pytree_minimize.ports import numpy as pn

    def objective(p):
        return float(rastrigin_numpy(np.concatenate([p["a"], p["b"]])))

    x0 = {"a": np.array([1.2, 2.1]), "b": np.array([-1.4])}
    ours = pn.basinhopping(objective, x0, niter=3, rng=0)
    theirs = sopt.basinhopping(rastrigin_numpy, np.array([1.2, 2.1, -1.4]), niter=3, rng=0)
    np.testing.assert_array_equal(np.concatenate([ours.x["a"], ours.x["b"]]), theirs.x)
    assert ours.fun == theirs.fun and ours.nfev == theirs.nfev


#: Each global method called on a two-variable box, for scipy's module and this library's.
NON_SCALAR_CALLS = {
    "differential_evolution": lambda m, f: m.differential_evolution(f, [(0, 1)] * 2, maxiter=2),
    "dual_annealing": lambda m, f: m.dual_annealing(f, [(0, 1)] * 2, maxiter=2),
    "basinhopping": lambda m, f: m.basinhopping(f, np.array([0.5, 0.5]), niter=2),
    "shgo": lambda m, f: m.shgo(f, [(0, 1)] * 2, iters=1),
    "direct": lambda m, f: m.direct(f, [(0, 1)] * 2, maxiter=2),
}


@pytest.mark.parametrize("name", NON_SCALAR_CALLS)
def test_an_objective_returning_a_vector_raises_scipys_type_naming_func(name):
    call = NON_SCALAR_CALLS[name]
    with pytest.raises(Exception) as scipys:
        call(sopt, lambda x: np.array([x[0], x[1]]))
    with pytest.raises(Exception, match=r"`func` must return a scalar.*`jnp.sum`") as ours:
        call(pm, lambda x: jnp.array([x[0], x[1]]))
    assert type(ours.value) is scipys.type


#: Run in a fresh process (no JAX threads to fork): the NumPy port's pytree problems with
#: `workers`, against the same run evaluated in this process (scipy's path with `updating=
#: 'deferred'` is the one it takes with workers), and an objective's error from a worker.
WORKERS_SCRIPT = """
import json, sys
from multiprocessing.pool import ThreadPool
import numpy as np
from pytree_minimize.ports import numpy as pn

def rastrigin(p):
    x = np.concatenate([p["a"], p["b"]])
    return float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))

def vector(p):
    return p["a"]

box = pn.Bounds({"a": np.full(2, -5.12), "b": np.full(1, -5.12)}, 5.12)
de = dict(maxiter=20, rng=1, updating="deferred", polish=False)
out = {}
for name, workers in [("serial", 1), ("processes", 2), ("map_like", ThreadPool(2).map)]:
    res = pn.differential_evolution(rastrigin, box, workers=workers, **de)
    out["de_" + name] = [np.concatenate([res.x["a"], res.x["b"]]).tolist(), res.fun, res.nfev]
    res = pn.shgo(rastrigin, box, workers=workers, n=32, iters=1)
    out["shgo_" + name] = [np.concatenate([res.x["a"], res.x["b"]]).tolist(), res.fun, res.nfev]
try:
    pn.differential_evolution(vector, box, workers=2, maxiter=2)
except Exception as error:
    out["error"] = [type(error).__name__, str(error)]
json.dump(out, sys.stdout)
"""


def test_numpy_pytree_problems_run_in_worker_processes():
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-c", WORKERS_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(run.stdout)
    for method in ("de", "shgo"):
        serial = out[f"{method}_serial"]
        for parallel in (out[f"{method}_processes"], out[f"{method}_map_like"]):
            np.testing.assert_allclose(parallel[0], serial[0], rtol=1e-12)
            assert parallel[1:] == pytest.approx(serial[1:], rel=1e-12)
    kind, message = out["error"]
    assert kind == "RuntimeError" and "`func` must return a scalar" in message
