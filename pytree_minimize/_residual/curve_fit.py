"""The `curve_fit` driver: scipy's `curve_fit` calling conventions and nothing else.

scipy's own `curve_fit` does the work, so its choices all hold: 'lm' (MINPACK's `leastsq`)
without bounds and 'trf' with them, `sigma` as errors or as a covariance, `nan_policy`, and its
covariance formula. This module only translates: the model `f(xdata, params)` of a parameter
pytree becomes scipy's `f(xdata, *flat_params)` with a `jac` from autodiff, and `popt` comes
back shaped like `p0`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as sopt

from .._core.backend import Backend, BackendType
from .._core.bounds import bounds_pair, flat_x_scale
from .._core.callbacks import check_callable
from .._core.tree import PyTree, build_layout, describe_host_leaf
from .._core.trees import Start, start
from . import residuals as _residuals
from .residuals import Residuals, residual_layout


def _params_first(f: Callable) -> Callable:
    def model(params: Any, xdata: Any) -> Any:
        return f(xdata, params)

    return model


class _FlatModel:
    """scipy's `f(xdata, *p)` and `jac(xdata, *p)` for the model of a parameter pytree.

    The evaluations are built for the `xdata` scipy passes (scipy may convert it, or drop the
    points that hold NaN), once per distinct `xdata` object.
    """

    def __init__(self, backend: Backend, f: Callable, start: Start, p0: PyTree, autodiff: bool):
        self.backend, self.start, self.p0 = backend, start, p0
        self.model = _residuals.adapted(f, "params_first", _params_first)
        self.swapped = f
        self.autodiff = autodiff
        self._xdata: Any = None
        self._residuals: Residuals | None = None
        self._jacobian: Callable | None = None

    def residuals(self, xdata: Any) -> Residuals:
        if self._residuals is None or xdata is not self._xdata:
            try:
                self._residuals = Residuals(
                    self.backend, self.model, self.start.layout, (xdata,), self.p0
                )
            except Exception as error:
                if self._params_first_works(xdata):
                    raise TypeError(
                        "`f` must take `(xdata, params)`, xdata first as in scipy's "
                        f"`f(xdata, *params)`; called so it raised {type(error).__name__}, "
                        "while `f(params, xdata)` runs. Swap its arguments, or pass "
                        "`lambda x, p: f(p, x)`."
                    ) from error
                raise
            self._jacobian = None
            self._xdata = xdata
        return self._residuals

    def _params_first_works(self, xdata: Any) -> bool:
        """Whether the user's `f` runs as `f(params, xdata)` (the arguments swapped)."""
        try:
            residual_layout(self.backend, self.swapped, self.start.layout, (xdata,), self.p0)
        except Exception:
            return False
        return True

    def f(self, xdata: Any, *params: float) -> np.ndarray:
        return self.residuals(xdata).values(np.asarray(params, dtype=np.float64))

    def jac(self, xdata: Any, *params: float) -> np.ndarray:
        residuals = self.residuals(xdata)
        if self._jacobian is None:
            self._jacobian = residuals.jacobian()
        return self._jacobian(np.asarray(params, dtype=np.float64))


def curve_fit(
    backend_type: BackendType,
    f: Callable,
    xdata: Any,
    ydata: Any,
    p0: PyTree,
    *,
    sigma: Any,
    absolute_sigma: bool,
    check_finite: bool | None,
    bounds: Any,
    method: str | None,
    jac: Any,
    full_output: bool,
    nan_policy: str | None,
    **kwargs: Any,
) -> tuple:
    """scipy.optimize.curve_fit over pytrees for any backend (see `pytree_minimize.curve_fit`);
    options by keyword."""
    check_callable(f, "f", "f(xdata, params)")
    if p0 is None:
        raise TypeError(
            "`p0` is required: a pytree of floating-point initial values, whose structure "
            "`f(xdata, params)` receives as `params`."
        )
    begun = start(backend_type, p0, (), entry="curve_fit", name="p0", finite=True)
    backend = begun.backend
    lb, ub = bounds_pair(bounds, begun.layout, backend)
    if "x_scale" in kwargs:
        kwargs["x_scale"] = flat_x_scale(kwargs["x_scale"], begun.layout, backend)
    model = _FlatModel(backend, f, begun, p0, backend.autodiff)
    with backend.precision(begun.layout):
        scipy_jac = _jacobian(jac, model, begun, backend)
        out = sopt.curve_fit(
            model.f,
            xdata,
            ydata,
            p0=begun.x0_flat,
            sigma=sigma,
            absolute_sigma=absolute_sigma,
            check_finite=check_finite,
            bounds=(lb, ub),
            method=method,
            jac=scipy_jac,
            full_output=full_output,
            nan_policy=nan_policy,
            **kwargs,
        )
    popt = begun.trees.tree(out[0])
    return (popt, *out[1:])


def _jacobian(jac: Any, model: _FlatModel, start: Start, backend: Backend) -> Any:
    if jac is None:
        return model.jac if backend.autodiff else None
    if isinstance(jac, str):
        return jac
    if callable(jac):
        user_jac, trees = jac, start.trees

        def flat_jac(xdata: Any, *params: float) -> Any:
            residuals = model.residuals(xdata)
            matrix = user_jac(xdata, trees.tree(np.asarray(params, dtype=np.float64)))
            return _residuals.check_flat_matrix(matrix, (residuals.m, residuals.n), name="jac")

        return flat_jac
    raise TypeError(
        f"`jac` must be None (autodiff), a callable `jac(xdata, params)` or one of '2-point', "
        f"'3-point', 'cs'; got {type(jac).__name__}."
    )


def standard_errors(pcov: Any, like: PyTree) -> PyTree:
    """One-standard-deviation errors, `sqrt(diag(pcov))`, as a pytree shaped like `like`.

    Args:
        pcov: The n-by-n covariance over the flat vector (from :func:`curve_fit`).
        like: The parameter pytree (`p0` or `popt`) that fixes the flat layout.

    Returns:
        A pytree with `like`'s structure whose leaves are float64 NumPy arrays of each leaf's
        shape (complex leaves: the real part's error plus 1j times the imaginary part's).

    Examples:
        >>> import numpy as np
        >>> from pytree_minimize import standard_errors
        >>> standard_errors(np.diag([4.0, 9.0, 0.25]), {"a": 0.0, "b": np.zeros(2)})
        {'a': array(2.), 'b': array([3. , 0.5])}
    """
    if "jax" in sys.modules:  # JAX-registered nodes (equinox Modules) come only with JAX loaded
        from .._backends.jax import register_jax_nodes

        register_jax_nodes(like)
    layout = build_layout(like, describe_leaf=_describe_as_float64, name="like")
    pcov = np.asarray(pcov, dtype=np.float64)
    if pcov.shape != (layout.n, layout.n):
        raise ValueError(
            f"`pcov` has shape {pcov.shape}; `like` has {layout.n} parameters in the flat "
            f"layout, so expected ({layout.n}, {layout.n})."
        )
    return layout.unflatten(layout.unravel(np.sqrt(np.diag(pcov))))


def _describe_as_float64(leaf: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    """A leaf of any framework as the float64 (complex128 for a complex leaf) array of its shape
    that holds its standard errors."""
    shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
    if shape is None or dtype is None:
        described = describe_host_leaf(leaf)
        if described is None:
            return None
        shape, dtype = described
    kind = np.complex128 if "complex" in str(dtype) else np.float64
    return tuple(int(d) for d in shape), np.dtype(kind)
