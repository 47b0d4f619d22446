"""MkDocs hook: the notebooks in `notebooks/` become pages of the site under `notebooks/`.

They stay where the tests execute them (`tests/test_notebooks.py`); the hook adds them to the
site's files before mkdocs-jupyter renders them from their saved outputs, and copies
`notebooks/_digits.py`, which three of them link to.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


@event_priority(100)  # before mkdocs-jupyter's on_files turns .ipynb files into pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in [*sorted(NOTEBOOKS.glob("*.ipynb")), NOTEBOOKS / "_digits.py"]:
        files.append(
            File(
                path.relative_to(ROOT).as_posix(),
                src_dir=str(ROOT),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files
