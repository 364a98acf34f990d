"""The documentation site: its configuration, its tables of contents, its design guide, its build.

The fast tests read files only (no Sphinx needed); the build itself is slow (it executes every
notebook) and needs the docs extra (``make docs`` installs it).
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

import dosezoo.designs
from dosezoo.designs import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))
RESULT_PAGES = sorted((DOCS / "results").glob("*.md"))
#: A MyST toctree: ```{toctree} then its options and entries.
TOCTREE = re.compile(r"```\{toctree\}\n(.*?)```", flags=re.S)


def _conf():
    spec = importlib.util.spec_from_file_location("dosezoo_docs_conf", DOCS / "conf.py")
    assert spec and spec.loader
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def _docname(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


def _toctree_docnames() -> set[str]:
    """Every docname the toctrees of docs/*.md list, their globs expanded over the sources."""
    sources = [_docname(p) for p in (*DOCS.rglob("*.md"), *NOTEBOOKS)]
    listed: set[str] = set()
    for page in DOCS.glob("*.md"):
        for block in TOCTREE.findall(page.read_text()):
            for entry in block.splitlines():
                entry = entry.strip()
                if not entry or entry.startswith(":"):
                    continue
                if titled := re.fullmatch(r".*<(.+)>", entry):  # Title <docname>
                    entry = titled.group(1)
                here = _docname(page).rsplit("/", 1)[0]
                pattern = entry[1:] if entry.startswith("/") else f"{here}/{entry}"
                listed.update(name for name in sources if fnmatch(name, pattern))
    return listed


def test_conf_imports_and_includes_every_page():
    conf = _conf()
    assert conf.root_doc == "docs/index"
    assert {"numpydoc", "myst_nb", "sphinx.ext.autosummary"} <= set(conf.extensions)
    assert conf.html_theme == "pydata_sphinx_theme"
    assert conf.nb_execution_mode in ("cache", "force")
    assert Path(conf.nb_execution_cache_path).is_relative_to(conf.BUILD)
    pages = [p.relative_to(ROOT).as_posix() for p in (*NOTEBOOKS, *RESULT_PAGES)]
    for page in pages:
        assert any(fnmatch(page, pattern) for pattern in conf.include_patterns), page


def test_api_reference_covers_every_subpackage():
    conf = _conf()
    text = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"^packages = \[(.*?)\]", text, flags=re.S | re.M)
    assert packages
    subpackages = set(re.findall(r'"(dosezoo\.\w+)"', packages.group(1)))
    assert subpackages == set(conf.API_PACKAGES)


def test_toctrees_list_every_notebook_results_page_and_page():
    listed = _toctree_docnames()
    pages = [*NOTEBOOKS, *RESULT_PAGES, *(p for p in DOCS.glob("*.md") if p.name != "index.md")]
    assert NOTEBOOKS and RESULT_PAGES
    missing = [_docname(p) for p in pages if _docname(p) not in listed]
    assert not missing, f"pages no toctree lists: {missing}"


#: A row of the guide's tables: | design | `family` | {py:func}`~dosezoo.designs.factory` | ...
GUIDE_ROW = re.compile(
    r"^\| [^|]+ \| `([^`]+)` \| \{py:func\}`~dosezoo\.designs\.(\w+)` \| [^|]+ "
    r"\| `examples/([^`]+)` \|$",
    flags=re.M,
)


def test_design_guide_names_every_family_with_its_factory_and_example():
    rows = GUIDE_ROW.findall((DOCS / "which_design.md").read_text())
    assert rows
    for family, factory, example in rows:
        assert family in FAMILIES, f"the guide names {family!r}, which the registry lacks"
        assert FAMILIES[family].example == example, (family, example)
        assert (ROOT / "examples" / example).is_file(), example
        assert callable(getattr(dosezoo.designs, factory)), factory
    assert {family for family, _, _ in rows} == set(FAMILIES)


@pytest.mark.slow
def test_sphinx_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra is not installed (make docs installs it)")
    pytest.importorskip("myst_nb", reason="the docs extra is not installed (make docs installs it)")
    out = tmp_path / "html"
    cache = ROOT / "build" / "docs" / "jupyter_cache"
    if cache.is_dir():  # make docs' executed notebooks, by content hash: changed ones rerun
        shutil.copytree(cache, tmp_path / "jupyter_cache")
    env = {**os.environ, "DOSEZOO_DOCS_BUILD": str(tmp_path), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", "docs", "-W", "--keep-going"]
    run = subprocess.run(
        [*command, "-q", ".", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-5000:]
    assert (tmp_path / "jupyter_cache").is_dir()
    index = (out / "docs" / "index.html").read_text()
    assert "Which design for which trial" in index
    crm = (out / "docs" / "api" / "generated" / "dosezoo.designs.crm_design.html").read_text()
    assert "crm_design" in crm and "Parameters" in crm
    gallery = (out / "notebooks" / "binary_designs.html").read_text()
    assert "cell_output" in gallery  # executed: the stored notebook has no outputs
    results = (out / "docs" / "results" / "combination_bo.html").read_text()
    assert re.search(r'<img [^>]*src="[^"]*combination_bo_scenario1\.png"', results)
    assert list(out.rglob("combination_bo_scenario1.png"))  # the figure is copied
    assert re.search(r'href="[^"]*combination_bo_simulation\.csv"', results)  # data: a download
