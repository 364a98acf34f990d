"""The pages of docs/results/ say how to regenerate them, and the Makefile agrees."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGES = sorted(path for path in RESULTS.glob("*.md") if path.name != "README.md")


def _recipes() -> dict[str, list[str]]:
    """Makefile target -> its recipe lines, with $(PY) spelled out."""
    recipes: dict[str, list[str]] = {}
    target = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if match := re.match(r"^([\w-]+):", line):
            target = match.group(1)
            recipes[target] = []
        elif line.startswith("\t") and target:
            recipes[target].append(line.strip().replace("$(PY)", ".venv/bin/python"))
    return recipes


def test_there_are_pages():
    assert PAGES, f"no pages in {RESULTS}"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_page_starts_with_the_commands_the_makefile_runs(page):
    title, first, second, *_ = page.read_text().split("\n\n")
    assert title.startswith("# ")
    match = re.fullmatch(r"Regenerate: `make ([\w-]+)`, which runs (.*)\.", first)
    assert match, f"{page.name} does not start with its command"
    recipes = _recipes()
    target, runs = match.group(1), re.findall(r"`([^`]+)`", match.group(2))
    assert target in recipes, f"{page.name}: no target {target!r} in the Makefile"
    assert runs == recipes[target]
    rebuild = re.fullmatch(r"Rebuild this page from the saved data alone: `([^`]+)`\.", second)
    assert rebuild and rebuild.group(1) in recipes["results"]


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_page_names_its_data_files_and_the_index_lists_it(page):
    text = page.read_text()
    data = re.search(r"^Data: (.*)\.$", text, flags=re.M)
    assert data
    for name in re.findall(r"\(([^)]+)\)", data.group(1)):
        assert (RESULTS / name).exists(), f"{page.name} names a missing file {name}"
    assert f"]({page.name})" in (RESULTS / "README.md").read_text()
