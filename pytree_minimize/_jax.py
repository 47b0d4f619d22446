"""The JAX entry points that `pytree_minimize` exports, built from the one stub of each entry
point (`_core.surface`) with the JAX backend."""

from __future__ import annotations

from ._backends.jax import JaxBackend
from ._core.surface import Framework, build
from ._global import api as _global
from ._minimize import api as _minimize
from ._residual import api as _residual

JAX = Framework(
    module="pytree_minimize",
    backend=JaxBackend,
    words={
        "framework": "JAX",
        "tree": "pytree",
        "leaves": "floating-point (or complex) JAX or NumPy arrays or Python floats",
        "code": "JAX-traceable (compiled once with `jax.jit`, cached across calls)",
        "derivatives": "autodiff, compiled once with `jax.jit` and cached across calls",
        "args": "traced: new values never recompile",
        "jac_none": "autodiff",
        "hess_none": (
            "autodiff where the method uses it: a dense Hessian for dogleg and trust-exact, "
            "Hessian-vector products for the others"
        ),
        "hessp_none": "autodiff Hessian-vector products where the method uses them",
        "constraint_derivatives": "come from autodiff unless given",
        "jacobian_none": (
            "autodiff: the dense Jacobian, forward mode when there are at least as many "
            "residuals as parameters, else reverse mode; with `tr_solver='lsmr'` a matrix-free "
            "`LinearOperator` from Jacobian-vector products"
        ),
        "root_jacobian_none": (
            "for 'hybr' and 'lm' the dense Jacobian from autodiff; for 'krylov' exact "
            "Jacobian-vector products in place of scipy's finite differences; the other "
            "methods use no Jacobian"
        ),
        "ipopt_derivatives": (
            "exact sparse constraint Jacobians and Lagrangian Hessians where detected"
        ),
        "sparse_support": (
            "Patterns are detected from the JAX program and coloured once per compiled problem (the"
            " `sparse` extra, asdex); one that cannot be detected falls back to dense with one "
            "`SparsityWarning` naming the operation."
        ),
        "result_leaves": "`x0`'s leaf types, dtypes and shardings",
        "batched": "evaluated in one compiled `jax.vmap` call",
        "module": "pytree_minimize",
        "import": "import jax.numpy as jnp",
        "tensor": "np.asarray",
        "sum": "jnp.sum",
        "exp": "jnp.exp",
        "cos": "jnp.cos",
    },
)

minimize = build(_minimize.MINIMIZE, JAX)
least_squares = build(_residual.LEAST_SQUARES, JAX)
curve_fit = build(_residual.CURVE_FIT, JAX)
root = build(_residual.ROOT, JAX)
differential_evolution = build(_global.DIFFERENTIAL_EVOLUTION, JAX)
dual_annealing = build(_global.DUAL_ANNEALING, JAX)
basinhopping = build(_global.BASINHOPPING, JAX)
shgo = build(_global.SHGO, JAX)
direct = build(_global.DIRECT, JAX)
