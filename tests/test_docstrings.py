"""Every public name's docstring examples run and print what they say, in every public module."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: The public modules and the frameworks they need.
MODULES = {
    "pytree_minimize": None,
    "pytree_minimize.ports.numpy": None,
    "pytree_minimize.ports.torch": "torch",
    "pytree_minimize.ports.tensorflow": "tensorflow",
}


def _public(module_name: str) -> list[tuple[str, object]]:
    framework = MODULES[module_name]
    if framework is not None:
        pytest.importorskip(framework)
    module = importlib.import_module(module_name)
    return [(name, getattr(module, name)) for name in module.__all__]


@pytest.mark.parametrize("module_name", MODULES)
def test_public_docstring_examples_run(module_name: str) -> None:
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    examples = 0
    for name, obj in _public(module_name):
        for test in finder.find(obj, name, globs={}):
            examples += len(test.examples)
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert examples > 0 and results.failed == 0, f"{results.failed} failed in {module_name}"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_function_has_an_example(module_name: str) -> None:
    finder = doctest.DocTestFinder(recurse=False)
    missing = [
        name
        for name, obj in _public(module_name)
        if callable(obj) and not any(t.examples for t in finder.find(obj, name, globs={}))
    ]
    assert not missing, f"{module_name}: no `Examples:` in {missing}"
