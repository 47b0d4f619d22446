"""Every notebook in `notebooks/` runs top to bottom, and the saved copy shows its outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Each notebook should take well under a minute on a laptop CPU; a cell over this fails the test.
CELL_TIMEOUT_S = 180
#: Framework log lines that must not be saved as output: absl-format lines (`I0000 00:00:...`,
#: `W0000 ...`), absl's pre-initialisation notice, TensorFlow's oneDNN and CPU-feature notices,
#: and CUDA probing.
LOG_NOISE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl|oneDNN|TF_ENABLE_ONEDNN_OPTS|cpu_feature_guard|"
    r"To enable the following instructions|cuda|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] ",
    re.MULTILINE | re.IGNORECASE,
)


def _outputs(notebook) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def _has_picture(notebook) -> bool:
    return any("image/png" in out.get("data", {}) for out in _outputs(notebook))


def test_there_are_notebooks():
    names = {path.stem for path in NOTEBOOKS}
    assert {
        "feature_visualisation",
        "adversarial_example",
        "portfolio",
        "calibration",
        "curve_fitting",
        "optimal_control",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_saved_notebook_shows_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code), "not executed"
    assert not [out for out in _outputs(notebook) if out.get("output_type") == "error"]
    assert _has_picture(notebook)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_saved_outputs_hold_no_framework_log_lines(path):
    notebook = nbformat.read(path, as_version=4)
    streams = [out.get("text", "") for out in _outputs(notebook) if out.output_type == "stream"]
    noise = [match.group(0) for text in streams for match in LOG_NOISE.finditer(text)]
    assert not noise, f"{path.name} saved framework log lines: {noise}"


def test_log_noise_pattern_catches_tensorflow_lines():
    saved = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795866201.249624   23611 port.cc:153] oneDNN custom operations are on.\n"
    )
    assert len(LOG_NOISE.findall(saved)) >= 2
    assert not LOG_NOISE.search("test accuracy 0.967\nT = 1.4 after 6 iterations")


@pytest.mark.slow
@pytest.mark.timeout(6 * CELL_TIMEOUT_S)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path):
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    assert _has_picture(notebook)
