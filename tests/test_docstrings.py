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
    "pytree_minimize.compat.dict_minimize.numpy_api": None,
    "pytree_minimize.compat.dict_minimize.jax_api": None,
    "pytree_minimize.compat.dict_minimize.torch_api": "torch",
    "pytree_minimize.compat.dict_minimize.tensorflow_api": "tensorflow",
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


def _internal_modules() -> list[str]:
    import pkgutil

    import pytree_minimize

    return sorted(
        info.name
        for info in pkgutil.walk_packages(pytree_minimize.__path__, "pytree_minimize.")
        # The entry points' stubs hold docstring templates, run above once rendered.
        if not info.ispkg and not info.name.endswith(".api")
    )


@pytest.mark.parametrize("module_name", _internal_modules())
def test_internal_module_examples_run(module_name: str) -> None:
    # Examples in the package's own modules (the public functions' are run above).
    frameworks = ("torch", "tensorflow")
    for framework in frameworks:
        if f".{framework}" in module_name or f"{framework}_" in module_name:
            pytest.importorskip(framework)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, module_name):
        if test.name.rsplit(".", 1)[-1] in getattr(module, "__all__", ()) and (
            module_name in MODULES
        ):
            continue  # the public functions' examples, run above
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
