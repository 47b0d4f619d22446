"""Words for error messages that depend on what the user passed: how to describe a value a
function returned, and how to cast a leaf in the user's own framework.

Framework-neutral: a value is read only through `shape` and its type's module name, so no
framework is imported here.
"""

from __future__ import annotations

from typing import Any

from .methods import names_where


def describe_returned(value: Any) -> str:
    """`value` as a message names it: "a scalar", "an array of shape (3,)" or "a dict".

    Examples:
        >>> describe_returned(1.5), describe_returned({"a": 1})
        ('a scalar', 'a dict')
    """
    if isinstance(value, int | float | complex):
        return "a scalar"
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, tuple | list | dict):
        return f"a {type(value).__name__}"
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):  # a dimension unknown at trace time
        return f"a {type(value).__name__}"
    return "a scalar" if shape == () else f"an array of shape {shape}"


def no_gradient(dtype: Any) -> str:
    """The message for an objective whose value (of `dtype`, a bool or integer type) has no
    gradient, raised where a method would differentiate it."""
    return (
        f"`fun` returned a value of dtype {dtype}, which has no gradient: autodiff would give "
        "zero everywhere and the method would stop at `x0`. Return a floating-point value that "
        "varies with `x` (a count or a test like `all(x > 0)` does not), or use a "
        f"derivative-free method: {names_where(lambda info: not info.gradient)}."
    )


def zero_gradient() -> str:
    """The warning for an objective whose gradient autodiff knows to be zero everywhere."""
    return (
        "`fun`'s gradient is zero everywhere: its value depends on `x` only through "
        "comparisons, rounding or integer casts (for example `jnp.all(x > 0)`, `jnp.round(x)`, "
        "`.astype(int)`), whose derivatives are zero. A gradient method sees a zero gradient "
        "and stops at `x0`. Use a derivative-free method "
        f"({names_where(lambda info: not info.gradient)}), or make the value smooth in `x` "
        "(for example `jax.nn.sigmoid(k * x)` in place of `x > 0`)."
    )


def float_cast_hint(leaf: Any) -> str:
    """How to make `leaf` floating-point, in the terms of the leaf's own type.

    Examples:
        >>> float_cast_hint(3)
        'write the number as a float (`3.0`, or `float(x)`; a list of numbers as `np.asarray(x, dtype=float)`)'
    """  # noqa: E501
    if isinstance(leaf, bool | int):
        return (
            f"write the number as a float (`{float(leaf)!r}`, or `float(x)`; a list of numbers "
            "as `np.asarray(x, dtype=float)`)"
        )
    module = type(leaf).__module__.split(".")[0]
    if module == "torch":
        return "cast the tensor, for example `x.double()` (or `x.float()` for float32)"
    if module in ("tensorflow", "tf_keras", "keras"):
        return "cast the tensor, for example `tf.cast(x, tf.float64)`"
    return "cast the leaf, for example `x.astype(float)`"


#: How to fit a `torch.nn.Module`, in three lines (the torch port's own helpers).
TORCH_MODULE_PATTERN = (
    "params = parameters_of(model)  # from pytree_minimize.ports.torch\n"
    "    res = minimize(lambda p: loss_fn(torch.func.functional_call(model, p, (X,)), Y), params)\n"
    "    load_into(model, res.x)"
)


def torch_module_hint() -> str:
    """How to fit a module's parameters: optimise a dict of them, evaluate the module with
    `torch.func.functional_call`, and write the solution back."""
    return (
        "To fit a torch module, optimise its parameters as a dict and evaluate the module "
        "functionally with them:\n    " + TORCH_MODULE_PATTERN
    )


def _module_root(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def _is_torch_module(value: Any) -> bool:
    return any(
        cls.__name__ == "Module" and cls.__module__ == "torch.nn.modules.module"
        for cls in type(value).__mro__
    )


def not_array_hint(leaf: Any, tree: Any) -> str:
    """The fix for a leaf of `x0` that is not an array (a module passed whole, a function inside
    a model's pytree), in the terms of the user's framework.

    Examples:
        >>> not_array_hint("text", {"a": "text"})
        'Pass fixed values through `args`.'
    """
    if _is_torch_module(leaf):
        return torch_module_hint()
    if _module_root(tree) == "equinox" or _module_root(leaf) == "equinox" or callable(leaf):
        if _module_root(tree) == "equinox":
            return (
                "An equinox module holds fields that are not arrays (activations, static "
                "settings): split it with `params, static = eqx.partition(model, "
                "eqx.is_inexact_array)`, pass `params` as `x0` and rebuild the module inside "
                "`fun` with `eqx.combine(p, static)`; `eqx.combine(res.x, static)` is the "
                "fitted module."
            )
        return "Pass functions and other fixed values through `args` (or close over them)."
    if _module_root(leaf) in ("keras", "tf_keras", "tensorflow") and hasattr(
        leaf, "trainable_variables"
    ):
        return (
            "To fit a Keras model, optimise `model.trainable_variables` and write the solution "
            "back with `pytree_minimize.ports.tensorflow.assign(model.trainable_variables, "
            "res.x)`."
        )
    return "Pass fixed values through `args`."


def returned_pair(out: Any, *, derivative: str, source: str) -> tuple[Any, Any]:
    """`out` as the `(value, derivative)` pair a function with `jac=True` returns.

    Args:
        out: What the user's function returned.
        derivative: What the second entry is ("gradient", "jacobian").
        source: What computes the derivative with `jac=None` in this framework ("autodiff",
            "autograd", "the GradientTape", "finite differences").

    Raises:
        ValueError: `out` is not a pair.
    """
    if not (isinstance(out, tuple | list) and len(out) == 2):
        first = "residuals" if derivative == "jacobian" else "value"
        raise ValueError(
            f"`jac=True` means `fun` returns `({first}, {derivative})`, but it returned "
            f"{describe_returned(out)}. Pass `jac=None` to let {source} compute the "
            f"{derivative}."
        )
    return out[0], out[1]
