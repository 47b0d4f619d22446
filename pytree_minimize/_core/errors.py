"""Structured errors for bad inputs: the argument, the leaf path and what was found are fields.

A check raises one of these where it finds the problem; a caller that knows better words for the
user's situation (for example "`fun` must return floating-point residuals" where the layout of an
output is checked) catches the class and renders a new message from the fields. No code reads a
message's text. Each class is also a `TypeError` or `ValueError`, the exception type scipy's own
checks raise, so users catch what they always caught.
"""

from __future__ import annotations

from typing import Any


class InputError(Exception):
    """A bad input, named by `argument` (as the user wrote it: `x0`, `bounds.lb`, `fun(x)`).

    Attributes:
        argument: The argument (or what a function returned) in which the problem sits.
        path: The leaf's path under `argument` (`x0['w'][1]`), or None for the whole argument.
        found: What was found there: a type name, a dtype, a shape, or a value.
    """

    def __init__(
        self, message: str, *, argument: str, path: str | None = None, found: Any = None
    ) -> None:
        super().__init__(message)
        self.argument = argument
        self.path = path
        self.found = found

    def __reduce__(self) -> tuple:
        # Pickled (from a worker process) by its message and fields, whatever its constructor.
        return _restored, (type(self), str(self), self.__dict__)


def _restored(error_type: type[InputError], message: str, fields: dict) -> InputError:
    error = error_type.__new__(error_type)
    Exception.__init__(error, message)
    error.__dict__.update(fields)
    return error


class InputTypeError(InputError, TypeError):
    """An input of the wrong type or dtype."""


class InputValueError(InputError, ValueError):
    """An input of the right type with a wrong value, shape or structure."""


class LeafTypeError(InputTypeError):
    """A leaf of a pytree argument that is not a floating-point (or complex) array: `found` is
    its type name (`not_array` True) or its dtype."""

    def __init__(
        self, message: str, *, argument: str, path: str, found: Any, not_array: bool
    ) -> None:
        super().__init__(message, argument=argument, path=path, found=found)
        self.not_array = not_array


class NotScalarError(InputValueError):
    """A function that must return one number returned more: `found` says what (`an array of
    shape (2,)`), `reduce` names the framework's reduction for the fix (`jnp.sum`)."""

    def __init__(self, *, argument: str, found: str, reduce: str) -> None:
        super().__init__(self.render(argument, found, reduce), argument=argument, found=found)
        self.reduce = reduce

    @staticmethod
    def render(argument: str, found: str, reduce: str) -> str:
        return (
            f"`{argument}` must return a scalar; it returned {found}. Reduce it, for example "
            f"with `{reduce}`."
        )


class EmptyTreeError(InputValueError):
    """A pytree argument whose leaves hold no elements at all."""
