"""`curve_fit` for JAX (and NumPy) pytrees: the public entry point and its docstring; and
`standard_errors`, which lays the covariance's diagonal out like the parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from . import _curve_fit_driver
from ._jax_backend import JaxBackend, register_jax_nodes
from ._tree import NAMESPACE, PyTree


def curve_fit(
    f: Callable[..., Any],
    xdata: Any,
    ydata: Any,
    p0: PyTree,
    sigma: Any = None,
    absolute_sigma: bool = False,
    check_finite: bool | None = None,
    bounds: Any = (-np.inf, np.inf),
    method: str | None = None,
    jac: Any = None,
    *,
    full_output: bool = False,
    nan_policy: str | None = None,
    **kwargs: Any,
) -> tuple:
    """Fit `f(xdata, params)` to data with `scipy.optimize.curve_fit`, `params` a pytree.

    The arguments, their order and their defaults are scipy's, except that `p0` is required
    (it fixes the parameter pytree) and `f` takes the pytree whole. `jac=None` means autodiff.
    Results equal scipy's `curve_fit` on the flat problem given the exact Jacobian.

    Args:
        f: `f(xdata, params)`, JAX-traceable, returning the model at `xdata` (an array, or a
            pytree of arrays raveled in optree order to match `ydata`).
        xdata: The independent variable: an array, or any pytree (passed to `f` as it is;
            traced, so new data of the same shapes never recompiles).
        ydata: The dependent data, a 1-D array (or array-like) of m values.
        p0: Initial parameters, a pytree of floating-point arrays.
        sigma: None, 1-D errors of `ydata`, or its m-by-m covariance matrix (as scipy's).
        absolute_sigma: As scipy's: whether `sigma` is absolute (else `pcov` is rescaled).
        check_finite: As scipy's (checks `ydata` and array `xdata`).
        bounds: `pytree_minimize.Bounds(lb, ub)`, scipy's `Bounds`, or a pair `(lb, ub)`; each
            side a scalar, a pytree like `p0` or a prefix of it.
        method: None ('lm' without bounds, 'trf' with), 'lm', 'trf' or 'dogbox'.
        jac: None (autodiff), '2-point', '3-point', 'cs', or `jac(xdata, params)` returning
            the m-by-n Jacobian over the flat vector.
        full_output: Also return scipy's `infodict`, `mesg` and `ier`.
        nan_policy: As scipy's (None, 'raise' or 'omit').
        **kwargs: Passed to scipy's `leastsq` ('lm') or `least_squares` (otherwise); an
            `x_scale` may be a pytree like `p0` (or a prefix of it).

    Returns:
        `(popt, pcov)`, or `(popt, pcov, infodict, mesg, ier)` with `full_output=True`. `popt`
        has `p0`'s structure and leaf types; `pcov` is the n-by-n covariance over the flat
        vector (leaves raveled in optree order). `standard_errors(pcov, popt)` gives the
        standard errors shaped like `p0`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from pytree_minimize import curve_fit, standard_errors
        >>> x = np.linspace(0.0, 4.0, 50)
        >>> y = 2.5 * np.exp(-1.3 * x) + 0.5 + 0.01 * np.sin(7 * x)
        >>> def model(x, p):
        ...     return p["decay"]["amp"] * jnp.exp(-p["decay"]["rate"] * x) + p["offset"]
        >>> p0 = {"decay": {"amp": 1.0, "rate": 1.0}, "offset": 0.0}
        >>> popt, pcov = curve_fit(model, x, y, p0)
        >>> round(float(popt["decay"]["rate"]), 1), pcov.shape
        (1.3, (3, 3))
        >>> errors = standard_errors(pcov, popt)
        >>> sorted(errors), bool(errors["offset"] < 0.01)
        (['decay', 'offset'], True)
    """
    return _curve_fit_driver.curve_fit(
        JaxBackend(),  # one per call: it records p0's shardings
        f,
        xdata,
        ydata,
        p0,
        sigma=sigma,
        absolute_sigma=absolute_sigma,
        check_finite=check_finite,
        bounds=bounds,
        method=method,
        jac=jac,
        full_output=full_output,
        nan_policy=nan_policy,
        **kwargs,
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
    register_jax_nodes(like)
    leaves, treedef = optree.tree_flatten(like, namespace=NAMESPACE)
    shapes = [tuple(np.shape(leaf)) for leaf in leaves]
    complex_ = [_is_complex(leaf) for leaf in leaves]
    n = sum(int(np.prod(s)) * (2 if c else 1) for s, c in zip(shapes, complex_, strict=True))
    pcov = np.asarray(pcov, dtype=np.float64)
    if pcov.shape != (n, n):
        raise ValueError(
            f"`pcov` has shape {pcov.shape}; `like` has {n} parameters in the flat layout, so "
            f"expected ({n}, {n})."
        )
    errors = np.sqrt(np.diag(pcov))
    out, offset = [], 0
    for shape, is_complex in zip(shapes, complex_, strict=True):
        size = int(np.prod(shape))
        part = errors[offset : offset + size]
        if is_complex:
            part = part + 1j * errors[offset + size : offset + 2 * size]
        offset += size * (2 if is_complex else 1)
        out.append(part.reshape(shape))
    return optree.tree_unflatten(treedef, out)


def _is_complex(leaf: Any) -> bool:
    dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
    return "complex" in str(dtype)
