"""The documentation site's pages: every Python block runs as written, the API reference covers
every public name, and its pages render the signatures and docstrings objects have at run time.

`make docs` builds the whole site (`mkdocs build --strict`); these tests need no build.
"""

from __future__ import annotations

import html
import importlib
import inspect
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from _code_blocks import ROOT, check_fences, check_prints, child_env, python_blocks, run_block

DOCS = ROOT / "docs"
PAGES = sorted(page for page in DOCS.rglob("*.md") if "_ext" not in page.parts)
BLOCKS = [block for page in PAGES for block in python_blocks(page)]
#: The block that runs as two processes, in its own test.
SEVERAL_PROCESSES = "jax.distributed.initialize"
RUNNABLE = [block for block in BLOCKS if block.runs and SEVERAL_PROCESSES not in block.code]
#: What a block prints, for the blocks whose code contains the key. The portfolio: its figures
#: are checked against the closed form and against scipy in tests/test_constraints.py.
PRINTS = {
    "expected_return": ["[0.     0.1077]", "[-1  0]", "[-0.0099, 0.3604]"],
    # A new closure per fit is traced once (y = X @ (1, 2, 3) + 0.5, fitted exactly).
    "traces.append(1)  # runs while JAX traces `loss`": ["1 [1.0, 2.0, 3.0] 0.5"],
    # The torch pattern fits Y = X @ (1, -2, 0.5) + 0.3 exactly.
    '{"weight": ..., "bias": ...}': ["tensor([[ 1.0000, -2.0000,  0.5000]]) tensor([0.3000])"],
    # (2 + i)^2 = 3 + 4i.
    "z**2 - (3.0 + 4.0j)": ["[2.+1.j]"],
}
#: Each public module and the page of the API reference that documents it.
API_PAGES = {
    "pytree_minimize": "api/pytree_minimize.md",
    "pytree_minimize.ports.torch": "api/torch.md",
    "pytree_minimize.ports.tensorflow": "api/tensorflow.md",
    "pytree_minimize.ports.numpy": "api/numpy.md",
}


def test_blocks_are_all_found_and_none_skipped():
    for page in PAGES:
        check_fences(page, [block for block in BLOCKS if block.page == page])
    assert len(RUNNABLE) >= 15
    assert all(block.runs for block in BLOCKS)
    check_prints(BLOCKS, PRINTS)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("block", RUNNABLE, ids=[block.name for block in RUNNABLE])
def test_block_runs_as_written(block, tmp_path):
    run_block(block, tmp_path, PRINTS)


def test_several_processes_block_runs_as_two_processes(tmp_path):
    (block,) = [block for block in BLOCKS if SEVERAL_PROCESSES in block.code]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = child_env(NUM_PROCESSES="2", COORDINATOR=f"127.0.0.1:{port}")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", block.code],
            cwd=tmp_path,
            env={**env, "PROCESS_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    printed = [
        [line for line in stdout.splitlines() if not line.startswith("[Gloo]")]
        for stdout, _ in outputs
    ]
    assert printed[1] == []  # only process 0 prints
    w = np.array(printed[0][0].split("]")[0].strip("[").split(), dtype=float)
    np.testing.assert_allclose(w, [1.5, -2.0, 0.5], atol=1e-4)


@pytest.mark.parametrize("module_name", API_PAGES)
def test_api_reference_documents_every_public_name(module_name):
    module = pytest.importorskip(module_name)
    core = importlib.import_module("pytree_minimize")
    page = (DOCS / API_PAGES[module_name]).read_text()
    documented = set(re.findall(rf"^::: {re.escape(module_name)}\.(\w+)$", page, re.MULTILINE))
    linked = set(re.findall(r"\]\[pytree_minimize\.(\w+)\]", page))
    assert documented <= set(module.__all__), documented - set(module.__all__)
    for name in set(module.__all__) - documented:
        # a name the port re-exports from the core is linked to the core's entry instead
        assert getattr(module, name) is getattr(core, name, None), f"{name} is not documented"
        assert name in linked, f"{API_PAGES[module_name]} neither documents nor links {name}"


def _signature_text(entry: str) -> str:
    """The text of the first rendered signature in `entry`, one space between tokens."""
    start = entry.index("<code>", entry.index("doc-signature"))
    end = entry.index("</code>", start)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", entry[start:end])).split())


#: Objects whose rendering the configuration must get right: docstrings set at run time (the
#: global methods, made once per framework: the NumPy port's must not show the JAX text), no
#: `__init__` of their own (`Bounds`, a NamedTuple), several parameters in one docstring entry
#: (the NumPy port's `least_squares`).
RENDERED = [
    "pytree_minimize.minimize",
    "pytree_minimize.differential_evolution",
    "pytree_minimize.basinhopping",
    "pytree_minimize.Bounds",
    "pytree_minimize.ports.numpy.differential_evolution",
    "pytree_minimize.ports.numpy.least_squares",
]


def _description(obj: object) -> str:
    """The docstring's text before its first section, without backticks, Sphinx roles
    (:func:`name` renders as `name`) or spaces."""
    doc = inspect.getdoc(obj) or ""
    text = re.split(r"^\w[\w ]*:$", doc, maxsplit=1, flags=re.MULTILINE)[0]
    return re.sub(r"[\s`]|:\w+:(?=`)", "", text)


def test_api_pages_render_runtime_signatures_and_docstrings(tmp_path):
    """mkdocs.yml's configuration renders each object's own signature and docstring."""
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("mkdocstrings")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (mkdocstrings,) = [p for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p]
    options = mkdocstrings["mkdocstrings"]["handlers"]["python"]["options"]
    # griffe finds an extension's file relative to the configuration file
    options["extensions"] = [str(ROOT / extension) for extension in options["extensions"]]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("\n\n".join(f"::: {identifier}" for identifier in RENDERED))
    small = {
        "site_name": "api",
        "docs_dir": str(docs),
        "site_dir": str(tmp_path / "site"),
        "theme": config["theme"]["name"],
        "plugins": [mkdocstrings],
        "markdown_extensions": config["markdown_extensions"],
    }
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(small))
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
        cwd=tmp_path,
        env=child_env(NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "index.html").read_text()
    for identifier in RENDERED:
        module_name, name = identifier.rsplit(".", 1)
        obj = getattr(importlib.import_module(module_name), name)
        heading = page.index(f'id="{identifier}"')
        next_heading = page.find("doc doc-heading", page.index("doc doc-heading", heading) + 1)
        entry = page[heading:next_heading]
        text = re.sub(r"\s", "", html.unescape(re.sub(r"<[^>]+>", "", entry)))
        assert _description(obj) in text, identifier
        rendered = _signature_text(entry)
        parameters = list(inspect.signature(obj).parameters)
        found = [re.search(rf"[(,*] {parameter} [:=,)]", rendered) for parameter in parameters]
        assert rendered.startswith(f"{name} (") and None not in found, (rendered, parameters)
        starts = [match.start() for match in found if match]
        assert starts == sorted(starts), rendered  # in the signature's order
