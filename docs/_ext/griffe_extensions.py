"""Griffe extensions for the API reference: what run-time inspection alone renders wrong.

`ExportedObjects`: inspecting a module, griffe records an object defined in another module as an
alias to `obj.__module__ + "." + obj.__qualname__` and documents what it finds there. For an
object made at run time that path may lead nowhere (a function defined inside a builder has a
`__qualname__` like `builder.<locals>.minimize`: the build fails) or to another object (a builder
that names every framework's `minimize` after the JAX one: the torch port's page would show the
JAX docstring, silently). The extension inspects such an object where it is exported instead, so
the page shows the object itself: its run-time `__signature__` and `__doc__`.

`NamedTupleSignatures`: griffe reads a class's signature from its `__init__`, which a NamedTuple
does not define (its fields are arguments of `__new__`), and lists each field as a class
attribute whose value is a `_tuplegetter`. The extension gives such a class an `__init__` with the
class's own signature and drops the field attributes: the docstring documents the fields.

`GroupedArgs`: some docstrings document several parameters in one entry (`ftol, xtol, gtol: As
scipy's.`, the names sometimes wrapped onto a second line), which the Google style does not know:
griffe warns, or drops the entry. The extension writes one entry per name, each with the shared
description.

`SphinxRoles`: a few docstrings name objects with Sphinx roles (:func:`load_into`), which Markdown
would show as written; the extension keeps the name, as code.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from typing import Any

import griffe

_MISSING = object()


def _found_at(path: str, obj: Any) -> bool:
    """Whether importing `path` (a module, then attributes) gives `obj` itself."""
    if "<locals>" in path:
        return False
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module first
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute, _MISSING)
        return found is obj
    return False


class ExportedObjects(griffe.Extension):
    """Inspect an object where it is exported when its alias would not lead to it."""

    def on_alias_instance(
        self, *, alias: griffe.Alias, node: Any, agent: Any, **kwargs: Any
    ) -> None:
        if not isinstance(agent, griffe.Inspector):
            return
        (child,) = [child for child in node.children if child.name == alias.name]
        if child.is_module or _found_at(alias.target_path, child.obj):
            return
        # The alias goes first: inspecting the object resolves names through its parent.
        agent.current.del_member(alias.name)
        agent.inspect(child)


def _is_named_tuple(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")


def _written_annotation(parameter: inspect.Parameter) -> inspect.Parameter:
    """The parameter with a string annotation where typing made it a `ForwardRef`."""
    annotation = parameter.annotation
    if isinstance(annotation, typing.ForwardRef):
        return parameter.replace(annotation=annotation.__forward_arg__)
    return parameter


class NamedTupleSignatures(griffe.Extension):
    """Give a NamedTuple the signature of its constructor, and no `_tuplegetter` attributes."""

    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        if not isinstance(agent, griffe.Inspector) or not _is_named_tuple(node.obj):
            return
        for field in node.obj._fields:
            if field in cls.members:
                cls.del_member(field)

        def __init__(*args: Any, **kwargs: Any) -> None:
            pass

        own = inspect.signature(node.obj)
        fields = [_written_annotation(parameter) for parameter in own.parameters.values()]
        this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        __init__.__signature__ = own.replace(parameters=[this, *fields])  # type: ignore[attr-defined]
        agent.inspect(griffe.ObjectNode(__init__, "__init__", parent=node))


#: A Sphinx cross-reference role (:func:`name`, :class:`~module.Name`, ...) around its target.
_SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|obj|data|exc):`~?([^`]+)`")


class SphinxRoles(griffe.Extension):
    """Write :func:`name` and its kin as `name`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SPHINX_ROLE.sub(r"`\1`", obj.docstring.value)


#: A section whose entries are parameters, and an entry that names several of them.
_ARGS_SECTION = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_NAMES = r"[*\w]+(?:,\s+[*\w]+)+"
_GROUPED_ENTRY = re.compile(rf"^(\s+)({_NAMES}):\s(.*)$")
_GROUPED_NAMES_WRAPPED = re.compile(rf"^\s+{_NAMES},\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split_grouped_args(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None  # that of the Args header while in its section
    i = 0
    while i < len(lines):
        line = lines[i]
        if header := _ARGS_SECTION.match(line):
            section_indent = len(header[1])
        elif line.strip() and section_indent is not None and _indent(line) <= section_indent:
            section_indent = None
        wrapped = _GROUPED_NAMES_WRAPPED.match(line) and i + 1 < len(lines)
        if section_indent is not None and wrapped:  # the names go on: one line with the next
            lines[i + 1] = line.rstrip() + " " + lines[i + 1].strip()
            i += 1
            continue
        entry = _GROUPED_ENTRY.match(line) if section_indent is not None else None
        i += 1
        if entry is None:
            out.append(line)
            continue
        first, rest = entry[3], []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) > _indent(line):
            rest.append(lines[i])
            i += 1
        for name in re.split(r",\s+", entry[2]):
            out.extend([f"{entry[1]}{name}: {first}", *rest])
    return "\n".join(out)


class GroupedArgs(griffe.Extension):
    """Write `a, b: text` in an Args section as `a: text` and `b: text`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _split_grouped_args(obj.docstring.value)
