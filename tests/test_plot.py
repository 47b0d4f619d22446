"""`plot_history` draws exactly the recorded history."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from pytree_minimize import minimize, plot_history


def rosen_tree(p):
    x = jnp.concatenate([p["a"], p["b"]])
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def x0():
    return {"a": np.array([-1.2, 1.0]), "b": np.array([0.5, 0.8])}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def bfgs():
    return minimize(rosen_tree, x0(), method="BFGS")


def test_draws_fun_and_gradient_norm_per_iteration(bfgs):
    fig = plot_history(bfgs)
    assert isinstance(fig, Figure)
    ax, right = fig.axes
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, bfgs.nit + 1))
    np.testing.assert_array_equal(line.get_ydata(), bfgs.history["fun"])
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "fun"
    (grad_line,) = right.get_lines()
    np.testing.assert_array_equal(grad_line.get_ydata(), bfgs.history["grad_norm"])
    assert right.get_ylabel() == "gradient norm"


def test_draws_into_a_given_axes_against_time(bfgs):
    fig, ax = plt.subplots()
    assert plot_history(bfgs, ax=ax, xaxis="time", grad_norm=False, label="BFGS") is fig
    assert fig.axes == [ax]
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), bfgs.history["time"])
    assert ax.get_xlabel() == "time (s)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BFGS"]


def test_several_runs_share_one_axes(bfgs):
    nelder = minimize(rosen_tree, x0(), method="Nelder-Mead")
    fig, ax = plt.subplots()
    plot_history(bfgs, ax=ax, label="BFGS", grad_norm=False)
    plot_history(nelder, ax=ax, label="Nelder-Mead", grad_norm=False)
    assert len(ax.get_lines()) == 2
    assert len(fig.axes) == 1


def test_no_gradient_axis_for_derivative_free_methods():
    res = minimize(rosen_tree, x0(), method="Powell")
    fig = plot_history(res)
    assert len(fig.axes) == 1
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_ydata(), res.history["fun"])


def test_linear_scale_when_fun_is_not_positive():
    history = {"fun": [1.0, -2.0, -3.0], "time": [0.1, 0.2, 0.3]}
    fig = plot_history(history)
    assert fig.axes[0].get_yscale() == "linear"


def test_bad_arguments_name_themselves(bfgs):
    with pytest.raises(TypeError, match="`result`"):
        plot_history({"fun": 1.0})
    with pytest.raises(TypeError, match="`result`"):
        plot_history(np.ones(3))
    with pytest.raises(ValueError, match="`xaxis`"):
        plot_history(bfgs, xaxis="nfev")
