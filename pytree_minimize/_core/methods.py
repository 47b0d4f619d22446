"""The method table: the only module that knows scipy's methods by name.

Every fact that depends on which scipy method runs (its derivatives, whether it takes bounds or
constraints and in which form, where its multipliers come from, how it calls back) is a field of
`MethodInfo`; other modules read the fields and never compare method names. Error messages that
list methods are generated from the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

#: scipy's finite-difference schemes, as `jac`, `hess` and constraint `jac` values.
FINITE_DIFFERENCES = ("2-point", "3-point", "cs")


class MethodInfo(NamedTuple):
    """What a scipy method uses and how it talks back.

    Attributes:
        name: scipy's spelling.
        gradient: whether the method uses a gradient (autodiff supplies it when `jac` is None).
        hessian: what autodiff supplies when `hess` is None: "dense" (a matrix), "hvp"
            (Hessian-vector products) or None.
        bounds: whether the method takes `bounds`.
        constraints: whether the method takes `constraints`.
        needs_jac: scipy raises without a gradient (no finite-difference fallback).
        needs_hess: scipy raises without `hess` or `hessp`.
        constraint_form: "dict" (old-style dicts) or "object" (`NonlinearConstraint` /
            `LinearConstraint`); None when the method takes no constraints.
        constraint_derivatives: whether constraint Jacobians are handed to scipy.
        constraint_hessians: whether constraint Hessians (`hess(x, v)`) are handed to scipy.
        drops_fixed_variables: scipy removes variables fixed by the bounds and calls nonlinear
            constraints with the shortened vector.
        drops_fixed_in_linear: ... and linear constraints too (they must become nonlinear).
        drops_fixed_below_float64: we remove variables fixed by the bounds when a leaf is narrower
            than float64: scipy keeps them as constraints whose last correction a float32
            objective cannot resolve (`_fixed_variables`).
        multipliers: where the constraint multipliers come from: "multipliers" (scipy's field of
            that name, our sign), "negated_v" (minus scipy's `v`) or None.
        callback: "intermediate" (`callback(intermediate_result)`) or "legacy" (only
            `callback(xk)`).
        legacy_callback_state: a legacy user callback receives `(x, state)` (trust-constr).
        vector_only: the method's own linear algebra works on vectors (or matrices of a few
            columns), where threaded BLAS only contends (see `_threads`).
        reports_earlier_iterate: the callback may report the evaluation before the latest one,
            without its gradient (a trust-region method after rejecting a trial point).
        interior_bounds: the method stops strictly inside the box (an interior-point method),
            and the bounds' multipliers are the last entry of scipy's `v`.
        gradient_fields: the result's fields, besides `jac`, that hold a gradient over the flat
            vector (returned as pytrees like `x0`).
        solver: who runs the method: "scipy" (`scipy.optimize.minimize`) or "ipopt" (IPOPT
            through cyipopt, the `ipopt` extra; `_ipopt_driver`).
        sparse_hessian: the method takes the objective's Hessian as a sparse matrix (`sparse=`
            then makes it one where the dense form would be too large, or always with True).
        sparse_constraint_jacobians: the method takes constraint Jacobians (and constraint
            Hessians) as sparse matrices.
    """

    name: str
    gradient: bool
    hessian: str | None
    bounds: bool
    constraints: bool
    needs_jac: bool = False
    needs_hess: bool = False
    constraint_form: str | None = None
    constraint_derivatives: bool = False
    constraint_hessians: bool = False
    drops_fixed_variables: bool = False
    drops_fixed_in_linear: bool = False
    drops_fixed_below_float64: bool = False
    multipliers: str | None = None
    callback: str = "intermediate"
    legacy_callback_state: bool = False
    interior_bounds: bool = False
    gradient_fields: tuple[str, ...] = ()
    vector_only: bool = False
    reports_earlier_iterate: bool = False
    solver: str = "scipy"
    sparse_hessian: bool = False
    sparse_constraint_jacobians: bool = False


_TABLE = (
    MethodInfo("Nelder-Mead", False, None, True, False, vector_only=True),
    MethodInfo("Powell", False, None, True, False, vector_only=True),
    MethodInfo("CG", True, None, False, False, vector_only=True),
    MethodInfo("BFGS", True, None, False, False),
    MethodInfo("Newton-CG", True, "hvp", False, False, needs_jac=True, vector_only=True),
    MethodInfo("L-BFGS-B", True, None, True, False, vector_only=True),
    MethodInfo("TNC", True, None, True, False, callback="legacy", vector_only=True),
    MethodInfo(
        "COBYLA",
        False,
        None,
        True,
        True,
        constraint_form="object",
        drops_fixed_variables=True,
        drops_fixed_in_linear=True,
        vector_only=True,
    ),
    MethodInfo(
        "COBYQA", False, None, True, True, constraint_form="object", drops_fixed_variables=True
    ),
    MethodInfo(
        "SLSQP",
        True,
        None,
        True,
        True,
        constraint_form="dict",
        constraint_derivatives=True,
        multipliers="multipliers",
    ),
    MethodInfo(
        "trust-constr",
        True,
        "hvp",
        True,
        True,
        constraint_form="object",
        constraint_derivatives=True,
        constraint_hessians=True,
        drops_fixed_below_float64=True,
        multipliers="negated_v",
        legacy_callback_state=True,
        interior_bounds=True,
        gradient_fields=("grad", "lagrangian_grad"),
        sparse_hessian=True,
        sparse_constraint_jacobians=True,
    ),
    MethodInfo(
        "dogleg",
        True,
        "dense",
        False,
        False,
        needs_jac=True,
        needs_hess=True,
        reports_earlier_iterate=True,
    ),
    MethodInfo(
        "trust-ncg",
        True,
        "hvp",
        False,
        False,
        needs_jac=True,
        needs_hess=True,
        vector_only=True,
        reports_earlier_iterate=True,
    ),
    MethodInfo(
        "trust-exact",
        True,
        "dense",
        False,
        False,
        needs_jac=True,
        needs_hess=True,
        reports_earlier_iterate=True,
    ),
    MethodInfo(
        "trust-krylov",
        True,
        "hvp",
        False,
        False,
        needs_jac=True,
        needs_hess=True,
        vector_only=True,
        reports_earlier_iterate=True,
    ),
    # IPOPT (cyipopt, the `ipopt` extra): an interior-point method run by `_ipopt_driver`, with
    # exact (sparse where detected) constraint Jacobians and Lagrangian Hessians.
    MethodInfo(
        "ipopt",
        True,
        None,
        True,
        True,
        constraint_derivatives=True,
        interior_bounds=True,
        solver="ipopt",
        sparse_hessian=True,
        sparse_constraint_jacobians=True,
    ),
)

METHODS: dict[str, MethodInfo] = {info.name.lower(): info for info in _TABLE}
METHOD_NAMES = tuple(info.name for info in _TABLE)

#: A callable `method`: scipy hands it old-style constraint dicts and calls back with
#: `intermediate_result`.
_CUSTOM = MethodInfo(
    "custom", True, None, True, True, constraint_form="dict", constraint_derivatives=True
)


def default(*, has_bounds: bool, has_constraints: bool) -> MethodInfo:
    """scipy's choice when `method` is None."""
    name = "slsqp" if has_constraints else "l-bfgs-b" if has_bounds else "bfgs"
    return METHODS[name]


def normalize_method(method: Any, *, has_bounds: bool, has_constraints: bool) -> MethodInfo:
    """scipy's method table entry for `method`; None chooses as scipy does."""
    if method is None:
        return default(has_bounds=has_bounds, has_constraints=has_constraints)
    if callable(method):
        return _CUSTOM._replace(name=getattr(method, "__name__", "custom"))
    if not isinstance(method, str):
        raise TypeError(
            f"`method` must be a string, a callable or None; got {type(method).__name__}."
        )
    try:
        return METHODS[method.lower()]
    except KeyError:
        raise ValueError(
            f"`method` {method!r} is not a scipy.optimize.minimize method; expected one of "
            f"{', '.join(METHOD_NAMES)}, a callable, or None."
        ) from None


def solver_of(method: Any) -> str:
    """Who runs `method` ("scipy" or "ipopt"): known before the rest of the inputs are read, so
    that a method scipy does not have never reaches scipy's conventions."""
    if isinstance(method, str) and method.lower() in METHODS:
        return METHODS[method.lower()].solver
    return "scipy"


def names_where(predicate: Callable[[MethodInfo], bool]) -> str:
    """The quoted names of the methods with a property, for error messages."""
    return ", ".join(repr(info.name) for info in _TABLE if predicate(info))


def check_takes(info: MethodInfo, *, bounds: bool, constraints: bool) -> None:
    """Raise if `bounds` or `constraints` were given to a method that does not take them."""
    if bounds and not info.bounds:
        raise ValueError(
            f"`bounds` were given, but method {info.name!r} does not take bounds; use one of "
            f"{names_where(lambda i: i.bounds)} (or drop `bounds`)."
        )
    if constraints and not info.constraints:
        raise ValueError(
            f"`constraints` were given, but method {info.name!r} does not take constraints; use "
            f"one of {names_where(lambda i: i.constraints)} (or drop `constraints`)."
        )


# ---------------------------------------------------------------------------------------------
# The global optimisers' facts about local methods and constraints.

#: How `differential_evolution` and `shgo` take constraints: they only test feasibility, with
#: new-style objects and no derivatives (their local steps take the user's pytree constraints).
GLOBAL_FEASIBILITY = MethodInfo(
    "global feasibility", False, None, True, True, constraint_form="object"
)
#: `differential_evolution(polish=True)`: scipy polishes with L-BFGS-B, or with trust-constr
#: when there are constraints.
DE_POLISH = METHODS["l-bfgs-b"]
DE_POLISH_CONSTRAINED = METHODS["trust-constr"]
#: `dual_annealing`'s local search without `minimizer_kwargs`: L-BFGS-B in the box.
ANNEALING_LOCAL_SEARCH = METHODS["l-bfgs-b"]
#: `shgo`'s local method, and its options when no `minimizer_kwargs` are given.
SHGO_LOCAL = METHODS["slsqp"]
SHGO_DEFAULT_OPTIONS = {"ftol": 1e-12}
#: The exception a global method raises for an objective that returns more than one number:
#: scipy's `differential_evolution` checks and raises `RuntimeError`; the others fail inside
#: NumPy with a `ValueError`.
GLOBAL_NOT_SCALAR: dict[str, type[Exception]] = {"differential_evolution": RuntimeError}

# scipy.optimize.least_squares and scipy.optimize.root, each with a table of its own.


class LeastSquaresMethod(NamedTuple):
    """A method of `scipy.optimize.least_squares`.

    Attributes:
        name: scipy's spelling.
        bounds: whether the method takes `bounds`.
        needs_m_ge_n: whether it needs at least as many residuals as parameters.
        operator_jacobian: whether it takes a `LinearOperator` Jacobian (then `tr_solver='lsmr'`
            gets the matrix-free one from Jacobian-vector products).
        calls_back: whether scipy calls its `callback` (it warns and never does otherwise).
        sparse_jacobian: whether it takes a sparse Jacobian (with `tr_solver` None or 'lsmr').
    """

    name: str
    bounds: bool
    needs_m_ge_n: bool
    operator_jacobian: bool
    calls_back: bool
    sparse_jacobian: bool = False


LEAST_SQUARES_METHODS: dict[str, LeastSquaresMethod] = {
    info.name: info
    for info in (
        LeastSquaresMethod("trf", True, False, True, True, sparse_jacobian=True),
        LeastSquaresMethod("dogbox", True, False, True, True, sparse_jacobian=True),
        LeastSquaresMethod("lm", False, True, False, False),
    )
}


def least_squares_method(method: Any) -> LeastSquaresMethod:
    """The `least_squares` table entry for `method`."""
    try:
        return LEAST_SQUARES_METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"`method` must be one of {', '.join(map(repr, LEAST_SQUARES_METHODS))} for "
            f"least_squares; got {method!r}."
        ) from None


def least_squares_names_where(predicate: Callable[[LeastSquaresMethod], bool]) -> str:
    return " or ".join(repr(i.name) for i in LEAST_SQUARES_METHODS.values() if predicate(i))


class RootMethod(NamedTuple):
    """A method of `scipy.optimize.root`.

    Attributes:
        name: scipy's spelling.
        jacobian: what autodiff supplies when `jac` is None: "dense" (the matrix), "products"
            (exact Jacobian-vector products in place of scipy's finite differences) or None
            (the method uses no Jacobian).
        callback: "x_f" (`callback(x, f)`) or None (scipy warns and never calls back).
        overdetermined: whether `fun` may return more values than `x0` has (a least-squares
            solve).
        sparse_jacobian: whether `sparse=` applies: 'krylov' solves its inner linear systems
            with the sparse Jacobian in place of Jacobian-vector products (scipy's other root
            methods take a dense Jacobian or none).
    """

    name: str
    jacobian: str | None
    callback: str | None
    overdetermined: bool
    sparse_jacobian: bool = False


ROOT_METHODS: dict[str, RootMethod] = {
    info.name: info
    for info in (
        RootMethod("hybr", "dense", None, False),
        RootMethod("lm", "dense", None, True),
        RootMethod("broyden1", None, "x_f", False),
        RootMethod("broyden2", None, "x_f", False),
        RootMethod("anderson", None, "x_f", False),
        RootMethod("linearmixing", None, "x_f", False),
        RootMethod("diagbroyden", None, "x_f", False),
        RootMethod("excitingmixing", None, "x_f", False),
        RootMethod("krylov", "products", "x_f", False, sparse_jacobian=True),
        RootMethod("df-sane", None, "x_f", False),
    )
}


def root_method(method: Any) -> RootMethod:
    """The `root` table entry for `method` (case-insensitive, as scipy)."""
    info = ROOT_METHODS.get(method.lower()) if isinstance(method, str) else None
    if info is None:
        raise ValueError(
            f"`method` must be one of {', '.join(map(repr, ROOT_METHODS))} for root; got "
            f"{method!r}."
        )
    return info
