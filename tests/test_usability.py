"""The rough edges of a first week: errors that name the fix (a torch module's parameters, a
module or an equinox module passed whole, a misspelled bounds key, a model written
`f(params, x)`), a short `repr(res)`, active bounds in float32, the progress bar's total,
`plot_history` over several runs, and a warning for a gradient that is zero by construction."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize import Bounds, curve_fit, minimize, plot_history
from pytree_minimize._core.active_bounds import active_bounds
from pytree_minimize._core.progress import make_progress
from pytree_minimize._core.tree import build_layout, describe_host_leaf

matplotlib.use("Agg")

# ---------------------------------------------------------------------------------------------
# Errors that name the fix.


def _torch_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    return torch, model, torch.randn(16, 3), torch.randn(16, 1)


@pytest.mark.parametrize("form", ["list", "dict"])
def test_a_closure_over_the_modules_own_parameters_points_to_the_pattern(form):
    torch, model, X, Y = _torch_model()
    from pytree_minimize.ports.torch import minimize as torch_minimize

    x0 = list(model.parameters()) if form == "list" else dict(model.named_parameters())
    with pytest.raises(TypeError) as caught:
        torch_minimize(lambda p: torch.nn.functional.mse_loss(model(X), Y), x0)
    message = str(caught.value)
    for name in ("parameters_of", "functional_call", "load_into", "does not depend on"):
        assert name in message
    assert "allow_unused" not in message


def test_a_module_passed_whole_points_to_the_pattern():
    torch, model, X, Y = _torch_model()
    from pytree_minimize.ports.torch import minimize as torch_minimize

    with pytest.raises(TypeError, match="parameters_of") as caught:
        torch_minimize(lambda m: torch.nn.functional.mse_loss(m(X), Y), model)
    assert "functional_call" in str(caught.value) and "load_into" in str(caught.value)


def test_the_torch_pattern_fits_as_scipy_on_the_flat_problem():
    torch, _, X, _ = _torch_model()
    from pytree_minimize.ports.torch import load_into, parameters_of
    from pytree_minimize.ports.torch import minimize as torch_minimize

    linear = torch.nn.Linear(3, 1).double()
    X = X.double()
    Y = X @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    res = torch_minimize(
        lambda p: torch.nn.functional.mse_loss(torch.func.functional_call(linear, p, (X,)), Y),
        parameters_of(linear),
        method="BFGS",
    )
    load_into(linear, res.x)
    design = np.column_stack([X.numpy(), np.ones(len(X))])
    solution = np.linalg.lstsq(design, Y.numpy().ravel(), rcond=None)[0]
    np.testing.assert_allclose(linear.weight.detach().numpy().ravel(), solution[:3], atol=1e-5)
    np.testing.assert_allclose(linear.bias.detach().numpy(), solution[3:], atol=1e-5)


def test_an_equinox_module_passed_whole_points_to_partition():
    model = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match=r"eqx\.partition") as caught:
        minimize(lambda m: jnp.sum(m(jnp.ones(2)) ** 2), model)
    assert "eqx.combine" in str(caught.value)


def test_a_misspelled_bounds_key_is_named_from_the_users_side():
    x0 = {"w": jnp.zeros(2), "b": jnp.array(0.0)}
    with pytest.raises(ValueError) as caught:
        minimize(
            lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2, x0, bounds=Bounds(lb={"W": 0.0, "b": 0.0})
        )
    message = str(caught.value)
    assert "`bounds.lb` has key(s) ['W'] that `x0` does not have" in message
    assert "did you mean 'w' for 'W'" in message
    assert "missing key(s): ['W']" not in message


def test_a_missing_bounds_key_is_named():
    x0 = {"w": jnp.zeros(2), "b": jnp.array(0.0)}
    with pytest.raises(ValueError, match=r"`bounds.ub` lacks key\(s\) \['w'\] of `x0`"):
        minimize(lambda p: jnp.sum(p["w"] ** 2), x0, bounds=Bounds(ub={"b": 1.0}))


def test_curve_fit_with_the_model_written_params_first_says_so():
    x = np.linspace(0.0, 1.0, 9)
    with pytest.raises(TypeError, match=r"`f` must take `\(xdata, params\)`") as caught:
        curve_fit(lambda p, x: p["a"] * x, x, 2.0 * x, p0={"a": 1.0})
    assert isinstance(caught.value.__cause__, IndexError)


def test_curve_fit_models_own_errors_reach_the_caller():
    class ModelError(Exception):
        pass

    def model(x, p):
        raise ModelError("broken")

    with pytest.raises(ModelError):
        curve_fit(model, np.linspace(0.0, 1.0, 5), np.zeros(5), p0={"a": 1.0})


# ---------------------------------------------------------------------------------------------
# The result, the bar and the plot.


def test_repr_of_a_long_run_summarises_history():
    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    res = minimize(rosenbrock, np.zeros(20), method="CG", options={"maxiter": 600, "gtol": 0})
    assert res.nit > 300
    text = repr(res)
    assert len(text) < 2000
    assert f"({len(res.history['fun'])} values)" in text
    assert f"{res.history['fun'][-1]:.6g}" in text  # the last value is shown
    assert res.history["fun"] == list(res.history["fun"])  # still a list


def test_float32_leaves_at_a_bound_are_active():
    # scipy's float64 solution may stop short of a bound by less than float32's precision,
    # and `res.x` (float32) then holds the bound itself.
    ub = np.array([1.0, 1.0])
    x = np.array([1.0 - 2e-8, 0.5])
    for dtype, expected in ((np.float32, [1, 0]), (np.float64, [0, 0])):
        leaf = np.zeros(2, dtype=dtype)
        layout = build_layout({"a": leaf}, describe_leaf=describe_host_leaf)
        assert np.float32(x[0]) == 1.0 or dtype is np.float64
        result = active_bounds(x, np.full(2, -np.inf), ub, layout)
        assert result["a"].tolist() == expected, dtype


def test_float32_run_at_an_upper_bound_reports_it():
    x0 = {"a": np.array([0.3, 0.2], dtype=np.float32)}
    res = minimize(
        lambda p: jnp.sum((p["a"] - jnp.array([2.0, 0.5])) ** 2),
        x0,
        method="Powell",
        bounds=Bounds(ub={"a": 1.0}),
    )
    at_bound = np.asarray(res.x["a"])[0] >= np.float32(1.0) * (1 - 2 * np.finfo(np.float32).eps)
    assert at_bound and res.active_bounds["a"].tolist() == [1, 0]


def test_the_progress_bar_has_maxiter_as_total(capsys):
    bar = make_progress(True, total=7)
    assert bar.total == 7
    bar.close()
    assert make_progress(True).total is None
    minimize(lambda x: jnp.sum(x**2), np.ones(3), progress=True, options={"maxiter": 5})
    assert "/5 [" in capsys.readouterr().err


def test_plot_history_overlays_a_dict_of_labelled_results():
    def loss(p):
        return jnp.sum((p - 3.0) ** 2) + 1.0

    runs = {m: minimize(loss, np.zeros(3), method=m) for m in ("BFGS", "CG", "Nelder-Mead")}
    fig = plot_history(runs)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(runs)
    funs = [line.get_ydata().tolist() for line in ax.get_lines()]
    assert funs == [list(map(float, run.history["fun"])) for run in runs.values()]
    right = fig.axes[1]  # gradient norms of the two gradient methods, dashed
    assert len(right.get_lines()) == 2
    with pytest.raises(TypeError, match="`label` names a single run"):
        plot_history(runs, label="x")
    with pytest.raises(TypeError, match=r"`result\['bad'\]`"):
        plot_history({"bad": 3})


# ---------------------------------------------------------------------------------------------
# A gradient JAX knows to be zero.


@pytest.mark.parametrize(
    "objective",
    [
        lambda p: jnp.all(p["a"] > 0).astype(float),
        lambda p: jnp.sum(jnp.round(p["a"])),
        lambda p: jax.lax.stop_gradient(jnp.sum(p["a"] ** 2)),
    ],
    ids=["comparison", "rounding", "stop_gradient"],
)
def test_a_symbolically_zero_gradient_warns_and_keeps_scipys_result(objective):
    x0 = {"a": jnp.array([0.5, -0.2])}
    with pytest.warns(RuntimeWarning, match="gradient is zero everywhere") as record:
        res = minimize(objective, x0, method="BFGS")
    assert record[0].filename == __file__
    flat = np.array([0.5, -0.2])
    expected = sopt.minimize(
        lambda x: float(objective({"a": jnp.asarray(x)})), flat, jac=np.zeros_like, method="BFGS"
    )
    assert (res.success, res.nit, res.message) == (expected.success, expected.nit, expected.message)
    np.testing.assert_array_equal(res.x["a"], flat.astype(np.float32))


def test_smooth_objectives_and_derivative_free_methods_do_not_warn():
    x0 = {"a": jnp.array([0.5, -0.2])}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        minimize(lambda p: jnp.sum(jnp.abs(p["a"])), x0, method="BFGS")  # zero only at kinks
        minimize(lambda p: jnp.all(p["a"] > 0).astype(float), x0, method="Nelder-Mead")
        # A linear objective: its gradient does not depend on x either, but it is not zero.
        res = minimize(lambda p: -p["a"][0], x0, method="L-BFGS-B", bounds=Bounds(ub=1.0))
    assert float(res.x["a"][0]) == 1.0


def test_a_constant_objective_does_not_warn():
    # A feasibility problem: the constraint moves x, the objective is deliberately constant.
    constraint = {"type": "eq", "fun": lambda p: jnp.sum(p["a"]) - 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = minimize(
            lambda p: jnp.zeros(()), {"a": jnp.zeros(2)}, method="SLSQP", constraints=constraint
        )
    np.testing.assert_allclose(float(jnp.sum(res.x["a"])), 1.0, atol=1e-6)
