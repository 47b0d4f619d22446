"""The `curve_fit` driver: scipy's `curve_fit` calling conventions and nothing else.

scipy's own `curve_fit` does the work, so its choices all hold: 'lm' (MINPACK's `leastsq`)
without bounds and 'trf' with them, `sigma` as errors or as a covariance, `nan_policy`, and its
covariance formula. This module only translates the model, in one of two conventions:

- scipy's, where `p0` is None or what scipy reads as a 1-D array: `f(xdata, *params)`, the
  number of parameters from `p0` or from `f`'s signature (scipy's rule), `popt` an array. The
  NumPy port then calls scipy's `curve_fit` with the user's callables unchanged
  (`dropin.takes_as_is`); a backend with autodiff adds the Jacobian.
- the pytree one, where `p0` is a pytree: `f(xdata, params)` with `params` like `p0`, and `popt`
  shaped like `p0`.

Either way scipy receives `f(xdata, *flat_params)` with a `jac` from autodiff.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .._core.backend import Backend, BackendType
from .._core.bounds import bounds_pair, flat_x_scale
from .._core.callbacks import check_callable
from .._core.dropin import SCIPY, is_flat_vector_x0, scipy_array, scipy_forms, takes_as_is
from .._core.tree import PyTree, build_layout, describe_host_leaf
from .._core.trees import Start, start
from . import residuals as _residuals
from .residuals import Residuals, residual_layout


def _params_first(f: Callable) -> Callable:
    def model(params: Any, xdata: Any) -> Any:
        return f(xdata, params)

    return model


def _params_spread(f: Callable) -> Callable:
    def model(params: Any, xdata: Any) -> Any:
        return f(xdata, *(params[i] for i in range(params.shape[0])))

    return model


class _FlatModel:
    """scipy's `f(xdata, *p)` and `jac(xdata, *p)` for the user's model.

    The evaluations are built for the `xdata` scipy passes (scipy may convert it, or drop the
    points that hold NaN), once per distinct `xdata` object.

    Args:
        backend: The call's backend.
        f: The user's model.
        start: `p0` laid out.
        spread: scipy's convention, `f(xdata, *params)`; else `f(xdata, params)`.
    """

    def __init__(self, backend: Backend, f: Callable, start: Start, *, spread: bool):
        self.backend, self.start, self.spread = backend, start, spread
        if spread:
            self.model = _residuals.adapted(f, "params_spread", _params_spread)
        else:
            self.model = _residuals.adapted(f, "params_first", _params_first)
        self.swapped = f
        #: Whether scipy gets this model's Jacobian (else it differences the values, which then
        #: come in their own precision).
        self.exact_jacobian = False
        self._xdata: Any = None
        self._residuals: Residuals | None = None
        self._jacobian: Callable | None = None

    def residuals(self, xdata: Any) -> Residuals:
        if self._residuals is None or xdata is not self._xdata:
            try:
                self._residuals = Residuals(
                    self.backend, self.model, self.start.layout, (xdata,), self.start.x0
                )
            except Exception as error:
                if not self.spread and self._params_first_works(xdata):
                    raise TypeError(
                        "`f` must take `(xdata, params)`, xdata first as in scipy's "
                        f"`f(xdata, *params)`; called so it raised {type(error).__name__}, "
                        "while `f(params, xdata)` runs. Swap its arguments, or pass "
                        "`lambda x, p: f(p, x)`."
                    ) from error
                raise
            if self._residuals.out_layout.has_complex:
                raise TypeError(
                    "`f` returned complex values; curve_fit fits real `ydata`, as scipy's does. "
                    "Fit a complex model by its real and imaginary parts: return "
                    "`jnp.concatenate([m.real, m.imag])` from `f` and pass "
                    "`ydata=np.concatenate([y.real, y.imag])`."
                )
            self._jacobian = None
            self._xdata = xdata
        return self._residuals

    def _params_first_works(self, xdata: Any) -> bool:
        """Whether the user's `f` runs as `f(params, xdata)` (the arguments swapped)."""
        try:
            residual_layout(self.backend, self.swapped, self.start.layout, (xdata,), self.start.x0)
        except Exception:
            return False
        return True

    def f(self, xdata: Any, *params: float) -> np.ndarray:
        residuals = self.residuals(xdata)
        values = residuals.values if self.exact_jacobian else residuals.differenced_values()
        return values(np.asarray(params, dtype=np.float64))

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
    check_callable(f, "f", "f(xdata, *params)")
    options = dict(
        sigma=sigma, absolute_sigma=absolute_sigma, check_finite=check_finite, method=method,
        full_output=full_output, nan_policy=nan_policy, **kwargs,
    )  # fmt: skip
    spread = p0 is None or scipy_array(p0) is not None or is_flat_vector_x0(p0)
    if spread and takes_as_is(backend_type, p0, bounds):
        return SCIPY.curve_fit(f, xdata, ydata, p0, bounds=scipy_forms(bounds), jac=jac, **options)
    if p0 is None:
        p0 = _feasible_start(_parameter_count(f), bounds)
    if sigma is not None and np.ndim(sigma) == 0:
        # scipy's meaning of a scalar `sigma`, the same error for every point, as a vector: scipy
        # transforms a given Jacobian (this driver's, from autodiff) only by a vector or matrix.
        options["sigma"] = np.full(np.size(ydata), float(sigma))
    begun = start(backend_type, p0, (), entry="curve_fit", name="p0", finite=True)
    backend = begun.backend
    layout = begun.layout
    if not spread and layout.is_single_array and len(layout.leaves[0].shape) == 1:
        spread = layout.leaves[0].dtype.kind != "c"  # a framework's 1-D array: scipy's reading
    lb, ub = bounds_pair(bounds, layout, backend)
    if "x_scale" in options:
        options["x_scale"] = flat_x_scale(options["x_scale"], layout, backend)
    model = _FlatModel(backend, f, begun, spread=spread)
    with backend.precision(layout):
        scipy_jac = _jacobian(jac, model, begun, backend, spread=spread)
        model.exact_jacobian = callable(scipy_jac)
        out = SCIPY.curve_fit(
            model.f, xdata, ydata, p0=begun.x0_flat, bounds=(lb, ub), jac=scipy_jac, **options
        )
    popt = begun.trees.tree(out[0])
    return (popt, *out[1:])


def _parameter_count(f: Callable) -> int:
    """scipy's rule for `p0=None`: one parameter per positional parameter of `f` after `xdata`
    (`self` of a bound method not counted).

    Raises:
        ValueError: `f` takes fewer than two positional parameters (scipy's error).
    """
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        parameters = []  # type: ignore[assignment]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        raise ValueError(
            "Unable to determine number of fit parameters: `p0` is None and `f` takes "
            f"{len(positional)} positional parameter(s); scipy counts those after `xdata`. Pass "
            "`p0` (an array of initial values, or a pytree for `f(xdata, params)`)."
        )
    return len(positional) - 1


def _feasible_start(n: int, bounds: Any) -> np.ndarray:
    """scipy's start for `p0=None`: ones, moved inside finite bounds (the middle of a finite
    box, one inside a single finite side). Bounds it cannot read give ones (and their own error
    where they are read)."""
    sides = (bounds.lb, bounds.ub) if hasattr(bounds, "lb") else bounds
    try:
        lb, ub = (
            np.broadcast_to(np.asarray(fill if side is None else side, dtype=np.float64), (n,))
            for side, fill in zip(sides, (-np.inf, np.inf), strict=True)
        )
    except (TypeError, ValueError):
        return np.ones(n)
    lower, upper = np.isfinite(lb), np.isfinite(ub)
    with np.errstate(invalid="ignore"):  # inf - inf where a side is open: not selected
        inside = np.where(lower, lb + 1.0, np.where(upper, ub - 1.0, 1.0))
        return np.where(lower & upper, 0.5 * (lb + ub), inside)


def _jacobian(jac: Any, model: _FlatModel, start: Start, backend: Backend, *, spread: bool) -> Any:
    if jac is None:
        return model.jac if backend.autodiff else None
    if isinstance(jac, str):
        return jac
    if callable(jac):
        user_jac, trees = jac, start.trees

        def flat_jac(xdata: Any, *params: float) -> Any:
            residuals = model.residuals(xdata)
            flat = np.asarray(params, dtype=np.float64)
            if spread:
                matrix = user_jac(xdata, *trees.tree(flat))
            else:
                matrix = user_jac(xdata, trees.tree(flat))
            return _residuals.check_flat_matrix(matrix, (residuals.m, residuals.n), name="jac")

        return flat_jac
    raise TypeError(
        f"`jac` must be None (autodiff), a callable `jac(xdata, *params)` (`jac(xdata, params)` "
        f"for a pytree `p0`) or one of '2-point', '3-point', 'cs'; got {type(jac).__name__}."
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
