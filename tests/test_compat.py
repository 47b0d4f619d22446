"""The private framework and scipy APIs the package uses (`*_compat` modules) still exist and
still behave as the package expects, in the installed versions. These tests fail loudly where
an upgrade changed one: the package then falls back to public calls (slower) or raises."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as sopt

from pytree_minimize._core import scipy_compat


def test_scipy_approx_derivative_takes_an_absolute_step():
    def f(x):
        return np.array([x[0] ** 2, x[0] * x[1]])

    x = np.array([1.5, -2.0])
    jacobian = scipy_compat.approx_derivative(f, x, method="2-point", abs_step=1e-7 * np.ones(2))
    np.testing.assert_allclose(jacobian, [[3.0, 0.0], [-2.0, 1.5]], rtol=1e-5, atol=1e-6)


def test_scipy_dual_annealing_local_search_cap_and_counter():
    # scipy's own cap for n parameters, as its LocalSearchWrapper computes it.
    from scipy.optimize._dual_annealing import LocalSearchWrapper

    wrapper = LocalSearchWrapper([(-1.0, 1.0)] * 7, lambda x: 0.0)
    assert scipy_compat.dual_annealing_local_maxiter(7) == wrapper.kwargs["options"]["maxiter"]
    # dual_annealing hands its local minimiser a bound method of a wrapper counting `nfev`.
    seen = []

    def local(fun, x0, **_):
        seen.append(fun)
        scipy_compat.add_evaluations(fun, 1000)
        return sopt.OptimizeResult(x=x0, fun=float(fun(x0)), nfev=1, success=True)

    result = sopt.dual_annealing(
        lambda x: float(np.sum(x**2)),
        [(-1.0, 1.0)] * 2,
        maxiter=2,
        rng=0,
        minimizer_kwargs={"method": local},
    )
    assert seen and result.nfev >= 1000 * len(seen)
    with pytest.raises(RuntimeError, match="nfev"):
        scipy_compat.add_evaluations(lambda x: 0.0, 1)


def test_torch_engine_gradient_is_present_and_exact():
    torch = pytest.importorskip("torch")
    from pytree_minimize._backends import torch_compat

    assert torch_compat.ENGINE_GRADIENT is not None, "torch's _engine_run_backward is gone"
    flat = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    value = (flat**3).sum()
    seed = torch.ones((), dtype=torch.float64)
    grad = torch_compat.ENGINE_GRADIENT(value, seed, flat)
    np.testing.assert_allclose(grad.numpy(), 3 * flat.detach().numpy() ** 2)


def test_tensorflow_flat_call_is_present_and_matches_the_plain_call():
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize._backends import tensorflow_compat

    assert tensorflow_compat.AVAILABLE, "TensorFlow's function_type_utils moved"

    @tf.function
    def f(x, scale):
        return tf.reduce_sum(x**2) * scale

    x = np.arange(3.0)
    scale = tf.constant(2.0, tf.float64)
    plain = f(x, scale)
    direct = tensorflow_compat.flat_caller(f, (x,), (scale,))
    np.testing.assert_allclose(direct(x).numpy(), plain.numpy())
    np.testing.assert_allclose(direct(x + 1.0).numpy(), f(x + 1.0, scale).numpy())


def test_tensorflow_autograph_lets_marked_exceptions_through():
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from pytree_minimize._backends import tensorflow_compat

    class Fielded(ValueError):
        def __init__(self, *, field: int) -> None:
            super().__init__(f"field {field}")
            self.field = field

    def body(x):
        raise Fielded(field=3)

    with pytest.raises(Exception) as unmarked:
        tf.function(body)(tf.constant(1.0))
    assert type(unmarked.value) is not Fielded  # what the attribute is for
    tensorflow_compat.passes_through_autograph(Fielded)
    with pytest.raises(Fielded) as marked:
        tf.function(body)(tf.constant(1.0))
    assert marked.value.field == 3


def test_jax_tracer_and_eval_jaxpr():
    import jax
    import jax.numpy as jnp

    from pytree_minimize._backends import jax_compat

    seen = []
    jax.jit(lambda x: seen.append(jax_compat.is_traced({"a": x})) or x)(jnp.ones(2))
    assert seen == [True] and not jax_compat.is_traced({"a": jnp.ones(2)})
    closed = jax.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(1.0)
    (out,) = jax_compat.eval_jaxpr(closed.jaxpr, closed.consts, 0.5)
    np.testing.assert_allclose(out, 2.0 * np.sin(0.5), rtol=1e-6)
