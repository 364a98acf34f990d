"""Helpers the benchmark scripts share: markdown tables and the results pages of docs/results/.

Every script writes its data (JSON, CSV) and one page per study into :data:`RESULTS`; the page
starts with the commands that regenerate it (the ``make`` target and the script invocation it
runs) and the one that rebuilds the page from the saved data alone (``--report-only``), so a
page never holds a number its data files do not.
"""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: Where the scripts write their results and pages (committed).
RESULTS = ROOT / "docs" / "results"
#: Where the long studies keep their per-cell netCDF runs, to resume (not committed).
RUNS = ROOT / "benchmarks" / "runs"
#: The interpreter the Makefile runs the scripts with.
PYTHON = ".venv/bin/python"


def md_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` (index dropped) as a markdown table, cells as ``str``.

    pandas' ``to_markdown`` would need the tabulate package.
    """
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def write_page(
    name: str,
    title: str,
    body: str,
    *,
    make: str,
    runs: Sequence[str],
    rebuild: str,
    data: Sequence[str],
    results: Path = RESULTS,
) -> Path:
    """Write the page ``<results>/<name>.md`` and return its path.

    Parameters
    ----------
    name, title
        File stem and heading of the page.
    body
        The generated markdown.
    make
        The ``make`` target that regenerates the page.
    runs
        The script invocations that target runs, arguments after ``benchmarks/``
        (e.g. ``"lee2023_study.py --trials 1000 --jobs 2"``).
    rebuild
        The invocation that rebuilds the page from the saved data (e.g.
        ``"lee2023_study.py --report-only"``).
    data
        The data files (in ``results``) the page is made from.
    """
    script = runs[0].split()[0]
    invocations = " and ".join(f"`{PYTHON} benchmarks/{run}`" for run in runs)
    lines = [
        f"# {title}",
        "",
        f"Regenerate: `make {make}`, which runs {invocations}.",
        "",
        f"Rebuild this page from the saved data alone: `{PYTHON} benchmarks/{rebuild}`.",
        "",
        "Data: " + ", ".join(f"[`{file}`]({file})" for file in data) + ".",
        "",
        f"<!-- Written by benchmarks/{script}: edit the script, not this page. -->",
        "",
        body.strip(),
        "",
    ]
    path = results / f"{name}.md"
    path.write_text("\n".join(lines))
    return path
