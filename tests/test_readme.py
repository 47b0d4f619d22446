"""The README's example runs and prints what its comments say, its links resolve, and the demo
explains its fit."""

from __future__ import annotations

import re

import pytest
from _code_blocks import ROOT, check_fences, check_prints, python_blocks, run_block, run_python

README = ROOT / "README.md"
BLOCKS = python_blocks(README)
#: Relative link targets in the README: [text](target), without a #fragment.
LINKS = [
    target.split("#")[0]
    for target in re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    if not re.match(r"[a-z]+://|#", target)
]


#: What a block prints, for the blocks whose code contains the key. The example: the unbounded
#: solution is w = (2, -2), b = 0.5, and the bound w >= -1 holds w[1] at -1.
PRINTS = {
    'bounds=Bounds(lb={"w": -1.0': ["[ 2. -1.] 0.5", "[ 0 -1]"],
    # The torch pattern fits Y = X @ (1, -2, 0.5) + 0.3 exactly.
    "parameters_of(model)  # a dict": ["tensor([[ 1.0000, -2.0000,  0.5000]]) tensor([0.3000])"],
}


def test_readme_blocks_are_all_found_and_none_skipped():
    check_fences(README, BLOCKS)
    assert BLOCKS and all(block.runs for block in BLOCKS)
    check_prints(BLOCKS, PRINTS)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_readme_block_runs_as_written(block, tmp_path):
    run_block(block, tmp_path, PRINTS)


def test_readme_links_point_to_files_of_the_repository():
    assert len(LINKS) >= 10  # the landing page links to the documentation's pages
    missing = [target for target in LINKS if not (ROOT / target).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_demo_prints_the_truth_and_names_the_active_bound(tmp_path):
    done = run_python([str(ROOT / "examples" / "demo.py")], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line[:2] in ("w[", "b ")}
    assert set(rows) == {"w[0]", "w[1]", "w[2]", "b"}
    # true value, fitted value, and which bound holds: w[1] = -2 lies outside w >= -1
    assert rows["w[1]"].split()[1:3] == ["-2.0000", "-1.0000"]
    assert "lower bound" in rows["w[1]"]
    assert all(rows[name].endswith("free") for name in ("w[0]", "w[2]", "b"))
