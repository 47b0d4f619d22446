"""`least_squares`, `curve_fit` and `root` in the torch, TensorFlow and NumPy ports: the same
results as scipy on the flat problem with exact (or, for NumPy, finite-difference) Jacobians."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.optimize as sopt

T = np.linspace(0.0, 2.0, 25)
Y = 2.0 * np.exp(-1.3 * T) + 0.4 + 0.01 * np.sin(9 * T)
# Flat layout of {"decay": {"amp", "rate"}, "offset"}: amp, rate, offset.
X0_FLAT = np.array([1.0, 1.0, 0.0])


def _flat_residual(v):
    return v[0] * np.exp(-v[1] * T) + v[2] - Y


def _flat_jacobian(v):
    e = np.exp(-v[1] * T)
    return np.stack([e, -v[0] * T * e, np.ones_like(T)], axis=1)


def _equations_flat(v):  # a, b with a + b = 3, a b = 2 (the root near (1, 2))
    return np.array([v[0] + v[1] - 3.0, v[0] * v[1] - 2.0])


def _equations_jacobian(v):
    return np.array([[1.0, 1.0], [v[1], v[0]]])


def _reference_lsq(**kwargs):
    return sopt.least_squares(_flat_residual, X0_FLAT, jac=_flat_jacobian, **kwargs)


def _flat(x, to_numpy):
    return np.array(
        [
            float(to_numpy(x["decay"]["amp"])),
            float(to_numpy(x["decay"]["rate"])),
            float(to_numpy(x["offset"])),
        ]
    )


def _check_port(port, make, exp, to_numpy, jac_free=False, complex_step=True):
    x0 = {"decay": {"amp": make(1.0), "rate": make(1.0)}, "offset": make(0.0)}
    t, y = make(T), make(Y)

    def residual(p):
        return {"r": p["decay"]["amp"] * exp(-p["decay"]["rate"] * t) + p["offset"] - y}

    kwargs = {"jac": "3-point"} if jac_free else {}
    reference = (
        _reference_lsq()
        if not jac_free
        else sopt.least_squares(_flat_residual, X0_FLAT, jac="3-point")
    )
    for method in ("trf", "lm"):
        result = port.least_squares(residual, x0, method=method, **kwargs)
        reference = sopt.least_squares(
            _flat_residual, X0_FLAT, jac="3-point" if jac_free else _flat_jacobian, method=method
        )
        np.testing.assert_allclose(_flat(result.x, to_numpy), reference.x, rtol=1e-8)
        assert result.nfev == reference.nfev
        assert result.fun["r"].shape == (25,)
    if complex_step:
        # Complex-step differences: the residuals stay complex at the complex points.
        cs = port.least_squares(residual, x0, jac="cs")
        cs_reference = sopt.least_squares(_flat_residual, X0_FLAT, jac="cs")
        np.testing.assert_allclose(_flat(cs.x, to_numpy), cs_reference.x, rtol=1e-8)
        assert cs.nfev == cs_reference.nfev
        lsmr = port.least_squares(residual, x0, tr_solver="lsmr")
        flat_ref = sopt.least_squares(
            _flat_residual,
            X0_FLAT,
            jac=lambda v: sopt._lsq.common.aslinearoperator(_flat_jacobian(v)),
            tr_solver="lsmr",
        )
        np.testing.assert_allclose(_flat(lsmr.x, to_numpy), flat_ref.x, rtol=1e-6)

    def model(x, p):
        return p["decay"]["amp"] * exp(-p["decay"]["rate"] * x) + p["offset"]

    popt, pcov = port.curve_fit(model, t, Y, x0)
    popt_ref, pcov_ref = sopt.curve_fit(
        lambda x, a, k, c: a * np.exp(-k * x) + c,
        T,
        Y,
        X0_FLAT,
        jac=None if jac_free else (lambda x, *v: _flat_jacobian(np.array(v))),
    )
    np.testing.assert_allclose(_flat(popt, to_numpy), popt_ref, rtol=1e-7)
    np.testing.assert_allclose(pcov, pcov_ref, rtol=1e-5)

    def equations(p):
        return [p["a"] + p["b"] - 3.0, p["a"] * p["b"] - 2.0]

    guess = {"a": make(0.5), "b": make(2.5)}
    for method in ("hybr", "lm", "krylov", "broyden1"):
        sol = port.root(equations, guess, method=method)
        jac = _equations_jacobian if method in ("hybr", "lm") and not jac_free else None
        ref = sopt.root(_equations_flat, np.array([0.5, 2.5]), method=method, jac=jac)
        got = np.array([float(to_numpy(sol.x["a"])), float(to_numpy(sol.x["b"]))])
        np.testing.assert_allclose(got, [1.0, 2.0], rtol=1e-6)
        if method != "krylov" or jac_free:
            np.testing.assert_allclose(got, ref.x, rtol=1e-8)
            assert sol.nfev == ref.nfev
        assert len(sol.fun) == 2


def test_torch_port():
    torch = pytest.importorskip("torch")
    from pytree_minimize.ports import torch as port

    _check_port(
        port,
        lambda v: torch.tensor(v, dtype=torch.float64),
        torch.exp,
        lambda a: a.detach().numpy() if hasattr(a, "detach") else a,
    )


def test_tensorflow_port():
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports import tensorflow as port

    _check_port(
        port,
        lambda v: tf.constant(v, dtype=tf.float64),
        tf.exp,
        lambda a: a.numpy() if hasattr(a, "numpy") else a,
        complex_step=False,  # TensorFlow does not promote float64 data to complex: see below
    )


def test_tensorflow_port_complex_step():
    tf = pytest.importorskip("tensorflow")
    from pytree_minimize.ports import tensorflow as port

    def residual(p):
        t, y = (tf.cast(v, p["decay"]["amp"].dtype) for v in (T, Y))
        return p["decay"]["amp"] * tf.exp(-p["decay"]["rate"] * t) + p["offset"] - y

    x0 = {"decay": {"amp": 1.0, "rate": 1.0}, "offset": 0.0}
    x0 = tf.nest.map_structure(lambda v: tf.constant(v, tf.float64), x0)
    result = port.least_squares(residual, x0, jac="cs")
    reference = sopt.least_squares(_flat_residual, X0_FLAT, jac="cs")
    np.testing.assert_allclose(_flat(result.x, lambda a: a.numpy()), reference.x, rtol=1e-8)
    assert result.nfev == reference.nfev


def test_numpy_port_uses_finite_differences():
    from pytree_minimize.ports import numpy as port

    _check_port(port, lambda v: np.asarray(v, dtype=np.float64), np.exp, np.asarray, jac_free=True)


def test_numpy_port_defaults_to_scipys_two_point_jacobian():
    from pytree_minimize.ports import numpy as port

    x0 = {"decay": {"amp": 1.0, "rate": 1.0}, "offset": 0.0}

    def residual(p):
        return p["decay"]["amp"] * np.exp(-p["decay"]["rate"] * T) + p["offset"] - Y

    result = port.least_squares(residual, x0)
    reference = sopt.least_squares(_flat_residual, X0_FLAT)
    np.testing.assert_allclose(_flat(result.x, np.asarray), reference.x, rtol=1e-10)
    assert result.nfev == reference.nfev and result.njev == reference.njev


def _split_equation(v):  # z^2 = 3 + 4i over z = v[0] + i v[1], as two real equations
    z = v[0] + 1j * v[1]
    r = z**2 - (3.0 + 4.0j)
    return [r.real, r.imag]


@pytest.mark.parametrize("name", ["torch", "tensorflow", "numpy"])
def test_complex_residuals_in_every_port(name):
    module = pytest.importorskip(name)
    port = importlib.import_module(f"pytree_minimize.ports.{name}")
    if name == "torch":
        z0 = module.tensor([1.5 + 0.5j], dtype=module.complex128)
    elif name == "tensorflow":
        z0 = module.constant([1.5 + 0.5j], dtype=module.complex128)
    else:
        z0 = np.array([1.5 + 0.5j])
    reference = sopt.root(_split_equation, np.array([1.5, 0.5]), method="hybr")
    sol = port.root(lambda p: {"r": p["z"] ** 2 - (3.0 + 4.0j)}, {"z": z0}, method="hybr")
    got = complex(np.asarray(sol.x["z"])[0])
    assert got == pytest.approx(complex(*reference.x), abs=1e-9)
    assert got == pytest.approx(2.0 + 1.0j, abs=1e-8)
    assert np.iscomplexobj(np.asarray(sol.fun["r"]))
