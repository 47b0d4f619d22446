"""The one builder of the public surface: each entry point's signature and docstring are written
once, as a typed stub, and every framework's public function is made from it.

An `EntryPoint` is a stub function (scipy's signature, the library's keyword-only options, and a
docstring template) with the driver that does the work. A `Framework` says what differs between
frameworks: its backend, the words its docstrings use, and options of its own (TensorFlow's
`jit_compile`). `build(entry, framework)` returns a function with the stub's signature (and type,
for static checkers) whose docstring is the template rendered in the framework's words, and whose
call binds the arguments by the signature and hands them by name to the driver together with the
backend type of the framework:

    minimize = build(MINIMIZE, TORCH)   # in pytree_minimize.ports.torch

Docstring templates use `string.Template` placeholders (`$framework`, `${leaves}`), so the braces
of dict literals in examples need no escaping.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from .backend import Backend

F = TypeVar("F", bound=Callable[..., Any])


class Option(NamedTuple):
    """A keyword-only option one framework adds to some of its entry points.

    Attributes:
        name: The keyword.
        default: Its default value.
        annotation: Its type, as a string (for the signature).
        doc: Its line in the `Args:` section.
        entries: The entry points that take it.
    """

    name: str
    default: Any
    annotation: str
    doc: str
    entries: frozenset[str]


class Framework(NamedTuple):
    """What one framework's public functions differ in.

    Attributes:
        module: The public module the functions belong to (`pytree_minimize.ports.torch`).
        backend: The backend class, constructed once per call.
        words: The docstring placeholders' values (see the templates of each entry point).
        options: Keyword-only options of this framework, passed to the backend's constructor.
    """

    module: str
    backend: type[Backend]
    words: Mapping[str, str]
    options: tuple[Option, ...] = ()


class EntryPoint(NamedTuple, Generic[F]):
    """One public entry point, written once.

    Attributes:
        stub: A function with the public signature and the docstring template; never called.
        driver: `driver(backend_type, **arguments)` does the work; `arguments` are all the
            public arguments by name (a `**kwargs` parameter's entries among them), so a driver
            takes them keyword-only and without defaults: the stub holds the defaults.
    """

    stub: F
    driver: Callable[..., Any]

    def call(self, backend_type: Callable[..., Backend], /, *args: Any, **kwargs: Any) -> Any:
        """The entry point run as its public function runs (arguments bound to the stub's
        signature, defaults filled in), with `backend_type`: for callers inside the package
        (a global method's local steps, `argmin`, the compat modules)."""
        arguments = _arguments(self.stub.__name__, _signature(self.stub), args, kwargs)
        return self.driver(backend_type, **arguments)


@functools.cache
def _signature(stub: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(stub)


def _arguments(
    name: str, signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]
) -> dict:
    """The arguments by name, defaults filled in, a `**kwargs` parameter's entries spread.

    Raises:
        TypeError: the call does not fit the signature (as Python's own call would), named.
    """
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{name}(): {error}") from None
    bound.apply_defaults()
    arguments = bound.arguments
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(parameter.name))
    return arguments


def build(entry: EntryPoint[F], framework: Framework) -> F:
    """The public function of `entry` for `framework`.

    Raises:
        KeyError: the docstring template names a word the framework does not define.
    """
    stub, driver = entry.stub, entry.driver
    name = stub.__name__
    options = tuple(o for o in framework.options if name in o.entries)
    signature = _with_options(_signature(stub), options)
    backend = framework.backend
    option_names = tuple(o.name for o in options)

    def public(*args: Any, **kwargs: Any) -> Any:
        arguments = _arguments(name, signature, args, kwargs)
        backend_type: Callable[..., Backend] = backend
        if option_names:
            chosen = {key: arguments.pop(key) for key in option_names}
            backend_type = functools.partial(backend, **chosen)
        return driver(backend_type, **arguments)

    public.__name__ = public.__qualname__ = name
    public.__module__ = framework.module
    public.__doc__ = render(stub.__doc__ or "", framework, options)
    public.__signature__ = signature  # type: ignore[attr-defined]
    public.__annotations__ = dict(stub.__annotations__)
    return public  # type: ignore[return-value]


def render(template: str, framework: Framework, options: tuple[Option, ...] = ()) -> str:
    """A docstring template in the framework's words, with its options' lines added at the end
    of `Args:`."""
    text = string.Template(inspect.cleandoc(template)).substitute(framework.words)
    if options:
        lines = "".join(f"\n    {o.name}: {o.doc}" for o in options)
        head, sep, tail = text.partition("\n\nReturns:")
        text = head + lines + sep + tail
    return text


def _with_options(signature: inspect.Signature, options: tuple[Option, ...]) -> inspect.Signature:
    """`signature` with the options as keyword-only parameters after its own (before a
    `**kwargs`)."""
    if not options:
        return signature
    parameters = list(signature.parameters.values())
    at = next((i for i, p in enumerate(parameters) if p.kind is p.VAR_KEYWORD), len(parameters))
    added = [
        inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default,
                          annotation=o.annotation)
        for o in options
    ]  # fmt: skip
    return signature.replace(parameters=[*parameters[:at], *added, *parameters[at:]])
