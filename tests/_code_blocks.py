"""The Python blocks of a Markdown page, and running one as a reader would: on its own.

Shared by `test_readme.py` (README.md) and `test_docs.py` (the pages under docs/). Each block
runs in a fresh interpreter with the repository first on the path, so a block that uses a name
it does not define, or depends on an earlier block, fails. A block that cannot run must say why
in its fence: ```python no-run: <reason>.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_FENCE = re.compile(r"^```python(?P<info>[^\n]*)\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL)
#: Packages of the optional extras (and of the dev tools) that a block may import.
_EXTRAS = {"torch", "tensorflow", "keras", "equinox", "matplotlib"}
#: A block that calls one of these solves something, and must show what it found.
_SOLVES = re.compile(r"\b(minimize|argmin|least_squares|curve_fit|root|differential_evolution)\(")


@dataclass(frozen=True)
class Block:
    """One ```python block: the page it is on, its fence info after "python", its code, and the
    line of its fence."""

    page: Path
    info: str
    code: str
    line: int

    @property
    def name(self) -> str:
        """`page:line`, the page relative to the repository: a test id and a place to look."""
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def runs(self) -> bool:
        return not self.info.startswith("no-run")


def python_blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [
        Block(page, match["info"].strip(), match["code"], text.count("\n", 0, match.start()) + 1)
        for match in _FENCE.finditer(text)
    ]


def check_fences(page: Path, blocks: list[Block]) -> None:
    """Every opened ```python fence was read as a block, and a skipped block says why."""
    assert len(blocks) == page.read_text().count("```python"), page
    for block in blocks:
        if not block.runs:
            assert re.fullmatch(r"no-run: \S.{10,}", block.info), block.name


def child_env(**extra: str) -> dict[str, str]:
    """This interpreter's environment, with the repository first on the path, one CPU device and
    one BLAS thread, as a single process (the multi-process block reads PROCESS_ID)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROCESS_ID", "NUM_PROCESSES")}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", OPENBLAS_NUM_THREADS="1", **extra)
    return env


def run_python(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess:
    """Run `python *args` in `cwd` with `child_env()`, capturing its output as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def skip_without_extras(block: Block) -> None:
    """Skip a block that imports a package of an extra (torch, TensorFlow, ...) not installed."""
    tree = ast.parse(block.code)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    for name in sorted({name.split(".")[0] for name in imported} & _EXTRAS):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{block.name} needs {name}, which is not installed")


def run_block(block: Block, cwd: Path, prints: Mapping[str, list[str]]) -> None:
    """Run the block on its own. It must succeed and print something if it solves something;
    a block whose code contains a key of `prints` must print exactly those lines."""
    skip_without_extras(block)
    done = run_python(["-c", block.code], cwd=cwd)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stderr[-3000:]}"
    if _SOLVES.search(block.code):
        assert done.stdout.strip(), f"{block.name} solves something and prints nothing"
    for key, lines in prints.items():
        if key in block.code:
            assert done.stdout.splitlines() == lines, f"{block.name} printed:\n{done.stdout}"


def check_prints(blocks: list[Block], prints: Mapping[str, list[str]]) -> None:
    """Each key of `prints` names exactly one block."""
    for key in prints:
        assert sum(key in block.code for block in blocks) == 1, key
