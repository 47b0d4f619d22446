"""Closure conversion: a function made anew on every call reuses one compiled evaluation.

A fit wrapped in a helper typically builds its objective inside the helper::

    def fit(X, Y):
        def loss(p):
            return jnp.mean((X @ p["w"] - Y) ** 2)
        return minimize(loss, x0)

Every call makes a new `loss` object, and a compile cache keyed on the function object compiles it
anew. This module describes such a function by what decides its trace, not by its identity:

* its code object and globals, and those of every function it closes over (recursively), and its
  default values;
* its closed-over arrays (and Python floats), which become *traced inputs*: new values reuse the
  compiled evaluation, as `args` do;
* every other closed-over value (ints, bools, strings, functions, classes, pytree structure),
  which may steer tracing (a Python `if`, a shape, a `range`) and so stays part of the key.

`lift(fun, args)` returns a stable function `lifted(x, *args, arrays)` (one per description) and
the new `args`; the backend caches its compiled evaluations on that function. A value that can be
neither traced nor keyed (an arbitrary object, say a model instance) leaves the function as it is:
it compiles per object, as before, and `note_compile` warns once when the same code has been
compiled three times for the same shapes, naming the value and the fix. A backend whose lifted
trace fails (a closed-over array read by NumPy, say) falls back to the function as it is and
calls `lift_failed`, which stops lifting that code.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
import inspect
import os
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import optree

from .tree import NAMESPACE

__all__ = [
    "Lift",
    "RecompileWarning",
    "caller_level",
    "clear",
    "flatten_optree",
    "lift",
    "lift_failed",
    "note_compile",
    "unflatten_optree",
]


#: `flatten(value)`: a container's `(children, structure, labels)`, where `labels` name the
#: children as paths do (`['w']`, `[0]`, `.weight`); None for anything but a container.
Flatten = Callable[[Any], "tuple[list[Any], Hashable, list[str]] | None"]


class RecompileWarning(UserWarning):
    """The same objective code was compiled again and again for the same shapes.

    Raised (once per function) by `minimize` and the other entry points when one function's code
    has been compiled three times for the same structure and shapes of `x0`, which happens when
    every call passes a new function object that closes over a value that cannot become a traced
    input (see the guide "Tracing"). The message names the value and the fix.

    Examples:
        >>> import warnings
        >>> from pytree_minimize import RecompileWarning
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("error", RecompileWarning)  # a recompile loop now raises
        ...     issubclass(RecompileWarning, UserWarning)
        True
    """


#: At most this many values described per function (beyond it, the function is left as it is).
_MAX_NODES = 1000
#: At most this many nested levels (functions closing over functions, nested containers).
_MAX_DEPTH = 32
#: Lifted functions kept (each holds its compiled evaluations in the compile cache alive).
_TABLE_SIZE = 256
#: Compiles of the same code, for the same evaluation and shapes, before the warning.
WARN_AFTER = 3

#: Top-level modules whose callables are taken by identity: library functions do not change.
_LIBRARIES = frozenset({"jax", "jaxlib", "numpy", "scipy", "math", "builtins", "operator"})

#: Values kept in the key by value (hashable, immutable, possibly steering the trace).
_BY_VALUE: tuple[type, ...] = (
    bool,
    int,
    str,
    bytes,
    np.integer,
    np.bool_,
    np.dtype,
    range,
    frozenset,
    enum.Enum,
    type(Ellipsis),
    type(None),
)
#: Containers that a function may fill while it is traced.
_MUTABLE: tuple[type, ...] = (list, dict, set)
#: Numbers that become traced inputs, as numbers in `args` do.
_TRACED_NUMBERS: tuple[type, ...] = (float, complex, np.floating, np.complexfloating)


def flatten_optree(value: Any) -> tuple[list[Any], Hashable, list[str]] | None:
    """`Flatten` for the containers optree knows in the package's namespace (dict, list,
    tuple, namedtuple, OrderedDict, ...): for the backends that do not flatten through JAX."""
    if optree.tree_is_leaf(value, none_is_leaf=True, namespace=NAMESPACE):
        return None
    paths, children, structure = optree.tree_flatten_with_path(
        value, is_leaf=lambda y: y is not value, none_is_leaf=True, namespace=NAMESPACE
    )
    return children, structure, ["".join(f"[{entry!r}]" for entry in path) for path in paths]


def unflatten_optree(structure: Hashable, children: list[Any]) -> Any:
    return optree.tree_unflatten(structure, children)  # type: ignore[arg-type]


class _Unliftable(Exception):
    """A value that can be neither traced nor keyed; `path` names where it sits."""

    def __init__(self, path: str, value: Any, why: str = "") -> None:
        super().__init__(path)
        self.path, self.value, self.why = path, value, why


class _Same:
    """A key part that compares by identity (and keeps its object alive while the key lives)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


class _Value:
    """A key part that compares by type and value (`1`, `1.0` and `True` differ)."""

    __slots__ = ("key", "obj")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.key = (type(obj), obj)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Value) and other.key == self.key


# Descriptions are tuples whose first item says what they stand for.
_ARRAY = ("array",)
_EMPTY_CELL = ("empty",)


class _Describer:
    """Walks a callable, collecting its traced values (`arrays`) and the keyed ones."""

    def __init__(self, is_array: Callable[[Any], bool], flatten: Flatten, numbers: bool) -> None:
        self.is_array = is_array
        self.flatten = flatten
        self.numbers = numbers  # whether floats are traced (else kept by value)
        self.arrays: list[Any] = []
        self.keyed: list[tuple[str, Any]] = []  # (path, value) of the values kept by value
        self._nodes = 0
        self._constants = 0
        self.read: list[tuple[str, Any]] = []  # (name, value) of globals read, by value
        self._active: set[int] = set()

    def describe(self, value: Any, path: str, depth: int = 0) -> Hashable:
        self._nodes += 1
        if self._nodes > _MAX_NODES or depth > _MAX_DEPTH:
            raise _Unliftable(path, value, "it holds too many values to pass as inputs")
        if self.is_array(value) or (self.numbers and isinstance(value, _TRACED_NUMBERS)):
            self.arrays.append(value)
            return _ARRAY
        if isinstance(value, _BY_VALUE + _TRACED_NUMBERS):
            self.keyed.append((path, value))
            return ("value", _Value(value))
        if isinstance(value, type | types.ModuleType):
            return ("same", _Same(value))
        if id(value) in self._active:
            raise _Unliftable(path, value, "it refers to itself")
        self._active.add(id(value))
        try:
            return self._compound(value, path, depth)
        finally:
            self._active.discard(id(value))

    def _compound(self, value: Any, path: str, depth: int) -> Hashable:
        if isinstance(value, types.FunctionType):
            return self._function(value, path, depth)
        if isinstance(value, functools.partial):
            return (
                "partial",
                self.describe(value.func, _join(path, "func"), depth + 1),
                self.describe(value.args, _join(path, "args"), depth + 1),
                self._node(value.keywords, _join(path, "keywords"), depth + 1),
            )
        if isinstance(value, types.MethodType):
            return (
                "method",
                self.describe(value.__func__, path, depth + 1),
                self.describe(value.__self__, _join(path, "__self__"), depth + 1),
            )
        if isinstance(value, types.BuiltinFunctionType | np.ufunc):
            owner = getattr(value, "__self__", None)
            if owner is None or isinstance(owner, types.ModuleType):
                return ("same", _Same(value))
            raise _Unliftable(path, value, "it is a method of an object")
        if isinstance(value, _MUTABLE) and not self._holds_arrays(value, depth):
            # A list or dict of plain values may be the function's own log or memo, filled while
            # tracing: it must stay the same object (so it is keyed by identity).
            self.keyed.append((path, value))
            return ("same", _Same(value))
        node = self._node(value, path, depth)
        if node is not None:
            return node
        module = (getattr(type(value), "__module__", None) or "").partition(".")[0]
        if callable(value) and module in _LIBRARIES:
            self.keyed.append((path, value))
            return ("same", _Same(value))
        raise _Unliftable(path, value)

    def _global(self, name: str, value: Any, depth: int) -> Hashable:
        if isinstance(value, _MUTABLE):
            # A list, dict or set is read as it is when traced, as by any compiled function:
            # keyed by identity (a log filled while tracing must not recompile every time).
            return ("same", _Same(value))
        if not isinstance(value, type | types.ModuleType | types.FunctionType) and not callable(
            value
        ):
            self.read.append((name, value))
        return self._constant(value, depth)

    def _constant(self, value: Any, depth: int) -> Hashable:
        """A key part for a value compiled in as a constant: by value where it is immutable, by
        structure for containers, by identity otherwise."""
        self._constants += 1
        if isinstance(value, _BY_VALUE + _TRACED_NUMBERS):
            return ("value", _Value(value))
        if self._constants <= _MAX_NODES and depth <= _MAX_DEPTH and not self.is_array(value):
            flattened = self.flatten(value)
            if flattened is not None:
                children, structure, _ = flattened
                try:
                    hash(structure)
                except TypeError:
                    return ("same", _Same(value))
                return ("node", structure, tuple(self._constant(c, depth + 1) for c in children))
        return ("same", _Same(value))

    def _node(self, value: Any, path: str, depth: int) -> Hashable | None:
        """A container's structure and its described children (None: not a container)."""
        flattened = self.flatten(value)
        if flattened is None:
            return None
        children, structure, labels = flattened
        try:
            hash(structure)
        except TypeError:
            raise _Unliftable(path, value, "its structure is not hashable") from None
        parts = tuple(
            self.describe(child, f"{path}{label}", depth + 1)
            for child, label in zip(children, labels, strict=True)
        )
        return ("node", structure, parts)

    def _holds_arrays(self, value: Any, depth: int) -> bool:
        if self.is_array(value):
            return True
        if depth > _MAX_DEPTH:
            return False
        flattened = self.flatten(value)
        return flattened is not None and any(
            self._holds_arrays(child, depth + 1) for child in flattened[0]
        )

    def _function(self, fun: types.FunctionType, path: str, depth: int) -> Hashable:
        code = fun.__code__
        cells: list[Hashable] = []
        for name, cell in zip(code.co_freevars, fun.__closure__ or (), strict=True):
            try:
                contents = cell.cell_contents
            except ValueError:  # a cell not yet filled
                cells.append(_EMPTY_CELL)
                continue
            cells.append(self.describe(contents, _join(path, name), depth + 1))
        defaults = fun.__defaults__
        kwdefaults = fun.__kwdefaults__
        described_defaults = (
            None if defaults is None else self.describe(defaults, _join(path, "defaults"), depth)
        )
        described_kwdefaults = (
            None if kwdefaults is None else self._node(kwdefaults, _join(path, "kwdefaults"), depth)
        )
        namespace = fun.__globals__
        # Globals are read when the function is traced, so a compiled function holds the values
        # it read: those its own code reads are part of the key (by value or identity).
        read = tuple(
            (name, self._global(name, namespace[name], depth))
            for name in _global_names(code)
            if name in namespace
        )
        return (
            "function",
            _Same(code),
            _Same(namespace),
            read,
            fun.__name__,
            fun.__qualname__,
            described_defaults,
            described_kwdefaults,
            tuple(cells),
        )


@functools.lru_cache(maxsize=1024)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """The names `code` (and the code nested in it: lambdas, comprehensions, inner functions)
    may look up as globals (with attribute names among them: harmless extra key parts)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(_global_names(const))
    return tuple(sorted(names))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _rebuild(
    description: Any, arrays: Iterator[Any], unflatten: Callable[[Hashable, list[Any]], Any]
) -> Any:
    """The value a description stands for, with the next of `arrays` for each traced value."""
    tag = description[0]
    if tag == "array":
        return next(arrays)
    if tag in ("value", "same"):
        return description[1].obj
    if tag == "node":
        return unflatten(description[1], [_rebuild(d, arrays, unflatten) for d in description[2]])
    if tag == "partial":
        func, args, keywords = (_rebuild(d, arrays, unflatten) for d in description[1:])
        return functools.partial(func, *args, **keywords)
    if tag == "method":
        func, owner = (_rebuild(d, arrays, unflatten) for d in description[1:])
        return types.MethodType(func, owner)
    if tag == "function":
        _, code, namespace, _, name, qualname, defaults, kwdefaults, cells = description
        closure = tuple(
            types.CellType() if c is _EMPTY_CELL else types.CellType(_rebuild(c, arrays, unflatten))
            for c in cells
        )
        fun = types.FunctionType(
            code.obj,
            namespace.obj,
            name,
            None if defaults is None else _rebuild(defaults, arrays, unflatten),
            closure or None,
        )
        fun.__qualname__ = qualname
        if kwdefaults is not None:
            fun.__kwdefaults__ = _rebuild(kwdefaults, arrays, unflatten)
        return fun
    raise AssertionError(f"unknown description {tag!r}")  # pragma: no cover


class Lift(NamedTuple):
    """What `lift` found.

    Attributes:
        fun: The lifted function `fun(x, *args, arrays)`, or None where the function stays as it
            is (nothing to lift, a value that can be neither traced nor keyed, or a code whose
            lifted trace failed before).
        args: The arguments for `fun`: the caller's `args` followed by the tuple of traced values.
        code: The code object of the user's function (None for other callables), which
            `note_compile` counts compiles of.
        reason: Why a new function object of this code compiles anew (for the warning), where
            it is not lifted.
        values: For a lifted function, the values compiled in as constants, as `(what, repr)`
            (for example ``("closes over `n`", "3")``): the warning names those that changed.
    """

    fun: Callable | None
    args: tuple
    code: types.CodeType | None
    reason: str
    values: tuple[tuple[str, str], ...] = ()


class _Table:
    """The lifted functions, one per description, least recently used first out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._functions: collections.OrderedDict[Hashable, Callable] = collections.OrderedDict()
        self.failed: weakref.WeakSet[types.CodeType] = weakref.WeakSet()

    def get(self, description: Hashable, make: Callable[[], Callable]) -> Callable:
        with self._lock:
            fun = self._functions.get(description)
            if fun is None:
                fun = self._functions[description] = make()
            self._functions.move_to_end(description)
            while len(self._functions) > self._size:
                self._functions.popitem(last=False)
            return fun

    def clear(self) -> None:
        with self._lock:
            self._functions.clear()
            self.failed = weakref.WeakSet()


_TABLE = _Table(_TABLE_SIZE)


def root_code(fun: Any) -> types.CodeType | None:
    """The code object of the user's function behind `fun` (through partials and methods, and
    the `__call__` of a callable instance written in Python)."""
    while True:
        if isinstance(fun, functools.partial):
            fun = fun.func
        elif isinstance(fun, types.MethodType):
            fun = fun.__func__
        elif not isinstance(fun, types.FunctionType | type) and isinstance(
            call := inspect.getattr_static(type(fun), "__call__", None), types.FunctionType
        ):
            fun = call
        else:
            break
    return fun.__code__ if isinstance(fun, types.FunctionType) else None


def _worth_lifting(fun: Any) -> bool:
    """Whether a new object of `fun` may differ from the last only in values it carries: any
    Python function (a lambda made anew per call, with or without a closure), a partial, a
    bound method."""
    return isinstance(fun, types.FunctionType | functools.partial | types.MethodType)


class _Known(NamedTuple):
    """What lifting found for one function object (kept while the object lives)."""

    fun: Callable | None
    arrays: tuple
    reason: str
    values: tuple[tuple[str, str], ...] = ()


#: Per function object: a function passed again is not described again (its closed-over lists
#: may have grown since, by side effects of tracing; its arrays are on the device already).
_BY_OBJECT: weakref.WeakKeyDictionary[Any, _Known] = weakref.WeakKeyDictionary()


def lift(
    fun: Callable,
    args: tuple,
    *,
    is_array: Callable[[Any], bool],
    flatten: Flatten,
    unflatten: Callable[[Hashable, list[Any]], Any],
    place: Callable[[Any], Any] = lambda array: array,
    numbers: bool = True,
) -> Lift:
    """`fun` and `args` with `fun`'s closed-over arrays moved into `args` (see the module
    docstring). `is_array` says what the framework traces; `flatten` (see `Flatten`) takes one
    level of a container apart and `unflatten(structure, children)` puts it together; `place`
    puts a traced value where the compiled function reads it (once per function object);
    `numbers`: whether Python and NumPy floats are traced (TensorFlow traces a Python number by
    its value: there they are kept in the key)."""
    code = root_code(fun)
    try:
        known = _BY_OBJECT.get(fun)
    except TypeError:  # not hashable
        known = None
    if known is None:
        known = _describe(fun, code, is_array, flatten, unflatten, place, numbers)
        with contextlib.suppress(TypeError):  # not weakly referenceable: described every time
            _BY_OBJECT[fun] = known
    if known.fun is None:
        return Lift(None, args, code, known.reason)
    return Lift(known.fun, (*args, known.arrays), code, known.reason, known.values)


def _describe(
    fun: Callable,
    code: types.CodeType | None,
    is_array: Callable[[Any], bool],
    flatten: Flatten,
    unflatten: Callable[[Hashable, list[Any]], Any],
    place: Callable[[Any], Any],
    numbers: bool,
) -> _Known:
    if not _worth_lifting(fun):
        return _Known(None, (), _new_object_reason(fun))
    if code is not None and code in _TABLE.failed:
        return _Known(None, (), _TABLE_REASONS.get(code, ""))
    describer = _Describer(is_array, flatten, numbers)
    try:
        description = describer.describe(fun, "")
    except _Unliftable as error:
        return _Known(None, (), _unliftable_reason(fun, error))

    def make() -> Callable:
        def lifted(x: Any, *args_and_arrays: Any, **kwargs: Any) -> Any:
            *user_args, arrays = args_and_arrays
            rebuilt = _rebuild(description, iter(arrays), unflatten)
            return rebuilt(x, *user_args, **kwargs)

        lifted.__name__ = getattr(fun, "__name__", "lifted")
        lifted.__qualname__ = getattr(fun, "__qualname__", lifted.__name__)
        return lifted

    arrays = tuple(place(a) for a in describer.arrays)
    values = tuple((f"closes over `{path or 'itself'}`", _shown(v)) for path, v in describer.keyed)
    values += tuple((f"reads the global `{name}`", _short(v)) for name, v in describer.read)
    return _Known(_TABLE.get(description, make), arrays, "", values)


#: Why lifting a code failed, for the warning (kept while the code lives).
_TABLE_REASONS: weakref.WeakKeyDictionary[types.CodeType, str] = weakref.WeakKeyDictionary()


def lift_failed(lifted: Lift, error: BaseException) -> None:
    """The lifted trace of `lifted.code` failed where the function as it is traced: stop lifting
    that code (each new closure of it compiles anew, with its values as constants)."""
    code = lifted.code
    if code is None:
        return
    _TABLE.failed.add(code)
    reported = str(error).strip().splitlines()[0] if str(error).strip() else ""
    _TABLE_REASONS[code] = (
        "its closed-over values cannot be traced inputs: traced, they made it fail with "
        f"{type(error).__name__}{': ' + reported if reported else ''}. So each new function "
        "object compiles anew, with those values as constants. Build the function once, outside "
        "the loop or helper, and pass what changes through `args`; or compute what needs a "
        "concrete value (NumPy calls, Python `if`, shapes) outside the function and close over "
        "the result"
    )


def _name(fun: Any, code: types.CodeType | None) -> str:
    if code is None:
        return f"`{getattr(fun, '__qualname__', None) or type(fun).__name__}`"
    return f"`{code.co_qualname}` ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"


def _new_object_reason(fun: Any) -> str:
    return (
        "each call passes a new callable object. Build it once and pass the same object to "
        "every call, with the values that change in `args`"
    )


def _unliftable_reason(fun: Any, error: _Unliftable) -> str:
    why = error.why or (
        f"an object of type {type(error.value).__name__}, which can be neither a traced input "
        "nor part of the cache key"
    )
    where = f"`{error.path}`" if error.path else "itself"
    return (
        f"it closes over {where}: {why}. So each new function object compiles anew. Build the "
        "function once, outside the loop or helper, and pass the values that change through "
        "`args` (arrays, pytrees of arrays and numbers are traced there); or close over arrays "
        "and pytrees of arrays only (`eqx.partition` splits an equinox module into both)"
    )


def _keyed_reason(values: Sequence[tuple[str, str]]) -> str:
    if not values:
        return ""
    shown = ", ".join(f"{what} = {text}" for what, text in values[:4])
    more = f" and {len(values) - 4} more" if len(values) > 4 else ""
    return (
        f"it {shown}{more}: values compiled in as constants (ints, bools, strings, functions "
        "and containers may steer tracing), so each new value compiles anew. Where such a value "
        "only enters arithmetic, pass it through `args` (`fun(x, value)`, `args=(value,)`) or "
        "close over `jnp.asarray(value)`: both are traced, and new values reuse the compiled "
        "function; where it sets a shape or a Python branch, one compile per value is needed"
    )


def _shown(value: Any) -> str:
    if isinstance(value, _MUTABLE):
        return (
            f"a {type(value).__name__} without arrays (passed as the same object, since the "
            "function may fill it while traced: a new one compiles anew)"
        )
    return _short(value)


def _short(value: Any) -> str:
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None and not isinstance(value, np.generic):
        # An array's repr would read all of it (from the device, too): its type, shape, dtype.
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


# ---------------------------------------------------------------------------------------------
# Counting compiles, and the warning.

_COUNT_LOCK = threading.Lock()


class _Compiles:
    """How many distinct function objects of one code were compiled for one evaluation."""

    __slots__ = ("changed", "count", "last", "seen")

    def __init__(self) -> None:
        self.count = 0
        self.seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self.last: dict[str, str] | None = None  # the constants of the last compile
        self.changed: dict[str, str] = {}  # those that differed from the compile before

    def compiled(self, values: Sequence[tuple[str, str]]) -> None:
        now = dict(values)
        if self.last is not None:
            self.changed.update({k: v for k, v in now.items() if self.last.get(k) != v})
        self.last = now


#: Per code, per evaluation and shapes (the latest `_WHATS_KEPT`: a function compiled for ever
#: new shapes must not grow this table), the compiles counted.
_COMPILES: weakref.WeakKeyDictionary[
    types.CodeType, collections.OrderedDict[Hashable, _Compiles]
] = weakref.WeakKeyDictionary()
_WHATS_KEPT = 64
_WARNED: weakref.WeakSet[types.CodeType] = weakref.WeakSet()


def note_compile(fun: Any, lifted: Lift, what: Hashable) -> None:
    """Count a compile of `fun` (the function compiled: the lifted one, or the user's) for
    `what` (the evaluation kind and the shapes); warn once per code when `WARN_AFTER` distinct
    function objects of `lifted.code` have been compiled for the same `what`. A function
    compiled again for other static `args`, or after leaving the cache, does not count."""
    code = lifted.code
    if code is None:
        return
    owner = fun.__self__ if isinstance(fun, types.MethodType) else fun
    with _COUNT_LOCK:
        per_code = _COMPILES.setdefault(code, collections.OrderedDict())
        compiles = per_code.setdefault(what, _Compiles())
        per_code.move_to_end(what)
        if len(per_code) > _WHATS_KEPT:
            per_code.popitem(last=False)
        try:
            if owner in compiles.seen:
                return
            compiles.seen.add(owner)
        except TypeError:  # not weakly referenceable: counted every time
            pass
        compiles.count += 1
        compiles.compiled(lifted.values)
        if compiles.count < WARN_AFTER or code in _WARNED:
            return
        _WARNED.add(code)
        count = compiles.count
        reason = lifted.reason or _keyed_reason(
            list((compiles.changed or dict(lifted.values)).items())
        )
    warnings.warn(
        f"{_name(fun, code)} has been compiled {count} times for the same shapes: "
        f"{reason or _new_object_reason(fun)}. See the guide 'Tracing' (recompiles).",
        RecompileWarning,
        stacklevel=caller_level(),
    )


def clear() -> None:
    """Forget the lifted functions and the compile counts (`clear_cache`)."""
    _TABLE.clear()
    _BY_OBJECT.clear()
    with _COUNT_LOCK:
        _COMPILES.clear()
        _WARNED.clear()


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def caller_level() -> int:
    """The `stacklevel`, for a `warnings.warn` in the caller of this function, that points the
    warning at the first frame outside this package and the libraries it calls through (JAX,
    scipy, TensorFlow): the user's own call."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = frame.f_code.co_filename
        inside = filename.startswith(_PACKAGE) or any(
            part in filename.replace("\\", "/")
            for part in ("/jax/", "/jaxlib/", "/scipy/", "/tensorflow/")
        )
        if not inside:
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
