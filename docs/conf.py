"""Sphinx configuration of the dosezoo documentation (``make docs``).

The source directory is the repository root (``sphinx-build -c docs . build/docs/html``), so the
notebooks execute where they live (``notebooks/``, which they read data from by relative path)
and the pages keep their links to the files beside them; ``include_patterns`` picks the pages:
``docs/**`` and every ``notebooks/*.ipynb`` (the gallery's toctree globs them, so a notebook added
later appears without an edit here).

This module imports only the standard library and dosezoo: a fast test imports it without Sphinx.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import dosezoo

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The build directory: ``sphinx-build``'s output sits in ``BUILD / "html"``, and the jupyter
#: cache of the executed notebooks beside it (``make docs`` and the slow test pass other paths
#: through ``DOSEZOO_DOCS_BUILD``).
BUILD = Path(os.environ.get("DOSEZOO_DOCS_BUILD", ROOT / "build" / "docs"))

#: The public API: one reference page per package, one page per name of its ``__all__``.
API_PACKAGES = (
    "dosezoo.models",
    "dosezoo.designs",
    "dosezoo.samplers",
    "dosezoo.scenarios",
    "dosezoo.simulate",
)
#: The core modules of ``dosezoo`` (the vocabulary every layer shares), documented whole.
CORE_MODULES = (
    "dosezoo.data",
    "dosezoo.decision",
    "dosezoo.posterior",
    "dosezoo.protocols",
    "dosezoo.errors",
    "dosezoo.diagnostics",
    "dosezoo.levels",
    "dosezoo.outcomes",
    "dosezoo.datasets",
    "dosezoo.config",
    "dosezoo.registry",
    "dosezoo.studies",
)
#: Where the reference pages are written at build time (ignored by git).
API_DIR = DOCS / "api"

project = "dosezoo"
author = "the dosezoo authors"
copyright = "the dosezoo authors, MIT licence"
release = dosezoo.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax served from the site itself: the default loads it from a CDN, and offline (or
    # behind a firewall) every equation shows as raw TeX.
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

root_doc = "docs/index"
include_patterns = ["docs/**", "notebooks/*.ipynb"]
exclude_patterns = ["docs/_templates/**", "docs/_extra/**", "**/.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
templates_path = [str(DOCS / "_templates")]  # absolute: autosummary reads it from the srcdir
# Backticked names in the docstrings (`dosezoo.simulate.simulate`) become links where Sphinx
# knows the name, and stay code where it does not.
default_role = "py:obj"

# API reference: autosummary writes one page per public name; numpydoc renders the sections.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Pages in Markdown (MyST) and the example gallery (myst-nb).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# The notebooks are stored without outputs; myst-nb runs each at build time and keeps the
# outputs in a jupyter cache under the build directory, so a rebuild reruns only the notebooks
# that changed.
nb_execution_mode = "cache"
nb_execution_cache_path = str(BUILD / "jupyter_cache")
nb_execution_timeout = 1800  # seconds per cell: the studies' notebooks simulate hundreds of trials
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

html_theme = "pydata_sphinx_theme"
html_title = f"dosezoo {release}"
html_static_path: list[str] = []
html_extra_path = ["_extra"]  # index.html: a redirect to docs/index.html
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    # The design guide's wide tables take the page's whole width.
    "secondary_sidebar_items": {"**": ["page-toc"], "docs/which_design": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# Pages without sub-pages get no (empty) section navigation, and their tables the width.
html_sidebars = {
    f"docs/{page}": [] for page in ("index", "which_design", "models_and_designs", "parallel")
}


def _api_page(package: str) -> str:
    """Write the reference page of ``package`` (reStructuredText): its docstring, its names."""
    module = importlib.import_module(package)
    names = list(module.__all__)
    classes = [n for n in names if isinstance(getattr(module, n), type)]
    routines = [n for n in names if callable(getattr(module, n)) and n not in classes]
    data = [n for n in names if n not in classes and n not in routines]
    lines = [package, "=" * len(package), "", f".. automodule:: {package}", "   :no-members:", ""]
    for title, group, template in (
        ("Classes", classes, "dosezoo_class.rst"),
        ("Functions", routines, "dosezoo_base.rst"),
        ("Constants", data, "dosezoo_base.rst"),
    ):
        if not group:
            continue
        lines += [title, "-" * len(title), "", f".. currentmodule:: {package}", ""]
        lines += [".. autosummary::", "   :toctree: generated", "   :nosignatures:"]
        lines += [f"   :template: {template}", ""] + [f"   {name}" for name in group] + [""]
    return "\n".join(lines)


def _core_page() -> str:
    """Write the reference page of the core modules of ``dosezoo``, one page per module."""
    lines = ["dosezoo", "=======", "", "The core vocabulary that every layer shares.", ""]
    lines += [".. autosummary::", "   :toctree: generated", "   :template: dosezoo_module.rst", ""]
    lines += [f"   {name}" for name in CORE_MODULES] + [""]
    return "\n".join(lines)


def write_api_pages() -> list[str]:
    """Write the reference pages into ``docs/api/`` (from ``__all__``); return their docnames."""
    API_DIR.mkdir(exist_ok=True)
    pages = {"dosezoo": _core_page()}
    pages.update({package: _api_page(package) for package in API_PACKAGES})
    for name, text in pages.items():
        path = API_DIR / f"{name}.rst"
        if not path.exists() or path.read_text() != text:  # unchanged pages keep their mtime
            path.write_text(text)
    return [f"docs/api/{name}" for name in pages]


def setup(app: Any) -> None:
    """Write the reference pages before Sphinx reads the sources."""
    write_api_pages()
