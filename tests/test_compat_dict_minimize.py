"""`pytree_minimize.compat.dict_minimize`: dict_minimize's `minimize`, one import away.

For each framework and every method dict_minimize runs, random dictionaries of arrays (random
keys, shapes, dtypes, bounds, `args`, `tol`) are minimised by the compat module and by
dict_minimize itself (installed with the `bench` extra), and everything a dict_minimize user sees
must agree: the solution's keys, order, value types, dtypes, shapes and values, what `fun`
receives (concrete tensors of the same types, never tracers), and the callback, called with one
argument as often as dict_minimize calls it. The methods dict_minimize cannot run (those that need
a Hessian) are compared with scipy's optimum of the flat problem instead.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import inspect
import json
import subprocess
import sys
import textwrap
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as sopt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

pytest.importorskip("dict_minimize")

COMPAT = "pytree_minimize.compat.dict_minimize"
#: What dict_minimize runs: every method with a gradient and no Hessian, and the derivative-free
#: ones (scipy warns that they ignore the gradient).
DICT_MINIMIZE_METHODS = (
    "CG",
    "BFGS",
    "L-BFGS-B",
    "TNC",
    "SLSQP",
    "trust-constr",
    "Newton-CG",
    "Nelder-Mead",
    "Powell",
    "COBYLA",
    "COBYQA",
)
#: The methods that need a Hessian, which dict_minimize never passes: scipy refuses them there.
#: The compat module runs them on differences of the user's gradient.
HESSIAN_METHODS = ("dogleg", "trust-ncg", "trust-exact", "trust-krylov")
COUPLING = 0.05


# ---------------------------------------------------------------------------------------------
# The four frameworks, each with an objective that computes its own gradient as a dict_minimize
# user does. The objective is a quadratic bowl around `centres` coupled by COUPLING * s**4 (s the
# sum of all elements): convex, with one minimum, and not separable by key.


@dataclasses.dataclass(frozen=True)
class Framework:
    name: str
    dtypes: tuple[str, ...]
    tensor: Callable[[np.ndarray, str], Any]
    to_numpy: Callable[[Any], np.ndarray]
    #: `make_fun(centres)`: dict_minimize's `fun(x, scale) -> (value, gradient OrderedDict)`.
    make_fun: Callable[[OrderedDict], Callable]
    #: What `fun` must receive: True for a concrete (eager) leaf of the framework.
    is_concrete: Callable[[Any], bool]

    @property
    def compat(self) -> ModuleType:
        return importlib.import_module(f"{COMPAT}.{self.name}_api")

    @property
    def reference(self) -> ModuleType:
        return importlib.import_module(f"dict_minimize.{self.name}_api")


def _numpy() -> Framework:
    def make_fun(centres):
        def fun(x, scale):
            s = sum(np.sum(v, dtype=np.float64) for v in x.values())
            value = sum(scale * np.sum((x[k] - centres[k]) ** 2) for k in x) + COUPLING * s**4
            grad = OrderedDict(
                (k, 2 * scale * (x[k] - centres[k]) + 4 * COUPLING * s**3) for k in x
            )
            return value, grad

        return fun

    return Framework(
        "numpy",
        ("float16", "float32", "float64"),
        tensor=lambda a, dtype: np.asarray(a, dtype=dtype),
        to_numpy=np.asarray,
        make_fun=make_fun,
        is_concrete=lambda v: type(v) is np.ndarray,
    )


def _torch() -> Framework:
    torch = pytest.importorskip("torch")

    def make_fun(centres):
        targets = {k: torch.from_numpy(c) for k, c in centres.items()}

        def fun(x, scale):
            s = sum(v.double().sum() for v in x.values())
            value = sum(scale * ((x[k] - targets[k]) ** 2).sum() for k in x) + COUPLING * s**4
            return value, OrderedDict(zip(x, torch.autograd.grad(value, list(x.values()))))

        return fun

    return Framework(
        "torch",
        ("float32", "float64"),  # dict_minimize's own suite leaves out float16 on CPU
        tensor=lambda a, dtype: torch.tensor(np.asarray(a, dtype=dtype)),
        to_numpy=lambda t: t.detach().numpy(),
        make_fun=make_fun,
        is_concrete=lambda v: type(v) is torch.Tensor and v.is_leaf and v.requires_grad,
    )


def _tensorflow() -> Framework:
    tf = pytest.importorskip("tensorflow")
    eager_type = type(tf.constant(0.0))

    def make_fun(centres):
        def fun(x, scale):
            leaves = list(x.values())
            with tf.GradientTape() as tape:
                tape.watch(leaves)
                wide = {k: tf.cast(v, tf.float64) for k, v in x.items()}
                s = sum(tf.reduce_sum(v) for v in wide.values())
                value = sum(scale * tf.reduce_sum((wide[k] - centres[k]) ** 2) for k in x)
                value += COUPLING * s**4
            grads = tape.gradient(value, leaves, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return value, OrderedDict(zip(x, grads))

        return fun

    return Framework(
        "tensorflow",
        ("float16", "float32", "float64"),
        tensor=lambda a, dtype: tf.constant(np.asarray(a, dtype=dtype)),
        to_numpy=lambda t: t.numpy(),
        make_fun=make_fun,
        is_concrete=lambda v: type(v) is eager_type and tf.executing_eagerly(),
    )


def _jax() -> Framework:
    def make_fun(centres):
        def objective(x, scale):
            wide = {k: v.astype(jnp.float64) for k, v in x.items()}
            s = sum(jnp.sum(v) for v in wide.values())
            value = sum(scale * jnp.sum((wide[k] - centres[k]) ** 2) for k in x)
            return value + COUPLING * s**4

        value_and_grad = jax.jit(jax.value_and_grad(objective))

        def fun(x, scale):
            value, grad = value_and_grad(x, scale)
            return value, OrderedDict((k, grad[k]) for k in x)

        return fun

    concrete = type(jnp.zeros(()))
    return Framework(
        "jax",
        ("float16", "float32", "float64"),
        tensor=lambda a, dtype: jnp.asarray(np.asarray(a, dtype=dtype)),
        to_numpy=np.asarray,
        make_fun=make_fun,
        is_concrete=lambda v: type(v) is concrete and not isinstance(v, jax.core.Tracer),
    )


FRAMEWORKS = {"numpy": _numpy, "torch": _torch, "tensorflow": _tensorflow, "jax": _jax}


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request) -> Iterator[Framework]:
    # dict_minimize's JAX suite enables float64; scoped to the test here.
    with jax.enable_x64(True):
        yield FRAMEWORKS[request.param]()


# ---------------------------------------------------------------------------------------------
# Random problems: dict_minimize's own suite draws arbitrary text keys and arrays of any shape
# (empty ones included) and dtype; so do these, with few elements to keep every method quick.


@dataclasses.dataclass
class Problem:
    x0: OrderedDict  # NumPy arrays of the drawn dtypes
    centres: OrderedDict  # float64
    lower: OrderedDict | None
    upper: OrderedDict | None
    scale: float
    tol: float | None


@st.composite
def problems(draw, dtypes: tuple[str, ...], bounded: bool | None = None) -> Problem:
    specs = draw(
        st.dictionaries(
            st.text(max_size=3),
            st.tuples(array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3), st.just(0)),
            min_size=1,
            max_size=3,
        )
    )
    sizes = {k: int(np.prod(shape)) for k, (shape, _) in specs.items()}
    if sum(sizes.values()) == 0:
        first = next(iter(specs))
        specs[first] = ((2,), 0)
        sizes[first] = 2
    values = st.floats(-2.0, 2.0, width=16)  # exact in every dtype
    x0, centres, lower, upper = OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict()
    is_bounded = draw(st.booleans()) if bounded is None else bounded
    for key, (shape, _) in specs.items():
        dtype = draw(st.sampled_from(dtypes))
        size = sizes[key]
        x0[key] = np.asarray(draw(st.lists(values, min_size=size, max_size=size)), dtype)
        x0[key] = x0[key].reshape(shape)
        centres[key] = np.asarray(draw(st.lists(values, min_size=size, max_size=size)))
        centres[key] = centres[key].reshape(shape)
        # Bounds straddle x0 (as dict_minimize's suite draws them), so it starts feasible.
        lower[key] = (x0[key] - 0.5).astype(dtype)
        upper[key] = (x0[key] + 0.75).astype(dtype)
    scale = draw(st.sampled_from([0.5, 1.0, 3.0]))
    tol = draw(st.sampled_from([None, 1e-3, 1e-8]))
    if not is_bounded:
        lower = upper = None
    return Problem(x0, centres, lower, upper, scale, tol)


def _options(method: str) -> dict:
    # Few iterations: the comparison is of the path, not of convergence (TNC counts evaluations).
    if method == "TNC":
        return {"maxfun": 60}
    if method == "Powell":  # a line search per variable in every iteration
        return {"maxfev": 60}
    return {"maxiter": 20}


def _run(module: ModuleType, framework: Framework, problem: Problem, method: str, args: Any):
    """One `minimize` call of `module`, recording what `fun` and the callback received."""
    tensors = OrderedDict((k, framework.tensor(v, v.dtype.name)) for k, v in problem.x0.items())

    def as_tensors(bound):
        if bound is None:
            return None
        return OrderedDict((k, framework.tensor(v, v.dtype.name)) for k, v in bound.items())

    seen: list[OrderedDict] = []
    callbacks: list[Any] = []
    user_fun = framework.make_fun(problem.centres)

    def fun(x, *args):
        seen.append(x)
        return user_fun(x, *args)

    with warnings.catch_warnings():
        # Both sides warn alike: ignored bounds, gradients given to derivative-free methods.
        warnings.simplefilter("ignore")
        solution = module.minimize(
            fun,
            tensors,
            lb_dict=as_tensors(problem.lower),
            ub_dict=as_tensors(problem.upper),
            args=args,
            method=method,
            tol=problem.tol,
            callback=callbacks.append,  # one positional argument only
            options=_options(method),
        )
    return tensors, solution, seen, callbacks


def _check_like(tree: Any, expected: OrderedDict, framework: Framework, *, concrete: bool) -> None:
    """`tree` is an OrderedDict with `expected`'s keys in order, and values of the same types,
    dtypes and shapes (and concrete, for what `fun` and the callback receive)."""
    assert isinstance(tree, OrderedDict)
    assert list(tree) == list(expected)
    for key, value in tree.items():
        like = expected[key]
        assert type(value) is type(like), key
        assert value.dtype == like.dtype and str(value.dtype) == str(like.dtype), key
        assert tuple(value.shape) == tuple(like.shape), key
        if concrete:
            assert framework.is_concrete(value), (key, type(value))


# ---------------------------------------------------------------------------------------------
# The same answers as dict_minimize.


@pytest.mark.parametrize("method", DICT_MINIMIZE_METHODS)
def test_agrees_with_dict_minimize(framework: Framework, method: str):
    @settings(
        max_examples=4,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(problems(framework.dtypes), st.sampled_from(["tuple", "list"]))
    def check(problem: Problem, args_kind: str):
        args = (problem.scale,) if args_kind == "tuple" else [problem.scale]
        theirs = _run(framework.reference, framework, problem, method, args)
        x0, ours, ours_seen, ours_callbacks = _run(
            framework.compat, framework, problem, method, args
        )
        _, reference, reference_seen, reference_callbacks = theirs

        _check_like(ours, x0, framework, concrete=False)
        _check_like(ours, reference, framework, concrete=False)
        for key in ours:
            assert getattr(ours[key], "requires_grad", None) == getattr(
                reference[key], "requires_grad", None
            )
            np.testing.assert_allclose(
                framework.to_numpy(ours[key]).astype(np.float64),
                framework.to_numpy(reference[key]).astype(np.float64),
                rtol=1e-6,
                atol=1e-9,
                err_msg=f"{method} {key!r}",
            )
        # `fun` was called eagerly, with what dict_minimize passes, as often.
        assert len(ours_seen) == len(reference_seen)
        for received in ours_seen:
            _check_like(received, x0, framework, concrete=True)
        # The callback got one argument, the current dictionary, as often as dict_minimize's.
        assert len(ours_callbacks) == len(reference_callbacks)
        for received in ours_callbacks:
            _check_like(received, x0, framework, concrete=True)
        # x0 is never mutated.
        for key, value in x0.items():
            np.testing.assert_array_equal(framework.to_numpy(value), problem.x0[key])

    check()


def _flat_optimum(problem: Problem, scale: float) -> OrderedDict:
    """scipy's optimum of the same problem on the packed float64 vector (keys in order)."""
    keys = list(problem.centres)
    c = np.concatenate([problem.centres[k].ravel() for k in keys])

    def value_and_grad(v):
        s = np.sum(v)
        return (
            scale * np.sum((v - c) ** 2) + COUPLING * s**4,
            2 * scale * (v - c) + 4 * COUPLING * s**3,
        )

    v0 = np.concatenate([problem.x0[k].ravel() for k in keys]).astype(np.float64)
    flat = sopt.minimize(value_and_grad, v0, jac=True, method="BFGS", options={"gtol": 1e-12}).x
    out, start = OrderedDict(), 0
    for k in keys:
        size = problem.x0[k].size
        out[k] = flat[start : start + size].reshape(problem.x0[k].shape)
        start += size
    return out


@pytest.mark.parametrize("method", HESSIAN_METHODS)
def test_hessian_methods_reach_scipys_optimum(framework: Framework, method: str):
    """dict_minimize hands scipy no Hessian, so scipy refuses these methods there; the compat
    module differences the user's gradient and converges to the flat problem's optimum."""

    @settings(max_examples=3, deadline=None, derandomize=True)
    @given(problems(("float64",), bounded=False))
    def check(problem: Problem):
        x0 = OrderedDict((k, framework.tensor(v, "float64")) for k, v in problem.x0.items())
        fun = framework.make_fun(problem.centres)
        with pytest.raises(ValueError, match="required"):
            framework.reference.minimize(fun, x0, args=(problem.scale,), method=method)
        calls = []
        solution = framework.compat.minimize(
            fun, x0, args=(problem.scale,), method=method, tol=1e-10, callback=calls.append
        )
        _check_like(solution, x0, framework, concrete=False)
        assert len(calls) >= min(solution.optimize_result.nit, 1)
        for received in calls:
            _check_like(received, x0, framework, concrete=True)
        expected = _flat_optimum(problem, problem.scale)
        for key in expected:
            np.testing.assert_allclose(
                framework.to_numpy(solution[key]), expected[key], atol=1e-5, err_msg=key
            )

    check()


# ---------------------------------------------------------------------------------------------
# The interface itself.


def test_signature_is_dict_minimizes(framework: Framework):
    ours = inspect.signature(framework.compat.minimize).parameters
    theirs = inspect.signature(framework.reference.minimize).parameters
    assert list(ours) == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name


def test_solution_carries_the_full_result(framework: Framework):
    x0 = OrderedDict(a=framework.tensor(np.array([0.5, -1.0]), "float64"))
    centres = OrderedDict(a=np.array([1.0, 2.0]))
    solution = framework.compat.minimize(framework.make_fun(centres), x0, args=(1.0,))
    result = solution.optimize_result
    assert result.success
    assert result.x is not None and list(result.x) == ["a"]
    assert len(result.history["fun"]) == result.nit  # one entry per iteration
    assert result.history["fun"][-1] == pytest.approx(result.fun)


def test_tensors_fun_receives_are_concrete(framework: Framework):
    """Inside `fun`, a dict_minimize user may look at values (branch on them, print them)."""
    problem = Problem(
        x0=OrderedDict(a=np.array([0.5, -1.0], dtype=np.float32)),
        centres=OrderedDict(a=np.array([1.0, 2.0])),
        lower=None,
        upper=None,
        scale=1.0,
        tol=None,
    )
    x0 = OrderedDict(a=framework.tensor(problem.x0["a"], "float32"))
    user_fun = framework.make_fun(problem.centres)
    seen = []

    def fun(x, scale):
        seen.append(float(np.sum(framework.to_numpy(x["a"]))))  # fails on a tracer
        return user_fun(x, scale)

    framework.compat.minimize(fun, x0, args=(1.0,), method="L-BFGS-B")
    assert seen[0] == pytest.approx(-0.5)
    assert seen[-1] == pytest.approx(np.sum(_flat_optimum(problem, 1.0)["a"]), abs=1e-3)


def test_torch_fun_may_call_backward():
    """dict_minimize gives `fun` leaf tensors, so `value.backward()` fills `x[key].grad`."""
    torch = pytest.importorskip("torch")
    from pytree_minimize.compat.dict_minimize.torch_api import minimize

    def fun(x):
        value = ((x["w"] - 2.0) ** 2).sum()
        value.backward()
        return value, OrderedDict(w=x["w"].grad)

    solution = minimize(fun, OrderedDict(w=torch.zeros(3, dtype=torch.float64)))
    np.testing.assert_allclose(solution["w"].detach().numpy(), 2.0, atol=1e-6)


def test_errors_name_the_argument():
    from pytree_minimize.compat.dict_minimize.numpy_api import minimize

    def fun(x):
        return float(np.sum(x["a"] ** 2)), OrderedDict(a=2 * x["a"])

    x0 = OrderedDict(a=np.ones(2))
    with pytest.raises(TypeError, match=r"`x0_dict` must be a `collections.OrderedDict`"):
        minimize(fun, {"a": np.ones(2)})
    with pytest.raises(ValueError, match=r"`x0_dict` is empty"):
        minimize(fun, OrderedDict())
    with pytest.raises(ValueError, match=r"`x0_dict` holds no elements"):
        minimize(fun, OrderedDict(a=np.ones((2, 0))))
    with pytest.raises(TypeError, match=r"`x0_dict\['a'\]` has dtype int64"):
        minimize(fun, OrderedDict(a=np.ones(2, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"`lb_dict` was given but `ub_dict` is None"):
        minimize(fun, x0, lb_dict=OrderedDict(a=np.zeros(2)))
    with pytest.raises(ValueError, match=r"`ub_dict` must have the keys of `x0_dict`"):
        minimize(fun, x0, lb_dict=OrderedDict(a=np.zeros(2)), ub_dict=OrderedDict(b=np.ones(2)))
    with pytest.raises(ValueError, match=r"`lb_dict\['a'\]` must be an array of the shape"):
        minimize(fun, x0, lb_dict=OrderedDict(a=np.zeros(3)), ub_dict=OrderedDict(a=np.ones(2)))
    with pytest.raises(TypeError, match=r"`args` must be a sequence"):
        minimize(fun, x0, args=3)
    with pytest.raises(ValueError, match=r"`fun` must return `\(value, gradient\)`"):
        minimize(lambda x: float(np.sum(x["a"] ** 2)), x0)


def test_objective_errors_reach_the_caller():
    from pytree_minimize.compat.dict_minimize.numpy_api import minimize

    class Stop(Exception):
        pass

    def fun(x):
        raise Stop

    with pytest.raises(Stop):
        minimize(fun, OrderedDict(a=np.ones(2)))


def test_doctests(framework: Framework):
    results = doctest.testmod(framework.compat, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0 and results.failed == 0


@pytest.mark.parametrize(
    ("module", "framework"),
    [
        ("numpy_api", None),
        ("torch_api", "torch"),
        ("tensorflow_api", "tensorflow"),
        ("jax_api", "jax"),
    ],
)
def test_each_module_imports_its_framework_alone(module: str, framework: str | None):
    """Importing a compat module loads its own framework and nothing else (what the framework
    itself imports aside: TensorFlow loads JAX where JAX is installed)."""
    code = f"""
        import json, sys
        FRAMEWORKS = ("jax", "torch", "tensorflow")
        {f"import {framework}" if framework else ""}
        before = sorted(m for m in FRAMEWORKS if m in sys.modules)
        import {COMPAT}.{module}
        after = sorted(m for m in FRAMEWORKS if m in sys.modules)
        print(json.dumps([before, after]))
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    before, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert after == before
    assert (framework is None and after == []) or framework in after
